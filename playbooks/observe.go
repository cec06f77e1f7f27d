package playbooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/remote"
)

// Observation is what one host reported, or why it could not.
type Observation struct {
	Host string
	// Status is agentlet's NodeStatus; nil when the host was unreachable or
	// agentlet is not installed.
	Status *nodeapi.NodeStatus
	// Installed is false when agentlet is not installed on the host.
	Installed bool
	// Err is the connection or command error, if any.
	Err     error
	Elapsed time.Duration
}

// statusCmd prints agentlet's status, or exits 127 when it is not installed.
func statusCmd() string {
	return fmt.Sprintf("if [ -x %[1]s ]; then exec %[1]s status; else exit 127; fi", nodeapi.BinaryPath)
}

// Observe asks every host for its NodeStatus in parallel, one SSH round trip
// per host after connecting.
func Observe(ctx context.Context, hosts []string, dial Dialer, parallel int) []Observation {
	start := time.Now()
	f := Connect(ctx, hosts, dial, parallel)
	defer f.Close()
	obs := f.Observe(ctx)
	for i := range obs {
		obs[i].Elapsed = time.Since(start)
	}
	return obs
}

func observeConn(ctx context.Context, name string, h Host) Observation {
	o := Observation{Host: name}
	out, err := h.Run(ctx, statusCmd(), nil)
	var ce *remote.CommandError
	if errors.As(err, &ce) && ce.ExitCode == 127 {
		return o
	}
	o.Installed = true
	if err != nil {
		o.Err = err
		return o
	}
	o.Status, o.Err = nodeapi.DecodeNodeStatus(out)
	return o
}

// Node status words, as `get nodes` prints them.
const (
	StatusReady       = "Ready"
	StatusNotReady    = "NotReady"
	StatusUnreachable = "Unreachable"
)

// Summarize turns an observation into a status word and a reason.
func Summarize(o Observation) (status, reason string) {
	switch {
	case o.Err != nil && !o.Installed && IsUnreachable(o.Err):
		return StatusUnreachable, o.Err.Error()
	case o.Err != nil:
		return StatusNotReady, o.Err.Error()
	case !o.Installed:
		return StatusNotReady, "AgentletNotInstalled: run clusterctl up"
	case o.Status == nil:
		return StatusNotReady, "no status"
	case o.Status.Ready() && o.Status.DaemonRunning:
		return StatusReady, ""
	}
	return StatusNotReady, NotReadyReason(o.Status)
}
