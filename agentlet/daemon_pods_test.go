package agentlet

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/agentlet/pods"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/version"
)

// fakePods records what the daemon asks of the pod runtime.
type fakePods struct {
	desired [][]string
	gates   []pods.Gate
	err     error
}

func (f *fakePods) Sync(_ context.Context, desired []nodeapi.PodSpec, gate pods.Gate) ([]nodeapi.PodStatus, error) {
	var names []string
	var out []nodeapi.PodStatus
	for _, p := range desired {
		names = append(names, p.Key())
		out = append(out, nodeapi.PodStatus{UID: p.UID, Namespace: p.Namespace, Name: p.Name, Phase: nodeapi.PodRunning})
	}
	f.desired = append(f.desired, names)
	f.gates = append(f.gates, gate)
	return out, f.err
}

func (f *fakePods) Run(ctx context.Context) { <-ctx.Done() }

func TestDaemonRunsPods(t *testing.T) {
	h := newHarness(t)
	fp := &fakePods{}
	h.d.Pods = fp
	h.rt.SetImage(version.PauseImage, true)

	// No spec: the pod runtime is not asked (it would remove everything).
	h.tick()
	if len(fp.desired) != 0 {
		t.Fatalf("synced without a spec: %v", fp.desired)
	}
	spec := testSpec(2)
	spec.Pods = []nodeapi.PodSpec{{UID: "u1", Namespace: "default", Name: "web", RestartPolicy: nodeapi.RestartAlways,
		Containers: []nodeapi.ContainerSpec{{Name: "web", Image: "busybox"}}}}
	h.apply(spec)
	st := h.tick()
	if diff := cmp.Diff([][]string{{"default/web"}}, fp.desired); diff != "" {
		t.Errorf("desired (-want +got):\n%s", diff)
	}
	if fp.gates[0].SandboxOK || fp.gates[0].Reason != "no CNI network config" {
		t.Errorf("gate without CNI config: %+v", fp.gates[0])
	}
	if len(st.Pods) != 1 || st.Pods[0].Name != "web" {
		t.Errorf("published pods: %+v", st.Pods)
	}
	h.writeCNI()
	h.tick()
	if g := fp.gates[1]; !g.SandboxOK {
		t.Errorf("gate with everything ready: %+v", g)
	}

	// A pod sync failure is reported; the last statuses stay published.
	fp.err = errors.New("observe pods: list pod sandboxes: unavailable")
	st = h.tick()
	if len(st.RecentErrors) == 0 || st.RecentErrors[len(st.RecentErrors)-1].Reason != ReasonPodSyncFailed || len(st.Pods) != 1 {
		t.Errorf("after a failed sync: errors %+v pods %d", st.RecentErrors, len(st.Pods))
	}

	// An unreadable held spec must not make the pods go away.
	fp.err = nil
	if err := os.WriteFile(h.paths.SpecPath(), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := len(fp.desired)
	st = h.tick()
	if len(fp.desired) != n || len(st.Pods) != 1 {
		t.Errorf("synced with an invalid spec (%d → %d) or lost the pods (%d)", n, len(fp.desired), len(st.Pods))
	}
}
