package autoscale

import (
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
)

// Without spec.behavior, a scale-up goes to at most max(2 × current, 4).
const (
	scaleUpLimitFactor  = 2.0
	scaleUpLimitMinimum = 4.0
)

// normalizeDesiredReplicas is the path without spec.behavior: downscale
// stabilization over Config.DownscaleStabilizationWindow, then the classic
// limits.
func (a *autoscaler) normalizeDesiredReplicas(current, desired, minReplicas int32) int32 {
	desired = a.saturate(desired, minReplicas)
	stabilized := a.stabilizeRecommendation(desired)
	if stabilized != desired {
		a.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation")
	} else {
		a.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", "recommended size matches current size")
	}
	// Kubernetes limits each sync's scale-up; a pass in the same second as
	// a rescale is the same sync, and continues from where it started.
	start := current - a.changeAt(a.now, a.hist.ScaleUp) + a.changeAt(a.now, a.hist.ScaleDown)
	out, reason, message := convertDesiredReplicasWithRules(current, start, stabilized, minReplicas, a.hpa.Spec.MaxReplicas)
	status := corev1.ConditionTrue
	if out == stabilized {
		status = corev1.ConditionFalse
	}
	a.setCondition(autoscalingv2.ScalingLimited, status, reason, message)
	return out
}

// saturate brings a recommendation to within one of minReplicas and
// maxReplicas before it is stabilized and recorded: every count above
// maxReplicas (below minReplicas) ends at the same replicas, limit and
// ScalingLimited condition, so an HPA pinned at a bound by a load whose
// recommendation wanders (14, 15, 13 with at most 10) records it once
// instead of at every change. The current count is within the bounds here,
// and saturating commutes with the windows' max and min, so only
// AbleToScale's reason can differ from Kubernetes', while pinned: it says
// ReadyForNewScale where Kubernetes may say a window held an even higher
// (lower) wish. A recorded value keeps the bounds of its time until the
// windows forget it (at most their length after maxReplicas is raised).
func (a *autoscaler) saturate(desired, minReplicas int32) int32 {
	if a.raw {
		return desired
	}
	return min(max(desired, minReplicas-1), a.hpa.Spec.MaxReplicas+1)
}

// stabilizeRecommendation returns the highest recommendation of the window
// (this one included) and records this one.
func (a *autoscaler) stabilizeRecommendation(desired int32) int32 {
	down := window{start: a.now.Add(-a.cfg.DownscaleStabilizationWindow)}
	highest := a.hist.highest(a.now, desired, down)
	a.hist.record(a.now, desired)
	a.windows = []window{down}
	return highest
}

// convertDesiredReplicasWithRules applies min, max and the classic
// scale-up limit, computed from start, the replicas when the sync began.
func convertDesiredReplicasWithRules(current, start, desired, minReplicas, maxReplicas int32) (int32, string, string) {
	scaleUpLimit := max(int32(math.Max(scaleUpLimitFactor*float64(start), scaleUpLimitMinimum)), current)
	var maxAllowed int32
	var reason, message string
	if maxReplicas > scaleUpLimit {
		maxAllowed = scaleUpLimit
		reason, message = "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
	} else {
		maxAllowed = maxReplicas
		reason, message = "TooManyReplicas", "the desired replica count is more than the maximum replica count"
	}
	if desired < minReplicas {
		return minReplicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
	}
	if desired > maxAllowed {
		return maxAllowed, reason, message
	}
	return desired, "DesiredWithinRange", "the desired count is within the acceptable range"
}

// Defaults of spec.behavior (GenerateHPAScaleUpRules and
// GenerateHPAScaleDownRules) for the fields left out.
func scaleUpRules(r *autoscalingv2.HPAScalingRules) autoscalingv2.HPAScalingRules {
	out := autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: ptr(int32(0)),
		SelectPolicy:               ptr(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		},
	}
	return mergeRules(r, out)
}

func scaleDownRules(r *autoscalingv2.HPAScalingRules, window time.Duration) autoscalingv2.HPAScalingRules {
	out := autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: ptr(int32(window.Seconds())),
		SelectPolicy:               ptr(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		},
	}
	return mergeRules(r, out)
}

func mergeRules(from *autoscalingv2.HPAScalingRules, to autoscalingv2.HPAScalingRules) autoscalingv2.HPAScalingRules {
	if from == nil {
		return to
	}
	if from.SelectPolicy != nil {
		to.SelectPolicy = from.SelectPolicy
	}
	if from.StabilizationWindowSeconds != nil {
		to.StabilizationWindowSeconds = from.StabilizationWindowSeconds
	}
	if from.Policies != nil {
		to.Policies = from.Policies
	}
	return to
}

// normalizeDesiredReplicasWithBehaviors: stabilization windows, then the
// scaling policies, then min and max.
func (a *autoscaler) normalizeDesiredReplicasWithBehaviors(current, desired, minReplicas int32) int32 {
	desired = a.saturate(desired, minReplicas)
	up := scaleUpRules(a.hpa.Spec.Behavior.ScaleUp)
	down := scaleDownRules(a.hpa.Spec.Behavior.ScaleDown, a.cfg.DownscaleStabilizationWindow)
	stabilized, reason, message := a.stabilizeRecommendationWithBehaviors(current, desired, up, down)
	if stabilized != desired {
		a.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, reason, message)
	} else {
		a.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", "recommended size matches current size")
	}
	out, reason, message := a.convertDesiredReplicasWithBehaviorRate(current, stabilized, minReplicas, up, down)
	status := corev1.ConditionTrue
	if out == stabilized {
		status = corev1.ConditionFalse
	}
	a.setCondition(autoscalingv2.ScalingLimited, status, reason, message)
	return out
}

// stabilizeRecommendationWithBehaviors keeps the recommendation between the
// lowest recommendation of the scale-up window and the highest of the
// scale-down window, and records this one.
func (a *autoscaler) stabilizeRecommendationWithBehaviors(current, desired int32, up, down autoscalingv2.HPAScalingRules) (int32, string, string) {
	upWindow := window{start: a.now.Add(-time.Duration(*up.StabilizationWindowSeconds) * time.Second), open: true}
	downWindow := window{start: a.now.Add(-time.Duration(*down.StabilizationWindowSeconds) * time.Second), open: true}
	upRec := a.hist.lowest(a.now, desired, upWindow)
	downRec := a.hist.highest(a.now, desired, downWindow)
	recommendation := current
	if recommendation < upRec {
		recommendation = upRec
	}
	if recommendation > downRec {
		recommendation = downRec
	}
	a.hist.record(a.now, desired)
	a.windows = []window{upWindow, downWindow}
	if desired >= current {
		return recommendation, "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation"
	}
	return recommendation, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation"
}

// convertDesiredReplicasWithBehaviorRate applies the scaling policies and
// the min and max.
func (a *autoscaler) convertDesiredReplicasWithBehaviorRate(current, desired, minReplicas int32, up, down autoscalingv2.HPAScalingRules) (int32, string, string) {
	switch {
	case desired > current:
		limit := max(a.scaleUpLimit(current, up), current)
		maxAllowed := a.hpa.Spec.MaxReplicas
		reason, message := "TooManyReplicas", "the desired replica count is more than the maximum replica count"
		if maxAllowed > limit {
			maxAllowed = limit
			reason, message = "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
		}
		if desired > maxAllowed {
			return maxAllowed, reason, message
		}
	case desired < current:
		limit := min(a.scaleDownLimit(current, down), current)
		minAllowed := minReplicas
		reason, message := "TooFewReplicas", "the desired replica count is less than the minimum replica count"
		if minAllowed < limit {
			minAllowed = limit
			reason, message = "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
		}
		if desired < minAllowed {
			return minAllowed, reason, message
		}
	}
	return desired, "DesiredWithinRange", "the desired count is within the acceptable range"
}

// changeAt sums the replica changes of the events at t.
func (a *autoscaler) changeAt(t time.Time, events []sample) int32 {
	var n int32
	for _, e := range events {
		if e.at().Equal(t) {
			n += e.value()
		}
	}
	return n
}

// changeInPeriod sums the replica changes of the events in the last
// periodSeconds.
func (a *autoscaler) changeInPeriod(periodSeconds int32, events []sample) int32 {
	cutoff := a.now.Add(-time.Duration(periodSeconds) * time.Second)
	var n int32
	for _, e := range events {
		if e.at().After(cutoff) {
			n += e.value()
		}
	}
	return n
}

// scaleUpLimit is calculateScaleUpLimitWithScalingRules: the most replicas
// the policies allow, counting from the replicas at the start of each
// policy's period.
func (a *autoscaler) scaleUpLimit(current int32, rules autoscalingv2.HPAScalingRules) int32 {
	if *rules.SelectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pick, result := maxInt32, int32(math.MinInt32)
	if *rules.SelectPolicy == autoscalingv2.MinChangePolicySelect {
		pick, result = minInt32, math.MaxInt32
	}
	for _, p := range rules.Policies {
		start := current - a.changeInPeriod(p.PeriodSeconds, a.hist.ScaleUp) + a.changeInPeriod(p.PeriodSeconds, a.hist.ScaleDown)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start + p.Value
		case autoscalingv2.PercentScalingPolicy:
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		}
		result = pick(result, proposed)
	}
	return result
}

// scaleDownLimit is calculateScaleDownLimitWithBehaviors: the fewest
// replicas the policies allow.
func (a *autoscaler) scaleDownLimit(current int32, rules autoscalingv2.HPAScalingRules) int32 {
	if *rules.SelectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pick, result := minInt32, int32(math.MaxInt32)
	if *rules.SelectPolicy == autoscalingv2.MinChangePolicySelect {
		pick, result = maxInt32, math.MinInt32
	}
	for _, p := range rules.Policies {
		start := current - a.changeInPeriod(p.PeriodSeconds, a.hist.ScaleUp) + a.changeInPeriod(p.PeriodSeconds, a.hist.ScaleDown)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start - p.Value
		case autoscalingv2.PercentScalingPolicy:
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}

// storeScaleEvent records a rescale for the policies, dropping events older
// than any policy period. Without spec.behavior Kubernetes keeps none; here
// the events of the current second are kept, so that a second pass in the
// same second does not take a second scale-up step.
func (a *autoscaler) storeScaleEvent(prev, next int32) {
	cutoff := a.now
	if b := a.hpa.Spec.Behavior; b != nil {
		up := scaleUpRules(b.ScaleUp)
		down := scaleDownRules(b.ScaleDown, a.cfg.DownscaleStabilizationWindow)
		cutoff = a.now.Add(-time.Duration(max(longestPeriod(up), longestPeriod(down))) * time.Second)
	}
	old := func(s sample) bool { return s.at().Before(cutoff) }
	if next > prev {
		a.hist.ScaleUp = add(a.hist.ScaleUp, newSample(a.now, next-prev), old)
		a.hist.ScaleDown = prune(a.hist.ScaleDown, old)
	} else {
		a.hist.ScaleDown = add(a.hist.ScaleDown, newSample(a.now, prev-next), old)
		a.hist.ScaleUp = prune(a.hist.ScaleUp, old)
	}
}

func longestPeriod(r autoscalingv2.HPAScalingRules) int32 {
	var longest int32
	for _, p := range r.Policies {
		longest = max(longest, p.PeriodSeconds)
	}
	return longest
}

func maxInt32(a, b int32) int32 { return max(a, b) }
func minInt32(a, b int32) int32 { return min(a, b) }
