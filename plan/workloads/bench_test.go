package workloads

import (
	"fmt"
	"testing"
)

// BenchmarkReconcile1000Deployments runs one pass over 1000 Deployments of
// 3 replicas each: "steady" is the every-minute cron case (all rolled out
// and ready, nothing to do), "create" the first pass after applying them
// (1000 ReplicaSets and 3000 pods to create), "rollout" the first pass
// after changing every template.
func BenchmarkReconcile1000Deployments(b *testing.B) {
	c := newCluster(&testing.T{})
	for i := range 1000 {
		c.add(newDeployment(fmt.Sprintf("app-%04d", i), 3))
	}
	create := c.input()
	c.settle()
	c.readyAll()
	c.settle()
	steady := c.input()
	for _, d := range values(c.deployments) {
		c.editDeployment(d.Name, image("nginx:2.0"))
	}
	rollout := c.input()

	for _, bc := range []struct {
		name string
		in   Input
	}{{"steady", steady}, {"create", create}, {"rollout", rollout}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Reconcile(bc.in)
			}
		})
	}
}
