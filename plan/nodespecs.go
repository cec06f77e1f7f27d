package plan

import (
	"cmp"
	"slices"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// NodeInput is what NodeSpecs needs to know about one node.
type NodeInput struct {
	Name    string
	PodCIDR string // this node's slice of the cluster pod CIDR (AllocatePodCIDRs)
	// Address is the node's address. NodeSpec does not carry it yet; it is
	// for routes to the other nodes' pod CIDRs (host-gw) when nodeapi grows them.
	Address string
}

// NodeSpecs assembles one NodeSpec per node: the cluster, the node's pod
// CIDR, the fencing generation and writer, the time (passed in) and the
// pods bound to it, sorted by namespace/name. A node without pods gets an
// empty list. bindings maps a pod key ("namespace/name") to its node; pods
// without a binding, or bound to a node not listed, go nowhere.
//
// The specs share the pods' data with the input (neither is modified).
// Whether a node needs a new generation is SpecsEqual's question: call
// NodeSpecs with the held generation, compare, and bump where they differ.
func NodeSpecs(cluster nodeapi.ClusterInfo, nodes []NodeInput, generation int64, writer string, now time.Time,
	pods []nodeapi.PodSpec, bindings map[string]string) map[string]nodeapi.NodeSpec {
	out := make(map[string]nodeapi.NodeSpec, len(nodes))
	for _, n := range nodes {
		out[n.Name] = nodeapi.NodeSpec{
			APIVersion: nodeapi.APIVersion,
			NodeName:   n.Name,
			Cluster:    cluster,
			PodCIDR:    n.PodCIDR,
			Generation: generation,
			Writer:     writer,
			WrittenAt:  now,
			Pods:       []nodeapi.PodSpec{},
		}
	}
	for _, p := range pods {
		node, ok := bindings[p.Key()]
		if !ok {
			continue
		}
		spec, ok := out[node]
		if !ok {
			continue
		}
		spec.Pods = append(spec.Pods, p)
		out[node] = spec
	}
	for _, spec := range out {
		// Stable: duplicates keep their input order (and fail Validate).
		slices.SortStableFunc(spec.Pods, func(a, b nodeapi.PodSpec) int {
			return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
		})
	}
	return out
}

// SpecsEqual reports whether two specs ask the node for the same thing,
// ignoring who wrote them and when (nodeapi.SameContent). The generation is
// part of the content: compare a freshly assembled spec carrying the held
// generation with the held spec to decide whether to bump it.
func SpecsEqual(a, b nodeapi.NodeSpec) bool { return nodeapi.SameContent(&a, &b) }
