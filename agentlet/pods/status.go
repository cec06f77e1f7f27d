package pods

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/agentlet/probe"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// Condition reasons of pods (Kubernetes').
const (
	ReasonContainersNotReady       = "ContainersNotReady"
	ReasonContainersNotInitialized = "ContainersNotInitialized"
	ReasonPodCompleted             = "PodCompleted"
)

// statusInput is what one pod's status is computed from.
type statusInput struct {
	Spec   *nodeapi.PodSpec
	obs    *podObs
	Book   *Book
	Probes Probes
	Gate   Gate
	// BlockedBy is the UID of an earlier incarnation still being removed.
	BlockedBy string
	Now       time.Time
	Backoff   BackoffPolicy
}

// buildStatus computes a pod's status the way kubelet does: container
// states (with waiting reasons and the last termination), phase,
// conditions (transition times carried over from the book) and events. It
// is pure; the caller stores the conditions and a terminal phase back into
// the book.
func buildStatus(in statusInput) nodeapi.PodStatus {
	spec, o, book := in.Spec, in.obs, in.Book
	if book == nil {
		book = &Book{}
	}
	st := nodeapi.PodStatus{UID: spec.UID, Namespace: spec.Namespace, Name: spec.Name}
	if !book.StartTime.IsZero() {
		t := book.StartTime.UTC()
		st.StartTime = &t
	}
	sb := o.latestSandbox()
	sbID := ""
	sandboxReady := sb != nil && sb.State == cri.SandboxReady
	if sb != nil {
		sbID = sb.ID
	}
	if sandboxReady {
		st.PodIP = sb.IP
	}
	initOK := sb != nil && initDone(spec, o, sbID)

	firstPending := true
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		cs := containerStatus(in, c, true, sbID, firstPending, initOK)
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			firstPending = false
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	for i := range spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, containerStatus(in, &spec.Containers[i], false, sbID, true, initOK))
	}

	st.Phase = book.Terminal
	if st.Phase == "" {
		st.Phase = Phase(spec, st.InitContainerStatuses, st.ContainerStatuses)
	}
	switch {
	case in.BlockedBy != "":
		st.Reason, st.Message = "Replacing", fmt.Sprintf("waiting for the previous pod (uid %s) to be removed", in.BlockedBy)
	case !sandboxReady && !in.Gate.SandboxOK && st.Phase == nodeapi.PodPending:
		st.Reason, st.Message = "NodeNotReady", in.Gate.Reason
	case book.Sandbox.Failing() && !sandboxReady:
		st.Reason, st.Message = "FailedCreatePodSandBox", book.Sandbox.Message
	}

	terminal := st.Phase == nodeapi.PodSucceeded || st.Phase == nodeapi.PodFailed
	conds := []nodeapi.Condition{{Type: nodeapi.PodScheduled, Status: nodeapi.True}}
	ready := nodeapi.Condition{Type: nodeapi.PodReadyToStartConts, Status: nodeapi.False}
	if sandboxReady {
		ready.Status = nodeapi.True
	}
	conds = append(conds, ready)

	initC := nodeapi.Condition{Type: nodeapi.PodInitialized, Status: nodeapi.True}
	var incomplete []string
	for _, cs := range st.InitContainerStatuses {
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			incomplete = append(incomplete, cs.Name)
		}
	}
	if len(incomplete) > 0 && !initOK {
		initC.Status, initC.Reason = nodeapi.False, ReasonContainersNotInitialized
		initC.Message = fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incomplete, " "))
	}
	conds = append(conds, initC)

	var unready []string
	for _, cs := range st.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	cr := nodeapi.Condition{Type: nodeapi.PodContainersReady, Status: nodeapi.True}
	switch {
	case terminal:
		cr.Status, cr.Reason = nodeapi.False, ReasonPodCompleted
	case len(unready) > 0:
		cr.Status, cr.Reason = nodeapi.False, ReasonContainersNotReady
		cr.Message = fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	}
	r := cr
	r.Type = nodeapi.PodReady
	conds = append(conds, cr, r)
	st.Conditions = mergeConditions(book.Conditions, conds, in.Now)
	st.Events = append([]nodeapi.Event(nil), book.Events...)
	return st
}

// containerStatus is the status of one container. first says whether an
// init container is the next to run (later ones wait with PodInitializing).
func containerStatus(in statusInput, c *nodeapi.ContainerSpec, init bool, sb string, first, initOK bool) nodeapi.ContainerStatus {
	o, spec := in.obs, in.Spec
	cb := in.Book.peek(c.Name)
	cs := nodeapi.ContainerStatus{Name: c.Name, Image: c.Image}
	if cb.Attempts > 0 {
		cs.RestartCount = int32(cb.Attempts - 1)
	}
	var l, prev *cri.ContainerStatus
	if sb != "" {
		if in := o.instances(sb, c.Name); len(in) > 0 {
			l = &in[0]
			for i := 1; i < len(in); i++ {
				if in[i].State == cri.ContainerExited {
					prev = &in[i]
					break
				}
			}
		}
	}
	last := func() nodeapi.ContainerState {
		if prev != nil {
			t := terminated(*prev)
			return nodeapi.ContainerState{Terminated: &t}
		}
		if cb.LastTerminated != nil && (l == nil || cb.LastAttempt < l.Attempt) {
			t := *cb.LastTerminated
			return nodeapi.ContainerState{Terminated: &t}
		}
		return nodeapi.ContainerState{}
	}
	if l == nil {
		cs.State.Waiting = waiting(in, c, cb, init, first, initOK)
		cs.LastTerminationState = last()
		return cs
	}
	cs.ContainerID = "containerd://" + l.ID
	cs.ImageID = l.ImageRef
	cs.RestartCount = int32(l.Attempt)
	switch l.State {
	case cri.ContainerRunning:
		cs.State.Running = &nodeapi.StateRunning{StartedAt: l.StartedAt.UTC()}
		cs.LastTerminationState = last()
		if !init {
			cs.Started = c.StartupProbe == nil || in.Probes[ProbeKey{l.ID, probe.Startup}] == probe.Success
			cs.Ready = cs.Started && (c.ReadinessProbe == nil || in.Probes[ProbeKey{l.ID, probe.Readiness}] == probe.Success)
		}
	case cri.ContainerExited:
		t := terminated(*l)
		restart := in.Book.Terminal == "" && shouldRestart(spec.RestartPolicy, l.ExitCode) && (init || initOK) &&
			!(init && spec.RestartPolicy == nodeapi.RestartNever)
		if restart {
			if at, _ := restartAt(in.Backoff, cb, l); in.Now.Before(at) {
				cs.State.Waiting = &nodeapi.StateWaiting{Reason: nodeapi.ReasonCrashLoopBackOff,
					Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
						at.Sub(failedAt(l)).Round(time.Millisecond), c.Name, spec.Name, spec.Namespace, spec.UID)}
				cs.LastTerminationState = nodeapi.ContainerState{Terminated: &t}
				return cs
			}
		}
		cs.State.Terminated = &t
		cs.LastTerminationState = last()
		if init && t.ExitCode == 0 {
			cs.Ready = true
		}
	default:
		cs.State.Waiting = &nodeapi.StateWaiting{Reason: nodeapi.ReasonContainerCreating}
		cs.LastTerminationState = last()
	}
	return cs
}

// waiting is the state of a container without an instance.
func waiting(in statusInput, c *nodeapi.ContainerSpec, cb ContainerBook, init, first, initOK bool) *nodeapi.StateWaiting {
	for _, r := range []Retry{cb.Pull, cb.Create} {
		if !r.Failing() {
			continue
		}
		reason := r.Reason
		if reason == nodeapi.ReasonErrImagePull && in.Now.Before(r.Due()) && r.Backoff.Delay > 0 &&
			in.Now.Sub(r.Backoff.Since) > time.Second {
			reason = nodeapi.ReasonImagePullBackOff
			return &nodeapi.StateWaiting{Reason: reason, Message: fmt.Sprintf("Back-off pulling image %q: %s", c.Image, r.Message)}
		}
		return &nodeapi.StateWaiting{Reason: reason, Message: r.Message}
	}
	if (init && !first) || (!init && !initOK && len(in.Spec.InitContainers) > 0) {
		return &nodeapi.StateWaiting{Reason: nodeapi.ReasonPodInitializing}
	}
	return &nodeapi.StateWaiting{Reason: nodeapi.ReasonContainerCreating}
}

// Phase is kubelet's pod phase rule (getPhase) for the given statuses.
func Phase(spec *nodeapi.PodSpec, initStatuses, statuses []nodeapi.ContainerStatus) string {
	pendingInit, failedInit := 0, 0
	for _, cs := range initStatuses {
		switch {
		case cs.State.Running != nil:
			pendingInit++
		case cs.State.Terminated != nil:
			if cs.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			if cs.LastTerminationState.Terminated.ExitCode != 0 {
				failedInit++
			}
		default:
			pendingInit++
		}
	}
	unknown, running, waiting, stopped, succeeded := 0, 0, 0, 0, 0
	anyStarted := false
	for _, cs := range statuses {
		switch {
		case cs.State.Running != nil:
			running++
			anyStarted = true
		case cs.State.Terminated != nil:
			stopped++
			anyStarted = true
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			stopped++
			anyStarted = true
		case cs.State.Waiting != nil:
			waiting++
		default:
			unknown++
		}
	}
	if failedInit > 0 && spec.RestartPolicy == nodeapi.RestartNever {
		return nodeapi.PodFailed
	}
	switch {
	case pendingInit > 0 && !anyStarted, waiting > 0:
		return nodeapi.PodPending
	case running > 0 && unknown == 0:
		return nodeapi.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if spec.RestartPolicy == nodeapi.RestartAlways {
			return nodeapi.PodRunning
		}
		if stopped == succeeded {
			return nodeapi.PodSucceeded
		}
		if spec.RestartPolicy == nodeapi.RestartNever {
			return nodeapi.PodFailed
		}
		return nodeapi.PodRunning
	default:
		return nodeapi.PodPending
	}
}

// mergeConditions stamps next with transition times: a condition whose
// status did not change keeps its previous LastTransitionTime.
func mergeConditions(prev, next []nodeapi.Condition, now time.Time) []nodeapi.Condition {
	out := make([]nodeapi.Condition, len(next))
	for i, c := range next {
		c.LastTransitionTime = now.UTC()
		for _, p := range prev {
			if p.Type == c.Type && p.Status == c.Status && !p.LastTransitionTime.IsZero() {
				c.LastTransitionTime = p.LastTransitionTime
			}
		}
		out[i] = c
	}
	return out
}

// sortStatuses orders pod statuses by namespace/name.
func sortStatuses(s []nodeapi.PodStatus) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Namespace != s[j].Namespace {
			return s[i].Namespace < s[j].Namespace
		}
		return s[i].Name < s[j].Name
	})
}
