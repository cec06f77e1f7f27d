// Package sched is clusterctl's scheduler: a pure filter → score → bind
// pipeline of small plugins, modelled on kube-scheduler's framework and its
// default plugins, with a named reason for every node that was rejected.
//
// Schedule takes the pods (bound and unbound) and the nodes and returns the
// bindings of the unbound pods that fit and, for the others, why not, in
// kube-scheduler's words:
//
//	0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 2 Insufficient cpu.
//
// ScheduleCluster does the same with the namespaces' labels, for the
// namespaceSelector of pod (anti-)affinity terms.
//
// Pipeline, per unbound pod, one at a time, each placement updating the
// usage and the pods the next pod sees:
//
//	PreEnqueue  SchedulingGates                       pod not ready to be scheduled
//	PreFilter   Unsupported                           pod asks for something we do not implement
//	            PodTopologySpread, InterPodAffinity   count matching pods per topology domain over
//	                                                  all nodes; reject invalid constraints
//	Filter      NodeUnschedulable, NodeName, NodeReady, TaintToleration,
//	            NodeSelector, NodeAffinity, NodePorts, NodeResourcesFit,
//	            PodTopologySpread, InterPodAffinity
//	PreScore    PodTopologySpread, InterPodAffinity   count matching pods and sum term weights
//	                                                  per topology domain
//	Score       TaintToleration ×3, NodeAffinity ×2, LeastAllocated ×1,
//	            PodTopologySpread ×2, InterPodAffinity ×2, BalancedAllocation ×1
//	Bind        the highest total score; ties go to the lowest node name
//
// With the default plugins, pods whose scheduling-relevant fields are
// equal (the replicas of a ReplicaSet) form a class whose per-node filter
// and score results are kept between its pods and updated only for the
// nodes that placements changed; the best node comes from a segment tree
// (or, for pods with topology spread, from a scan with incrementally kept
// matching-pod counts). The result is the same as filtering and scoring
// every node for every pod, which the general path still does for pods
// with or selected by inter-pod affinity terms, pods requesting extended
// resources and pods no node fits (to give their reasons); a property test
// checks that both paths agree. 150,000 pods place on 5,000 nodes in a few
// seconds of CPU (BenchmarkSchedule150kPods5kNodes).
//
// Pods bound before the call and pods placed earlier in it are the
// "existing" pods of inter-pod affinity and topology spread: a pod's
// required anti-affinity keeps later pods it selects out of its topology
// domain (kube-scheduler's symmetric check), and a pod with required
// affinity to its own kind may go first, anywhere with the topology keys.
// As in kube-scheduler, pods being deleted count for inter-pod affinity but
// not for topology spread.
//
// Evictions lists the bound pods that NoExecute taints drive off their
// nodes at a given time, as Kubernetes' taint eviction controller would,
// except that a toleration's seconds run from the taint's timeAdded (the
// controller counts from when it saw the taint) and per taint (the
// controller takes the shortest over all the node's taints).
//
// Differences from kube-scheduler, on purpose:
//   - Deterministic: the same input gives the same output. Pods are placed in
//     order of creationTimestamp, then namespace/name (priority and
//     preemption are out of scope), and ties between equally scored nodes go
//     to the node whose name sorts first; kube-scheduler picks one of the
//     tied nodes at random.
//   - Every node is filtered and scored; kube-scheduler stops after
//     percentageOfNodesToScore feasible nodes in large clusters.
//   - Pod keys and node names must be unique.
//   - Node readiness is a filter (NodeReady) instead of the
//     node.kubernetes.io/not-ready and .../unreachable NoSchedule taints the
//     node lifecycle controller would add; tolerating those taints still lets
//     a pod through, as it would in Kubernetes.
//   - The taint reason names the taint ({key: value}) like kube-scheduler
//     before v1.35, which dropped it for multi-tenant clusters; a
//     clusterctl cluster has one owner and the detail is what they need.
//   - Dynamic resource claims, scheduling groups and other schedulers' pods
//     are not implemented and are reported as unschedulable rather than
//     ignored.
//   - There is no API server: the scheduler merges matchLabelKeys (and
//     mismatchLabelKeys) into the label selectors itself, rejects pods with
//     invalid (anti-)affinity terms or spread constraints, treats each
//     namespace as labelled kubernetes.io/metadata.name, and Evictions
//     applies the DefaultTolerationSeconds tolerations.
//   - PodTopologySpread has no system default constraints: pods without
//     topologySpreadConstraints are not spread by it. Its nodeTaintsPolicy
//     Honor counts the taints implied by cordoned, not ready and
//     unreachable nodes. InterPodAffinity uses kube-scheduler's default
//     arguments (hardPodAffinityWeight 1, preferred terms of existing pods
//     honoured).
//   - Toleration operators Lt and Gt (alpha, off by default in Kubernetes)
//     never match. ephemeral-storage is not accounted (nodes report no
//     allocatable for it; lowering refuses it).
//
// The package is pure: no I/O, no clock, no randomness.
package sched
