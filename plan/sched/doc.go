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
// Pipeline, per unbound pod, one at a time, each placement updating the
// usage the next pod sees:
//
//	PreEnqueue  SchedulingGates                       pod not ready to be scheduled
//	PreFilter   Unsupported                           pod asks for something we do not implement
//	Filter      NodeUnschedulable, NodeName, NodeReady, TaintToleration,
//	            NodeSelector, NodeAffinity, NodePorts, NodeResourcesFit
//	Score       TaintToleration ×3, NodeAffinity ×2, LeastAllocated ×1, BalancedAllocation ×1
//	Bind        the highest total score; ties go to the lowest node name
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
//   - Inter-pod (anti-)affinity, topology spread constraints, dynamic
//     resource claims, scheduling groups and other schedulers' pods are not
//     implemented and are reported as unschedulable rather than ignored.
//   - Toleration operators Lt and Gt (alpha, off by default in Kubernetes)
//     never match. ephemeral-storage is not accounted (nodes report no
//     allocatable for it; lowering refuses it).
//
// The package is pure: no I/O, no clock, no randomness.
package sched
