package reconcile

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/plan"
)

// The built-in local-path provisioner: a claim of the default class (no
// storageClassName), of the class "local-path", or of a StorageClass whose
// provisioner is LocalPathProvisioner, is bound to the node that first runs
// a pod using it, and becomes a directory there (plan.LocalVolumePath). The
// claim then pins every later pod to that node.
const (
	LocalPathProvisioner = "clusterctl.dev/local-path"
	LocalPathClass       = "local-path"
)

// claims returns the stored claims keyed by "ns/name".
func (c *Cluster) claims() map[string]*corev1.PersistentVolumeClaim {
	out := map[string]*corev1.PersistentVolumeClaim{}
	for _, pvc := range Typed[*corev1.PersistentVolumeClaim](c, "PersistentVolumeClaim") {
		out[Key(pvc.Namespace, pvc.Name)] = pvc
	}
	return out
}

// provisionable says whether the local-path provisioner serves the claim,
// and if not, why.
func (c *Cluster) provisionable(pvc *corev1.PersistentVolumeClaim) (bool, string) {
	class := ""
	if pvc.Spec.StorageClassName != nil {
		class = *pvc.Spec.StorageClassName
	}
	if class == "" || class == LocalPathClass {
		return true, ""
	}
	sc, ok := c.Workloads["StorageClass"][Key("", class)].(*storagev1.StorageClass)
	switch {
	case !ok:
		return false, fmt.Sprintf("storageclass.storage.k8s.io %q not found", class)
	case sc.Provisioner != LocalPathProvisioner:
		return false, fmt.Sprintf("waiting for a volume to be created by the external provisioner %q, which clusterctl does not have (it provisions %q)", sc.Provisioner, LocalPathProvisioner)
	}
	return true, ""
}

// schedulingPods are the pods as the scheduler should see them: an unbound
// pod using a bound claim gets the claim's node as a node selector (on a
// copy); a pod whose claim is missing or cannot be provisioned is held back
// with the reason.
func (c *Cluster) schedulingPods() ([]*corev1.Pod, map[string]string) {
	claims := c.claims()
	held := map[string]string{}
	out := make([]*corev1.Pod, 0, len(c.Pods))
	for _, p := range c.Pods {
		if p.Spec.NodeName != "" {
			out = append(out, p)
			continue
		}
		pinned, why := "", ""
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			pvc, ok := claims[Key(p.Namespace, v.PersistentVolumeClaim.ClaimName)]
			if !ok {
				why = fmt.Sprintf("persistentvolumeclaim %q not found", v.PersistentVolumeClaim.ClaimName)
				break
			}
			if node := pvc.Annotations[plan.SelectedNodeAnnotation]; node != "" {
				if pinned != "" && pinned != node {
					why = fmt.Sprintf("its claims are bound to different nodes (%s and %s)", pinned, node)
					break
				}
				pinned = node
				continue
			}
			if ok, reason := c.provisionable(pvc); !ok {
				why = fmt.Sprintf("pod has unbound immediate PersistentVolumeClaims: %s: %s", pvc.Name, reason)
				break
			}
		}
		switch {
		case why != "":
			held[Key(p.Namespace, p.Name)] = why
			continue
		case pinned != "":
			cp := p.DeepCopy()
			if cp.Spec.NodeSelector == nil {
				cp.Spec.NodeSelector = map[string]string{}
			}
			cp.Spec.NodeSelector["kubernetes.io/hostname"] = pinned
			out = append(out, cp)
		default:
			out = append(out, p)
		}
	}
	return out, held
}

// bindClaims binds the unbound claims of newly bound pods to their node:
// the claim gets the selected-node annotation, a volume name and phase
// Bound, and a PersistentVolume pvc-<uid> records the directory and its
// node affinity, as the local-path provisioner of Kubernetes does.
func (c *Cluster) bindClaims(inv *inventory.Inventory, bindings map[string]string, now metav1.Time, dry bool) error {
	claims := c.claims()
	for _, p := range c.Pods {
		node, ok := bindings[Key(p.Namespace, p.Name)]
		if !ok {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			pvc, ok := claims[Key(p.Namespace, v.PersistentVolumeClaim.ClaimName)]
			if !ok || pvc.Annotations[plan.SelectedNodeAnnotation] != "" {
				continue
			}
			pvc = pvc.DeepCopy()
			if pvc.Annotations == nil {
				pvc.Annotations = map[string]string{}
			}
			pvc.Annotations[plan.SelectedNodeAnnotation] = node
			pvc.Annotations["pv.kubernetes.io/provisioned-by"] = LocalPathProvisioner
			pvName := "pvc-" + string(pvc.UID)
			pvc.Spec.VolumeName = pvName
			pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: pvc.Spec.AccessModes,
				Capacity: corev1.ResourceList{corev1.ResourceStorage: storageRequest(pvc)}}
			pvc.APIVersion, pvc.Kind = "v1", "PersistentVolumeClaim"
			class := LocalPathClass
			if pvc.Spec.StorageClassName != nil && *pvc.Spec.StorageClassName != "" {
				class = *pvc.Spec.StorageClassName
			}
			pv := &corev1.PersistentVolume{
				TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
				ObjectMeta: metav1.ObjectMeta{Name: pvName, UID: types.UID(pvName), CreationTimestamp: now,
					Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": LocalPathProvisioner}},
				Spec: corev1.PersistentVolumeSpec{
					Capacity:                      corev1.ResourceList{corev1.ResourceStorage: storageRequest(pvc)},
					AccessModes:                   pvc.Spec.AccessModes,
					PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
					StorageClassName:              class,
					VolumeMode:                    pvc.Spec.VolumeMode,
					ClaimRef: &corev1.ObjectReference{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: pvc.Namespace,
						Name: pvc.Name, UID: pvc.UID},
					PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
						Path: plan.LocalVolumePath(pvc.Namespace, pvc.Name, string(pvc.UID))}},
					NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
					}}}},
				},
				Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
			}
			c.putWorkload("PersistentVolumeClaim", Key(pvc.Namespace, pvc.Name), pvc)
			c.putWorkload("PersistentVolume", Key("", pv.Name), pv)
			claims[Key(pvc.Namespace, pvc.Name)] = pvc
			if dry {
				continue
			}
			for _, o := range []manifest.Object{
				{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: pvc.Namespace, Name: pvc.Name, Obj: pvc},
				{APIVersion: "v1", Kind: "PersistentVolume", Name: pv.Name, Obj: pv},
			} {
				if err := Store(inv, o); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func storageRequest(pvc *corev1.PersistentVolumeClaim) resource.Quantity {
	return pvc.Spec.Resources.Requests[corev1.ResourceStorage]
}
