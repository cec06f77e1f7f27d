package autoscale

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// stored is what the inventory keeps of an HPA: its JSON.
func stored(t *testing.T, h *autoscalingv2.HorizontalPodAutoscaler) *autoscalingv2.HorizontalPodAutoscaler {
	t.Helper()
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var out autoscalingv2.HorizontalPodAutoscaler
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// TestSteadyHPAIsNotChanged runs an HPA loop after loop, storing it only
// when Recommend says Changed, as runAutoscalers does, with per-pod usage
// noise that stays within the tolerance: once settled, it is left alone.
func TestSteadyHPAIsNotChanged(t *testing.T) {
	type phase struct {
		from  int   // first loop of the phase
		total int64 // cpu millis (memory MiB for memory targets) over all pods
		noise int64 // per pod, ±
	}
	tests := []struct {
		name    string
		hpa     *autoscalingv2.HorizontalPodAutoscaler
		memory  bool // usage is memory, cpu at 500m
		start   int32
		gap     func(rng *rand.Rand) time.Duration
		phases  []phase
		loops   int
		changed []int // the loops that store the HPA
		final   int32
	}{
		{
			name: "steady from the start", hpa: newHPA(), start: 4, loops: 20,
			phases:  []phase{{0, 2000, 45}}, // 50% ± 4.5 points of a 50% target
			changed: []int{0}, final: 4,
		},
		{
			name: "steady with spec.behavior", hpa: newHPA(behavior(nil, nil)), start: 4, loops: 20,
			phases:  []phase{{0, 2000, 45}},
			changed: []int{0}, final: 4,
		},
		{
			name: "steady memory average value", hpa: newHPA(metrics(resourceMetric(corev1.ResourceMemory, averageValue("600Mi")))), memory: true,
			start: 3, loops: 20, phases: []phase{{0, 1800, 55}}, // 600Mi ± 55Mi, tolerance 60Mi
			changed: []int{0}, final: 3,
		},
		{
			name: "pinned at maxReplicas by a load wanting 13 to 15", hpa: newHPA(replicas(1, 10)), start: 10, loops: 20,
			phases:  []phase{{0, 7000, 40}},
			changed: []int{0}, final: 10,
		},
		{
			name: "pinned at minReplicas by a load wanting 1 or 2", hpa: newHPA(replicas(4, 10), behavior(nil, nil)), start: 4, loops: 20,
			phases: []phase{{0, 500, 15}}, // 12.5% ± 1.5 points of a 50% target: 4 × 0.25 wants 1 or 2
			// 11 (first past 300 s): the first pass's count, 4, leaves the
			// window; AbleToScale turns from ScaleDownStabilized to
			// ReadyForNewScale. Kubernetes would flip between the two as
			// the wish moves between 1 and 2.
			changed: []int{0, 11}, final: 4,
		},
		{
			name: "settles after a scale-up", hpa: newHPA(), start: 4, loops: 20,
			phases: []phase{{0, 4000, 40}}, // 100% on 4 pods → 8 pods at 50%
			// 0: rescale; 1: status catches up (current 8, ReadyForNewScale)
			changed: []int{0, 1}, final: 8,
		},
		{
			name: "settles after a stabilized scale-down", hpa: newHPA(), start: 6, loops: 30,
			gap:    func(*rand.Rand) time.Duration { return 30 * time.Second },
			phases: []phase{{0, 3000, 40}, {2, 780, 5}}, // 6 pods at 13% want 2, 2 pods at 39% too
			// 2: the recommendation drops to 2 (held: ScaleDownStabilized);
			// the 6 in force until 60 s leaves the window after 360 s: 13
			// (390 s) rescales, 14 records the new current count.
			changed: []int{0, 2, 13, 14}, final: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 11))
			gap := tt.gap
			if gap == nil {
				gap = func(rng *rand.Rand) time.Duration { return time.Duration(15+rng.IntN(46)) * time.Second }
			}
			hpa, current, now := tt.hpa, tt.start, t0
			var changed []int
			for loop := range tt.loops {
				ph := tt.phases[0]
				for _, p := range tt.phases {
					if loop >= p.from {
						ph = p
					}
				}
				var ps []PodMetrics
				for i := range int(current) {
					v := ph.total/int64(current) + rng.Int64N(2*ph.noise+1) - ph.noise
					if tt.memory {
						ps = append(ps, pod(i, 500, memory(v)))
					} else {
						ps = append(ps, pod(i, v))
					}
				}
				r := Recommend(Input{Now: now, HPA: hpa, CurrentReplicas: current, Selector: webSelector, Pods: ps})
				if r.Changed {
					changed = append(changed, loop)
					hpa = stored(t, r.HPA)
				} else if diff := cmp.Diff(stored(t, hpa), stored(t, r.HPA)); diff != "" {
					t.Fatalf("loop %d: not Changed, but the HPA differs:\n%s", loop, diff)
				}
				current = r.DesiredReplicas
				now = now.Add(gap(rng))
			}
			if diff := cmp.Diff(tt.changed, changed); diff != "" {
				t.Errorf("loops that changed the HPA (-want +got):\n%s\nhistory %s", diff, hpa.Annotations[HistoryAnnotation])
			}
			if current != tt.final || hpa.Status.DesiredReplicas != tt.final || hpa.Status.CurrentReplicas != tt.final {
				t.Errorf("replicas %d, status current %d desired %d, want %d", current, hpa.Status.CurrentReplicas, hpa.Status.DesiredReplicas, tt.final)
			}
		})
	}
}

// TestMetricsKeptWithinTolerance: the stored currentMetrics stay while the
// fresh values are within tolerance × target of them, and are refreshed
// when they move further or when the HPA is stored for another reason.
func TestMetricsKeptWithinTolerance(t *testing.T) {
	cpuStatus := func(pct int32, milli int64) []autoscalingv2.MetricStatus {
		return []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
			Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr(pct), AverageValue: resource.NewMilliQuantity(milli, resource.DecimalSI)},
		}}}
	}
	// settled returns an HPA stored after a pass at load on 4 pods.
	settled := func(load int64, opts ...hpaOpt) *autoscalingv2.HorizontalPodAutoscaler {
		return stored(t, Recommend(in(newHPA(opts...), 4, pods(4, load))).HPA)
	}
	downTolerance := behavior(nil, &autoscalingv2.HPAScalingRules{Tolerance: ptr(resource.MustParse("0.2"))})
	tests := []struct {
		name        string
		hpa         *autoscalingv2.HorizontalPodAutoscaler
		current     int32
		load        int64
		wantChanged bool
		want        []autoscalingv2.MetricStatus
	}{
		{"5 points above a 50% target: kept", settled(450), 4, 500, false, cpuStatus(45, 450)},
		{"5 points below: kept", settled(500), 4, 450, false, cpuStatus(50, 500)},
		{"9 points above: refreshed", settled(450), 4, 540, true, cpuStatus(54, 540)},
		{"8 points below: refreshed", settled(500), 4, 420, true, cpuStatus(42, 420)}, // wants ceil(3.36): no rescale
		{"behavior scale-down tolerance 0.2: 8 points below kept", settled(500, downTolerance), 4, 420, false, cpuStatus(50, 500)},
		{"stored for another reason: refreshed", settled(500), 5, 520, true, cpuStatus(52, 520)}, // currentReplicas 4 → 5
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := in(tt.hpa, tt.current, pods(int(tt.current), tt.load))
			input.Now = t0.Add(time.Minute)
			r := Recommend(input)
			if r.Changed != tt.wantChanged || r.Rescale {
				t.Errorf("changed %v rescale %v, want changed %v", r.Changed, r.Rescale, tt.wantChanged)
			}
			if diff := cmp.Diff(tt.want, r.HPA.Status.CurrentMetrics); diff != "" {
				t.Errorf("currentMetrics (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHistoryMigration reads the per-pass format written before: each
// sample counts as Kubernetes counts it, and the first pass rewrites the
// annotation in the compressed form, without what no window uses.
func TestHistoryMigration(t *testing.T) {
	old := func(h *autoscalingv2.HorizontalPodAutoscaler) {
		h.Annotations = map[string]string{HistoryAnnotation: fmt.Sprintf(`{"r":[[%d,9],[%d,7],[%d,6],[%d,6]],"u":[[%d,2]]}`,
			ago(400*time.Second).Unix(), ago(299*time.Second).Unix(), ago(120*time.Second).Unix(), ago(60*time.Second).Unix(), ago(5*time.Minute).Unix())}
	}
	r := recommend(t, in(newHPA(old), 7, pods(7, 100))) // wants 2, held at 7 by the sample 299 s old
	if r.DesiredReplicas != 7 {
		t.Errorf("desired %d, want 7", r.DesiredReplicas)
	}
	want := fmt.Sprintf(`{"c":[%d,2],"e":[[%d,7],[%d,6]],"u":[[%d,2]]}`, t0.Unix(), ago(299*time.Second).Unix(), ago(60*time.Second).Unix(), ago(5*time.Minute).Unix())
	if got := r.HPA.Annotations[HistoryAnnotation]; got != want {
		t.Errorf("annotation %s, want %s", got, want)
	}
	next := in(r.HPA, 7, pods(7, 100))
	next.Now = t0.Add(2 * time.Second) // the 7 is 301 s old
	if r := Recommend(next); r.DesiredReplicas != 6 {
		t.Errorf("2 s later: desired %d, want 6 (the 6 of 62 s ago)", r.DesiredReplicas)
	}
}

// kubeHistory is Kubernetes' per-sync recommendation list, updated as
// HorizontalController.stabilizeRecommendation and
// stabilizeRecommendationWithBehaviors do: the newest recommendation
// replaces a sample older than the windows, or is appended.
type kubeHistory []sample

func (k *kubeHistory) record(now time.Time, desired int32, old func(time.Time) bool) {
	for i := len(*k) - 1; i >= 0; i-- {
		if old((*k)[i].at()) {
			(*k)[i] = newSample(now, desired)
			return
		}
	}
	*k = append(*k, newSample(now, desired))
}

// classic is stabilizeRecommendation.
func (k *kubeHistory) classic(now time.Time, desired int32, w time.Duration) int32 {
	cutoff := now.Add(-w)
	out := desired
	for _, s := range *k {
		if !s.at().Before(cutoff) {
			out = max(out, s.value())
		}
	}
	k.record(now, desired, func(t time.Time) bool { return t.Before(cutoff) })
	return out
}

// behaviors is stabilizeRecommendationWithBehaviors.
func (k *kubeHistory) behaviors(now time.Time, current, desired int32, up, down time.Duration) int32 {
	upCutoff, downCutoff := now.Add(-up), now.Add(-down)
	upRec, downRec := desired, desired
	for _, s := range *k {
		if s.at().After(upCutoff) {
			upRec = min(upRec, s.value())
		}
		if s.at().After(downCutoff) {
			downRec = max(downRec, s.value())
		}
	}
	k.record(now, desired, func(t time.Time) bool { return t.Before(upCutoff) && t.Before(downCutoff) })
	return min(max(current, upRec), downRec)
}

// TestStabilizationMatchesKubernetes replays random recommendation
// sequences at random loop times (several in one second, up to 150 s
// apart), with random windows, through Kubernetes' per-sync list and the
// compressed history side by side, the latter decoded from and, when it
// changed, encoded into the annotation at every loop, sometimes after a
// stretch in the old per-pass format. It checks at every loop:
//
//   - the compressed history gives exactly what Kubernetes' algorithm gives
//     when each sync's recommendation is counted until the next sync (in
//     force until replaced); migrated samples keep their own time;
//   - it equals Kubernetes' result at every loop except where a replaced
//     recommendation's last sync is before the window start and the loop
//     that replaced it after it; there it is never further from the current
//     count than Kubernetes' (it holds the old recommendation for at most
//     one loop interval longer);
//   - the annotation changes only at loops whose recommendation differs
//     from the previous loop's (and once when it migrates).
func TestStabilizationMatchesKubernetes(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 3))
	windows := []time.Duration{0, 15 * time.Second, 60 * time.Second, 300 * time.Second}
	loops, differ, bounded := 0, 0, 0
	for seq := range 1000 {
		withBehavior := rng.IntN(2) == 0
		up, down := windows[rng.IntN(len(windows))], windows[rng.IntN(len(windows))]
		n := 5 + rng.IntN(80)
		migrate := 0 // loops run in the old format first
		if rng.IntN(3) == 0 {
			migrate = 1 + rng.IntN(n)
		}
		var (
			kube     kubeHistory
			times    []time.Time
			recs     []int32 // each loop's unstabilized recommendation
			ann      string
			current  = int32(1 + rng.IntN(8))
			now      = t0
			desired  = int32(1 + rng.IntN(8))
			seedTime = t0
			seedRecs = current
		)
		kube = kubeHistory{newSample(now, current)}
		for k := range n {
			if k > 0 {
				switch g := rng.IntN(10); {
				case g == 0: // same second
				case g < 5:
					now = now.Add(time.Duration(1+rng.IntN(30)) * time.Second)
				default:
					now = now.Add(time.Duration(1+rng.IntN(150)) * time.Second)
				}
			}
			if rng.IntN(10) < 3 {
				desired = int32(1 + rng.IntN(8))
			}
			times, recs = append(times, now), append(recs, desired)
			var kubeGot int32
			if withBehavior {
				kubeGot = kube.behaviors(now, current, desired, up, down)
			} else {
				kubeGot = kube.classic(now, desired, down)
			}
			if k < migrate {
				// The old code kept exactly Kubernetes' list.
				ann = history{Recommendations: slices.Clone(kube)}.encode()
				current = kubeGot
				continue
			}

			a := &autoscaler{now: now, cfg: Config{DownscaleStabilizationWindow: down}}
			h, err := loadHistory(map[string]string{HistoryAnnotation: ann})
			if err != nil {
				t.Fatal(err)
			}
			a.hist = h
			if a.hist.empty() {
				a.hist.Ended = []sample{newSample(now, current)}
			}
			var got int32
			if withBehavior {
				got, _, _ = a.stabilizeRecommendationWithBehaviors(current, desired,
					autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(up / time.Second))},
					autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(down / time.Second))})
			} else {
				got = a.stabilizeRecommendation(desired)
			}
			if enc := a.hist.encode(); enc != ann {
				if k != migrate && k > 0 && recs[k] == recs[k-1] {
					t.Fatalf("seq %d loop %d: the annotation changed with the recommendation steady at %d:\n%s\n→ %s", seq, k, desired, ann, enc)
				}
				a.hist.forget(a.windows)
				ann = a.hist.encode()
			} else if k == 0 || k == migrate || recs[k] != recs[k-1] {
				t.Fatalf("seq %d loop %d: recommendation %v not recorded: %s", seq, k, recs, ann)
			}

			// Kubernetes' algorithm with each sync's recommendation in
			// force until the next sync (migrated ones: their own time).
			until := func(i int) time.Time {
				if i < migrate {
					return times[i]
				}
				return times[i+1]
			}
			contains := func(w time.Duration, t time.Time) bool {
				if withBehavior {
					return t.After(now.Add(-w))
				}
				return !t.Before(now.Add(-w))
			}
			lo, hi := desired, desired
			for i := -1; i < k; i++ {
				at, v := seedTime, seedRecs
				if i >= 0 {
					at, v = until(i), recs[i]
				}
				if contains(up, at) {
					lo = min(lo, v)
				}
				if contains(down, at) {
					hi = max(hi, v)
				}
			}
			want := hi
			if withBehavior {
				want = min(max(current, lo), hi)
			}
			if got != want {
				t.Fatalf("seq %d loop %d (behavior %v, up %v, down %v, migrated %d): got %d, want %d\ntimes %v\nrecs %v\nannotation %s",
					seq, k, withBehavior, up, down, migrate, got, want, times, recs, ann)
			}

			// Against Kubernetes' own per-sync times.
			straddles := false
			for i := migrate; i < k; i++ {
				if recs[i] == recs[i+1] {
					continue
				}
				for _, w := range []time.Duration{up, down} {
					if !contains(w, times[i]) && contains(w, times[i+1]) {
						straddles = true
					}
				}
			}
			loops++
			if got != kubeGot {
				differ++
				if !straddles {
					t.Fatalf("seq %d loop %d: got %d, Kubernetes %d, with no recommendation change across the window start\ntimes %v\nrecs %v",
						seq, k, got, kubeGot, times, recs)
				}
				if (got-current)*(kubeGot-current) < 0 || abs(got-current) > abs(kubeGot-current) {
					t.Fatalf("seq %d loop %d: got %d, Kubernetes %d, current %d: not between them", seq, k, got, kubeGot, current)
				}
			}
			if straddles {
				bounded++
			}
			current = got
		}
	}
	t.Logf("%d loops: %d equal to Kubernetes' per-sync result, %d differ (%d had a change across a window start)", loops, loops-differ, differ, bounded)
}

func abs(v int32) int32 { return max(v, -v) }

// TestSaturationKeepsKubernetesDecisions replays random recommendations,
// many beyond minReplicas and maxReplicas, through the normalization with
// saturated recommendations (as Recommend does) and with raw ones (as
// Kubernetes does), each with its own history and scale events: the
// replicas and the ScalingLimited condition are the same at every loop,
// AbleToScale's reason differs only while the recommendation is pinned
// beyond a bound, and the saturated history changes no more often.
func TestSaturationKeepsKubernetesDecisions(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	windows := []int32{0, 15, 60, 300}
	rawChanges, satChanges, reasonDiffers := 0, 0, 0
	for seq := range 600 {
		lo := int32(1 + rng.IntN(4))
		hi := lo + int32(rng.IntN(8))
		opts := []hpaOpt{replicas(lo, hi)}
		withBehavior := rng.IntN(2) == 0
		if withBehavior {
			up := rules(windows[rng.IntN(len(windows))], "", podsPolicy(int32(1+rng.IntN(4)), 15), percentPolicy(100, 60))
			down := rules(windows[rng.IntN(len(windows))], "", podsPolicy(int32(1+rng.IntN(4)), 30))
			opts = append(opts, behavior(up, down))
		}
		spec := newHPA(opts...)
		sat := &autoscaler{cfg: DefaultConfig(), hpa: spec.DeepCopy()}
		raw := &autoscaler{cfg: DefaultConfig(), hpa: spec.DeepCopy(), raw: true}
		current := lo + int32(rng.IntN(int(hi-lo+1)))
		sat.hist.Ended = []sample{newSample(t0, current)}
		raw.hist.Ended = []sample{newSample(t0, current)}
		now, desired := t0, current
		for k := range 60 {
			now = now.Add(time.Duration(rng.IntN(40)) * time.Second)
			if rng.IntN(3) == 0 {
				desired = int32(rng.IntN(int(hi) + 7))
			}
			var outs [2]int32
			var before [2]string
			for i, a := range []*autoscaler{sat, raw} {
				a.now = now
				before[i] = a.hist.encode()
				if withBehavior {
					outs[i] = a.normalizeDesiredReplicasWithBehaviors(current, desired, lo)
				} else {
					outs[i] = a.normalizeDesiredReplicas(current, desired, lo)
				}
				if outs[i] != current {
					a.storeScaleEvent(current, outs[i])
				}
			}
			if outs[0] != outs[1] {
				t.Fatalf("seq %d loop %d (min %d max %d, behavior %v, current %d, desired %d): saturated %d, raw %d\nsaturated %s\nraw %s",
					seq, k, lo, hi, withBehavior, current, desired, outs[0], outs[1], sat.hist.encode(), raw.hist.encode())
			}
			limited := func(a *autoscaler) autoscalingv2.HorizontalPodAutoscalerCondition {
				for _, c := range a.hpa.Status.Conditions {
					if c.Type == autoscalingv2.ScalingLimited {
						return c
					}
				}
				return autoscalingv2.HorizontalPodAutoscalerCondition{}
			}
			if diff := cmp.Diff(limited(raw), limited(sat)); diff != "" {
				t.Fatalf("seq %d loop %d: ScalingLimited (-raw +saturated):\n%s", seq, k, diff)
			}
			if cs, cr := conds(sat.hpa)[0], conds(raw.hpa)[0]; cs != cr {
				if desired > lo-1 && desired < hi+1 {
					t.Fatalf("seq %d loop %d: desired %d within [%d, %d] but AbleToScale %s, Kubernetes %s", seq, k, desired, lo, hi, cs, cr)
				}
				reasonDiffers++
			}
			if sat.hist.encode() != before[0] {
				satChanges++
			}
			if raw.hist.encode() != before[1] {
				rawChanges++
			}
			current = outs[0]
		}
	}
	if satChanges > rawChanges {
		t.Errorf("saturated history changed %d times, raw %d", satChanges, rawChanges)
	}
	t.Logf("history changes: raw %d, saturated %d; AbleToScale reason differs at %d pinned loops", rawChanges, satChanges, reasonDiffers)
}

// TestHistoryKeptWhenNotStabilizing: a pass that stores the HPA without
// running the windows (the metrics fail, the target is beyond its bounds)
// forgets nothing.
func TestHistoryKeptWhenNotStabilizing(t *testing.T) {
	hist := fmt.Sprintf(`{"c":[%d,3],"e":[[%d,6]]}`, ago(time.Minute).Unix(), ago(2*time.Minute).Unix())
	withHist := func(h *autoscalingv2.HorizontalPodAutoscaler) {
		h.Annotations = map[string]string{HistoryAnnotation: hist}
	}
	tests := []struct {
		name  string
		input Input
	}{
		{"metrics fail", in(newHPA(withHist), 4, pods(4, 0, noUsage()))},
		{"above maxReplicas", in(newHPA(withHist, replicas(1, 3)), 4, pods(4, 500))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Recommend(tt.input)
			if !r.Changed {
				t.Fatal("the first pass over this HPA should store its status")
			}
			got, err := loadHistory(r.HPA.Annotations)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := loadHistory(map[string]string{HistoryAnnotation: hist})
			if diff := cmp.Diff(want.Ended, got.Ended); diff != "" || !cmp.Equal(want.Current, got.Current) {
				t.Errorf("recommendations not kept: %s (-want +got):\n%s", r.HPA.Annotations[HistoryAnnotation], diff)
			}
		})
	}
}
