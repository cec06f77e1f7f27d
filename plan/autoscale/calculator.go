package autoscale

import (
	"errors"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// tolerances are the scale-down and scale-up tolerances around ratio 1.
type tolerances struct{ down, up float64 }

func (t tolerances) within(ratio float64) bool {
	return 1.0-t.down <= ratio && ratio <= 1.0+t.up
}

// close reports whether fresh is within the tolerance of stored, measured
// against target: the ratio to the target moved by at most the up (or
// down) tolerance.
func (t tolerances) close(stored, fresh, target int64) bool {
	if target <= 0 {
		return stored == fresh
	}
	d := float64(fresh-stored) / float64(target)
	if d >= 0 {
		return d <= t.up
	}
	return -d <= t.down
}

// calculator is Kubernetes' ReplicaCalculator over the pass's pods.
type calculator struct {
	now time.Time
	cfg Config
}

// podMetric is a pod's usage of one resource, in milli-units.
type podMetric struct {
	value     int64
	timestamp time.Time
	window    time.Duration
}

// metricsFor returns the samples of resource for the pods that have one.
func (c calculator) metricsFor(pods []PodMetrics, resource corev1.ResourceName) map[string]podMetric {
	out := make(map[string]podMetric, len(pods))
	for _, p := range pods {
		if p.Usage == nil {
			continue
		}
		var v int64
		switch resource {
		case corev1.ResourceCPU:
			v = p.Usage.CPUMillis
		case corev1.ResourceMemory:
			v = p.Usage.MemoryBytes * 1000
		}
		ts := p.Usage.Timestamp
		if ts.IsZero() {
			ts = c.now
		}
		out[p.Name] = podMetric{value: v, timestamp: ts, window: p.Usage.Window}
	}
	return out
}

// resourceReplicas is GetResourceReplicas: the replica count for a target
// utilization (percent of requests), the current utilization and the raw
// average usage (milli-units).
func (c calculator) resourceReplicas(current, targetUtilization int32, resource corev1.ResourceName, tol tolerances, pods []PodMetrics) (int32, int32, int64, error) {
	metrics := c.metricsFor(pods, resource)
	if len(metrics) == 0 {
		return 0, 0, 0, fmt.Errorf("unable to get metrics for resource %s: no metrics returned from resource metrics API", resource)
	}
	if len(pods) == 0 {
		return 0, 0, 0, errors.New("no pods returned by selector while calculating replica count")
	}
	readyCount, unready, missing, ignored := c.groupPods(pods, metrics, resource)
	removeMetrics(metrics, ignored)
	removeMetrics(metrics, unready)
	if len(metrics) == 0 {
		return 0, 0, 0, errors.New("did not receive metrics for targeted pods (pods might be unready)")
	}
	requests, err := calculateRequests(pods, resource)
	if err != nil {
		return 0, 0, 0, err
	}
	ratio, utilization, raw, err := utilizationRatio(metrics, requests, targetUtilization)
	if err != nil {
		return 0, 0, 0, err
	}

	scaleUpWithUnready := len(unready) > 0 && ratio > 1.0
	if !scaleUpWithUnready && len(missing) == 0 {
		if tol.within(ratio) {
			return current, utilization, raw, nil
		}
		return int32(math.Ceil(ratio * float64(readyCount))), utilization, raw, nil
	}
	if len(missing) > 0 {
		if ratio < 1.0 {
			// Scaling down: a pod without a sample uses all of its request
			// (or the target, when that is above 100%).
			fallback := int64(max(100, targetUtilization))
			for name := range missing {
				metrics[name] = podMetric{value: requests[name] * fallback / 100}
			}
		} else if ratio > 1.0 {
			for name := range missing {
				metrics[name] = podMetric{}
			}
		}
	}
	if scaleUpWithUnready {
		for name := range unready {
			metrics[name] = podMetric{}
		}
	}
	newRatio, _, _, err := utilizationRatio(metrics, requests, targetUtilization)
	if err != nil {
		return 0, utilization, raw, err
	}
	if tol.within(newRatio) || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		return current, utilization, raw, nil
	}
	replicas := int32(math.Ceil(newRatio * float64(len(metrics))))
	if (newRatio < 1.0 && replicas > current) || (newRatio > 1.0 && replicas < current) {
		return current, utilization, raw, nil
	}
	return replicas, utilization, raw, nil
}

// rawResourceReplicas is GetRawResourceReplicas (calcPlainMetricReplicas):
// the replica count for a target average usage in milli-units, and the
// current average usage.
func (c calculator) rawResourceReplicas(current int32, targetUsage int64, resource corev1.ResourceName, tol tolerances, pods []PodMetrics) (int32, int64, error) {
	metrics := c.metricsFor(pods, resource)
	if len(metrics) == 0 {
		return 0, 0, fmt.Errorf("unable to get metrics for resource %s: no metrics returned from resource metrics API", resource)
	}
	if len(pods) == 0 {
		return 0, 0, errors.New("no pods returned by selector while calculating replica count")
	}
	readyCount, unready, missing, ignored := c.groupPods(pods, metrics, resource)
	removeMetrics(metrics, ignored)
	removeMetrics(metrics, unready)
	if len(metrics) == 0 {
		return 0, 0, errors.New("did not receive metrics for targeted pods (pods might be unready)")
	}
	ratio, usage := usageRatio(metrics, targetUsage)

	scaleUpWithUnready := len(unready) > 0 && ratio > 1.0
	if !scaleUpWithUnready && len(missing) == 0 {
		if tol.within(ratio) {
			return current, usage, nil
		}
		return int32(math.Ceil(ratio * float64(readyCount))), usage, nil
	}
	if len(missing) > 0 {
		if ratio < 1.0 {
			for name := range missing {
				metrics[name] = podMetric{value: targetUsage}
			}
		} else if ratio > 1.0 {
			for name := range missing {
				metrics[name] = podMetric{}
			}
		}
	}
	if scaleUpWithUnready {
		for name := range unready {
			metrics[name] = podMetric{}
		}
	}
	newRatio, _ := usageRatio(metrics, targetUsage)
	if tol.within(newRatio) || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		return current, usage, nil
	}
	replicas := int32(math.Ceil(newRatio * float64(len(metrics))))
	if (newRatio < 1.0 && replicas > current) || (newRatio > 1.0 && replicas < current) {
		return current, usage, nil
	}
	return replicas, usage, nil
}

// groupPods is Kubernetes' groupPods: the ready pods with a sample are
// counted; pending pods (and for cpu, pods not ready or within their
// initialization period) are unready; pods without a sample are missing;
// failed and deleting pods are ignored.
func (c calculator) groupPods(pods []PodMetrics, metrics map[string]podMetric, resource corev1.ResourceName) (int, set, set, set) {
	readyCount := 0
	unready, missing, ignored := set{}, set{}, set{}
	for _, p := range pods {
		if p.Deleting || p.Phase == corev1.PodFailed {
			ignored[p.Name] = true
			continue
		}
		if p.Phase == corev1.PodPending || p.Phase == "" {
			unready[p.Name] = true
			continue
		}
		m, ok := metrics[p.Name]
		if !ok {
			missing[p.Name] = true
			continue
		}
		if resource == corev1.ResourceCPU {
			var isUnready bool
			switch {
			case p.Ready == nil || p.StartTime.IsZero():
				isUnready = true
			case p.StartTime.Add(c.cfg.CPUInitializationPeriod).After(c.now):
				// Still initializing: ignore the sample if the pod is not
				// ready or the sample predates a full window since it was.
				isUnready = !p.Ready.Ready || m.timestamp.Before(p.Ready.LastTransitionTime.Add(m.window))
			default:
				// Ignore a pod that is not ready and never was.
				isUnready = !p.Ready.Ready && p.StartTime.Add(c.cfg.InitialReadinessDelay).After(p.Ready.LastTransitionTime)
			}
			if isUnready {
				unready[p.Name] = true
				continue
			}
		}
		readyCount++
	}
	return readyCount, unready, missing, ignored
}

type set map[string]bool

func removeMetrics(metrics map[string]podMetric, pods set) {
	for name := range pods {
		delete(metrics, name)
	}
}

// calculateRequests sums each pod's requests of resource over its
// containers (and sidecars), in milli-units.
func calculateRequests(pods []PodMetrics, resource corev1.ResourceName) (map[string]int64, error) {
	out := make(map[string]int64, len(pods))
	for _, p := range pods {
		var sum int64
		for _, ctr := range p.Containers {
			q, ok := ctr.Requests[resource]
			if !ok {
				return nil, fmt.Errorf("missing request for %s in container %s of Pod %s", resource, ctr.Name, p.Name)
			}
			sum += q.MilliValue()
		}
		out[p.Name] = sum
	}
	return out, nil
}

// utilizationRatio is GetResourceUtilizationRatio: the integer percentage
// of requests used, over the target, plus the raw average.
func utilizationRatio(metrics map[string]podMetric, requests map[string]int64, target int32) (float64, int32, int64, error) {
	var total, requested int64
	n := 0
	for name, m := range metrics {
		r, ok := requests[name]
		if !ok {
			continue
		}
		total += m.value
		requested += r
		n++
	}
	if requested == 0 {
		return 0, 0, 0, errors.New("no metrics returned matched known pods")
	}
	utilization := int32(total * 100 / requested)
	return float64(utilization) / float64(target), utilization, total / int64(n), nil
}

// usageRatio is GetMetricUsageRatio: the average usage over the target.
func usageRatio(metrics map[string]podMetric, target int64) (float64, int64) {
	var total int64
	for _, m := range metrics {
		total += m.value
	}
	avg := total / int64(len(metrics))
	return float64(avg) / float64(target), avg
}
