package admission

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func containerItem(f func(*corev1.LimitRangeItem)) corev1.LimitRangeItem {
	item := corev1.LimitRangeItem{Type: corev1.LimitTypeContainer}
	f(&item)
	return item
}

// resourcesOf shows a pod's containers' requests and limits.
func resourcesOf(p *corev1.Pod) []string {
	var out []string
	for _, list := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range list {
			out = append(out, c.Name+" requests "+show(c.Resources.Requests)+" limits "+show(c.Resources.Limits))
		}
	}
	return out
}

func TestLimitPodDefaults(t *testing.T) {
	tests := []struct {
		name       string
		pod        *corev1.Pod
		ranges     []*corev1.LimitRange
		want       []string // resourcesOf after defaulting
		annotation string
	}{
		{
			name: "default limit and request",
			pod:  mkPod("ns", "web", []corev1.Container{ctr("app", nil, nil)}),
			ranges: []*corev1.LimitRange{mkRange("ns", "limits", containerItem(func(i *corev1.LimitRangeItem) {
				i.Default, i.DefaultRequest = res("cpu", "500m", "memory", "256Mi"), res("cpu", "100m", "memory", "128Mi")
			}))},
			want:       []string{"app requests cpu=100m,memory=128Mi limits cpu=500m,memory=256Mi"},
			annotation: "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app",
		},
		{
			name: "the default limit is the request when there is no default request",
			pod:  mkPod("ns", "web", []corev1.Container{ctr("app", nil, nil)}),
			ranges: []*corev1.LimitRange{mkRange("ns", "limits", containerItem(func(i *corev1.LimitRangeItem) {
				i.Default = res("cpu", "500m")
			}))},
			want:       []string{"app requests cpu=500m limits cpu=500m"},
			annotation: "LimitRanger plugin set: cpu request for container app; cpu limit for container app",
		},
		{
			name: "max becomes the default limit, min the default request",
			pod:  mkPod("ns", "web", []corev1.Container{ctr("app", nil, nil)}),
			ranges: []*corev1.LimitRange{mkRange("ns", "limits", containerItem(func(i *corev1.LimitRangeItem) {
				i.Max, i.Min = res("cpu", "1"), res("memory", "64Mi")
			}))},
			want:       []string{"app requests cpu=1,memory=64Mi limits cpu=1"},
			annotation: "LimitRanger plugin set: cpu, memory request for container app; cpu limit for container app",
		},
		{
			name: "values the pod sets are kept; init containers get defaults too",
			pod: mkPod("ns", "web", []corev1.Container{ctr("app", res("cpu", "50m"), res("memory", "1Gi"))},
				withInit(ctr("init", nil, res("cpu", "2")))),
			ranges: []*corev1.LimitRange{mkRange("ns", "limits", containerItem(func(i *corev1.LimitRangeItem) {
				i.Default, i.DefaultRequest = res("cpu", "500m", "memory", "256Mi"), res("cpu", "100m", "memory", "128Mi")
			}))},
			want: []string{
				"init requests cpu=100m,memory=128Mi limits cpu=2,memory=256Mi",
				"app requests cpu=50m,memory=128Mi limits cpu=500m,memory=1Gi",
			},
			annotation: "LimitRanger plugin set: memory request for container app; cpu limit for container app; " +
				"cpu, memory request for init container init; memory limit for init container init",
		},
		{
			name: "LimitRanges of other namespaces and other types do not default",
			pod:  mkPod("ns", "web", []corev1.Container{ctr("app", nil, nil)}),
			ranges: []*corev1.LimitRange{
				mkRange("other", "limits", containerItem(func(i *corev1.LimitRangeItem) { i.Default = res("cpu", "1") })),
				mkRange("ns", "claims", corev1.LimitRangeItem{Type: corev1.LimitTypePersistentVolumeClaim, Max: res("storage", "4Gi")}),
			},
			want: []string{"app requests  limits "},
		},
		{
			name: "the first LimitRange by name wins",
			pod:  mkPod("ns", "web", []corev1.Container{ctr("app", nil, nil)}),
			ranges: []*corev1.LimitRange{
				mkRange("ns", "b", containerItem(func(i *corev1.LimitRangeItem) { i.Default = res("cpu", "2", "memory", "1Gi") })),
				mkRange("ns", "a", containerItem(func(i *corev1.LimitRangeItem) { i.Default = res("cpu", "1") })),
			},
			want: []string{"app requests cpu=1,memory=1Gi limits cpu=1,memory=1Gi"},
			annotation: "LimitRanger plugin set: cpu request for container app; cpu limit for container app; " +
				"memory request for container app; memory limit for container app",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if vs := LimitPod(tt.pod, tt.ranges); vs != nil {
				t.Fatalf("LimitPod violations: %v", vs)
			}
			if diff := cmp.Diff(tt.want, resourcesOf(tt.pod)); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
			if got := tt.pod.Annotations[LimitRangerAnnotation]; got != tt.annotation {
				t.Errorf("annotation = %q, want %q", got, tt.annotation)
			}
			// Defaulting twice changes nothing.
			again := tt.pod.DeepCopy()
			LimitPod(again, tt.ranges)
			if diff := cmp.Diff(resourcesOf(tt.pod), resourcesOf(again)); diff != "" {
				t.Errorf("second LimitPod changed resources:\n%s", diff)
			}
		})
	}
}

func TestLimitPodViolations(t *testing.T) {
	limits := mkRange("default", "limits", containerItem(func(i *corev1.LimitRangeItem) {
		i.Max, i.Min = res("cpu", "1", "memory", "1Gi"), res("cpu", "100m")
		i.MaxLimitRequestRatio = res("cpu", "4")
	}))
	podItem := mkRange("default", "per-pod", corev1.LimitRangeItem{Type: corev1.LimitTypePod, Max: res("cpu", "1500m"), Min: res("memory", "100Mi")})
	tests := []struct {
		name   string
		pod    *corev1.Pod
		ranges []*corev1.LimitRange
		want   []string
	}{
		{
			name:   "within bounds",
			pod:    cpuPod("default", "web", "200m", "800m"),
			ranges: []*corev1.LimitRange{limits},
		},
		{
			name:   "limit above max",
			pod:    cpuPod("default", "web", "1", "2"),
			ranges: []*corev1.LimitRange{limits},
			want:   []string{"pod default/web: container app: cpu limit 2 exceeds LimitRange default/limits max 1"},
		},
		{
			name:   "request above max, limit defaulted to max below the request",
			pod:    mkPod("default", "web", []corev1.Container{ctr("app", res("cpu", "2", "memory", "1Gi"), nil)}),
			ranges: []*corev1.LimitRange{limits},
			want: []string{
				"pod default/web: container app: cpu request 2 is greater than its limit 1, the default of LimitRange default/limits",
				"pod default/web: container app: cpu request 2 exceeds LimitRange default/limits max 1",
			},
		},
		{
			name:   "below min and above the ratio, in an init container",
			pod:    mkPod("default", "web", []corev1.Container{ctr("app", res("cpu", "500m"), res("cpu", "1", "memory", "1Gi"))}, withInit(ctr("init", res("cpu", "50m"), res("cpu", "1", "memory", "64Mi")))),
			ranges: []*corev1.LimitRange{limits},
			want: []string{
				"pod default/web: init container init: cpu request 50m is below LimitRange default/limits min 100m",
				"pod default/web: init container init: cpu limit to request ratio 20 exceeds LimitRange default/limits maxLimitRequestRatio 4",
			},
		},
		{
			name:   "ratio printed with its fraction",
			pod:    cpuPod("default", "web", "300m", "1"),
			ranges: []*corev1.LimitRange{mkRange("default", "ratio", containerItem(func(i *corev1.LimitRangeItem) { i.MaxLimitRequestRatio = res("cpu", "3") }))},
			want:   []string{"pod default/web: container app: cpu limit to request ratio 3.333333 exceeds LimitRange default/ratio maxLimitRequestRatio 3"},
		},
		{
			name: "missing request and limit",
			pod:  mkPod("default", "web", []corev1.Container{ctr("app", nil, nil)}),
			ranges: []*corev1.LimitRange{mkRange("default", "strict", corev1.LimitRangeItem{Type: corev1.LimitTypePod,
				Min: res("cpu", "10m"), Max: res("memory", "1Gi"), MaxLimitRequestRatio: res("cpu", "2")})},
			want: []string{
				"pod default/web: pod total: cpu request must be set: LimitRange default/strict min is 10m",
				"pod default/web: pod total: memory limit must be set: LimitRange default/strict max is 1Gi",
				"pod default/web: pod total: cpu request and limit must be set and not 0: LimitRange default/strict maxLimitRequestRatio is 2",
			},
		},
		{
			name: "pod totals: containers add up, the larger init container counts",
			pod: mkPod("default", "web", []corev1.Container{
				ctr("a", res("cpu", "800m", "memory", "64Mi"), res("cpu", "800m", "memory", "64Mi")),
				ctr("b", res("cpu", "800m", "memory", "64Mi"), res("cpu", "800m", "memory", "64Mi")),
			}, withInit(ctr("init", res("cpu", "100m", "memory", "200Mi"), res("cpu", "100m", "memory", "200Mi")))),
			ranges: []*corev1.LimitRange{podItem},
			want:   []string{"pod default/web: pod total: cpu limit 1600m exceeds LimitRange default/per-pod max 1500m"},
		},
		{
			name: "every LimitRange is checked",
			pod: mkPod("default", "web", []corev1.Container{
				ctr("a", res("cpu", "50m", "memory", "64Mi"), res("cpu", "800m", "memory", "64Mi")),
				ctr("b", res("cpu", "800m", "memory", "10Mi"), res("cpu", "800m", "memory", "10Mi")),
			}),
			ranges: []*corev1.LimitRange{podItem, limits},
			want: []string{
				"pod default/web: container a: cpu request 50m is below LimitRange default/limits min 100m",
				"pod default/web: container a: cpu limit to request ratio 16 exceeds LimitRange default/limits maxLimitRequestRatio 4",
				"pod default/web: pod total: memory request 74Mi is below LimitRange default/per-pod min 100Mi",
				"pod default/web: pod total: cpu limit 1600m exceeds LimitRange default/per-pod max 1500m",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, v := range LimitPod(tt.pod, tt.ranges) {
				got = append(got, v.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLimitClaim(t *testing.T) {
	storage := mkRange("ns", "storage", corev1.LimitRangeItem{Type: corev1.LimitTypePersistentVolumeClaim, Min: res("storage", "1Gi"), Max: res("storage", "10Gi")})
	claim := func(size string) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data"}}
		if size != "" {
			c.Spec.Resources.Requests = res("storage", size)
		}
		return c
	}
	tests := []struct {
		size string
		want []string
	}{
		{"5Gi", nil},
		{"1Gi", nil},
		{"20Gi", []string{"persistentvolumeclaim ns/data: storage request 20Gi exceeds LimitRange ns/storage max 10Gi"}},
		{"500Mi", []string{"persistentvolumeclaim ns/data: storage request 500Mi is below LimitRange ns/storage min 1Gi"}},
		{"", []string{
			"persistentvolumeclaim ns/data: storage request must be set: LimitRange ns/storage min is 1Gi",
			"persistentvolumeclaim ns/data: storage request must be set: LimitRange ns/storage max is 10Gi",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.size, func(t *testing.T) {
			var got []string
			for _, v := range LimitClaim(claim(tt.size), []*corev1.LimitRange{storage, mkRange("other", "x", storage.Spec.Limits...)}) {
				got = append(got, v.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
	// An update is not checked for a request it does not change.
	old := claim("20Gi")
	if msgs := limitClaim(claim("20Gi"), old, []*corev1.LimitRange{storage}); msgs != nil {
		t.Errorf("unchanged request checked again: %v", msgs)
	}
	if msgs := limitClaim(claim("30Gi"), old, []*corev1.LimitRange{storage}); len(msgs) != 1 {
		t.Errorf("changed request: %v, want one violation", msgs)
	}
}

func TestCheckTemplate(t *testing.T) {
	limits := mkRange("default", "limits", containerItem(func(i *corev1.LimitRangeItem) { i.Max = res("cpu", "1") }))
	cron := &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tick"},
	}
	cron.Spec.JobTemplate.Spec.Template.Spec.Containers = []corev1.Container{ctr("c", nil, res("cpu", "3"))}
	tests := []struct {
		name string
		obj  runtime.Object
		want []string
	}{
		{"fits (the default limit is the max)", mkDeployment("default", "web", ctr("app", nil, nil)), nil},
		{"too big", mkDeployment("default", "web", ctr("app", nil, res("cpu", "2"))),
			[]string{"deployment default/web: pod template: container app: cpu limit 2 exceeds LimitRange default/limits max 1"}},
		{"a CronJob's job template", cron,
			[]string{"cronjob default/tick: pod template: container c: cpu limit 3 exceeds LimitRange default/limits max 1"}},
		{"no template", mkConfigMap("default", "cm"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.obj.DeepCopyObject()
			var got []string
			for _, v := range CheckTemplate(tt.obj, []*corev1.LimitRange{limits}) {
				got = append(got, v.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tt.obj); diff != "" {
				t.Errorf("CheckTemplate changed the object:\n%s", diff)
			}
		})
	}
}

func TestDefaultPodSpec(t *testing.T) {
	d := mkDeployment("default", "web", ctr("app", nil, nil))
	ranges := []*corev1.LimitRange{mkRange("default", "limits", containerItem(func(i *corev1.LimitRangeItem) {
		i.Default, i.DefaultRequest = res("memory", "256Mi"), res("memory", "128Mi")
	}))}
	got := DefaultPodSpec("default", &d.Spec.Template.Spec, ranges)
	if want := "LimitRanger plugin set: memory request for container app; memory limit for container app"; got != want {
		t.Errorf("DefaultPodSpec = %q, want %q", got, want)
	}
	if r := d.Spec.Template.Spec.Containers[0].Resources; show(r.Requests) != "memory=128Mi" || show(r.Limits) != "memory=256Mi" {
		t.Errorf("template resources = %v", r)
	}
	if d.Spec.Template.Annotations != nil {
		t.Errorf("DefaultPodSpec annotated the template: %v", d.Spec.Template.Annotations)
	}
	if got := DefaultPodSpec("elsewhere", &d.Spec.Template.Spec, ranges); got != "" {
		t.Errorf("DefaultPodSpec in another namespace = %q, want nothing set", got)
	}
}

func TestEffectiveItemLeavesTheLimitRangeAlone(t *testing.T) {
	lr := mkRange("ns", "l", containerItem(func(i *corev1.LimitRangeItem) { i.Max = res("cpu", "1") }))
	pod := mkPod("ns", "p", []corev1.Container{ctr("app", nil, nil)})
	LimitPod(pod, []*corev1.LimitRange{lr})
	if lr.Spec.Limits[0].Default != nil || lr.Spec.Limits[0].DefaultRequest != nil {
		t.Errorf("LimitPod changed the LimitRange: %+v", lr.Spec.Limits[0])
	}
	if !strings.Contains(pod.Annotations[LimitRangerAnnotation], "cpu limit") {
		t.Errorf("pod not defaulted from max: %v", pod.Annotations)
	}
}
