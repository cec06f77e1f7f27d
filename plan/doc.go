// Package plan is clusterctl's pure core: Desired + Observed + now → Plan.
//
// Everything here is a deterministic function of its arguments: no I/O, no
// network, no clock (the current time is passed in), no randomness. The
// controllers, the scheduler's inputs, the allocators and the endpoint
// computation live here so that they can be tested exhaustively with table
// and property tests and so that `--dry-run` shows exactly what would be done.
// purity_test.go enforces this for plan and the other pure packages.
//
// What is here so far:
//
//   - AllocatePodCIDRs gives every node its slice of the cluster pod CIDR.
//   - LowerPod turns a Kubernetes Pod bound to a node into the
//     nodeapi.PodSpec agentlet runs, resolving ConfigMaps, Secrets, the
//     downward API, $(VAR) references, named ports, defaults and registry
//     credentials with kubelet's semantics, and refusing, by field, what
//     clusterctl cannot honour.
//   - NodeSpecs assembles one nodeapi.NodeSpec per node from the lowered
//     pods and their bindings; SpecsEqual decides whether a node needs a new
//     generation.
//
// The scheduler (filter → score → bind) is the subpackage sched.
package plan
