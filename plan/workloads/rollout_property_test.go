package workloads

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// rolloutCase is one random rolling update: a Deployment of Replicas with
// MaxSurge and MaxUnavailable (ints or percents, never both zero) that is
// rolled out, has its template changed Edits times (the later edits in the
// middle of the rollout, at the invocations in EditAt) and sees pods become
// ready with probability ReadyPercent per pod and invocation. Graceful
// deletion leaves deleted pods terminating until a later invocation.
type rolloutCase struct {
	Seed           uint64
	Replicas       int32
	MaxSurge       intstr.IntOrString
	MaxUnavailable intstr.IntOrString
	ReadyPercent   int
	EditAt         []int
	Graceful       bool
}

func (rc rolloutCase) String() string {
	return fmt.Sprintf("{seed %d, replicas %d, maxSurge %s, maxUnavailable %s, ready %d%%/invocation, edits at %v, graceful %v}",
		rc.Seed, rc.Replicas, rc.MaxSurge.String(), rc.MaxUnavailable.String(), rc.ReadyPercent, rc.EditAt, rc.Graceful)
}

func randomRolloutCase(rng *rand.Rand) rolloutCase {
	intOrPercent := func() intstr.IntOrString {
		if rng.IntN(2) == 0 {
			return intstr.FromInt32(int32(rng.IntN(4)))
		}
		return intstr.FromString(fmt.Sprintf("%d%%", []int{0, 10, 25, 33, 50, 75, 100}[rng.IntN(7)]))
	}
	rc := rolloutCase{Seed: rng.Uint64(), Replicas: int32(1 + rng.IntN(12)), ReadyPercent: []int{10, 30, 60, 100}[rng.IntN(4)],
		Graceful: rng.IntN(3) == 0}
	for {
		rc.MaxSurge, rc.MaxUnavailable = intOrPercent(), intOrPercent()
		if !isZero(rc.MaxSurge) || !isZero(rc.MaxUnavailable) { // the API server rejects both 0
			break
		}
	}
	for range rng.IntN(3) {
		rc.EditAt = append(rc.EditAt, 1+rng.IntN(6))
	}
	return rc
}

func isZero(v intstr.IntOrString) bool {
	return v.Type == intstr.Int && v.IntVal == 0 || v.Type == intstr.String && v.StrVal == "0%"
}

// fenceposts resolves maxSurge and maxUnavailable as Kubernetes does,
// written out independently of resolveFenceposts: percents of replicas,
// surge rounded up, unavailable rounded down, unavailable 1 when both come
// out 0, unavailable at most replicas.
func fenceposts(rc rolloutCase) (surge, unavailable int32) {
	resolve := func(v intstr.IntOrString, up bool) int32 {
		if v.Type == intstr.Int {
			return v.IntVal
		}
		var pct int
		fmt.Sscanf(v.StrVal, "%d%%", &pct)
		f := float64(pct) * float64(rc.Replicas) / 100
		if up {
			return int32(math.Ceil(f))
		}
		return int32(math.Floor(f))
	}
	surge, unavailable = resolve(rc.MaxSurge, true), resolve(rc.MaxUnavailable, false)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, min(unavailable, rc.Replicas)
}

// checkRolloutStep checks the rolling update bounds on the store: at least
// replicas-maxUnavailable of the Deployment's pods available, at most
// replicas+maxSurge pods not terminating, and its ReplicaSets' replicas
// summing to at most replicas+maxSurge.
func checkRolloutStep(c *cluster, rc rolloutCase) error {
	surge, unavailable := fenceposts(rc)
	owned := map[string]bool{}
	var rsReplicas int32
	for _, rs := range c.replicaSetsOf("web") {
		owned[rs.Name] = true
		rsReplicas += *rs.Spec.Replicas
	}
	live, available := int32(0), int32(0)
	for _, p := range c.pods {
		ref := metav1.GetControllerOf(p)
		if ref == nil || ref.Kind != "ReplicaSet" || !owned[ref.Name] || p.DeletionTimestamp != nil {
			continue
		}
		live++
		if p.Status.Phase == corev1.PodRunning && podReadyCondition(p) != nil && podReadyCondition(p).Status == corev1.ConditionTrue {
			available++
		}
	}
	switch {
	case available < rc.Replicas-unavailable:
		return fmt.Errorf("%d pods available, want at least %d (replicas %d - maxUnavailable %d)", available, rc.Replicas-unavailable, rc.Replicas, unavailable)
	case live > rc.Replicas+surge:
		return fmt.Errorf("%d pods, want at most %d (replicas %d + maxSurge %d)", live, rc.Replicas+surge, rc.Replicas, surge)
	case rsReplicas > rc.Replicas+surge:
		return fmt.Errorf("replica sets want %d replicas, more than %d (replicas %d + maxSurge %d)", rsReplicas, rc.Replicas+surge, rc.Replicas, surge)
	}
	return nil
}

// runRollout plays a case: the Deployment is created and fully rolled
// out, then edited; from then on every pass of every invocation must keep
// the bounds, and the rollout of the last template must complete.
func runRollout(rc rolloutCase) error {
	t := &testing.T{} // the fixture fails through it only on store misuse
	c := newCluster(t)
	c.graceful = rc.Graceful
	rng := rand.New(rand.NewPCG(rc.Seed, 1))
	surge, unavailable := rc.MaxSurge, rc.MaxUnavailable
	c.add(newDeployment("web", rc.Replicas, rolling(surge, unavailable)))

	// invocation runs passes until nothing changes, checking the bounds
	// after every pass when check is set.
	invocation := func(check bool) error {
		c.invocations++
		for pass := 0; pass < 20; pass++ {
			ch := Reconcile(c.input())
			c.apply(ch)
			if check {
				if err := checkRolloutStep(c, rc); err != nil {
					return fmt.Errorf("pass %d (%s): %w", pass, describe(ch), err)
				}
			}
			if ch.Empty() {
				return nil
			}
		}
		return fmt.Errorf("did not settle in 20 passes")
	}
	done := func() bool {
		_, ok, err := DeploymentRolloutStatus(c.deployment("web"), 0)
		return err == nil && ok
	}
	for i := 0; !done(); i++ {
		if i == 20 {
			return fmt.Errorf("initial rollout did not complete")
		}
		if err := invocation(false); err != nil {
			return fmt.Errorf("initial rollout: %w", err)
		}
		c.finishTermination()
		c.readyAll()
	}
	if err := checkRolloutStep(c, rc); err != nil {
		return fmt.Errorf("after the initial rollout: %w", err)
	}

	images := 1
	edit := func() {
		images++
		d := c.deployment("web").DeepCopy()
		d.Spec.Template.Spec.Containers[0].Image = fmt.Sprintf("nginx:%d.0", images)
		c.store(d)
	}
	edit()
	for inv := 0; ; inv++ {
		if inv == 300 {
			return fmt.Errorf("rollout of image %d did not complete in 300 invocations", images)
		}
		for _, at := range rc.EditAt {
			if at == inv {
				edit()
			}
		}
		if err := invocation(true); err != nil {
			return fmt.Errorf("invocation %d: %w", inv, err)
		}
		if done() && c.deployment("web").Spec.Template.Spec.Containers[0].Image == fmt.Sprintf("nginx:%d.0", images) && inv >= maxEdit(rc) {
			break
		}
		// Terminating pods go away and new ones become ready, at random;
		// ready pods stay ready.
		if rng.IntN(2) == 0 {
			c.finishTermination()
		}
		var ready []nsName
		for _, k := range sortedKeys(c.pods) {
			if p := c.pods[k]; !isPodReady(p) && p.DeletionTimestamp == nil && rng.IntN(100) < rc.ReadyPercent {
				ready = append(ready, k)
			}
		}
		c.setPods(func(p *corev1.Pod) bool { return slices.Contains(ready, keyOf(p)) }, corev1.PodRunning, true)
		if err := checkRolloutStep(c, rc); err != nil {
			return fmt.Errorf("invocation %d, after pods became ready: %w", inv, err)
		}
	}

	// Complete: exactly replicas pods, all of the last template, and no
	// old ReplicaSet with replicas.
	want := fmt.Sprintf("nginx:%d.0", images)
	rss := c.replicaSetsOf("web")
	newest := rss[len(rss)-1]
	for _, rs := range rss[:len(rss)-1] {
		if *rs.Spec.Replicas != 0 {
			return fmt.Errorf("rollout done but old replica set %s has %d replicas", rs.Name, *rs.Spec.Replicas)
		}
	}
	if img := newest.Spec.Template.Spec.Containers[0].Image; img != want || *newest.Spec.Replicas != rc.Replicas {
		return fmt.Errorf("newest replica set %s runs %s with %d replicas, want %s with %d", newest.Name, img, *newest.Spec.Replicas, want, rc.Replicas)
	}
	if got := len(c.podsOf("ReplicaSet", newest.Name)); got != int(rc.Replicas) {
		return fmt.Errorf("newest replica set has %d pods, want %d", got, rc.Replicas)
	}
	return nil
}

func maxEdit(rc rolloutCase) int {
	m := 0
	for _, at := range rc.EditAt {
		m = max(m, at)
	}
	return m
}

// shrinkRollout makes a failing case smaller while it still fails: fewer
// replicas, fewer edits, plain ints, readiness always, no graceful deletion.
func shrinkRollout(rc rolloutCase, fails func(rolloutCase) bool) rolloutCase {
	for changed := true; changed; {
		changed = false
		var candidates []rolloutCase
		if rc.Replicas > 1 {
			c := rc
			c.Replicas--
			candidates = append(candidates, c)
		}
		for i := range rc.EditAt {
			c := rc
			c.EditAt = append(append([]int(nil), rc.EditAt[:i]...), rc.EditAt[i+1:]...)
			candidates = append(candidates, c)
		}
		if rc.Graceful {
			c := rc
			c.Graceful = false
			candidates = append(candidates, c)
		}
		if rc.ReadyPercent != 100 {
			c := rc
			c.ReadyPercent = 100
			candidates = append(candidates, c)
		}
		for _, c := range candidates {
			if fails(c) {
				rc, changed = c, true
				break
			}
		}
	}
	return rc
}

// TestRollingUpdateBounds steps random rolling updates through the
// controllers pass by pass: a Deployment's available pods never drop below
// replicas - maxUnavailable, its pods never exceed replicas + maxSurge, and
// every rollout completes. A failure is shrunk to a smaller case first.
func TestRollingUpdateBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 5))
	cases := 250
	if testing.Short() {
		cases = 50
	}
	for i := range cases {
		rc := randomRolloutCase(rng)
		if err := runRollout(rc); err != nil {
			small := shrinkRollout(rc, func(c rolloutCase) bool { return runRollout(c) != nil })
			t.Fatalf("case %d %v: %v\nshrunk to %v: %v", i, rc, err, small, runRollout(small))
		}
	}
}

// TestRolloutCheckerCatchesViolations makes sure checkRolloutStep is not
// vacuous: a store with one pod too many or one available too few fails.
func TestRolloutCheckerCatchesViolations(t *testing.T) {
	rc := rolloutCase{Replicas: 4, MaxSurge: intstr.FromInt32(1), MaxUnavailable: intstr.FromInt32(1), ReadyPercent: 100}
	c := newCluster(t)
	c.add(newDeployment("web", 4, rolling(rc.MaxSurge, rc.MaxUnavailable)))
	c.settle()
	c.readyAll()
	c.settle()
	if err := checkRolloutStep(c, rc); err != nil {
		t.Fatalf("rolled-out deployment: %v", err)
	}
	rs := c.replicaSetsOf("web")[0]
	var extra []*corev1.Pod
	for _, name := range c.podsOf("ReplicaSet", rs.Name) {
		p := c.pods[nsName{"default", name}].DeepCopy()
		p.Name += "-copy"
		extra = append(extra, p)
	}
	c.pods[nsName{"default", extra[0].Name}] = extra[0]
	if err := checkRolloutStep(c, rc); err != nil {
		t.Errorf("5 pods for 4 replicas + surge 1: %v", err)
	}
	c.pods[nsName{"default", extra[1].Name}] = extra[1]
	if err := checkRolloutStep(c, rc); err == nil {
		t.Error("6 pods for 4 replicas + surge 1 passed")
	}
	delete(c.pods, nsName{"default", extra[0].Name})
	delete(c.pods, nsName{"default", extra[1].Name})
	names := c.podsOf("ReplicaSet", rs.Name)
	c.setPods(func(p *corev1.Pod) bool { return p.Name == names[0] }, corev1.PodRunning, false)
	if err := checkRolloutStep(c, rc); err != nil {
		t.Errorf("3 available for 4 replicas - unavailable 1: %v", err)
	}
	c.setPods(func(p *corev1.Pod) bool { return p.Name == names[1] }, corev1.PodRunning, false)
	if err := checkRolloutStep(c, rc); err == nil {
		t.Error("2 available for 4 replicas - unavailable 1 passed")
	}
}
