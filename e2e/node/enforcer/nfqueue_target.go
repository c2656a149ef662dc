// Added to kube-network-policies' networkpolicy package at build time by build-enforcer.sh.
//
// Upstream queues packets with nftables' own `queue` expression, which needs CONFIG_NFT_QUEUE.
// The kernels of our test machines lack it but have xt_NFQUEUE, which nftables reaches through
// nft_compat (the same path `iptables-nft -j NFQUEUE` takes). Same queue number, same fail-open
// semantics, so the controller's userspace verdicts are unchanged.

package networkpolicy

import (
	"encoding/binary"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

const (
	nfqFlagBypass = 0x01 // NFQ_FLAG_BYPASS: accept instead of drop while nobody listens
)

// nfqueueTarget builds `-j NFQUEUE --queue-num num [--queue-bypass]` (xt_NFQ_info_v3:
// queuenum, queues_total, flags; host byte order, as the kernel reads it).
func nfqueueTarget(num uint16, bypass bool) expr.Any {
	info := make([]byte, 6)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1) // queues_total: the kernel rejects 0
	var flags uint16
	if bypass {
		flags |= nfqFlagBypass
	}
	binary.NativeEndian.PutUint16(info[4:], flags)
	unknown := xt.Unknown(info)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &unknown}
}
