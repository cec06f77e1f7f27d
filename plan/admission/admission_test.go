package admission

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func strs(vs Violations) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.String())
	}
	return out
}

func TestAdmitQuota(t *testing.T) {
	compute := mkQuota("default", "compute", res("requests.cpu", "2", "limits.cpu", "4", "pods", "3"))
	objects := mkQuota("default", "objects", res("configmaps", "2", "count/deployments.apps", "1", "services.nodeports", "1"))
	running := cpuPod("default", "a", "1500m", "2", phase(corev1.PodRunning))
	nodePort := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "np"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}
	tests := []struct {
		name    string
		quotas  []*corev1.ResourceQuota
		current []runtime.Object
		changes []runtime.Object
		want    []string
	}{
		{
			name:    "fits",
			quotas:  []*corev1.ResourceQuota{compute},
			current: []runtime.Object{running},
			changes: []runtime.Object{cpuPod("default", "b", "500m", "1")},
		},
		{
			name:    "exceeds requests.cpu",
			quotas:  []*corev1.ResourceQuota{compute},
			current: []runtime.Object{running},
			changes: []runtime.Object{cpuPod("default", "b", "600m", "1")},
			want:    []string{"pod default/b: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=1500m, limited: requests.cpu=2"},
		},
		{
			name:    "pods in other namespaces and finished pods do not count",
			quotas:  []*corev1.ResourceQuota{compute},
			current: []runtime.Object{running, cpuPod("other", "x", "2", "4"), cpuPod("default", "done", "2", "4", phase(corev1.PodFailed))},
			changes: []runtime.Object{cpuPod("default", "b", "500m", "2")},
		},
		{
			name:   "every violation at once; admitted changes count for later ones, refused ones do not",
			quotas: []*corev1.ResourceQuota{compute},
			changes: []runtime.Object{
				cpuPod("default", "a", "1", "2"),
				cpuPod("default", "b", "1500m", "3"), // 2.5 > 2 cpu, 5 > 4 limit: refused, not counted
				cpuPod("default", "c", "1", "2"),
				cpuPod("default", "d", "100m", "100m"), // a 4th pod
			},
			want: []string{
				"pod default/b: exceeded quota: compute, requested: limits.cpu=3,requests.cpu=1500m, used: limits.cpu=2,requests.cpu=1, limited: limits.cpu=4,requests.cpu=2",
				"pod default/d: exceeded quota: compute, requested: limits.cpu=100m,requests.cpu=100m, used: limits.cpu=4,requests.cpu=2, limited: limits.cpu=4,requests.cpu=2",
			},
		},
		{
			name:   "a pod without the requests a quota constrains",
			quotas: []*corev1.ResourceQuota{compute},
			changes: []runtime.Object{mkPod("default", "web", []corev1.Container{ctr("app", res("cpu", "100m"), nil)},
				withInit(ctr("init", nil, nil)))},
			want: []string{"pod default/web: failed quota: compute: must specify limits.cpu for: app,init; requests.cpu for: init"},
		},
		{
			name:    "object counts",
			quotas:  []*corev1.ResourceQuota{compute, objects},
			current: []runtime.Object{mkConfigMap("default", "one"), mkConfigMap("other", "x"), mkDeployment("default", "web", ctr("app", res("cpu", "1"), res("cpu", "1")))},
			changes: []runtime.Object{mkConfigMap("default", "two"), mkConfigMap("default", "three"), mkDeployment("default", "api", ctr("app", res("cpu", "1"), res("cpu", "1")))},
			want: []string{
				"configmap default/three: exceeded quota: objects, requested: configmaps=1, used: configmaps=2, limited: configmaps=2",
				"deployment default/api: exceeded quota: objects, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1",
			},
		},
		{
			name:    "replacing an object charges only what it grows by",
			quotas:  []*corev1.ResourceQuota{objects},
			current: []runtime.Object{mkConfigMap("default", "one"), mkConfigMap("default", "two")},
			changes: []runtime.Object{mkConfigMap("default", "two")},
		},
		{
			name:    "a quota already over hard refuses even a zero request of that resource",
			quotas:  []*corev1.ResourceQuota{objects},
			current: []runtime.Object{nodePort, func() runtime.Object { s := nodePort.DeepCopy(); s.Name = "np2"; return s }()},
			changes: []runtime.Object{&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "plain"}}},
			want:    []string{"service default/plain: exceeded quota: objects, requested: services.nodeports=0, used: services.nodeports=2, limited: services.nodeports=1"},
		},
		{
			name:    "quotas of other namespaces do not apply",
			quotas:  []*corev1.ResourceQuota{mkQuota("other", "compute", res("pods", "0"))},
			changes: []runtime.Object{cpuPod("default", "a", "1", "1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strs(Admit(tt.quotas, tt.current, tt.changes))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Admit (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAdmitReplacedPod(t *testing.T) {
	q := mkQuota("default", "compute", res("requests.cpu", "1", "pods", "1"))
	old := cpuPod("default", "web-0", "1", "1", uid("u1"), phase(corev1.PodRunning))
	// The same pod stored again (a status change) is no new charge.
	if vs := Admit([]*corev1.ResourceQuota{q}, []runtime.Object{old}, []runtime.Object{cpuPod("default", "web-0", "1", "1", uid("u1"))}); vs != nil {
		t.Errorf("same pod again: %v", strs(vs))
	}
	// A new pod taking the name of a finished one is charged in full.
	done := cpuPod("default", "web-0", "1", "1", uid("u1"), phase(corev1.PodSucceeded))
	if vs := Admit([]*corev1.ResourceQuota{q}, []runtime.Object{done, cpuPod("default", "other", "500m", "500m")},
		[]runtime.Object{cpuPod("default", "web-0", "1", "1", uid("u2"))}); len(vs) != 1 {
		t.Errorf("new pod of a finished one's name: %v, want one violation", strs(vs))
	}
}

func TestApply(t *testing.T) {
	storedPod := cpuPod("team", "old", "500m", "500m", phase(corev1.PodRunning))
	stored := []runtime.Object{
		storedPod,
		mkQuota("team", "objects", res("count/deployments.apps", "5")),
		mkRange("team", "limits", containerItem(func(i *corev1.LimitRangeItem) { i.Max = res("cpu", "4") })),
	}
	manifest := []runtime.Object{
		// Pods before the policies that govern them: order does not matter.
		mkPod("team", "defaulted", []corev1.Container{ctr("app", res("memory", "64Mi"), nil)}),
		cpuPod("team", "too-big", "1", "1"),
		mkDeployment("team", "web", ctr("app", res("cpu", "3", "memory", "64Mi"), res("cpu", "3"))),
		mkDeployment("team", "unrequested", ctr("app", res("cpu", "100m"), res("cpu", "100m")), ctr("sidecar", nil, nil)),
		mkDeployment("team", "fine", ctr("app", res("memory", "64Mi"), nil)),
		// Replaces the stored LimitRange of the same name.
		mkRange("team", "limits", containerItem(func(i *corev1.LimitRangeItem) {
			i.Max, i.DefaultRequest = res("cpu", "2"), res("cpu", "250m")
		})),
		mkQuota("team", "compute", res("requests.cpu", "1", "requests.memory", "1Gi")),
	}
	a := New(stored)
	got := strs(a.Apply(manifest))
	want := []string{
		// defaulted: request 250m, with old's 500m: 750m of 1 — admitted.
		"pod team/too-big: exceeded quota: compute, requested: requests.cpu=1, used: requests.cpu=750m, limited: requests.cpu=1",
		"deployment team/web: pod template: container app: cpu limit 3 exceeds LimitRange team/limits max 2",
		"deployment team/web: pod template: one pod exceeds all of quota compute: requested: requests.cpu=3, limited: requests.cpu=1",
		"deployment team/unrequested: pod template: failed quota: compute: must specify requests.memory for: app,sidecar",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Apply (-want +got):\n%s", diff)
	}
	def := manifest[0].(*corev1.Pod)
	if r := def.Spec.Containers[0].Resources; show(r.Requests) != "cpu=250m,memory=64Mi" || show(r.Limits) != "cpu=2" {
		t.Errorf("defaulted pod resources = %v", r)
	}
	if def.Annotations[LimitRangerAnnotation] == "" {
		t.Error("defaulted pod has no limit-ranger annotation")
	}
	if PodTemplate(manifest[3]).Spec.Containers[1].Resources.Requests != nil {
		t.Error("Apply changed a workload's template")
	}
	st, ok := a.Status("team", "compute")
	if !ok {
		t.Fatal("Status: quota compute unknown")
	}
	if got, want := show(st.Used), "requests.cpu=750m,requests.memory=128Mi"; got != want {
		t.Errorf("compute used after apply = %s, want %s", got, want)
	}
	st, _ = a.Status("team", "objects")
	if got, want := show(st.Used), "count/deployments.apps=1"; got != want {
		t.Errorf("objects used after apply = %s, want %s (only the admitted Deployment counts)", got, want)
	}
	if _, ok := a.Status("team", "nope"); ok {
		t.Error("Status of an unknown quota: ok")
	}
}

// TestControllerPods is the controllers' use: pods created one by one
// until the quota is used up, the next one refused with the text of a
// FailedCreate event.
func TestControllerPods(t *testing.T) {
	stored := []runtime.Object{
		mkQuota("default", "compute", res("requests.cpu", "1")),
		mkRange("default", "defaults", containerItem(func(i *corev1.LimitRangeItem) { i.DefaultRequest = res("cpu", "300m") })),
	}
	a := New(stored)
	var refused []string
	for _, name := range []string{"web-a", "web-b", "web-c", "web-d"} {
		pod := mkPod("default", name, []corev1.Container{ctr("app", nil, nil)})
		if vs := a.Admit(pod); vs != nil {
			refused = append(refused, "Error creating: "+vs.Forbidden())
			continue
		}
		if got := show(pod.Spec.Containers[0].Resources.Requests); got != "cpu=300m" {
			t.Errorf("%s requests = %s, want the LimitRange default", name, got)
		}
	}
	want := []string{`Error creating: pods "web-d" is forbidden: exceeded quota: compute, requested: requests.cpu=300m, used: requests.cpu=900m, limited: requests.cpu=1`}
	if diff := cmp.Diff(want, refused); diff != "" {
		t.Errorf("refused (-want +got):\n%s", diff)
	}
	// The stored quota objects were not changed.
	if q := stored[0].(*corev1.ResourceQuota); q.Status.Used != nil {
		t.Errorf("stored quota status changed: %v", q.Status.Used)
	}
}

func TestViolationsFormatting(t *testing.T) {
	vs := Violations{
		{Kind: "Deployment", Namespace: "ns", Name: "web", Message: "first"},
		{Kind: "Deployment", Namespace: "ns", Name: "web", Message: "second"},
	}
	if got, want := vs.Forbidden(), `deployments.apps "web" is forbidden: [first, second]`; got != want {
		t.Errorf("Forbidden = %q, want %q", got, want)
	}
	if got, want := vs[:1].Forbidden(), `deployments.apps "web" is forbidden: first`; got != want {
		t.Errorf("Forbidden = %q, want %q", got, want)
	}
	err := vs.Err()
	var ae *Error
	if !errors.As(err, &ae) || len(ae.Violations) != 2 {
		t.Fatalf("Err = %v, want an *Error with 2 violations", err)
	}
	if got, want := err.Error(), "deployment ns/web: first\ndeployment ns/web: second"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if Violations(nil).Err() != nil || Violations(nil).Forbidden() != "" {
		t.Error("no violations should give no error and no message")
	}
}
