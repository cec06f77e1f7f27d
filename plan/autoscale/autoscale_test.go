package autoscale

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return t0.Add(-d) }

// --- HPA fixtures ---

type hpaOpt func(*autoscalingv2.HorizontalPodAutoscaler)

// newHPA returns an HPA on Deployment web, 1 to 10 replicas, cpu at 50%.
func newHPA(opts ...hpaOpt) *autoscalingv2.HorizontalPodAutoscaler {
	h := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MaxReplicas:    10,
		},
	}
	cpuUtilization(50)(h)
	for _, o := range opts {
		o(h)
	}
	return h
}

func resourceMetric(name corev1.ResourceName, target autoscalingv2.MetricTarget) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{Name: name, Target: target}}
}

func utilization(pct int32) autoscalingv2.MetricTarget {
	return autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &pct}
}

func averageValue(q string) autoscalingv2.MetricTarget {
	v := resource.MustParse(q)
	return autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &v}
}

func cpuUtilization(pct int32) hpaOpt {
	return func(h *autoscalingv2.HorizontalPodAutoscaler) {
		h.Spec.Metrics = []autoscalingv2.MetricSpec{resourceMetric(corev1.ResourceCPU, utilization(pct))}
	}
}

func metrics(specs ...autoscalingv2.MetricSpec) hpaOpt {
	return func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.Metrics = specs }
}

func replicas(lo, hi int32) hpaOpt {
	return func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas, h.Spec.MaxReplicas = &lo, hi }
}

func behavior(up, down *autoscalingv2.HPAScalingRules) hpaOpt {
	return func(h *autoscalingv2.HorizontalPodAutoscaler) {
		h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: up, ScaleDown: down}
	}
}

func rules(window int32, sel autoscalingv2.ScalingPolicySelect, policies ...autoscalingv2.HPAScalingPolicy) *autoscalingv2.HPAScalingRules {
	r := &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &window, Policies: policies}
	if sel != "" {
		r.SelectPolicy = &sel
	}
	return r
}

func podsPolicy(n, period int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: n, PeriodSeconds: period}
}

func percentPolicy(n, period int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: n, PeriodSeconds: period}
}

// withHistory sets the recommendation history: pairs of (age, replicas).
func withHistory(recs ...any) hpaOpt {
	return func(h *autoscalingv2.HorizontalPodAutoscaler) {
		var hist history
		for i := 0; i < len(recs); i += 2 {
			hist.Recommendations = append(hist.Recommendations, newSample(ago(recs[i].(time.Duration)), int32(recs[i+1].(int))))
		}
		if h.Annotations == nil {
			h.Annotations = map[string]string{}
		}
		h.Annotations[HistoryAnnotation] = hist.encode()
	}
}

// --- pod fixtures ---

type podOpt func(*PodMetrics)

// pod returns a running pod of web, ready for ten minutes, requesting
// 1 cpu and 1 GiB, using cpuMillis.
func pod(i int, cpuMillis int64, opts ...podOpt) PodMetrics {
	p := PodMetrics{
		Name:      fmt.Sprintf("web-%d", i),
		Labels:    map[string]string{"app": "web"},
		Phase:     corev1.PodRunning,
		StartTime: ago(10 * time.Minute),
		Ready:     &ReadyCondition{Ready: true, LastTransitionTime: ago(9 * time.Minute)},
		Containers: []ContainerRequests{{Name: "main", Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi"),
		}}},
		Usage: &Usage{CPUMillis: cpuMillis, MemoryBytes: 512 << 20, Timestamp: ago(10 * time.Second), Window: 15 * time.Second},
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func pods(n int, cpuMillis int64, opts ...podOpt) []PodMetrics {
	var out []PodMetrics
	for i := range n {
		out = append(out, pod(i, cpuMillis, opts...))
	}
	return out
}

func noUsage() podOpt         { return func(p *PodMetrics) { p.Usage = nil } }
func pending() podOpt         { return func(p *PodMetrics) { p.Phase = corev1.PodPending; p.Ready = nil } }
func memory(mib int64) podOpt { return func(p *PodMetrics) { p.Usage.MemoryBytes = mib << 20 } }
func named(n string) podOpt   { return func(p *PodMetrics) { p.Name = n } }

var webSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}

func in(hpa *autoscalingv2.HorizontalPodAutoscaler, current int32, ps ...[]PodMetrics) Input {
	var all []PodMetrics
	for _, p := range ps {
		all = append(all, p...)
	}
	return Input{Now: t0, HPA: hpa, CurrentReplicas: current, Selector: webSelector, Pods: all}
}

// recommend runs a pass and checks that it leaves its input alone, is
// deterministic, and converges: applied (HPA stored, target scaled), a
// second pass at the same time does not rescale, and a third changes
// nothing.
func recommend(t *testing.T, input Input) Result {
	t.Helper()
	before := input.HPA.DeepCopy()
	r := Recommend(input)
	if diff := cmp.Diff(before, input.HPA); diff != "" {
		t.Fatalf("Recommend modified its input (-before +after):\n%s", diff)
	}
	if again := Recommend(input); !cmp.Equal(r, again) {
		t.Fatalf("Recommend is not deterministic:\n%s", cmp.Diff(r, again))
	}
	next := input
	next.HPA, next.CurrentReplicas = r.HPA, r.DesiredReplicas
	second := Recommend(next)
	if second.Rescale {
		t.Errorf("second pass at the same time rescales again: %d → %d (%s)", next.CurrentReplicas, second.DesiredReplicas, second.Reason)
	}
	next.HPA = second.HPA
	if third := Recommend(next); third.Changed {
		t.Errorf("third pass still changes the HPA:\n%s", cmp.Diff(second.HPA, third.HPA))
	}
	return r
}

// conds summarises conditions as "Type=Status/Reason".
func conds(h *autoscalingv2.HorizontalPodAutoscaler) []string {
	var out []string
	for _, c := range h.Status.Conditions {
		out = append(out, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	return out
}

func reasons(r Result) []string {
	var out []string
	for _, e := range r.Events {
		out = append(out, e.Reason)
	}
	return out
}

const (
	ableReady     = "AbleToScale=True/ReadyForNewScale"
	ableRescaled  = "AbleToScale=True/SucceededRescale"
	ableGotScale  = "AbleToScale=True/SucceededGetScale"
	activeValid   = "ScalingActive=True/ValidMetricFound"
	limitedWithin = "ScalingLimited=False/DesiredWithinRange"
)

func TestRecommend(t *testing.T) {
	tests := []struct {
		name       string
		input      Input
		want       int32
		wantReason string
		wantConds  []string
	}{
		{
			name:  "within tolerance: no change",
			input: in(newHPA(), 4, pods(4, 540)), // 54% of a 50% target: ratio 1.08
			want:  4, wantConds: []string{ableReady, activeValid, limitedWithin},
		},
		{
			name:  "within tolerance below: no change",
			input: in(newHPA(), 4, pods(4, 455)), // 45%: ratio 0.9
			want:  4, wantConds: []string{ableReady, activeValid, limitedWithin},
		},
		{
			name:  "above tolerance: scale up",
			input: in(newHPA(), 4, pods(4, 600)), // 60%: ratio 1.2 → ceil(4.8)
			want:  5, wantReason: "cpu resource utilization (percentage of request) above target",
			wantConds: []string{ableRescaled, activeValid, limitedWithin},
		},
		{
			name:  "scale-up limit without behavior: max(2×current, 4)",
			input: in(newHPA(), 3, pods(3, 1000)), // ratio 2 → 6... capped? 2×3 = 6: within
			want:  6, wantReason: "cpu resource utilization (percentage of request) above target",
			wantConds: []string{ableRescaled, activeValid, limitedWithin},
		},
		{
			name:  "scale-up limit without behavior reached",
			input: in(newHPA(cpuUtilization(10)), 2, pods(2, 1000)), // ratio 10 → 20, limit 4
			want:  4, wantReason: "cpu resource utilization (percentage of request) above target",
			wantConds: []string{ableRescaled, activeValid, "ScalingLimited=True/ScaleUpLimit"},
		},
		{
			name:  "maxReplicas caps",
			input: in(newHPA(replicas(1, 5)), 4, pods(4, 1000)), // ratio 2 → 8
			want:  5, wantReason: "cpu resource utilization (percentage of request) above target",
			wantConds: []string{ableRescaled, activeValid, "ScalingLimited=True/TooManyReplicas"},
		},
		{
			name:  "above maxReplicas: brought down without metrics",
			input: in(newHPA(replicas(1, 5)), 7, pods(7, 500)),
			want:  5, wantReason: "Current number of replicas above Spec.MaxReplicas",
			wantConds: []string{ableRescaled},
		},
		{
			name:  "below minReplicas: brought up without metrics",
			input: in(newHPA(replicas(3, 5)), 1, pods(1, 500)),
			want:  3, wantReason: "Current number of replicas below Spec.MinReplicas",
			wantConds: []string{ableRescaled},
		},
		{
			name:  "minReplicas floors a scale-down",
			input: in(newHPA(replicas(2, 10), behavior(nil, rules(0, ""))), 4, pods(4, 50)),
			want:  2, wantReason: "All metrics below target",
			wantConds: []string{ableRescaled, activeValid, "ScalingLimited=True/TooFewReplicas"},
		},
		{
			name:  "target at zero replicas is not scaled",
			input: in(newHPA(), 0, nil),
			want:  0, wantConds: []string{ableGotScale, "ScalingActive=False/ScalingDisabled"},
		},
		{
			name:  "scale-down stabilized over the last 300 s",
			input: in(newHPA(withHistory(400*time.Second, 9, 290*time.Second, 6)), 6, pods(6, 100)), // wants 2
			want:  6, wantConds: []string{"AbleToScale=True/ScaleDownStabilized", activeValid, limitedWithin},
		},
		{
			name:  "scale-down once the window has passed",
			input: in(newHPA(withHistory(400*time.Second, 9, 301*time.Second, 6)), 6, pods(6, 100)),
			want:  2, wantReason: "All metrics below target",
			wantConds: []string{ableRescaled, activeValid, limitedWithin},
		},
		{
			name:  "first pass: the current count is the first recommendation",
			input: in(newHPA(), 6, pods(6, 100)),
			want:  6, wantConds: []string{"AbleToScale=True/ScaleDownStabilized", activeValid, limitedWithin},
		},
		{
			name:  "behavior: default scale-up policies, max(4 pods, 100%) per 15 s",
			input: in(newHPA(cpuUtilization(10), replicas(1, 50), behavior(nil, nil)), 2, pods(2, 1000)), // wants 20
			want:  6, wantReason: "cpu resource utilization (percentage of request) above target",
			wantConds: []string{ableRescaled, activeValid, "ScalingLimited=True/ScaleUpLimit"},
		},
		{
			name:  "behavior: default 100% up from 10",
			input: in(newHPA(cpuUtilization(10), replicas(1, 50), behavior(nil, nil)), 10, pods(10, 1000)), // wants 100
			want:  20, wantReason: "cpu resource utilization (percentage of request) above target",
			wantConds: []string{ableRescaled, activeValid, "ScalingLimited=True/ScaleUpLimit"},
		},
		{
			name:  "behavior: selectPolicy Max picks the larger change",
			input: in(newHPA(cpuUtilization(10), replicas(1, 50), behavior(rules(0, autoscalingv2.MaxChangePolicySelect, podsPolicy(2, 60), percentPolicy(50, 60)), nil)), 10, pods(10, 1000)),
			want:  15, wantReason: "cpu resource utilization (percentage of request) above target",
			wantConds: []string{ableRescaled, activeValid, "ScalingLimited=True/ScaleUpLimit"},
		},
		{
			name:  "behavior: selectPolicy Min picks the smaller change",
			input: in(newHPA(cpuUtilization(10), replicas(1, 50), behavior(rules(0, autoscalingv2.MinChangePolicySelect, podsPolicy(2, 60), percentPolicy(50, 60)), nil)), 10, pods(10, 1000)),
			want:  12, wantReason: "cpu resource utilization (percentage of request) above target",
			wantConds: []string{ableRescaled, activeValid, "ScalingLimited=True/ScaleUpLimit"},
		},
		{
			name:  "behavior: selectPolicy Disabled: no scale-up",
			input: in(newHPA(behavior(rules(0, autoscalingv2.DisabledPolicySelect, podsPolicy(4, 15)), nil)), 4, pods(4, 1000)),
			want:  4, wantConds: []string{ableReady, activeValid, "ScalingLimited=True/ScaleUpLimit"},
		},
		{
			name:  "behavior: scale-down percent policy",
			input: in(newHPA(behavior(nil, rules(0, "", percentPolicy(10, 60)))), 10, pods(10, 100)), // wants 2
			want:  9, wantReason: "All metrics below target",
			wantConds: []string{ableRescaled, activeValid, "ScalingLimited=True/ScaleDownLimit"},
		},
		{
			name:  "behavior: scale-down pods policy",
			input: in(newHPA(behavior(nil, rules(0, "", podsPolicy(3, 60)))), 10, pods(10, 100)),
			want:  7, wantReason: "All metrics below target",
			wantConds: []string{ableRescaled, activeValid, "ScalingLimited=True/ScaleDownLimit"},
		},
		{
			name:  "behavior: default scale-down window is 300 s",
			input: in(newHPA(behavior(nil, nil), withHistory(200*time.Second, 8)), 8, pods(8, 100)),
			want:  8, wantConds: []string{"AbleToScale=True/ScaleDownStabilized", activeValid, limitedWithin},
		},
		{
			name:  "behavior: explicit scale-down window",
			input: in(newHPA(behavior(nil, rules(60, "")), withHistory(200*time.Second, 8, 30*time.Second, 5)), 8, pods(8, 100)),
			want:  5, wantReason: "All metrics below target",
			wantConds: []string{"AbleToScale=True/SucceededRescale", activeValid, limitedWithin},
		},
		{
			name:  "behavior: scale-up window takes the lowest recent recommendation",
			input: in(newHPA(behavior(rules(120, ""), nil), withHistory(60*time.Second, 5)), 4, pods(4, 1000)), // wants 8
			want:  5, wantReason: "cpu resource utilization (percentage of request) above target",
			wantConds: []string{ableRescaled, activeValid, limitedWithin},
		},
		{
			name:  "behavior tolerance replaces the default",
			input: in(newHPA(behavior(&autoscalingv2.HPAScalingRules{Tolerance: ptr(resource.MustParse("0.05"))}, nil)), 4, pods(4, 540)),
			want:  5, wantReason: "cpu resource utilization (percentage of request) above target",
			wantConds: []string{ableRescaled, activeValid, limitedWithin},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := recommend(t, tt.input)
			if r.DesiredReplicas != tt.want || r.Rescale != (tt.want != tt.input.CurrentReplicas) || r.Reason != tt.wantReason {
				t.Errorf("desired %d rescale %v reason %q, want %d and %q", r.DesiredReplicas, r.Rescale, r.Reason, tt.want, tt.wantReason)
			}
			if diff := cmp.Diff(tt.wantConds, conds(r.HPA)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			st := r.HPA.Status
			if st.CurrentReplicas != tt.input.CurrentReplicas || st.DesiredReplicas != tt.want {
				t.Errorf("status replicas current %d desired %d", st.CurrentReplicas, st.DesiredReplicas)
			}
			if (st.LastScaleTime != nil) != r.Rescale || (r.Rescale && !st.LastScaleTime.Time.Equal(t0)) {
				t.Errorf("lastScaleTime %v with rescale %v", st.LastScaleTime, r.Rescale)
			}
			if r.Rescale {
				want := fmt.Sprintf("New size: %d; reason: %s", tt.want, tt.wantReason)
				if len(r.Events) == 0 || r.Events[len(r.Events)-1].Message != want {
					t.Errorf("events %+v, want SuccessfulRescale %q", r.Events, want)
				}
			}
			if !r.Changed {
				t.Error("a first pass always changes the HPA (status, history)")
			}
		})
	}
}

func TestMissingAndUnreadyPods(t *testing.T) {
	tests := []struct {
		name string
		hpa  *autoscalingv2.HorizontalPodAutoscaler
		pods []PodMetrics
		want int32
		util int32
	}{
		{
			// Ready pods at 10% want 1 replica, but the two without a sample
			// count as using all their request: (100+100+1000+1000)/4000 =
			// 55%, within tolerance of... no: ratio 1.1 reverses the
			// direction, so nothing changes.
			name: "missing pods count as 100% on a scale-down",
			hpa:  newHPA(behavior(nil, rules(0, ""))),
			pods: append(pods(2, 50), pod(2, 0, noUsage()), pod(3, 0, noUsage())),
			want: 4, util: 5,
		},
		{
			name: "missing pods slow a scale-down",
			hpa:  newHPA(cpuUtilization(80), behavior(nil, rules(0, ""))),
			// ready: 2 × 10% → ratio 0.125; with the missing at 100%:
			// 55% → 0.6875 → ceil(2.75) = 3
			pods: append(pods(2, 100), pod(2, 0, noUsage()), pod(3, 0, noUsage())),
			want: 3, util: 10,
		},
		{
			name: "missing pods count as 0% on a scale-up",
			hpa:  newHPA(cpuUtilization(25)),
			// ready: 2 × 100% → ratio 4; with the missing at 0%: 50% → 2 → 8
			pods: append(pods(2, 1000), pod(2, 0, noUsage()), pod(3, 0, noUsage())),
			want: 8, util: 100,
		},
		{
			name: "unready pods are not counted on a scale-up",
			hpa:  newHPA(),
			// one ready pod at 100% alone would ask for 2; with the three
			// pending at 0%: 25% → ratio 0.5 reverses the direction.
			pods: append(pods(1, 1000), pod(1, 0, pending(), noUsage()), pod(2, 0, pending(), noUsage()), pod(3, 0, pending(), noUsage())),
			want: 4, util: 100,
		},
		{
			name: "unready pods count as 0% on a scale-up",
			hpa:  newHPA(),
			// 3 ready at 100% (ratio 2); the pending one at 0%: 75% → 1.5 → 6
			pods: append(pods(3, 1000), pod(3, 0, pending(), noUsage())),
			want: 6, util: 100,
		},
		{
			name: "unready pods are ignored on a scale-down",
			hpa:  newHPA(behavior(nil, rules(0, ""))),
			pods: append(pods(3, 100), pod(3, 0, pending(), noUsage())), // 10% of 50%: ceil(0.2 × 3)
			want: 1, util: 10,
		},
		{
			name: "cpu: a pod not ready within its initialization period is unready",
			hpa:  newHPA(),
			pods: append(pods(3, 1000), pod(3, 0, func(p *PodMetrics) {
				p.StartTime = ago(time.Minute)
				p.Ready = &ReadyCondition{Ready: false, LastTransitionTime: ago(time.Minute)}
			})),
			want: 6, util: 100,
		},
		{
			name: "cpu: a sample older than a window after readiness is unready",
			hpa:  newHPA(),
			pods: append(pods(3, 1000), pod(3, 0, func(p *PodMetrics) {
				p.StartTime = ago(time.Minute)
				p.Ready = &ReadyCondition{Ready: true, LastTransitionTime: ago(20 * time.Second)}
				p.Usage.Timestamp = ago(10 * time.Second) // before ready + 15 s window
			})),
			want: 6, util: 100,
		},
		{
			name: "cpu: a pod that became unready after being ready still counts",
			hpa:  newHPA(),
			pods: append(pods(3, 1000), pod(3, 0, func(p *PodMetrics) {
				p.Ready = &ReadyCondition{Ready: false, LastTransitionTime: ago(time.Minute)}
			})),
			// counted at 0%: 75% → ratio 1.5 → ceil(1.5 × 4)
			want: 6, util: 75,
		},
		{
			name: "cpu: a pod never ready after its initialization period is unready",
			hpa:  newHPA(),
			pods: append(pods(3, 1000), pod(3, 0, func(p *PodMetrics) {
				p.Ready = &ReadyCondition{Ready: false, LastTransitionTime: ago(10*time.Minute - 5*time.Second)}
			})),
			want: 6, util: 100,
		},
		{
			name: "failed and deleting pods are ignored",
			hpa:  newHPA(),
			pods: append(pods(2, 1500), pod(2, 0, func(p *PodMetrics) { p.Phase = corev1.PodFailed }), pod(3, 0, func(p *PodMetrics) { p.Deleting = true })),
			want: 6, util: 150, // 150% of 50%: ceil(3 × 2)
		},
		{
			name: "pods the selector does not match are left out",
			hpa:  newHPA(),
			pods: append(pods(2, 1500), pod(9, 0, func(p *PodMetrics) { p.Labels = map[string]string{"app": "db"} })),
			want: 6, util: 150,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := recommend(t, in(tt.hpa, 4, tt.pods))
			if r.DesiredReplicas != tt.want {
				t.Errorf("desired %d, want %d (%v)", r.DesiredReplicas, tt.want, conds(r.HPA))
			}
			cm := r.HPA.Status.CurrentMetrics
			if len(cm) != 1 || cm[0].Resource == nil || *cm[0].Resource.Current.AverageUtilization != tt.util {
				t.Errorf("currentMetrics %+v, want utilization %d", cm, tt.util)
			}
		})
	}
}

func TestMetricStatuses(t *testing.T) {
	t.Run("utilization", func(t *testing.T) {
		r := recommend(t, in(newHPA(), 2, pods(2, 250)))
		want := []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
			Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr(int32(25)), AverageValue: resource.NewMilliQuantity(250, resource.DecimalSI)},
		}}}
		if diff := cmp.Diff(want, r.HPA.Status.CurrentMetrics); diff != "" {
			t.Errorf("currentMetrics (-want +got):\n%s", diff)
		}
	})
	t.Run("memory utilization", func(t *testing.T) {
		hpa := newHPA(metrics(resourceMetric(corev1.ResourceMemory, utilization(60))))
		r := recommend(t, in(hpa, 2, pods(2, 0, memory(900)))) // 87% of 60%: ceil(1.45 × 2)
		if r.DesiredReplicas != 3 {
			t.Errorf("desired %d, want 3", r.DesiredReplicas)
		}
		cur := r.HPA.Status.CurrentMetrics[0].Resource.Current
		if *cur.AverageUtilization != 87 || cur.AverageValue.Value() != 900<<20 {
			t.Errorf("current %d%% %s", *cur.AverageUtilization, cur.AverageValue)
		}
	})
	t.Run("average value", func(t *testing.T) {
		hpa := newHPA(metrics(resourceMetric(corev1.ResourceCPU, averageValue("200m"))))
		r := recommend(t, in(hpa, 3, pods(3, 500))) // ratio 2.5 → 8, at most 2 × 3
		if r.DesiredReplicas != 6 || r.Reason != "cpu resource above target" {
			t.Errorf("desired %d reason %q", r.DesiredReplicas, r.Reason)
		}
		cur := r.HPA.Status.CurrentMetrics[0].Resource.Current
		if cur.AverageUtilization != nil || cur.AverageValue.String() != "500m" {
			t.Errorf("current %+v", cur)
		}
	})
	t.Run("average value with missing pods on a scale-down", func(t *testing.T) {
		hpa := newHPA(metrics(resourceMetric(corev1.ResourceMemory, averageValue("1Gi"))), behavior(nil, rules(0, "")))
		// ready: 2 × 256Mi → ratio 0.25; missing at the target: 2.5 GiB / 4 → 0.625 → 3
		r := recommend(t, in(hpa, 4, pods(2, 0, memory(256)), []PodMetrics{pod(2, 0, noUsage()), pod(3, 0, noUsage())}))
		if r.DesiredReplicas != 3 {
			t.Errorf("desired %d, want 3", r.DesiredReplicas)
		}
	})
	t.Run("average value with missing and unready pods on a scale-up", func(t *testing.T) {
		hpa := newHPA(metrics(resourceMetric(corev1.ResourceCPU, averageValue("250m"))))
		// ready: 2 × 1000m → ratio 4; with the missing and the pending at
		// 0: 2000m / 4 = 500m → 2 → 8 (at most 2 × 4)
		r := recommend(t, in(hpa, 4, pods(2, 1000), []PodMetrics{pod(2, 0, noUsage()), pod(3, 0, pending())}))
		if r.DesiredReplicas != 8 {
			t.Errorf("desired %d, want 8", r.DesiredReplicas)
		}
		if got := r.HPA.Status.CurrentMetrics[0].Resource.Current.AverageValue.String(); got != "1" {
			t.Errorf("current average %s, want 1 (the ready pods' average)", got)
		}
	})
	t.Run("average value within tolerance", func(t *testing.T) {
		hpa := newHPA(metrics(resourceMetric(corev1.ResourceCPU, averageValue("500m"))))
		r := recommend(t, in(hpa, 4, pods(4, 520)))
		if r.DesiredReplicas != 4 || r.Rescale {
			t.Errorf("desired %d", r.DesiredReplicas)
		}
	})
	t.Run("several metrics: the largest proposal wins", func(t *testing.T) {
		hpa := newHPA(metrics(resourceMetric(corev1.ResourceCPU, utilization(50)), resourceMetric(corev1.ResourceMemory, utilization(50))))
		r := recommend(t, in(hpa, 2, pods(2, 600, memory(900)))) // cpu → 3, memory 87% → 4
		if r.DesiredReplicas != 4 || r.Reason != "memory resource utilization (percentage of request) above target" {
			t.Errorf("desired %d reason %q", r.DesiredReplicas, r.Reason)
		}
		if len(r.HPA.Status.CurrentMetrics) != 2 {
			t.Errorf("currentMetrics %+v", r.HPA.Status.CurrentMetrics)
		}
	})
	t.Run("no metrics listed: cpu at 80%", func(t *testing.T) {
		r := recommend(t, in(newHPA(metrics()), 2, pods(2, 1000))) // 100% of 80%: ceil(1.25 × 2)
		if r.DesiredReplicas != 3 {
			t.Errorf("desired %d, want 3", r.DesiredReplicas)
		}
	})
}

func TestMetricErrors(t *testing.T) {
	noRequests := func(p *PodMetrics) {
		p.Containers = []ContainerRequests{{Name: "main", Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}
	}
	tests := []struct {
		name       string
		input      Input
		want       int32
		wantCond   string // the ScalingActive condition
		wantMsg    string // substring of its message
		wantEvents []string
	}{
		{
			name: "no selector", input: Input{Now: t0, HPA: newHPA(), CurrentReplicas: 3, Pods: pods(3, 500)},
			want: 3, wantCond: "ScalingActive=False/InvalidSelector", wantMsg: "the HPA target's scale is missing a selector",
			wantEvents: []string{"SelectorRequired", "FailedComputeMetricsReplicas"},
		},
		{
			name: "no metrics at all", input: in(newHPA(), 3, pods(3, 0, noUsage())),
			want: 3, wantCond: "ScalingActive=False/FailedGetResourceMetric",
			wantMsg:    "the HPA was unable to compute the replica count: failed to get cpu resource metric value: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API",
			wantEvents: []string{"FailedGetResourceMetric", "FailedComputeMetricsReplicas"},
		},
		{
			name: "no pods", input: in(newHPA(), 3, nil),
			want: 3, wantCond: "ScalingActive=False/FailedGetResourceMetric", wantMsg: "no metrics returned from resource metrics API",
			wantEvents: []string{"FailedGetResourceMetric", "FailedComputeMetricsReplicas"},
		},
		{
			name: "only unready pods have samples", input: in(newHPA(), 2, pods(2, 500, pending())),
			want: 2, wantCond: "ScalingActive=False/FailedGetResourceMetric", wantMsg: "did not receive metrics for targeted pods (pods might be unready)",
			wantEvents: []string{"FailedGetResourceMetric", "FailedComputeMetricsReplicas"},
		},
		{
			name:  "missing request",
			input: in(newHPA(metrics(resourceMetric(corev1.ResourceMemory, utilization(50)))), 2, pods(2, 500, noRequests)),
			want:  2, wantCond: "ScalingActive=False/FailedGetResourceMetric", wantMsg: "missing request for memory in container main of Pod web-0",
			wantEvents: []string{"FailedGetResourceMetric", "FailedComputeMetricsReplicas"},
		},
		{
			name:  "one metric fails, the other scales up: scale",
			input: in(newHPA(metrics(resourceMetric(corev1.ResourceMemory, utilization(50)), resourceMetric(corev1.ResourceCPU, utilization(50)))), 2, pods(2, 1000, noRequests)),
			want:  4, wantCond: "ScalingActive=True/ValidMetricFound", wantMsg: "from cpu resource utilization (percentage of request)",
			wantEvents: []string{"FailedGetResourceMetric", "SuccessfulRescale"},
		},
		{
			name:  "one metric fails, the other would scale down: hold",
			input: in(newHPA(metrics(resourceMetric(corev1.ResourceMemory, utilization(50)), resourceMetric(corev1.ResourceCPU, utilization(50)))), 4, pods(4, 50, noRequests)),
			want:  4, wantCond: "ScalingActive=False/FailedGetResourceMetric", wantMsg: "missing request for memory",
			wantEvents: []string{"FailedGetResourceMetric", "FailedComputeMetricsReplicas"},
		},
		{
			name: "unsupported metric type",
			input: in(newHPA(metrics(autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: "qps"}, Target: averageValue("10")}})), 2, pods(2, 500)),
			want: 2, wantCond: "ScalingActive=False/FailedGetPodsMetric", wantMsg: `metric source type "Pods" is not supported by clusterctl`,
			wantEvents: []string{"FailedGetPodsMetric", "FailedComputeMetricsReplicas"},
		},
		{
			name:  "unsupported resource",
			input: in(newHPA(metrics(resourceMetric("nvidia.com/gpu", utilization(50)))), 2, pods(2, 500)),
			want:  2, wantCond: "ScalingActive=False/FailedGetResourceMetric", wantMsg: "clusterctl observes cpu and memory only",
			wantEvents: []string{"FailedGetResourceMetric", "FailedComputeMetricsReplicas"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := recommend(t, tt.input)
			if r.DesiredReplicas != tt.want {
				t.Errorf("desired %d, want %d", r.DesiredReplicas, tt.want)
			}
			var got string
			var msg string
			for _, c := range r.HPA.Status.Conditions {
				if c.Type == autoscalingv2.ScalingActive {
					got, msg = fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason), c.Message
				}
			}
			if got != tt.wantCond || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("ScalingActive %s %q, want %s containing %q", got, msg, tt.wantCond, tt.wantMsg)
			}
			if diff := cmp.Diff(tt.wantEvents, reasons(r)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStabilizationOverTime replays passes a minute apart: the load drops
// at once, the replicas follow only once the 6 has been out of force for the
// whole 300 s window, and the history the HPA carries stays bounded.
func TestStabilizationOverTime(t *testing.T) {
	hpa := newHPA()
	current := int32(6)
	type step struct {
		at   time.Duration
		load int64 // per pod, of a 1 cpu request, target 50%
		want int32
	}
	steps := []step{
		{0, 500, 6},           // steady
		{time.Minute, 100, 6}, // load drops: wants 2, held by the window
		{2 * time.Minute, 100, 6},
		{5*time.Minute + time.Second, 100, 6}, // the 6 was in force until 1 min
		{6 * time.Minute, 100, 6},             // 300 s ago: still in the window
		{6*time.Minute + time.Second, 100, 2},
		{7 * time.Minute, 300, 2}, // 30% on 2 pods still wants 2
		{8 * time.Minute, 500, 2},
	}
	for _, s := range steps {
		r := Recommend(Input{Now: t0.Add(s.at), HPA: hpa, CurrentReplicas: current, Selector: webSelector, Pods: pods(int(current), s.load)})
		if r.DesiredReplicas != s.want {
			t.Fatalf("at %v: desired %d, want %d (%v)", s.at, r.DesiredReplicas, s.want, conds(r.HPA))
		}
		hpa, current = r.HPA, r.DesiredReplicas
		h, err := loadHistory(hpa.Annotations)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Ended) > 2 {
			t.Errorf("at %v: history grows: %v", s.at, h.Ended)
		}
	}
	if got, want := hpa.Annotations[HistoryAnnotation], `{"c":[1709287260,2],"d":[[1709287561,4]]}`; got != want {
		t.Errorf("annotation %s, want %s (the 2 in force since 1 min, the 6 forgotten at the rescale)", got, want)
	}
}

// TestScaleUpPolicyOverTime checks that scale events stored in the HPA limit
// later passes within the policy period.
func TestScaleUpPolicyOverTime(t *testing.T) {
	hpa := newHPA(cpuUtilization(10), replicas(1, 100), behavior(rules(0, "", podsPolicy(4, 60)), nil))
	current := int32(2)
	steps := []struct {
		at   time.Duration
		want int32
	}{
		{0, 6},                 // +4
		{30 * time.Second, 6},  // still within the 60 s period
		{61 * time.Second, 10}, // the first event is out of the period
		{90 * time.Second, 10},
		{122 * time.Second, 14},
	}
	for _, s := range steps {
		r := Recommend(Input{Now: t0.Add(s.at), HPA: hpa, CurrentReplicas: current, Selector: webSelector, Pods: pods(2, 1000)})
		if r.DesiredReplicas != s.want {
			t.Fatalf("at %v: desired %d, want %d (%v)", s.at, r.DesiredReplicas, s.want, conds(r.HPA))
		}
		hpa, current = r.HPA, r.DesiredReplicas
	}
	h, _ := loadHistory(hpa.Annotations)
	if len(h.ScaleUp) != 1 {
		t.Errorf("scale-up events %v: older than the period should be dropped", h.ScaleUp)
	}
}

func TestConditionTransitionTimes(t *testing.T) {
	r1 := Recommend(in(newHPA(), 4, pods(4, 500)))
	next := in(r1.HPA, 4, pods(4, 500))
	next.Now = t0.Add(time.Minute)
	r2 := Recommend(next)
	for _, c := range r2.HPA.Status.Conditions {
		if !c.LastTransitionTime.Time.Equal(t0) {
			t.Errorf("%s moved its transition time to %v without changing status", c.Type, c.LastTransitionTime)
		}
	}
	next = in(r2.HPA, 0, nil)
	next.Now = t0.Add(2 * time.Minute)
	r3 := Recommend(next)
	for _, c := range r3.HPA.Status.Conditions {
		if c.Type == autoscalingv2.ScalingActive && !c.LastTransitionTime.Time.Equal(t0.Add(2*time.Minute)) {
			t.Errorf("ScalingActive turned False but kept transition time %v", c.LastTransitionTime)
		}
	}
}

func TestInvalidHistoryStartsAfresh(t *testing.T) {
	hpa := newHPA(func(h *autoscalingv2.HorizontalPodAutoscaler) {
		h.Annotations = map[string]string{HistoryAnnotation: "{not json"}
	})
	r := Recommend(in(hpa, 4, pods(4, 500)))
	if len(r.Events) == 0 || r.Events[0].Reason != "InvalidHistory" || r.DesiredReplicas != 4 {
		t.Errorf("events %+v desired %d", r.Events, r.DesiredReplicas)
	}
	if _, err := loadHistory(r.HPA.Annotations); err != nil {
		t.Errorf("the history was not rewritten: %v", err)
	}
}

func TestPodMetricsFromPod(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{"app": "web"}, DeletionTimestamp: &metav1.Time{Time: t0}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{
				{Name: "setup", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}},
				{Name: "proxy", RestartPolicy: &always, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}},
			},
			Containers: []corev1.Container{{Name: "main", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}},
		},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			StartTime:  &metav1.Time{Time: ago(time.Hour)},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Time{Time: ago(time.Minute)}}},
		},
	}
	u := &Usage{CPUMillis: 10}
	want := PodMetrics{
		Name: "web-1", Labels: map[string]string{"app": "web"}, Phase: corev1.PodRunning, Deleting: true,
		StartTime: ago(time.Hour), Ready: &ReadyCondition{Ready: true, LastTransitionTime: ago(time.Minute)},
		Containers: []ContainerRequests{
			{Name: "main", Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
			{Name: "proxy", Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
		},
		Usage: u,
	}
	if diff := cmp.Diff(want, PodMetricsFromPod(p, u)); diff != "" {
		t.Errorf("PodMetricsFromPod (-want +got):\n%s", diff)
	}
}

func BenchmarkRecommend100Pods(b *testing.B) {
	hpa := newHPA(metrics(resourceMetric(corev1.ResourceCPU, utilization(50)), resourceMetric(corev1.ResourceMemory, averageValue("600Mi"))),
		replicas(1, 200), behavior(nil, nil), withHistory(250*time.Second, 100, 120*time.Second, 100, 60*time.Second, 100))
	var ps []PodMetrics
	for i := range 100 {
		p := pod(i, int64(400+i*5))
		if i%10 == 0 {
			p.Usage = nil
		}
		ps = append(ps, p)
	}
	input := in(hpa, 100, ps)
	b.ReportAllocs()
	for b.Loop() {
		Recommend(input)
	}
}
