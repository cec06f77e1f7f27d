// Package disruption evaluates PodDisruptionBudgets the way Kubernetes'
// disruption controller and eviction API do, as pure functions, for
// `clusterctl drain`: Evaluate computes every budget's status from the
// pods and their controllers' scales, and CanEvict answers, pod by pod,
// whether an eviction is allowed now, counting the evictions it allows so
// that several planned in one pass never take a budget below its minimum.
//
// Budgets follow policy/v1: an empty selector matches every pod of the
// namespace, a missing one none. The expected pod count, desired and
// current healthy counts and disruptions allowed are the controller's
// (getExpectedPodCount, countHealthyPods, updatePdbStatus): an integer
// minAvailable is compared with the matching pods; a percentage
// minAvailable or a maxUnavailable is resolved against the sum of the
// matching pods' controllers' replicas, rounding up in both cases
// (intstr.GetScaledValueFromIntOrPercent with roundUp true), so
// minAvailable 50% of 3 needs 2 healthy pods and maxUnavailable 50% of 3
// lets 2 go. Pods without a controller add nothing to that sum; a
// controller without a scale (DaemonSet, Job) or one that cannot be found
// makes the budget allow nothing (the controller's fail-safe), with the
// reason in Budget.SyncError. Healthy means ready (the Ready condition)
// and not being deleted.
//
// Evictions follow the eviction subresource: Pending, Succeeded and Failed
// pods and pods being deleted are evicted without looking at budgets; a
// pod with more than one budget cannot be evicted; an unready pod may go
// without using the budget under the AlwaysAllow unhealthy-pod policy, or
// under IfHealthyBudget (the default) while the budget is healthy. Refusals
// carry Kubernetes' message, naming the budget.
//
// Differences, on purpose: there is no DisruptedPods map and no time (an
// allowed eviction is subtracted from the evaluation at once: the pods are
// deleted from the store in the same pass, and the next pass evaluates
// afresh), and an allowed eviction of a ready pod also lowers
// CurrentHealthy, which the controller does only at its next sync.
//
// The package is pure: no I/O, no clock (Budget.Status takes the time).
package disruption
