package autoscale

import (
	"errors"
	"fmt"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/clusterctl/clusterctl/plan/controller"
)

// Config holds kube-controller-manager's HPA flags. Zero fields take the
// defaults (so a tolerance of exactly 0 is not expressible; use 1e-9).
type Config struct {
	// Tolerance is --horizontal-pod-autoscaler-tolerance (0.1).
	Tolerance float64
	// CPUInitializationPeriod is
	// --horizontal-pod-autoscaler-cpu-initialization-period (5 min).
	CPUInitializationPeriod time.Duration
	// InitialReadinessDelay is
	// --horizontal-pod-autoscaler-initial-readiness-delay (30 s).
	InitialReadinessDelay time.Duration
	// DownscaleStabilizationWindow is
	// --horizontal-pod-autoscaler-downscale-stabilization (5 min).
	DownscaleStabilizationWindow time.Duration
}

// DefaultConfig returns kube-controller-manager's defaults.
func DefaultConfig() Config {
	return Config{
		Tolerance:                    0.1,
		CPUInitializationPeriod:      5 * time.Minute,
		InitialReadinessDelay:        30 * time.Second,
		DownscaleStabilizationWindow: 5 * time.Minute,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Tolerance == 0 {
		c.Tolerance = d.Tolerance
	}
	if c.CPUInitializationPeriod == 0 {
		c.CPUInitializationPeriod = d.CPUInitializationPeriod
	}
	if c.InitialReadinessDelay == 0 {
		c.InitialReadinessDelay = d.InitialReadinessDelay
	}
	if c.DownscaleStabilizationWindow == 0 {
		c.DownscaleStabilizationWindow = d.DownscaleStabilizationWindow
	}
	return c
}

// Input is what one HPA's pass sees.
type Input struct {
	// Now is the time of the pass; it is used to the second.
	Now time.Time
	// HPA is the stored HorizontalPodAutoscaler.
	HPA *autoscalingv2.HorizontalPodAutoscaler
	// CurrentReplicas is the scale target's spec.replicas.
	CurrentReplicas int32
	// Selector is the scale target's pod selector; nil if it has none.
	Selector *metav1.LabelSelector
	// Pods are the pods of the HPA's namespace; those the selector does
	// not match are left out.
	Pods []PodMetrics
	// Config is the controller's configuration; zero fields are defaults.
	Config Config
}

// PodMetrics is what the HPA needs to know about one pod.
type PodMetrics struct {
	Name   string
	Labels map[string]string
	Phase  corev1.PodPhase
	// Deleting is set when the pod has a deletion timestamp.
	Deleting bool
	// StartTime is status.startTime; zero if the pod has not started.
	StartTime time.Time
	// Ready is the pod's Ready condition; nil if it has none.
	Ready *ReadyCondition
	// Containers are the requests of the pod's containers and of its
	// restartable init containers (sidecars), from the pod spec.
	Containers []ContainerRequests
	// Usage is the pod's latest resource sample; nil if there is none.
	Usage *Usage
}

// ReadyCondition is a pod's Ready condition.
type ReadyCondition struct {
	Ready              bool
	LastTransitionTime time.Time
}

// ContainerRequests are one container's resource requests.
type ContainerRequests struct {
	Name     string
	Requests corev1.ResourceList
}

// Usage is a pod's resource usage sample, summed over its containers.
type Usage struct {
	CPUMillis   int64
	MemoryBytes int64
	// Timestamp is when the sample was taken (zero: now) and Window the
	// span it averages.
	Timestamp time.Time
	Window    time.Duration
}

// PodMetricsFromPod builds a PodMetrics from a pod and its usage sample
// (nil if none).
func PodMetricsFromPod(p *corev1.Pod, usage *Usage) PodMetrics {
	m := PodMetrics{
		Name:     p.Name,
		Labels:   p.Labels,
		Phase:    p.Status.Phase,
		Deleting: p.DeletionTimestamp != nil,
		Usage:    usage,
	}
	if p.Status.StartTime != nil {
		m.StartTime = p.Status.StartTime.Time
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			m.Ready = &ReadyCondition{Ready: c.Status == corev1.ConditionTrue, LastTransitionTime: c.LastTransitionTime.Time}
			break
		}
	}
	for _, c := range p.Spec.Containers {
		m.Containers = append(m.Containers, ContainerRequests{Name: c.Name, Requests: c.Resources.Requests})
	}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			m.Containers = append(m.Containers, ContainerRequests{Name: c.Name, Requests: c.Resources.Requests})
		}
	}
	return m
}

// Result is one pass's decision.
type Result struct {
	// HPA is the updated HorizontalPodAutoscaler: status and history
	// annotation.
	HPA *autoscalingv2.HorizontalPodAutoscaler
	// DesiredReplicas is what the scale target's spec.replicas should be.
	DesiredReplicas int32
	// Rescale reports DesiredReplicas != CurrentReplicas.
	Rescale bool
	// Reason says why, as in the SuccessfulRescale event.
	Reason string
	// Changed reports that HPA differs from the input's, so that it must
	// be stored. A steady HPA is not changed: its history records
	// recommendations only when they change, and its currentMetrics keep
	// their stored values while the fresh ones stay within the tolerance
	// of them (they are refreshed whenever the HPA changes anyway).
	Changed bool
	Events  []controller.Event
}

var hpaGVK = autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler")

// Recommend runs Kubernetes' reconcileAutoscaler for one HPA.
func Recommend(in Input) Result {
	a := &autoscaler{
		now:  in.Now.Truncate(time.Second),
		cfg:  in.Config.withDefaults(),
		hpa:  in.HPA.DeepCopy(),
		pods: in.Pods,
	}
	a.hpa.SetGroupVersionKind(hpaGVK)
	a.calc = calculator{now: a.now, cfg: a.cfg}
	hist, err := loadHistory(a.hpa.Annotations)
	if err != nil {
		a.event(controller.EventWarning, "InvalidHistory", err.Error()+"; starting afresh")
	}
	a.hist = hist

	res := a.reconcile(in.CurrentReplicas, in.Selector)
	if a.hpa.Annotations == nil {
		a.hpa.Annotations = map[string]string{}
	}
	a.hpa.Annotations[HistoryAnnotation] = a.hist.encode()
	orig := in.HPA.DeepCopy()
	orig.SetGroupVersionKind(hpaGVK)
	if !equality.Semantic.DeepEqual(orig, a.hpa) {
		// Stored anyway: drop what no window uses any more and show the
		// fresh metrics. Neither alone is worth a write.
		a.hist.forget(a.windows)
		a.hpa.Annotations[HistoryAnnotation] = a.hist.encode()
		if a.freshMetrics != nil {
			a.hpa.Status.CurrentMetrics = *a.freshMetrics
		}
	}
	res.HPA = a.hpa
	res.Events = a.events
	res.Changed = !equality.Semantic.DeepEqual(orig, a.hpa)
	return res
}

type autoscaler struct {
	now    time.Time
	cfg    Config
	hpa    *autoscalingv2.HorizontalPodAutoscaler
	pods   []PodMetrics
	calc   calculator
	hist   history
	events []controller.Event
	// windows are the stabilization windows of the pass, if it ran them.
	windows []window
	// targets are the targets of the metrics with a status, in order.
	targets []autoscalingv2.MetricTarget
	// freshMetrics are this pass's metric statuses when the stored ones
	// were kept.
	freshMetrics *[]autoscalingv2.MetricStatus
	// raw stabilizes and records recommendations as computed, without
	// saturate, as Kubernetes does; tests compare against it.
	raw bool
}

func (a *autoscaler) event(typ, reason, message string) {
	a.events = append(a.events, controller.Event{
		Object: controller.Ref{Kind: hpaGVK.Kind, Namespace: a.hpa.Namespace, Name: a.hpa.Name},
		Type:   typ, Reason: reason, Message: message,
	})
}

// reconcile is reconcileAutoscaler once the scale target has been read.
func (a *autoscaler) reconcile(current int32, selector *metav1.LabelSelector) Result {
	hpa := a.hpa
	a.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededGetScale", "the HPA controller was able to get the target's current scale")
	if a.hist.empty() {
		// Kubernetes starts a new HPA's history with the current count.
		a.hist.Ended = []sample{newSample(a.now, current)}
	}
	minReplicas := int32(1)
	if hpa.Spec.MinReplicas != nil {
		minReplicas = *hpa.Spec.MinReplicas
	}

	var statuses []autoscalingv2.MetricStatus
	desired := int32(0)
	reason := ""
	rescale := true
	switch {
	case current == 0 && minReplicas != 0:
		rescale = false
		a.setCondition(autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled", "scaling is disabled since the replica count of the target is zero")
	case current > hpa.Spec.MaxReplicas:
		reason = "Current number of replicas above Spec.MaxReplicas"
		desired = hpa.Spec.MaxReplicas
	case current < minReplicas:
		reason = "Current number of replicas below Spec.MinReplicas"
		desired = minReplicas
	default:
		metricDesired, metricName, st, err := a.computeReplicasForMetrics(current, selector)
		statuses = st
		if err != nil && metricDesired == -1 {
			a.setStatus(current, hpa.Status.DesiredReplicas, statuses, false)
			a.event(controller.EventWarning, "FailedComputeMetricsReplicas", err.Error())
			return Result{DesiredReplicas: current}
		}
		if metricDesired > desired {
			desired = metricDesired
		}
		if desired > current {
			reason = fmt.Sprintf("%s above target", metricName)
		}
		if desired < current {
			reason = "All metrics below target"
		}
		if hpa.Spec.Behavior == nil {
			desired = a.normalizeDesiredReplicas(current, desired, minReplicas)
		} else {
			desired = a.normalizeDesiredReplicasWithBehaviors(current, desired, minReplicas)
		}
		rescale = desired != current
	}

	if rescale {
		a.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededRescale", fmt.Sprintf("the HPA controller was able to update the target scale to %d", desired))
		a.event(controller.EventNormal, "SuccessfulRescale", fmt.Sprintf("New size: %d; reason: %s", desired, reason))
		a.storeScaleEvent(current, desired)
	} else {
		desired = current
		reason = ""
	}
	a.setStatus(current, desired, statuses, rescale)
	return Result{DesiredReplicas: desired, Rescale: rescale, Reason: reason}
}

// computeReplicasForMetrics returns the largest proposal of the metrics, the
// metric that made it, and their statuses; -1 and an error when no usable
// proposal exists.
func (a *autoscaler) computeReplicasForMetrics(current int32, sel *metav1.LabelSelector) (int32, string, []autoscalingv2.MetricStatus, error) {
	if sel == nil {
		a.event(controller.EventWarning, "SelectorRequired", "selector is required")
		a.setCondition(autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", "the HPA target's scale is missing a selector")
		return -1, "", nil, errors.New("selector is required")
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		msg := fmt.Sprintf("couldn't convert selector into a corresponding internal selector object: %v", err)
		a.event(controller.EventWarning, "InvalidSelector", msg)
		a.setCondition(autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", msg)
		return -1, "", nil, errors.New(msg)
	}
	var pods []PodMetrics
	for _, p := range a.pods {
		if selector.Matches(labels.Set(p.Labels)) {
			pods = append(pods, p)
		}
	}

	specs := a.hpa.Spec.Metrics
	if len(specs) == 0 {
		// The API server's default: 80% of the cpu requests.
		specs = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(80))},
		}}}
	}
	var (
		replicas     int32
		metric       string
		statuses     []autoscalingv2.MetricStatus
		invalid      int
		firstErr     error
		firstInvalid *autoscalingv2.HorizontalPodAutoscalerCondition
	)
	for _, spec := range specs {
		proposal, name, status, cond, err := a.computeReplicasForMetric(spec, current, pods)
		if err != nil {
			if invalid == 0 {
				firstErr, firstInvalid = err, cond
			}
			invalid++
			continue
		}
		statuses = append(statuses, status)
		a.targets = append(a.targets, spec.Resource.Target)
		if replicas == 0 || proposal > replicas {
			replicas, metric = proposal, name
		}
	}
	if firstErr != nil {
		firstErr = fmt.Errorf("invalid metrics (%v invalid out of %v), first error is: %v", invalid, len(specs), firstErr)
	}
	// All metrics failed, or some did and the rest would scale down: do
	// nothing rather than act on partial information.
	if invalid >= len(specs) || (invalid > 0 && replicas < current) {
		a.setCondition(firstInvalid.Type, firstInvalid.Status, firstInvalid.Reason, firstInvalid.Message)
		return -1, "", statuses, firstErr
	}
	a.setCondition(autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", fmt.Sprintf("the HPA was able to successfully calculate a replica count from %s", metric))
	return replicas, metric, statuses, firstErr
}

// computeReplicasForMetric computes one metric's proposal and status, or
// the ScalingActive condition explaining why it cannot.
func (a *autoscaler) computeReplicasForMetric(spec autoscalingv2.MetricSpec, current int32, pods []PodMetrics) (int32, string, autoscalingv2.MetricStatus, *autoscalingv2.HorizontalPodAutoscalerCondition, error) {
	unable := func(reason string, err error) *autoscalingv2.HorizontalPodAutoscalerCondition {
		a.event(controller.EventWarning, reason, err.Error())
		return &autoscalingv2.HorizontalPodAutoscalerCondition{
			Type: autoscalingv2.ScalingActive, Status: corev1.ConditionFalse, Reason: reason,
			Message: fmt.Sprintf("the HPA was unable to compute the replica count: %v", err),
		}
	}
	unsupported := func(reason string) (int32, string, autoscalingv2.MetricStatus, *autoscalingv2.HorizontalPodAutoscalerCondition, error) {
		err := fmt.Errorf("metric source type %q is not supported by clusterctl (only Resource cpu and memory)", spec.Type)
		return 0, "", autoscalingv2.MetricStatus{}, unable(reason, err), err
	}
	switch spec.Type {
	case autoscalingv2.ResourceMetricSourceType:
	case autoscalingv2.PodsMetricSourceType:
		return unsupported("FailedGetPodsMetric")
	case autoscalingv2.ObjectMetricSourceType:
		return unsupported("FailedGetObjectMetric")
	case autoscalingv2.ExternalMetricSourceType:
		return unsupported("FailedGetExternalMetric")
	case autoscalingv2.ContainerResourceMetricSourceType:
		return unsupported("FailedGetContainerResourceMetric")
	default:
		err := fmt.Errorf("unknown metric source type %q", spec.Type)
		return 0, "", autoscalingv2.MetricStatus{}, unable("InvalidMetricSourceType", err), err
	}
	if spec.Resource == nil {
		err := errors.New("failed to get resource metric value: resource metric source is missing")
		return 0, "", autoscalingv2.MetricStatus{}, unable("FailedGetResourceMetric", err), err
	}
	replicas, name, value, err := a.computeStatusForResourceMetric(current, spec.Resource, pods)
	if err != nil {
		err = fmt.Errorf("failed to get %s resource metric value: %v", spec.Resource.Name, err)
		return 0, "", autoscalingv2.MetricStatus{}, unable("FailedGetResourceMetric", err), err
	}
	status := autoscalingv2.MetricStatus{
		Type:     autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricStatus{Name: spec.Resource.Name, Current: value},
	}
	return replicas, name, status, nil, nil
}

// computeStatusForResourceMetric is computeStatusForResourceMetricGeneric.
func (a *autoscaler) computeStatusForResourceMetric(current int32, src *autoscalingv2.ResourceMetricSource, pods []PodMetrics) (int32, string, autoscalingv2.MetricValueStatus, error) {
	name := src.Name
	if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
		return 0, "", autoscalingv2.MetricValueStatus{}, fmt.Errorf("failed to get %s usage: unable to get metrics for resource %s: clusterctl observes cpu and memory only", name, name)
	}
	tol := a.tolerances()
	target := src.Target
	if target.AverageValue != nil {
		replicas, usage, err := a.calc.rawResourceReplicas(current, target.AverageValue.MilliValue(), name, tol, pods)
		if err != nil {
			return 0, "", autoscalingv2.MetricValueStatus{}, fmt.Errorf("failed to get %s usage: %v", name, err)
		}
		return replicas, fmt.Sprintf("%s resource", name), autoscalingv2.MetricValueStatus{
			AverageValue: resource.NewMilliQuantity(usage, resource.DecimalSI),
		}, nil
	}
	if target.AverageUtilization == nil {
		return 0, "", autoscalingv2.MetricValueStatus{}, errors.New("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set")
	}
	replicas, utilization, raw, err := a.calc.resourceReplicas(current, *target.AverageUtilization, name, tol, pods)
	if err != nil {
		return 0, "", autoscalingv2.MetricValueStatus{}, fmt.Errorf("failed to get %s utilization: %v", name, err)
	}
	return replicas, fmt.Sprintf("%s resource utilization (percentage of request)", name), autoscalingv2.MetricValueStatus{
		AverageUtilization: &utilization,
		AverageValue:       resource.NewMilliQuantity(raw, resource.DecimalSI),
	}, nil
}

// tolerances are the configured tolerance, overridden per direction by the
// behavior's tolerance (HPAConfigurableTolerance).
func (a *autoscaler) tolerances() tolerances {
	t := tolerances{down: a.cfg.Tolerance, up: a.cfg.Tolerance}
	if b := a.hpa.Spec.Behavior; b != nil {
		if b.ScaleDown != nil && b.ScaleDown.Tolerance != nil {
			t.down = b.ScaleDown.Tolerance.AsApproximateFloat64()
		}
		if b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
			t.up = b.ScaleUp.Tolerance.AsApproximateFloat64()
		}
	}
	return t
}

// setStatus rewrites the status: replicas, metrics, last scale time. The
// stored metrics stay while the fresh ones are within the tolerance of
// them (Recommend refreshes them if the HPA changes anyway).
func (a *autoscaler) setStatus(current, desired int32, statuses []autoscalingv2.MetricStatus, rescale bool) {
	st := &a.hpa.Status
	st.CurrentReplicas = current
	st.DesiredReplicas = desired
	if metricsClose(st.CurrentMetrics, statuses, a.targets, a.tolerances()) {
		a.freshMetrics = &statuses
	} else {
		st.CurrentMetrics = statuses
	}
	if rescale {
		now := metav1.NewTime(a.now)
		st.LastScaleTime = &now
	}
}

// setCondition sets a condition, moving its transition time only when its
// status changes.
func (a *autoscaler) setCondition(t autoscalingv2.HorizontalPodAutoscalerConditionType, status corev1.ConditionStatus, reason, message string) {
	list := a.hpa.Status.Conditions
	var c *autoscalingv2.HorizontalPodAutoscalerCondition
	for i := range list {
		if list[i].Type == t {
			c = &list[i]
			break
		}
	}
	if c == nil {
		a.hpa.Status.Conditions = append(a.hpa.Status.Conditions, autoscalingv2.HorizontalPodAutoscalerCondition{Type: t})
		c = &a.hpa.Status.Conditions[len(a.hpa.Status.Conditions)-1]
	}
	if c.Status != status {
		c.LastTransitionTime = metav1.NewTime(a.now)
	}
	c.Status, c.Reason, c.Message = status, reason, message
}

// metricsClose reports whether the fresh metric statuses are those stored,
// each within the tolerance of its target: |fresh − stored| ≤ tolerance ×
// target, the band within which Kubernetes does not scale either.
func metricsClose(stored, fresh []autoscalingv2.MetricStatus, targets []autoscalingv2.MetricTarget, tol tolerances) bool {
	if len(stored) != len(fresh) || len(fresh) != len(targets) {
		return false
	}
	for i, f := range fresh {
		s := stored[i]
		if s.Type != f.Type || s.Resource == nil || f.Resource == nil || s.Resource.Name != f.Resource.Name {
			return false
		}
		sc, fc, t := s.Resource.Current, f.Resource.Current, targets[i]
		switch {
		case t.AverageValue != nil:
			if sc.AverageUtilization != nil || sc.AverageValue == nil || fc.AverageValue == nil ||
				!tol.close(sc.AverageValue.MilliValue(), fc.AverageValue.MilliValue(), t.AverageValue.MilliValue()) {
				return false
			}
		case t.AverageUtilization != nil:
			if sc.AverageUtilization == nil || fc.AverageUtilization == nil || sc.AverageValue == nil ||
				!tol.close(int64(*sc.AverageUtilization), int64(*fc.AverageUtilization), int64(*t.AverageUtilization)) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }
