package agentlet

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// testSpec builds a valid NodeSpec of the given generation.
func testSpec(gen int64) *nodeapi.NodeSpec {
	return &nodeapi.NodeSpec{
		APIVersion: nodeapi.APIVersion,
		NodeName:   "h1",
		Cluster:    nodeapi.ClusterInfo{Name: "demo", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", Domain: "cluster.local"},
		PodCIDR:    "10.244.1.0/24",
		Generation: gen,
		Writer:     "alice@laptop",
		WrittenAt:  time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
	}
}

func healthyStatus() cri.Status {
	return cri.Status{Conditions: []cri.Condition{
		{Type: cri.ConditionRuntimeReady, Status: true},
		{Type: cri.ConditionNetworkReady, Status: true},
	}}
}

// healthy is an observation of a fully converged node.
func healthy() observation {
	return observation{
		spec:         testSpec(3),
		version:      cri.Version{RuntimeName: "containerd", RuntimeVersion: "1.6.20"},
		status:       healthyStatus(),
		imageChecked: true,
		imagePresent: true,
		cniConf:      "/etc/cni/net.d/10-clusterctl.conflist",
	}
}

// brief renders conditions as "Type=Status/Reason" for compact comparisons.
func brief(conds []nodeapi.Condition) []string {
	var out []string
	for _, c := range conds {
		out = append(out, c.Type+"="+c.Status+"/"+c.Reason)
	}
	return out
}

func TestBuildConditions(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		mutate func(*observation)
		want   []string
	}{
		{
			name:   "all ready",
			mutate: func(*observation) {},
			want: []string{"Ready=True/AgentletReady", "ContainerRuntimeReady=True/RuntimeReady", "SandboxImageReady=True/ImagePresent",
				"NetworkReady=True/NetworkReady", "SpecApplied=True/Applied"},
		},
		{
			name:   "no spec",
			mutate: func(o *observation) { o.spec = nil },
			want: []string{"Ready=False/ConditionsNotMet", "ContainerRuntimeReady=True/RuntimeReady", "SandboxImageReady=True/ImagePresent",
				"NetworkReady=True/NetworkReady", "SpecApplied=False/NoSpec"},
		},
		{
			name: "runtime unreachable",
			mutate: func(o *observation) {
				o.versionErr, o.status, o.imageChecked, o.imagePresent = boom, cri.Status{}, false, false
			},
			want: []string{"Ready=False/ConditionsNotMet", "ContainerRuntimeReady=False/RuntimeUnreachable", "SandboxImageReady=Unknown/RuntimeUnreachable",
				"NetworkReady=Unknown/RuntimeUnreachable", "SpecApplied=True/Applied"},
		},
		{
			name:   "runtime status fails",
			mutate: func(o *observation) { o.statusErr, o.status = boom, cri.Status{} },
			want: []string{"Ready=False/ConditionsNotMet", "ContainerRuntimeReady=False/RuntimeStatusFailed", "SandboxImageReady=True/ImagePresent",
				"NetworkReady=Unknown/RuntimeUnreachable", "SpecApplied=True/Applied"},
		},
		{
			name: "runtime not ready, network not ready",
			mutate: func(o *observation) {
				o.status = cri.Status{Conditions: []cri.Condition{
					{Type: cri.ConditionRuntimeReady, Reason: "X"},
					{Type: cri.ConditionNetworkReady, Reason: "NetworkPluginNotReady", Message: "cni plugin not initialized"},
				}}
			},
			want: []string{"Ready=False/ConditionsNotMet", "ContainerRuntimeReady=False/RuntimeNotReady", "SandboxImageReady=True/ImagePresent",
				"NetworkReady=False/NetworkPluginNotReady", "SpecApplied=True/Applied"},
		},
		{
			name:   "no CNI config beats runtime state",
			mutate: func(o *observation) { o.cniConf, o.versionErr = "", boom },
			want: []string{"Ready=False/ConditionsNotMet", "ContainerRuntimeReady=False/RuntimeUnreachable", "SandboxImageReady=True/ImagePresent",
				"NetworkReady=False/NoCNIConfig", "SpecApplied=True/Applied"},
		},
		{
			name:   "image import failed",
			mutate: func(o *observation) { o.imagePresent, o.imageErr = false, boom },
			want: []string{"Ready=False/ConditionsNotMet", "ContainerRuntimeReady=True/RuntimeReady", "SandboxImageReady=False/ImageImportFailed",
				"NetworkReady=True/NetworkReady", "SpecApplied=True/Applied"},
		},
		{
			name:   "image status failed",
			mutate: func(o *observation) { o.imageChecked, o.imagePresent, o.imageErr = false, false, boom },
			want: []string{"Ready=False/ConditionsNotMet", "ContainerRuntimeReady=True/RuntimeReady", "SandboxImageReady=Unknown/ImageStatusFailed",
				"NetworkReady=True/NetworkReady", "SpecApplied=True/Applied"},
		},
		{
			name:   "rules failed",
			mutate: func(o *observation) { o.rulesErr = boom },
			want: []string{"Ready=False/ConditionsNotMet", "ContainerRuntimeReady=True/RuntimeReady", "SandboxImageReady=True/ImagePresent",
				"NetworkReady=True/NetworkReady", "SpecApplied=False/RulesFailed"},
		},
		{
			name:   "spec invalid",
			mutate: func(o *observation) { o.spec, o.specErr = nil, boom },
			want: []string{"Ready=False/ConditionsNotMet", "ContainerRuntimeReady=True/RuntimeReady", "SandboxImageReady=True/ImagePresent",
				"NetworkReady=True/NetworkReady", "SpecApplied=False/SpecInvalid"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := healthy()
			tt.mutate(&o)
			got := buildConditions(o)
			if diff := cmp.Diff(tt.want, brief(got)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			for _, c := range got {
				if !c.LastTransitionTime.IsZero() {
					t.Errorf("%s has a transition time; mergeConditions sets it", c.Type)
				}
			}
		})
	}
}

func TestReadyMessageNamesFailingConditions(t *testing.T) {
	o := healthy()
	o.spec = nil
	o.cniConf = ""
	ready := buildConditions(o)[0]
	want := "NetworkReady=False (NoCNIConfig), SpecApplied=False (NoSpec)"
	if ready.Message != want {
		t.Errorf("Ready message = %q, want %q", ready.Message, want)
	}
}

func TestMergeConditions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	prev := []nodeapi.Condition{
		{Type: "A", Status: nodeapi.True, Reason: "X", LastTransitionTime: t0},
		{Type: "B", Status: nodeapi.False, Reason: "X", LastTransitionTime: t0},
		{Type: "C", Status: nodeapi.False, Reason: "X", LastTransitionTime: t0},
	}
	next := []nodeapi.Condition{
		{Type: "A", Status: nodeapi.True, Reason: "Y", Message: "new message"}, // only reason changed: no transition
		{Type: "B", Status: nodeapi.True, Reason: "X"},                         // status changed
		{Type: "D", Status: nodeapi.False, Reason: "X"},                        // new condition
	}
	got := mergeConditions(prev, next, t1)
	want := []time.Time{t0, t1, t1}
	for i, c := range got {
		if !c.LastTransitionTime.Equal(want[i]) {
			t.Errorf("%s: LastTransitionTime = %s, want %s", c.Type, c.LastTransitionTime, want[i])
		}
	}
	if got[0].Reason != "Y" || got[0].Message != "new message" {
		t.Errorf("reason/message not taken from next: %+v", got[0])
	}
	// First tick: everything transitions now.
	for _, c := range mergeConditions(nil, next, t1) {
		if !c.LastTransitionTime.Equal(t1) {
			t.Errorf("first tick: %s at %s", c.Type, c.LastTransitionTime)
		}
	}
}

func TestRecordEvents(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := func(r, m string) problem { return problem{reason: r, message: m} }

	evs, fresh := recordEvents(nil, []problem{p("A", "a"), p("B", "b")}, t0)
	if len(evs) != 2 || len(fresh) != 2 {
		t.Fatalf("events %v fresh %v", evs, fresh)
	}
	// A repeats: it moves to the end, counts 2, takes the new time, and is not fresh.
	t1 := t0.Add(time.Second)
	evs, fresh = recordEvents(evs, []problem{p("A", "a")}, t1)
	want := []nodeapi.Event{
		{Time: t0, Reason: "B", Message: "b", Count: 1},
		{Time: t1, Reason: "A", Message: "a", Count: 2},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if len(fresh) != 0 {
		t.Errorf("repeat reported as fresh: %v", fresh)
	}
	// Same reason, other message: a separate event.
	evs, fresh = recordEvents(evs, []problem{p("A", "other")}, t1)
	if len(evs) != 3 || len(fresh) != 1 {
		t.Errorf("events %v fresh %v", evs, fresh)
	}
	// Only the newest MaxRecentErrors are kept.
	var many []problem
	for i := range 15 {
		many = append(many, p("R", fmt.Sprint(i)))
	}
	evs, _ = recordEvents(evs, many, t1)
	if len(evs) != MaxRecentErrors || evs[0].Message != "5" || evs[len(evs)-1].Message != "14" {
		t.Errorf("kept %d events: first %q last %q", len(evs), evs[0].Message, evs[len(evs)-1].Message)
	}
	// No problems: the list stays as it was.
	same, fresh := recordEvents(evs, nil, t1)
	if !cmp.Equal(same, evs) || fresh != nil {
		t.Error("recording nothing changed the events")
	}
}

func TestConditionChanges(t *testing.T) {
	prev := []nodeapi.Condition{{Type: "A", Status: nodeapi.True, Reason: "X"}, {Type: "B", Status: nodeapi.False, Reason: "X"}}
	next := []nodeapi.Condition{
		{Type: "A", Status: nodeapi.True, Reason: "X", Message: "changed message only"},
		{Type: "B", Status: nodeapi.False, Reason: "Y"},
		{Type: "C", Status: nodeapi.True, Reason: "X"},
	}
	var got []string
	for _, c := range conditionChanges(prev, next) {
		got = append(got, c.Type)
	}
	if diff := cmp.Diff([]string{"B", "C"}, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}
