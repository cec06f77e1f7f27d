package pods

import (
	"fmt"
	"sort"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/agentlet/probe"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// ActionKind is what the pod manager does to the runtime.
type ActionKind int

// Action kinds.
const (
	// CreateSandbox prepares the pod's volumes and runs a new sandbox (Attempt).
	CreateSandbox ActionKind = iota + 1
	// StartContainer pulls the image as the pull policy says, creates and
	// starts a container instance (Attempt) in SandboxID ("" = the one a
	// CreateSandbox before it made), or starts the created ContainerID.
	StartContainer
	// KillContainer stops a running container gracefully: preStop hook,
	// then StopContainer with the pod's grace period.
	KillContainer
	// RemoveContainer removes an exited container and its log file (GC).
	RemoveContainer
	// KillSandbox stops a sandbox no longer used (its containers
	// gracefully) and removes it with its containers.
	KillSandbox
	// StopSandbox stops the sandbox of a finished pod (releasing its IP)
	// and keeps its containers for their status and logs.
	StopSandbox
	// DeletePod stops the pod gracefully and removes everything of it:
	// sandboxes, containers, directory, logs, cgroup.
	DeletePod
	// SyncVolumes brings the files volumes of a running pod up to date
	// (ConfigMap and Secret updates).
	SyncVolumes
)

var actionNames = map[ActionKind]string{CreateSandbox: "CreateSandbox", StartContainer: "StartContainer",
	KillContainer: "KillContainer", RemoveContainer: "RemoveContainer", KillSandbox: "KillSandbox",
	StopSandbox: "StopSandbox", DeletePod: "DeletePod", SyncVolumes: "SyncVolumes"}

func (k ActionKind) String() string { return actionNames[k] }

// Action is one step for a pod.
type Action struct {
	Kind        ActionKind
	SandboxID   string
	ContainerID string
	Container   string // spec name
	Init        bool
	Attempt     uint32
	// Backoff is, for the restart of a crashed container, the back-off
	// state to keep once it started.
	Backoff *Backoff
	// Reason and Message explain a kill (for the event).
	Reason  string
	Message string
}

func (a Action) String() string {
	s := a.Kind.String()
	switch a.Kind {
	case CreateSandbox:
		s += fmt.Sprintf(" #%d", a.Attempt)
	case StartContainer:
		s += fmt.Sprintf(" %s#%d", a.Container, a.Attempt)
		if a.ContainerID != "" {
			s += " " + a.ContainerID
		}
	case KillContainer, RemoveContainer:
		s += " " + a.ContainerID
		if a.Reason != "" {
			s += " (" + a.Reason + ")"
		}
	case KillSandbox, StopSandbox:
		s += " " + a.SandboxID
	}
	return s
}

// PodPlan is what to do for one pod now, and when to look again.
type PodPlan struct {
	UID     string
	Actions []Action
	// Wake is when the plan changes by itself (a back-off expires); zero
	// for never.
	Wake time.Time
}

// Gate says whether new sandboxes may be created (the sandbox image is
// present and the network is ready).
type Gate struct {
	SandboxOK bool
	Reason    string // why not
}

// Input is everything Plan decides from.
type Input struct {
	Desired  []nodeapi.PodSpec
	Observed Observed
	Books    map[string]*Book // by UID; pods never seen have none
	Probes   Probes
	Gate     Gate
	Now      time.Time
	Backoff  BackoffPolicy
	// Skip are pods with work in flight: they are not planned.
	Skip map[string]bool
}

// Plan decides what to do for every pod: desired pods are converged, pods
// no longer desired (or replaced by a new UID) are deleted. It is pure.
func Plan(in Input) []PodPlan {
	obs := groupByUID(in.Observed)
	desired := map[string]*nodeapi.PodSpec{}
	for i := range in.Desired {
		desired[in.Desired[i].UID] = &in.Desired[i]
	}
	uids := map[string]bool{}
	for uid := range obs {
		uids[uid] = true
	}
	for uid := range in.Books {
		uids[uid] = true
	}
	for uid := range desired {
		uids[uid] = true
	}
	var out []PodPlan
	for _, uid := range sortedKeys(uids) {
		if in.Skip[uid] {
			continue
		}
		spec := desired[uid]
		var p PodPlan
		if spec == nil {
			b := in.Books[uid]
			switch {
			case b != nil && b.Delete.Failing() && in.Now.Before(b.Delete.Due()):
				p.Wake = b.Delete.Due()
			case !obs[uid].empty() || b != nil:
				p = PodPlan{UID: uid, Actions: []Action{{Kind: DeletePod}}}
			}
		} else {
			if blockedBy(spec, obs, in.Books, in.Skip) != "" {
				continue // the previous incarnation is still being removed
			}
			p = planPod(spec, obs[uid], in.Books[uid], in.Probes, in.Gate, in.Now, in.Backoff)
		}
		if len(p.Actions) > 0 || !p.Wake.IsZero() {
			p.UID = uid
			out = append(out, p)
		}
	}
	return out
}

// blockedBy returns the UID of another incarnation of the same
// namespace/name that still exists, "" for none. A replaced pod (new UID)
// starts only once the old one is gone.
func blockedBy(spec *nodeapi.PodSpec, obs map[string]*podObs, books map[string]*Book, busy map[string]bool) string {
	for uid, o := range obs {
		if uid == spec.UID || o.empty() {
			continue
		}
		if sb := o.latestSandbox(); sb != nil && sb.Namespace == spec.Namespace && sb.Name == spec.Name {
			return uid
		}
		for _, c := range o.containers {
			if c.Labels[nodeapi.LabelPodNamespace] == spec.Namespace && c.Labels[nodeapi.LabelPodName] == spec.Name {
				return uid
			}
		}
	}
	for uid, b := range books {
		if uid != spec.UID && busy[uid] && b.Namespace == spec.Namespace && b.Name == spec.Name {
			return uid
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// shouldRestart applies the restart policy to an exited container.
func shouldRestart(policy string, exitCode int32) bool {
	switch policy {
	case nodeapi.RestartAlways:
		return true
	case nodeapi.RestartOnFailure:
		return exitCode != 0
	default:
		return false
	}
}

// failedAt is when an exited instance stopped (best known time).
func failedAt(c *cri.ContainerStatus) time.Time {
	switch {
	case !c.FinishedAt.IsZero():
		return c.FinishedAt
	case !c.StartedAt.IsZero():
		return c.StartedAt
	default:
		return c.CreatedAt
	}
}

// restartAt is when an exited instance may be restarted, with the back-off
// state to keep once it is.
func restartAt(pol BackoffPolicy, cb ContainerBook, c *cri.ContainerStatus) (time.Time, Backoff) {
	return pol.RestartAt(cb.Backoff, c.StartedAt, failedAt(c))
}

// blockedUntil is when a failing pull or creation may be retried; zero
// when nothing blocks the container.
func blockedUntil(cb ContainerBook, now time.Time) time.Time {
	var until time.Time
	for _, r := range []Retry{cb.Pull, cb.Create} {
		if r.Failing() && now.Before(r.Due()) && r.Due().After(until) {
			until = r.Due()
		}
	}
	return until
}

// initDone reports whether the pod's init containers have all succeeded in
// sandbox sb (or a regular container has already been started there).
func initDone(spec *nodeapi.PodSpec, o *podObs, sb string) bool {
	for _, c := range spec.Containers {
		if o.latest(sb, c.Name) != nil {
			return true
		}
	}
	for _, c := range spec.InitContainers {
		l := o.latest(sb, c.Name)
		if l == nil || l.State != cri.ContainerExited || l.ExitCode != 0 {
			return false
		}
	}
	return true
}

// initFailed reports whether an init container failed for good (restart
// policy Never).
func initFailed(spec *nodeapi.PodSpec, o *podObs, sb string) bool {
	if spec.RestartPolicy != nodeapi.RestartNever {
		return false
	}
	for _, c := range spec.InitContainers {
		if l := o.latest(sb, c.Name); l != nil && l.State == cri.ContainerExited && l.ExitCode != 0 {
			return true
		}
	}
	return false
}

// planner accumulates one pod's plan.
type planner struct {
	spec *nodeapi.PodSpec
	o    *podObs
	book *Book
	now  time.Time
	pol  BackoffPolicy
	plan PodPlan
}

func (p *planner) add(a Action) { p.plan.Actions = append(p.plan.Actions, a) }

func (p *planner) wakeAt(t time.Time) {
	if !t.IsZero() && (p.plan.Wake.IsZero() || t.Before(p.plan.Wake)) {
		p.plan.Wake = t
	}
}

// start plans the first instance of a container in a fresh sandbox, or
// the next one; false when a failing pull or creation still backs off.
func (p *planner) start(c *nodeapi.ContainerSpec, init bool, sandboxID string, backoff *Backoff) bool {
	cb := p.book.peek(c.Name)
	if until := blockedUntil(cb, p.now); !until.IsZero() {
		p.wakeAt(until)
		return false
	}
	p.add(Action{Kind: StartContainer, SandboxID: sandboxID, Container: c.Name, Init: init, Attempt: cb.Attempts, Backoff: backoff})
	return true
}

// restart plans the restart of an exited instance once its back-off allows.
func (p *planner) restart(c *nodeapi.ContainerSpec, init bool, sandboxID string, l *cri.ContainerStatus) {
	at, next := restartAt(p.pol, p.book.peek(c.Name), l)
	if p.now.Before(at) {
		p.wakeAt(at)
		return
	}
	p.start(c, init, sandboxID, &next)
}

// planPod converges one desired pod.
func planPod(spec *nodeapi.PodSpec, o *podObs, book *Book, probes Probes, gate Gate, now time.Time, pol BackoffPolicy) PodPlan {
	if book == nil {
		book = &Book{}
	}
	p := &planner{spec: spec, o: o, book: book, now: now, pol: pol}
	sb := o.latestSandbox()

	// Older sandboxes go (a replaced sandbox, leftovers of a crash).
	if o != nil {
		for _, s := range o.sandboxes[:max(len(o.sandboxes)-1, 0)] {
			p.add(Action{Kind: KillSandbox, SandboxID: s.ID})
		}
	}
	// Containers whose sandbox is gone.
	if o != nil {
		ids := map[string]bool{}
		for _, s := range o.sandboxes {
			ids[s.ID] = true
		}
		for _, c := range o.containers {
			if !ids[c.SandboxID] {
				p.add(Action{Kind: RemoveContainer, ContainerID: c.ID})
			}
		}
	}

	if book.Terminal != "" {
		// A finished pod keeps its containers; its sandbox is stopped.
		if sb != nil && sb.State == cri.SandboxReady {
			p.add(Action{Kind: StopSandbox, SandboxID: sb.ID})
		}
		return p.plan
	}

	if sb == nil || sb.State != cri.SandboxReady {
		if sb != nil && spec.RestartPolicy == nodeapi.RestartNever && ranIn(spec, o, sb.ID) {
			// Its containers will not run again: the status shows how they ended.
			return p.plan
		}
		if !gate.SandboxOK {
			return p.plan
		}
		if until := book.Sandbox.Due(); book.Sandbox.Failing() && now.Before(until) {
			p.wakeAt(until)
			return p.plan
		}
		attempt := uint32(0)
		if sb != nil {
			p.add(Action{Kind: KillSandbox, SandboxID: sb.ID})
			attempt = sb.Attempt + 1
		}
		p.add(Action{Kind: CreateSandbox, Attempt: attempt})
		// The first containers go right after, in the same pass.
		if len(spec.InitContainers) > 0 {
			p.start(&spec.InitContainers[0], true, "", nil)
			return p.plan
		}
		for i := range spec.Containers {
			p.start(&spec.Containers[i], false, "", nil)
		}
		return p.plan
	}

	if len(spec.Volumes) > 0 && book.volumesHash != VolumesHash(spec) {
		p.add(Action{Kind: SyncVolumes})
	}
	p.gc(sb.ID)

	// Init containers, in order, each to completion.
	if !initDone(spec, o, sb.ID) {
		for i := range spec.InitContainers {
			c := &spec.InitContainers[i]
			l := o.latest(sb.ID, c.Name)
			switch {
			case l == nil:
				p.start(c, true, sb.ID, nil)
				return p.plan
			case l.State == cri.ContainerRunning:
				return p.plan // wait for it
			case l.State == cri.ContainerCreated || l.State == cri.ContainerUnknown:
				p.add(Action{Kind: StartContainer, SandboxID: sb.ID, ContainerID: l.ID, Container: c.Name, Init: true, Attempt: l.Attempt})
				return p.plan
			case l.ExitCode == 0:
				continue
			case spec.RestartPolicy == nodeapi.RestartNever:
				return p.plan // the pod failed
			default:
				p.restart(c, true, sb.ID, l)
				return p.plan
			}
		}
	}

	// Regular containers.
	for i := range spec.Containers {
		c := &spec.Containers[i]
		l := o.latest(sb.ID, c.Name)
		switch {
		case l == nil:
			p.start(c, false, sb.ID, nil)
		case l.State == cri.ContainerRunning:
			switch {
			case l.Annotations[AnnotationHash] != "" && l.Annotations[AnnotationHash] != ContainerHash(c):
				p.add(Action{Kind: KillContainer, ContainerID: l.ID, Container: c.Name, Reason: "Killing",
					Message: fmt.Sprintf("Container %s definition changed, will be restarted", c.Name)})
			case c.StartupProbe != nil && probes[ProbeKey{l.ID, probe.Startup}] == probe.Failure:
				p.add(Action{Kind: KillContainer, ContainerID: l.ID, Container: c.Name, Reason: "Killing",
					Message: fmt.Sprintf("Container %s failed startup probe, will be restarted", c.Name)})
			case c.LivenessProbe != nil && probes[ProbeKey{l.ID, probe.Liveness}] == probe.Failure:
				p.add(Action{Kind: KillContainer, ContainerID: l.ID, Container: c.Name, Reason: "Killing",
					Message: fmt.Sprintf("Container %s failed liveness probe, will be restarted", c.Name)})
			}
		case l.State == cri.ContainerCreated || l.State == cri.ContainerUnknown:
			p.add(Action{Kind: StartContainer, SandboxID: sb.ID, ContainerID: l.ID, Container: c.Name, Attempt: l.Attempt})
		case shouldRestart(spec.RestartPolicy, l.ExitCode):
			p.restart(c, false, sb.ID, l)
		}
	}
	return p.plan
}

// ranIn reports whether any regular container was created in sandbox sb.
func ranIn(spec *nodeapi.PodSpec, o *podObs, sb string) bool {
	for _, c := range spec.Containers {
		if o.latest(sb, c.Name) != nil {
			return true
		}
	}
	return false
}

// gc plans the removal of exited instances in sandbox sb beyond the newest
// and the one before it (kept for `logs --previous`), and of containers
// the spec no longer has.
func (p *planner) gc(sb string) {
	known := map[string]bool{}
	for _, c := range p.spec.InitContainers {
		known[c.Name] = true
	}
	for _, c := range p.spec.Containers {
		known[c.Name] = true
	}
	seen := map[string]bool{}
	for i := len(p.o.containers) - 1; i >= 0; i-- {
		c := p.o.containers[i]
		if c.SandboxID != sb || seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		in := p.o.instances(sb, c.Name)
		if !known[c.Name] {
			for _, x := range in {
				if x.State == cri.ContainerRunning {
					p.add(Action{Kind: KillContainer, ContainerID: x.ID, Container: x.Name, Reason: "Killing",
						Message: fmt.Sprintf("Container %s is no longer in the pod spec", x.Name)})
				} else {
					p.add(Action{Kind: RemoveContainer, ContainerID: x.ID, Container: x.Name})
				}
			}
			continue
		}
		keptPrevious := false
		for _, x := range in[1:] {
			switch {
			case x.State == cri.ContainerRunning:
				p.add(Action{Kind: KillContainer, ContainerID: x.ID, Container: x.Name, Reason: "Killing",
					Message: fmt.Sprintf("Container %s has a newer instance", x.Name)})
			case x.State == cri.ContainerExited && !keptPrevious:
				keptPrevious = true
			default:
				p.add(Action{Kind: RemoveContainer, ContainerID: x.ID, Container: x.Name})
			}
		}
	}
}
