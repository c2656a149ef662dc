"""Rewrites kube-network-policies' nftables queue expressions to the NFQUEUE target.

Run by build-enforcer.sh on a private copy of the module source (never the module cache, never
committed). Fails when upstream code no longer has the exact shape this rewrite expects, so a
version bump cannot silently build an enforcer that queues nothing.
"""
import pathlib
import sys

path = pathlib.Path(sys.argv[1]) / "pkg/networkpolicy/controller.go"
src = path.read_text()
old = """queue := &expr.Queue{Num: uint16(c.config.QueueID)}
	if c.config.FailOpen {
		queue.Flag = expr.QueueFlagBypass
	}"""
new = "queue := nfqueueTarget(uint16(c.config.QueueID), c.config.FailOpen)"
count = src.count(old)
if count != 2:
    sys.exit(f"patch.py: expected 2 queue expressions in {path}, found {count}")
path.write_text(src.replace(old, new))
print(f"patch.py: {count} queue expressions now use the NFQUEUE target")
