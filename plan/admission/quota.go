package admission

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
)

// Usage is what one object charges to the ResourceQuotas of its namespace,
// as Kubernetes' quota evaluators compute it:
//
//   - a Pod not in a terminal phase (Succeeded, Failed): pods and count/pods
//     1; from its effective requests (PodRequests) cpu and requests.cpu,
//     memory and requests.memory, ephemeral-storage and
//     requests.ephemeral-storage, hugepages-<size> and
//     requests.hugepages-<size>, requests.<extended resource>; from its
//     effective limits (PodLimits) limits.cpu, limits.memory and
//     limits.ephemeral-storage. A resource the pod neither requests nor
//     limits is absent. A terminal pod charges nothing.
//   - a Service: services and count/services 1; services.nodeports the
//     number of its ports for a NodePort service, else 0;
//     services.loadbalancers 0.
//   - a PersistentVolumeClaim: persistentvolumeclaims and
//     count/persistentvolumeclaims 1, requests.storage its storage request
//     rounded up to a whole byte, and with a storage class also
//     <class>.storageclass.storage.k8s.io/requests.storage and
//     .../persistentvolumeclaims.
//   - any other namespaced kind clusterctl stores: count/<resource>.<group>
//     (count/<resource> in the core group) 1, and for ConfigMaps, Secrets,
//     ReplicationControllers and ResourceQuotas their plain name too
//     (configmaps, ...).
func Usage(obj runtime.Object) corev1.ResourceList {
	switch o := obj.(type) {
	case *corev1.Pod:
		return podUsage(o)
	case *corev1.Service:
		u := corev1.ResourceList{
			corev1.ResourceServices:              count(1),
			"count/services":                     count(1),
			corev1.ResourceServicesLoadBalancers: count(0),
			corev1.ResourceServicesNodePorts:     count(0),
		}
		if o.Spec.Type == corev1.ServiceTypeNodePort {
			u[corev1.ResourceServicesNodePorts] = count(int64(len(o.Spec.Ports)))
		}
		return u
	case *corev1.PersistentVolumeClaim:
		return claimUsage(o)
	}
	r, ok := apiResources()[kindOf(obj)]
	if !ok {
		return corev1.ResourceList{}
	}
	u := corev1.ResourceList{r.countName(): count(1)}
	for _, legacy := range legacyCounts() {
		if r.group == "" && r.resource == legacy {
			u[corev1.ResourceName(legacy)] = count(1)
		}
	}
	return u
}

// terminal reports whether a pod has finished: it no longer counts.
func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func podUsage(pod *corev1.Pod) corev1.ResourceList {
	if terminal(pod) {
		return corev1.ResourceList{}
	}
	u := computeUsage(PodRequests(pod), PodLimits(pod))
	u["count/pods"] = count(1)
	return u
}

// computeUsage is the pod evaluator's podComputeUsageHelper: the quota
// resources some requests and limits charge, pods included.
func computeUsage(requests, limits corev1.ResourceList) corev1.ResourceList {
	u := corev1.ResourceList{corev1.ResourcePods: count(1)}
	for _, r := range []struct{ name, request, limit corev1.ResourceName }{
		{corev1.ResourceCPU, corev1.ResourceRequestsCPU, corev1.ResourceLimitsCPU},
		{corev1.ResourceMemory, corev1.ResourceRequestsMemory, corev1.ResourceLimitsMemory},
		{corev1.ResourceEphemeralStorage, corev1.ResourceRequestsEphemeralStorage, corev1.ResourceLimitsEphemeralStorage},
	} {
		if q, ok := requests[r.name]; ok {
			u[r.name] = q.DeepCopy()
			u[r.request] = q.DeepCopy()
		}
		if q, ok := limits[r.name]; ok {
			u[r.limit] = q.DeepCopy()
		}
	}
	for name, q := range requests {
		switch {
		case strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix):
			u[name] = q.DeepCopy()
			u[corev1.DefaultResourceRequestsPrefix+name] = q.DeepCopy()
		case isExtendedResource(name):
			u[corev1.DefaultResourceRequestsPrefix+name] = q.DeepCopy()
		}
	}
	return u
}

// isExtendedResource reports whether name is an extended resource, such as
// example.com/gpu: domain-prefixed, outside kubernetes.io.
func isExtendedResource(name corev1.ResourceName) bool {
	s := string(name)
	return strings.Contains(s, "/") && !strings.Contains(s, "kubernetes.io/") && !strings.HasPrefix(s, corev1.DefaultResourceRequestsPrefix)
}

const storageClassSuffix = ".storageclass.storage.k8s.io/"

func claimUsage(pvc *corev1.PersistentVolumeClaim) corev1.ResourceList {
	u := corev1.ResourceList{
		corev1.ResourcePersistentVolumeClaims: count(1),
		"count/persistentvolumeclaims":        count(1),
	}
	class := pvc.Annotations[corev1.BetaStorageClassAnnotation]
	if pvc.Spec.StorageClassName != nil {
		class = *pvc.Spec.StorageClassName
	}
	if class != "" {
		u[corev1.ResourceName(class+storageClassSuffix+string(corev1.ResourcePersistentVolumeClaims))] = count(1)
	}
	if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		q = q.DeepCopy()
		q.RoundUp(0) // whole bytes, as Kubernetes charges them
		u[corev1.ResourceRequestsStorage] = q
		if class != "" {
			u[corev1.ResourceName(class+storageClassSuffix+string(corev1.ResourceRequestsStorage))] = q.DeepCopy()
		}
	}
	return u
}

// computeResources are the quota resources for which every container must
// make an explicit request or limit once a quota constrains them.
func computeResources() []corev1.ResourceName {
	return []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceRequestsCPU,
		corev1.ResourceRequestsMemory, corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory}
}

// podConstraints is the pod evaluator's Constraints: when hard constrains
// cpu or memory requests or limits, every container and init container must
// specify them. It returns "" or the message, e.g. "must specify
// limits.cpu for: app; requests.cpu for: app,init".
func podConstraints(pod *corev1.Pod, hard corev1.ResourceList) string {
	var required []corev1.ResourceName
	for _, name := range computeResources() {
		if _, ok := hard[name]; ok {
			required = append(required, name)
		}
	}
	if len(required) == 0 {
		return ""
	}
	missing := map[corev1.ResourceName][]string{}
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			c := &list[i]
			u := computeUsage(c.Resources.Requests, c.Resources.Limits)
			for _, name := range required {
				if _, ok := u[name]; !ok {
					missing[name] = append(missing[name], c.Name)
				}
			}
		}
	}
	if len(missing) == 0 {
		return ""
	}
	var parts []string
	for _, name := range sortedNames(hard) {
		if names, ok := missing[name]; ok {
			sort.Strings(names)
			parts = append(parts, fmt.Sprintf("%s for: %s", name, strings.Join(names, ",")))
		}
	}
	return "must specify " + strings.Join(parts, "; ")
}

// Status returns a ResourceQuota's status as Kubernetes' resource quota
// controller computes it from the objects (of any namespace; only those in
// the quota's namespace count): hard is spec.hard, used has every resource
// of hard, 0 when nothing uses it. It is what get and describe show.
func Status(quota *corev1.ResourceQuota, objects []runtime.Object) corev1.ResourceQuotaStatus {
	used := corev1.ResourceList{}
	for _, obj := range objects {
		if refOf(obj).namespace == quota.Namespace {
			addList(used, Usage(obj))
		}
	}
	return statusOf(quota.Spec.Hard, used)
}

// statusOf masks a namespace's usage to the resources of hard.
func statusOf(hard, usage corev1.ResourceList) corev1.ResourceQuotaStatus {
	st := corev1.ResourceQuotaStatus{Hard: hard.DeepCopy(), Used: corev1.ResourceList{}}
	for name := range hard {
		if q, ok := usage[name]; ok {
			st.Used[name] = q.DeepCopy()
		} else {
			st.Used[name] = resource.Quantity{Format: resource.DecimalSI}
		}
	}
	return st
}

// Columns returns the REQUEST and LIMIT columns kubectl get quota prints
// for a status: "resource: used/hard" in resource name order, joined by
// ", "; resources named limits.* go to the LIMIT column.
func Columns(st corev1.ResourceQuotaStatus) (request, limit string) {
	var req, lim []string
	for _, name := range sortedNames(st.Hard) {
		used, hard := st.Used[name], st.Hard[name]
		s := fmt.Sprintf("%s: %s/%s", name, used.String(), hard.String())
		if strings.HasPrefix(string(name), "limits.") {
			lim = append(lim, s)
		} else {
			req = append(req, s)
		}
	}
	return strings.Join(req, ", "), strings.Join(lim, ", ")
}
