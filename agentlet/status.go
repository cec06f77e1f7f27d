package agentlet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/version"
)

// StaleAfter is how many heartbeat intervals may pass before a published
// status no longer counts as coming from a running daemon.
const StaleAfter = 3

// StatusReader answers `agentlet status` from the daemon's last published
// status, judging whether the daemon still runs.
type StatusReader struct {
	Paths    Paths
	ProcRoot string // /proc
	Facts    func() (HostFacts, error)
	Now      func() time.Time
}

// Read returns the node's status once. It never fails because the daemon
// is down: then the status says so (Ready=False, AgentletNotRunning).
func (r StatusReader) Read() (*nodeapi.NodeStatus, error) {
	now := r.Now()
	alive := daemonPid(r.Paths.PidPath(), r.ProcRoot) != 0
	data, err := os.ReadFile(r.Paths.StatusPath())
	switch {
	case err == nil:
		pub, derr := nodeapi.DecodeNodeStatus(data)
		if derr == nil {
			return viewStatus(pub, alive, now), nil
		}
		local := r.local(now, alive)
		local.RecentErrors = append(local.RecentErrors, nodeapi.Event{Time: now, Reason: "StatusUnreadable",
			Message: clip(fmt.Sprintf("read %s: %v", r.Paths.StatusPath(), derr)), Count: 1})
		return local, nil
	case errors.Is(err, fs.ErrNotExist):
		return r.local(now, alive), nil
	default:
		return nil, fmt.Errorf("read published status: %w", err)
	}
}

// Wait polls Read until the node is Ready or ctx is done, and returns the
// last status either way.
func (r StatusReader) Wait(ctx context.Context, poll time.Duration) (*nodeapi.NodeStatus, error) {
	for {
		st, err := r.Read()
		if err != nil || st.Ready() {
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, nil
		case <-time.After(poll):
		}
	}
}

// local builds a status from what can be learned without the daemon: the
// host's facts and the held spec.
func (r StatusReader) local(now time.Time, alive bool) *nodeapi.NodeStatus {
	facts, ferr := r.Facts()
	spec, _, specErr := loadSpec(r.Paths.SpecPath())
	return localStatus(facts, ferr, spec, specErr, alive, now)
}

// localStatus is the status of a node whose daemon has not published one:
// it never ran, or (alive) it has just started.
func localStatus(facts HostFacts, factsErr error, spec *nodeapi.NodeSpec, specErr error, alive bool, now time.Time) *nodeapi.NodeStatus {
	capacity, allocatable := Capacity(facts)
	st := &nodeapi.NodeStatus{
		APIVersion:      nodeapi.APIVersion,
		Hostname:        facts.Hostname,
		AgentletVersion: version.Version,
		Kernel:          facts.Kernel,
		OS:              facts.OS,
		Arch:            runtime.GOARCH,
		CgroupVersion:   facts.CgroupVersion,
		Capacity:        capacity,
		Allocatable:     allocatable,
	}
	if spec != nil {
		st.NodeName, st.PodCIDR, st.SpecGeneration, st.SpecWriter = spec.NodeName, spec.PodCIDR, spec.Generation, spec.Writer
	}
	reason, msg := ReasonNotRunning, "the agentlet daemon has not published a status on this host"
	if alive {
		reason, msg = ReasonStarting, "the agentlet daemon is starting and has not published a status yet"
		st.DaemonRunning = true
	}
	st.Conditions = []nodeapi.Condition{
		{Type: nodeapi.ConditionReady, Status: nodeapi.False, Reason: reason, Message: msg, LastTransitionTime: now},
	}
	for _, typ := range []string{nodeapi.ConditionRuntimeReady, nodeapi.ConditionSandboxImage, nodeapi.ConditionNetworkReady, nodeapi.ConditionSpecApplied} {
		st.Conditions = append(st.Conditions, nodeapi.Condition{Type: typ, Status: nodeapi.Unknown, Reason: reason,
			Message: msg, LastTransitionTime: now})
	}
	if factsErr != nil {
		st.RecentErrors = append(st.RecentErrors, nodeapi.Event{Time: now, Reason: ReasonHostFactsFailed, Message: clip(factsErr.Error()), Count: 1})
	}
	if specErr != nil {
		st.RecentErrors = append(st.RecentErrors, nodeapi.Event{Time: now, Reason: ReasonSpecInvalid, Message: clip(specErr.Error()), Count: 1})
	}
	return st
}

// viewStatus decides what `agentlet status` reports from a published
// status: as is when its daemon is alive and its heartbeat fresh, otherwise
// with DaemonRunning=false, Ready=False and no resource usage (nobody
// measures it any more). The replaced Ready condition's transition time is
// the last heartbeat, so it is stable across calls.
func viewStatus(pub *nodeapi.NodeStatus, alive bool, now time.Time) *nodeapi.NodeStatus {
	st := *pub
	st.Conditions = append([]nodeapi.Condition(nil), pub.Conditions...)
	interval := time.Duration(pub.HeartbeatIntervalMillis) * time.Millisecond
	if interval <= 0 {
		interval = DefaultInterval
	}
	age := now.Sub(pub.HeartbeatAt)
	fresh := age <= StaleAfter*interval
	st.DaemonRunning = alive && fresh
	if st.DaemonRunning {
		return &st
	}
	st.Usage, st.Pods = nil, withUsage(pub.Pods, nil)
	ready := nodeapi.Condition{Type: nodeapi.ConditionReady, Status: nodeapi.False, LastTransitionTime: pub.HeartbeatAt}
	if alive {
		ready.Reason = ReasonHeartbeatStale
		ready.Message = fmt.Sprintf("the agentlet daemon runs but its last heartbeat is %s old (interval %s)", age.Round(time.Second), interval)
	} else {
		ready.Reason = ReasonNotRunning
		ready.Message = fmt.Sprintf("the agentlet daemon is not running; last heartbeat at %s", pub.HeartbeatAt.UTC().Format(time.RFC3339))
	}
	replaced := false
	for i, c := range st.Conditions {
		if c.Type == nodeapi.ConditionReady {
			st.Conditions[i], replaced = ready, true
		}
	}
	if !replaced {
		st.Conditions = append([]nodeapi.Condition{ready}, st.Conditions...)
	}
	return &st
}
