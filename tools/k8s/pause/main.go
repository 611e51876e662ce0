// Command pause holds a pod's namespaces open: it waits for SIGINT or SIGTERM and exits 0,
// reaping orphaned children meanwhile (it is PID 1 when the pod shares its PID namespace).
// It must do nothing else: it is the sandbox container of every pod on the test node.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
