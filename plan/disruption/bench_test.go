package disruption

import (
	"fmt"
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// BenchmarkDrainPlan evaluates 100 budgets over 10,000 pods of 100
// Deployments and asks about the 100 pods of one node.
func BenchmarkDrainPlan(b *testing.B) {
	var objects []runtime.Object
	var pdbs []*policyv1.PodDisruptionBudget
	var all = pods("ns", "x", 0)
	for d := range 100 {
		name := fmt.Sprintf("app%d", d)
		objects = append(objects, deployment("ns", name, 100), replicaSet("ns", name+"-rs", 100, name))
		pdbs = append(pdbs, mkPDB("ns", name, maxUnavailable(intstr.FromString("10%")),
			selector(&metav1.LabelSelector{MatchLabels: map[string]string{"app": name}})))
		all = append(all, pods("ns", name, 100, labelled("app", name), ownedBy("ReplicaSet", name+"-rs"))...)
	}
	scales := ScalesFrom(objects)
	b.ResetTimer()
	for range b.N {
		e := Evaluate(pdbs, all, scales)
		for i := 0; i < len(all); i += 100 {
			e.CanEvict(all[i])
		}
	}
}
