package pods

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/agentlet/probe"
	"github.com/clusterctl/clusterctl/nodeapi"
)

func running() nodeapi.ContainerStatus {
	return nodeapi.ContainerStatus{State: nodeapi.ContainerState{Running: &nodeapi.StateRunning{}}}
}

func term(code int32) nodeapi.ContainerStatus {
	return nodeapi.ContainerStatus{State: nodeapi.ContainerState{Terminated: &nodeapi.StateTerminated{ExitCode: code}}}
}

func wait(reason string) nodeapi.ContainerStatus {
	return nodeapi.ContainerStatus{State: nodeapi.ContainerState{Waiting: &nodeapi.StateWaiting{Reason: reason}}}
}

func crashLoop(code int32) nodeapi.ContainerStatus {
	cs := wait(nodeapi.ReasonCrashLoopBackOff)
	cs.LastTerminationState.Terminated = &nodeapi.StateTerminated{ExitCode: code}
	return cs
}

func TestPhase(t *testing.T) {
	cs := func(s ...nodeapi.ContainerStatus) []nodeapi.ContainerStatus { return s }
	tests := []struct {
		name   string
		policy string
		init   []nodeapi.ContainerStatus
		ctrs   []nodeapi.ContainerStatus
		want   string
	}{
		{"all waiting", nodeapi.RestartAlways, nil, cs(wait("ContainerCreating"), wait("ContainerCreating")), nodeapi.PodPending},
		{"one running one waiting", nodeapi.RestartAlways, nil, cs(running(), wait("ContainerCreating")), nodeapi.PodPending},
		{"all running", nodeapi.RestartAlways, nil, cs(running(), running()), nodeapi.PodRunning},
		{"running and crash-looping", nodeapi.RestartAlways, nil, cs(running(), crashLoop(1)), nodeapi.PodRunning},
		{"Always, all exited", nodeapi.RestartAlways, nil, cs(term(0), term(1)), nodeapi.PodRunning},
		{"Never, all succeeded", nodeapi.RestartNever, nil, cs(term(0), term(0)), nodeapi.PodSucceeded},
		{"Never, one failed", nodeapi.RestartNever, nil, cs(term(0), term(2)), nodeapi.PodFailed},
		{"Never, one still running", nodeapi.RestartNever, nil, cs(running(), term(2)), nodeapi.PodRunning},
		{"OnFailure, all succeeded", nodeapi.RestartOnFailure, nil, cs(term(0)), nodeapi.PodSucceeded},
		{"OnFailure, failed and restarting", nodeapi.RestartOnFailure, nil, cs(crashLoop(1)), nodeapi.PodRunning},
		{"init running", nodeapi.RestartAlways, cs(running()), cs(wait("PodInitializing")), nodeapi.PodPending},
		{"init failed, Never", nodeapi.RestartNever, cs(term(1)), cs(wait("PodInitializing")), nodeapi.PodFailed},
		{"init failed, OnFailure restarts it", nodeapi.RestartOnFailure, cs(crashLoop(1)), cs(wait("PodInitializing")), nodeapi.PodPending},
		{"init done, app running", nodeapi.RestartAlways, cs(term(0)), cs(running()), nodeapi.PodRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &nodeapi.PodSpec{RestartPolicy: tt.policy}
			if got := Phase(spec, tt.init, tt.ctrs); got != tt.want {
				t.Errorf("Phase = %s, want %s", got, tt.want)
			}
		})
	}
}

func status(t *testing.T, spec nodeapi.PodSpec, o Observed, b *Book, probes Probes, now time.Time) nodeapi.PodStatus {
	t.Helper()
	if b == nil {
		b = bookOf(spec, nil)
	}
	g := groupByUID(o)[spec.UID]
	updateBook(b, g)
	return buildStatus(statusInput{Spec: &spec, obs: g, Book: b, Probes: probes, Gate: Gate{SandboxOK: true}, Now: now, Backoff: testPolicy})
}

func conds(st nodeapi.PodStatus) map[string]string {
	out := map[string]string{}
	for _, c := range st.Conditions {
		out[c.Type] = c.Status + "/" + c.Reason
	}
	return out
}

func TestBuildStatusRunningAndReady(t *testing.T) {
	p := podOf("web", nodeapi.RestartAlways, "web", "side")
	p.Containers[0].ReadinessProbe = &nodeapi.Probe{Handler: nodeapi.Handler{Exec: []string{"true"}}}
	o := Observed{Sandboxes: []cri.SandboxStatus{sb(p, "s1", 0, true)},
		Containers: []cri.ContainerStatus{ctr(p, "s1", "web", 0, cri.ContainerRunning), ctr(p, "s1", "side", 0, cri.ContainerRunning)}}

	st := status(t, p, o, nil, nil, at(time.Second))
	if st.Phase != nodeapi.PodRunning || st.PodIP != "10.244.1.5" || st.StartTime == nil {
		t.Errorf("status: %+v", st)
	}
	want := map[string]string{
		nodeapi.PodScheduled: "True/", nodeapi.PodReadyToStartConts: "True/", nodeapi.PodInitialized: "True/",
		nodeapi.PodContainersReady: "False/ContainersNotReady", nodeapi.PodReady: "False/ContainersNotReady",
	}
	if diff := cmp.Diff(want, conds(st)); diff != "" {
		t.Errorf("conditions before readiness (-want +got):\n%s", diff)
	}
	if c := st.ContainerStatuses[0]; c.Ready || !c.Started || c.ContainerID != "containerd://s1-web-0" {
		t.Errorf("web before readiness: %+v", c)
	}

	b := bookOf(p, nil)
	b.Conditions = st.Conditions
	st2 := status(t, p, o, b, Probes{{ContainerID: "s1-web-0", Kind: probe.Readiness}: probe.Success}, at(5*time.Second))
	if conds(st2)[nodeapi.PodReady] != "True/" || !st2.ContainerStatuses[0].Ready {
		t.Errorf("after readiness: %v", conds(st2))
	}
	for _, c := range st2.Conditions {
		wantT := at(time.Second)
		if c.Type == nodeapi.PodReady || c.Type == nodeapi.PodContainersReady {
			wantT = at(5 * time.Second)
		}
		if !c.LastTransitionTime.Equal(wantT) {
			t.Errorf("%s transition at %s, want %s", c.Type, c.LastTransitionTime, wantT)
		}
	}
}

func TestBuildStatusCrashLoop(t *testing.T) {
	p := podOf("crash", nodeapi.RestartAlways, "c")
	prev := exited(ctr(p, "s1", "c", 1, 0), 1, at(0), at(time.Second))
	last := exited(ctr(p, "s1", "c", 2, 0), 1, at(2*time.Second), at(3*time.Second))
	last.Message = "bye"
	o := Observed{Sandboxes: []cri.SandboxStatus{sb(p, "s1", 0, true)}, Containers: []cri.ContainerStatus{prev, last}}
	b := bookOf(p, nil)
	b.Container("c").Backoff = Backoff{Delay: 20 * time.Second, Since: at(time.Second)}

	st := status(t, p, o, b, nil, at(5*time.Second))
	c := st.ContainerStatuses[0]
	if c.State.Waiting == nil || c.State.Waiting.Reason != nodeapi.ReasonCrashLoopBackOff || c.RestartCount != 2 {
		t.Fatalf("state: %+v restarts %d", c.State, c.RestartCount)
	}
	want := &nodeapi.StateTerminated{ExitCode: 1, Reason: nodeapi.ReasonError, Message: "bye", StartedAt: at(2 * time.Second), FinishedAt: at(3 * time.Second)}
	if diff := cmp.Diff(want, c.LastTerminationState.Terminated); diff != "" {
		t.Errorf("lastState (-want +got):\n%s", diff)
	}
	if st.Phase != nodeapi.PodRunning || conds(st)[nodeapi.PodReady] != "False/ContainersNotReady" {
		t.Errorf("phase %s conditions %v", st.Phase, conds(st))
	}
	// Once the back-off is over it shows as terminated until restarted.
	st = status(t, p, o, b, nil, at(30*time.Second))
	if c := st.ContainerStatuses[0]; c.State.Terminated == nil || c.LastTerminationState.Terminated == nil ||
		c.LastTerminationState.Terminated.FinishedAt != at(time.Second) {
		t.Errorf("after the back-off: %+v", c)
	}
}

func TestBuildStatusWaitingReasons(t *testing.T) {
	p := withInit(podOf("w", nodeapi.RestartAlways, "app", "pull", "bad"), "i1", "i2")
	b := bookOf(p, nil)
	b.Container("pull").Pull = Retry{}.Fail(testPolicy, nodeapi.ReasonErrImagePull, "not found", at(0))
	b.Container("bad").Create = Retry{}.Fail(testPolicy, nodeapi.ReasonCreateContainerError, "no such file", at(0))
	o := Observed{Sandboxes: []cri.SandboxStatus{sb(p, "s1", 0, true)}, Containers: []cri.ContainerStatus{ctr(p, "s1", "i1", 0, cri.ContainerRunning)}}

	st := status(t, p, o, b, nil, at(0))
	reasons := func(st nodeapi.PodStatus) []string {
		var out []string
		for _, c := range append(append([]nodeapi.ContainerStatus{}, st.InitContainerStatuses...), st.ContainerStatuses...) {
			switch {
			case c.State.Waiting != nil:
				out = append(out, c.Name+"="+c.State.Waiting.Reason)
			case c.State.Running != nil:
				out = append(out, c.Name+"=running")
			default:
				out = append(out, c.Name+"=terminated")
			}
		}
		return out
	}
	want := []string{"i1=running", "i2=PodInitializing", "app=PodInitializing", "pull=ErrImagePull", "bad=CreateContainerError"}
	if diff := cmp.Diff(want, reasons(st)); diff != "" {
		t.Errorf("at the failure (-want +got):\n%s", diff)
	}
	if st.Phase != nodeapi.PodPending || conds(st)[nodeapi.PodInitialized] != "False/ContainersNotInitialized" {
		t.Errorf("phase %s conditions %v", st.Phase, conds(st))
	}
	st = status(t, p, o, b, nil, at(5*time.Second))
	if got := reasons(st)[3]; got != "pull=ImagePullBackOff" {
		t.Errorf("while backing off: %s", got)
	}
}

func TestBuildStatusTerminal(t *testing.T) {
	p := podOf("job", nodeapi.RestartNever, "main")
	o := Observed{Sandboxes: []cri.SandboxStatus{sb(p, "s1", 0, false)},
		Containers: []cri.ContainerStatus{exited(ctr(p, "s1", "main", 0, 0), 0, at(0), at(time.Second))}}
	st := status(t, p, o, nil, nil, at(2*time.Second))
	if st.Phase != nodeapi.PodSucceeded || st.PodIP != "" || conds(st)[nodeapi.PodReady] != "False/PodCompleted" {
		t.Errorf("status: phase %s ip %q %v", st.Phase, st.PodIP, conds(st))
	}
	if c := st.ContainerStatuses[0]; c.State.Terminated == nil || c.State.Terminated.Reason != nodeapi.ReasonCompleted {
		t.Errorf("container: %+v", c.State)
	}
}

func TestBookEvents(t *testing.T) {
	b := &Book{}
	for i := 0; i < 25; i++ {
		b.Event(at(time.Duration(i)*time.Second), "Pulled", string(rune('a'+i)))
	}
	b.Event(at(time.Minute), "Pulled", "y") // a repeat moves to the end
	if len(b.Events) != MaxEvents || b.Events[0].Message != "f" || b.Events[MaxEvents-1].Message != "y" || b.Events[MaxEvents-1].Count != 2 {
		t.Errorf("events: first %+v last %+v (%d)", b.Events[0], b.Events[len(b.Events)-1], len(b.Events))
	}
}

func TestBookEventClipsMessages(t *testing.T) {
	b := &Book{}
	b.Event(t0, "Unhealthy", "Liveness probe failed: "+strings.Repeat("é", MaxEventMessage))
	if m := b.Events[0].Message; len(m) > MaxEventMessage+len("…") || !strings.HasSuffix(m, "…") {
		t.Errorf("message of %d bytes", len(m))
	}
}
