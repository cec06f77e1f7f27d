// Command pause is the process that holds a pod sandbox's namespaces open.
//
// It blocks until SIGINT or SIGTERM (then exits 0) and reaps every child on
// SIGCHLD, because it may be PID 1 of the pod's PID namespace. It is built
// static, without fmt, and shipped inside agentlet as the image
// version.PauseImage. "-v" prints a version line.
package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/clusterctl/clusterctl/version"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		_, _ = os.Stdout.WriteString("pause " + version.PauseImage + "\n")
		return
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			return // SIGINT or SIGTERM: exit 0
		}
		reap()
	}
}

// reap collects every exited child without blocking. One SIGCHLD may stand
// for several exits, so it loops until no zombie is left.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
