package admission

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// show prints a resource list compactly for comparisons.
func show(l corev1.ResourceList) string { return prettyPrint(l) }

func TestPodRequestsAndLimits(t *testing.T) {
	always := ptr(corev1.ContainerRestartPolicyAlways)
	sidecar := func(name string, req, lim corev1.ResourceList) corev1.Container {
		c := ctr(name, req, lim)
		c.RestartPolicy = always
		return c
	}
	tests := []struct {
		name                string
		pod                 *corev1.Pod
		requests, limits    string
		quotaReqs, quotaLim string // with overhead, as quotas see it
	}{
		{
			name:     "containers add up",
			pod:      mkPod("ns", "p", []corev1.Container{ctr("a", res("cpu", "100m", "memory", "64Mi"), res("cpu", "1")), ctr("b", res("cpu", "200m"), nil)}),
			requests: "cpu=300m,memory=64Mi", limits: "cpu=1",
		},
		{
			name: "an init container needing more wins",
			pod: mkPod("ns", "p", []corev1.Container{ctr("a", res("cpu", "100m"), res("cpu", "200m")), ctr("b", res("cpu", "200m"), res("cpu", "300m"))},
				withInit(ctr("init", res("cpu", "500m", "memory", "1Gi"), res("cpu", "2")))),
			requests: "cpu=500m,memory=1Gi", limits: "cpu=2",
		},
		{
			name: "an init container needing less does not",
			pod: mkPod("ns", "p", []corev1.Container{ctr("a", res("cpu", "1"), nil)},
				withInit(ctr("init", res("cpu", "500m"), nil))),
			requests: "cpu=1", limits: "",
		},
		{
			name: "sidecars run next to the containers and the later init containers",
			pod: mkPod("ns", "p", []corev1.Container{ctr("a", res("cpu", "200m"), res("cpu", "200m"))},
				withInit(sidecar("proxy", res("cpu", "100m"), res("cpu", "100m")), ctr("migrate", res("cpu", "250m"), res("cpu", "1")))),
			// containers 200m + sidecar 100m = 300m; migrate runs with the
			// sidecar: 250m + 100m = 350m.
			requests: "cpu=350m", limits: "cpu=1100m",
		},
		{
			name: "overhead counts for quotas, on limits only where a limit is set",
			pod: func() *corev1.Pod {
				p := mkPod("ns", "p", []corev1.Container{ctr("a", res("cpu", "100m", "memory", "10Mi"), res("cpu", "200m"))})
				p.Spec.Overhead = res("cpu", "50m", "memory", "5Mi")
				return p
			}(),
			requests: "cpu=100m,memory=10Mi", limits: "cpu=200m",
			quotaReqs: "cpu=150m,memory=15Mi", quotaLim: "cpu=250m",
		},
		{
			name: "pod-level resources replace cpu and memory",
			pod: func() *corev1.Pod {
				p := mkPod("ns", "p", []corev1.Container{ctr("a", res("cpu", "100m", "memory", "10Mi", "example.com/gpu", "1"), nil)})
				p.Spec.Resources = &corev1.ResourceRequirements{Limits: res("cpu", "2", "memory", "1Gi"), Requests: res("memory", "512Mi")}
				return p
			}(),
			requests: "cpu=2,example.com/gpu=1,memory=512Mi", limits: "cpu=2,memory=1Gi",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := show(podRequests(tt.pod, false)); got != tt.requests {
				t.Errorf("requests without overhead = %q, want %q", got, tt.requests)
			}
			if got := show(podLimits(tt.pod, false)); got != tt.limits {
				t.Errorf("limits without overhead = %q, want %q", got, tt.limits)
			}
			wantReqs, wantLim := tt.quotaReqs, tt.quotaLim
			if wantReqs == "" {
				wantReqs, wantLim = tt.requests, tt.limits
			}
			if got := show(PodRequests(tt.pod)); got != wantReqs {
				t.Errorf("PodRequests = %q, want %q", got, wantReqs)
			}
			if got := show(PodLimits(tt.pod)); got != wantLim {
				t.Errorf("PodLimits = %q, want %q", got, wantLim)
			}
		})
	}
}

func TestSubtractNonNegative(t *testing.T) {
	got := subtractNonNegative(res("cpu", "1", "memory", "1Gi", "pods", "1"), res("cpu", "300m", "memory", "2Gi"))
	if want := "cpu=700m,memory=0,pods=1"; show(got) != want {
		t.Errorf("subtractNonNegative = %q, want %q", show(got), want)
	}
}
