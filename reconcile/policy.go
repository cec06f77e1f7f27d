package reconcile

import (
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/plan/admission"
	"github.com/clusterctl/clusterctl/plan/controller"
	"github.com/clusterctl/clusterctl/plan/disruption"
)

// policyStatus computes the status of every ResourceQuota (what its
// namespace uses, as the resource quota controller does) and
// PodDisruptionBudget (healthy pods and disruptions allowed, as the
// disruption controller does) from the stored objects and the pods with
// their observed status, and stores those that changed.
func policyStatus(inv *inventory.Inventory, cl *Cluster, in ControllerInput, dry bool) (controller.Changes, error) {
	quotas := Typed[*corev1.ResourceQuota](cl, "ResourceQuota")
	pdbs := Typed[*policyv1.PodDisruptionBudget](cl, "PodDisruptionBudget")
	if len(quotas) == 0 && len(pdbs) == 0 {
		return controller.Changes{}, nil
	}
	pods := cl.PodsWithStatus(in.Observed)
	all := cl.All(pods)
	var put []controller.Object
	for _, q := range quotas {
		st := admission.Status(q, all)
		if apiequality.Semantic.DeepEqual(st, q.Status) {
			continue
		}
		q = q.DeepCopy()
		q.APIVersion, q.Kind = "v1", "ResourceQuota"
		q.Status = st
		put = append(put, q)
	}
	if len(pdbs) > 0 {
		ev := disruption.Evaluate(pdbs, pods, disruption.ScalesFrom(all))
		for _, b := range ev.Budgets() {
			st := b.Status(in.Now)
			if apiequality.Semantic.DeepEqual(st, b.PDB.Status) {
				continue
			}
			p := b.PDB.DeepCopy()
			p.APIVersion, p.Kind = "policy/v1", "PodDisruptionBudget"
			p.Status = st
			put = append(put, p)
		}
	}
	ch := controller.Changes{Put: put}
	if len(put) == 0 {
		return ch, nil
	}
	return ch, cl.apply(inv, ch, dry)
}
