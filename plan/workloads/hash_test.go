package workloads

import (
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/clusterctl/clusterctl/plan/controller"
)

func TestSafeEncodeString(t *testing.T) {
	// rand.SafeEncodeString maps each byte to alphanums[b % 27].
	if got := SafeEncodeString("0123456789"); got != "456789bcdf" {
		t.Errorf("SafeEncodeString = %q", got)
	}
}

// TestComputeHash pins ComputeHash to what Kubernetes'
// controller.ComputeHash (fnv32a over go-spew's dump) returns for the same
// templates with k8s.io/api v0.37.2; the values were computed with
// go-spew itself. A new field in PodSpec changes them, as it changes
// Kubernetes' hashes.
func TestComputeHash(t *testing.T) {
	web := podTemplate("web", "nginx:1.0")
	tests := []struct {
		name      string
		tpl       corev1.PodTemplateSpec
		collision *int32
		want      string
	}{
		{"empty", corev1.PodTemplateSpec{}, nil, "54f4c57dcb"},
		{"web", web, nil, "6b5bfd57c8"},
		{"web, collision 1", web, int32Ptr(1), "6699b645f5"},
	}
	for _, tt := range tests {
		if got := ComputeHash(&tt.tpl, tt.collision); got != tt.want {
			t.Errorf("%s: ComputeHash = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestControllerRevisionHash uses the revisions of Kubernetes'
// stateful_set_compatibility_test.go (1.33 and 1.34 data).
func TestControllerRevisionHash(t *testing.T) {
	for raw, want := range map[string]string{
		`{"spec":{"template":{"$patch":"replace","metadata":{"annotations":{"test":"value"},"creationTimestamp":null,"labels":{"app":"foo"}},"spec":{"containers":[{"image":"test","imagePullPolicy":"Always","name":"test","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}}}`: "c77f6d978",
		`{"spec":{"template":{"$patch":"replace","metadata":{"annotations":{"test":"value"},"labels":{"app":"foo"}},"spec":{"containers":[{"image":"test","imagePullPolicy":"Always","name":"test","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}}}`:                          "776999688b",
	} {
		if got := hashControllerRevision([]byte(raw), int32Ptr(0)); got != want {
			t.Errorf("hash = %s, want %s", got, want)
		}
	}
	// The patch of the same template is those bytes (k8s.io/api v0.37.2
	// omits the zero creationTimestamp, as 1.34 does).
	grace := int64(30)
	tpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"test": "value"}, Labels: map[string]string{"app": "foo"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "test", Image: "test", ImagePullPolicy: corev1.PullAlways,
				TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile}},
			DNSPolicy: corev1.DNSClusterFirst, RestartPolicy: corev1.RestartPolicyAlways, SchedulerName: "default-scheduler",
			SecurityContext: &corev1.PodSecurityContext{}, TerminationGracePeriodSeconds: &grace,
		},
	}
	patch, err := templatePatch(&tpl)
	if err != nil {
		t.Fatal(err)
	}
	if got := hashControllerRevision(patch, int32Ptr(0)); got != "776999688b" {
		t.Errorf("hash of the patch %s = %s, want 776999688b", patch, got)
	}
	back, err := templateFromPatch(patch)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tpl, back); diff != "" {
		t.Errorf("template from patch (-want +got):\n%s", diff)
	}
}

func TestDumpForHashQuirks(t *testing.T) {
	secs := int64(5)
	type inner struct {
		P *int64
		S []*int64
		N string
	}
	got := dumpForHash(inner{S: []*int64{&secs, nil}, N: "x"})
	// A nil pointer ending a slice leaves spew's "ignore next type" flag
	// set, so N's type is not printed; the hashes depend on such quirks.
	// (Output checked against go-spew.)
	want := "(workloads.inner){P:(*int64)<nil> S:([]*int64)[<*>5 <nil>] N:x}"
	if got != want {
		t.Errorf("dump = %s\nwant   %s", got, want)
	}
}

func TestDeriveUID(t *testing.T) {
	uid := string(deriveUID("seed", "Pod", "default", "web-0"))
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(uid) {
		t.Errorf("uid %s is not an RFC 9562 version 8 UUID", uid)
	}
	if uid == string(deriveUID("other", "Pod", "default", "web-0")) || uid != string(deriveUID("seed", "Pod", "default", "web-0")) {
		t.Error("uid does not depend on exactly the seed and the object")
	}
}

// TestReconcileDeterministic runs a mixed input twice and compares.
func TestReconcileDeterministic(t *testing.T) {
	c := newCluster(t)
	c.nodes = []Node{node("n1", nil), node("n2", nil)}
	c.add(newDeployment("web", 3), newDeployment("api", 2, rolling(intstr.FromString("50%"), intstr.FromInt32(0))),
		newDaemonSet("agent"), newStatefulSet("db", 2, withClaim("data")), newReplicaSet("rs", 2))
	c.settle()
	c.readyAll()
	in := c.input()
	a, b := Reconcile(in), Reconcile(in)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("two runs differ (-first +second):\n%s", diff)
	}
	if a.Empty() {
		t.Error("expected status changes after pods became ready")
	}
	for _, o := range a.Put {
		if o.GetObjectKind().GroupVersionKind().Kind == "" {
			t.Errorf("put %s without kind", o.GetName())
		}
	}
	c.apply(a)
	c.settle()
	if got := Reconcile(c.input()); !got.Empty() {
		t.Errorf("not idempotent: %s", describe(got))
	}
	// Input is not modified.
	before := in.Deployments[0].DeepCopy()
	Reconcile(in)
	if diff := cmp.Diff(before, in.Deployments[0]); diff != "" {
		t.Errorf("Reconcile modified its input (-before +after):\n%s", diff)
	}
}

func TestChangesAreSorted(t *testing.T) {
	ch := Reconcile(Input{Now: t0, Seed: "s", Deployments: []*appsv1.Deployment{newDeployment("b", 1), newDeployment("a", 1)}})
	var refs []controller.Ref
	for _, o := range ch.Put {
		refs = append(refs, controller.RefOf(o))
	}
	sorted := append([]controller.Ref(nil), refs...)
	c := controller.Changes{Put: ch.Put}
	c.Sort()
	for i, o := range c.Put {
		sorted[i] = controller.RefOf(o)
	}
	if diff := cmp.Diff(sorted, refs); diff != "" {
		t.Errorf("puts not sorted (-sorted +got):\n%s", diff)
	}
}
