// Package autoscale is the cluster loop's HorizontalPodAutoscaler controller
// (autoscaling/v2): Recommend is a pure function of the HPA, its scale
// target's replicas and pod selector, the pods' resource usage and
// requests, and the time.
//
// It follows kube-controller-manager's horizontal-pod-autoscaler controller
// (reconcileAutoscaler and its replica calculator) for Resource metrics cpu
// and memory, with targets Utilization (percent of the pods' requests) and
// AverageValue:
//
//   - ratio = usage / target; within the tolerance (0.1 by default, or the
//     behavior's tolerance) nothing changes; otherwise desired =
//     ceil(ratio × pods counted).
//   - pods without a sample ("missing") count as using 100% of their
//     request (or the target, if higher) when scaling down and 0% when
//     scaling up; pending pods, and for cpu pods that are not ready or still
//     starting (5 min cpu initialization period, 30 s initial readiness
//     delay), are left out, and count as using 0% on a scale-up; failed and
//     deleting pods are ignored. A recomputed ratio that would change the
//     direction, or falls within the tolerance, keeps the current count.
//   - several metrics: the largest proposal wins; a metric that fails is
//     tolerated unless all fail or the others would scale down.
//   - minReplicas (default 1) and maxReplicas; a target at 0 replicas is
//     not scaled (ScalingDisabled).
//   - without spec.behavior, Kubernetes' classic rules: the highest
//     recommendation of the last 5 min (DownscaleStabilizationWindow) for
//     scale-down, and at most max(2 × current, 4) for scale-up. With it:
//     stabilizationWindowSeconds (defaults 0 up, 300 down), policies Pods
//     and Percent over periodSeconds, selectPolicy Max, Min or Disabled, and
//     the default policies (up: max of 4 pods and 100% per 15 s; down: 100%
//     per 15 s).
//   - status currentReplicas, desiredReplicas, currentMetrics, lastScaleTime
//     and the conditions AbleToScale, ScalingActive and ScalingLimited with
//     Kubernetes' reasons and messages; the events SuccessfulRescale,
//     FailedGet*Metric, FailedComputeMetricsReplicas.
//
// Kubernetes keeps the recommendation history and the scale events in the
// controller's memory. clusterctl has no process that outlives a pass, so
// they live in the HPA itself, in the annotation HistoryAnnotation: compact
// JSON {"c":[since, replicas],"e":[[until, replicas],...],"u":[[unix
// seconds, pods added],...],"d":[[unix seconds, pods removed],...]}.
// Kubernetes records one timestamped recommendation per sync (every 15 s);
// here every write of the HPA is a change of the inventory, so a
// recommendation is recorded only when it changes: "c" is the one in force
// and "e" the earlier ones, each in force until the pass that replaced it.
// A stabilization window takes the highest (scale-down) or lowest (scale-up)
// of this pass's recommendation and those in force at some time within it.
// That is Kubernetes' rule with each recommendation counted until the next
// sync rather than at its own: where Kubernetes' last sync of a replaced
// recommendation is already out of the window but the pass that replaced
// it is not, the old recommendation still holds, i.e. at most one loop
// interval longer (a scale-down after a 300 s window with passes a minute
// apart comes one pass later). Keeping Kubernetes' exact per-sync times
// would mean writing the HPA at every pass. A recommendation is brought to
// within one of minReplicas and maxReplicas before it is stabilized and
// recorded (every count beyond a bound ends at the same replicas and
// ScalingLimited condition), so an HPA pinned at a bound by a wish that
// wanders (13, 15, 14 with at most 10) is steady too; only AbleToScale's
// reason can then differ from Kubernetes' (ReadyForNewScale where it may
// say ScaleDownStabilized). Entries no window contains are
// dropped when the HPA is stored anyway. The per-pass format written
// before ({"r":[[unix seconds, replicas],...]}) is read, each sample
// counted at its own time, and rewritten at the next pass. A missing or
// unreadable annotation is the controller's state after a restart: the
// history starts again from the current replica count. Without
// spec.behavior Kubernetes stores no scale events; here the events of the
// current second are kept, so that a second pass in the same second (the
// same Kubernetes sync) continues its scale-up step instead of taking
// another.
//
// Kubernetes writes the status at every sync. Here status.currentMetrics
// keep their stored values while the fresh ones stay within the tolerance
// of them (|fresh − stored| ≤ tolerance × target, the band within which
// the HPA does not scale either), and are refreshed whenever the HPA is
// stored for another reason; conditions move their lastTransitionTime only
// when their status changes, and lastScaleTime only on a rescale. A
// steady HPA, its usage fluctuating within the tolerance, is therefore not
// changed by a pass, and Result.Changed is false.
//
// Times are kept to the second, as the API serializes them. Other metric
// source types (Pods, Object, External, ContainerResource) are reported as
// unsupported through the ScalingActive condition.
package autoscale
