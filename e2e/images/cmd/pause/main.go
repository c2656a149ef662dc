// pause is the sandbox image's program: it holds a pod's namespaces open, reaps zombies (it is
// PID 1 of the pod when the PID namespace is shared), and exits 0 on SIGINT or SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

var sigs = make(chan os.Signal, 8)

// Subscribing in init narrows the window in which the Go runtime's own handler would turn an
// early SIGTERM into exit status 2.
func init() {
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
}

func main() {
	for sig := range sigs {
		reap()
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
	}
}

// reap collects every exited child; signals coalesce, so one SIGCHLD may stand for many.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
