package pods

import (
	"sort"
	"strings"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/agentlet/probe"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// Observed is what the runtime reports about agentlet's pods: the
// sandboxes and containers labelled with nodeapi.LabelPodUID, with the
// details of ContainerStatus (termination messages already read).
type Observed struct {
	Sandboxes  []cri.SandboxStatus
	Containers []cri.ContainerStatus
}

// ProbeKey names one probe of one container instance.
type ProbeKey struct {
	ContainerID string
	Kind        probe.Kind
}

// Probes are the prober's current results.
type Probes map[ProbeKey]probe.Result

// podObs is the observed state of one pod UID.
type podObs struct {
	sandboxes  []cri.SandboxStatus   // oldest first
	containers []cri.ContainerStatus // by attempt, oldest first
}

// groupByUID sorts what was observed into pods.
func groupByUID(o Observed) map[string]*podObs {
	pods := map[string]*podObs{}
	get := func(uid string) *podObs {
		p := pods[uid]
		if p == nil {
			p = &podObs{}
			pods[uid] = p
		}
		return p
	}
	for _, s := range o.Sandboxes {
		uid := s.Labels[nodeapi.LabelPodUID]
		if !SafeUID(uid) {
			continue
		}
		get(uid).sandboxes = append(get(uid).sandboxes, s)
	}
	for _, c := range o.Containers {
		uid := c.Labels[nodeapi.LabelPodUID]
		if !SafeUID(uid) {
			continue
		}
		get(uid).containers = append(get(uid).containers, c)
	}
	for _, p := range pods {
		sort.SliceStable(p.sandboxes, func(i, j int) bool {
			a, b := p.sandboxes[i], p.sandboxes[j]
			if a.Attempt != b.Attempt {
				return a.Attempt < b.Attempt
			}
			return a.CreatedAt.Before(b.CreatedAt)
		})
		sort.SliceStable(p.containers, func(i, j int) bool {
			a, b := p.containers[i], p.containers[j]
			if a.Attempt != b.Attempt {
				return a.Attempt < b.Attempt
			}
			return a.CreatedAt.Before(b.CreatedAt)
		})
	}
	return pods
}

// SafeUID reports whether uid can name a pod directory: one path element.
// Sandboxes and containers with other UIDs are not agentlet's and ignored
// (a crafted label must never make agentlet remove files elsewhere).
func SafeUID(uid string) bool {
	return uid != "" && uid != "." && uid != ".." && len(uid) <= 128 && !strings.ContainsAny(uid, "/\x00")
}

// latestSandbox is the newest sandbox, nil for none.
func (p *podObs) latestSandbox() *cri.SandboxStatus {
	if p == nil || len(p.sandboxes) == 0 {
		return nil
	}
	return &p.sandboxes[len(p.sandboxes)-1]
}

// empty reports whether the runtime has nothing of the pod.
func (p *podObs) empty() bool {
	return p == nil || len(p.sandboxes) == 0 && len(p.containers) == 0
}

// instances returns the containers named name in sandbox sb ("" = any),
// newest first.
func (p *podObs) instances(sb, name string) []cri.ContainerStatus {
	if p == nil {
		return nil
	}
	var out []cri.ContainerStatus
	for i := len(p.containers) - 1; i >= 0; i-- {
		c := p.containers[i]
		if c.Name == name && (sb == "" || c.SandboxID == sb) {
			out = append(out, c)
		}
	}
	return out
}

// latest returns the newest instance of a container in sandbox sb, nil for none.
func (p *podObs) latest(sb, name string) *cri.ContainerStatus {
	in := p.instances(sb, name)
	if len(in) == 0 {
		return nil
	}
	return &in[0]
}

// updateBook folds an observation into a pod's book: the number of
// attempts made (also recovered from the runtime's attempt numbers after a
// restart of agentlet) and the newest terminated instance of each container.
// It reports whether the book changed.
func updateBook(b *Book, p *podObs) bool {
	if p == nil {
		return false
	}
	changed := false
	for _, c := range p.containers {
		cb := b.Container(c.Name)
		if c.Attempt+1 > cb.Attempts {
			cb.Attempts, changed = c.Attempt+1, true
		}
		if c.State == cri.ContainerExited && (cb.LastTerminated == nil || c.Attempt > cb.LastAttempt ||
			c.Attempt == cb.LastAttempt && !c.FinishedAt.UTC().Equal(cb.LastTerminated.FinishedAt)) {
			t := terminated(c)
			cb.LastTerminated, cb.LastAttempt, changed = &t, c.Attempt, true
		}
	}
	return changed
}

// terminated is the terminated state of an exited instance.
func terminated(c cri.ContainerStatus) nodeapi.StateTerminated {
	reason := c.Reason
	switch {
	case reason == "" && c.ExitCode == 0:
		reason = nodeapi.ReasonCompleted
	case reason == "":
		reason = nodeapi.ReasonError
	}
	return nodeapi.StateTerminated{ExitCode: c.ExitCode, Reason: reason, Message: c.Message,
		StartedAt: c.StartedAt.UTC(), FinishedAt: c.FinishedAt.UTC()}
}
