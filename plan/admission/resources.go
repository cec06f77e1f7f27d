package admission

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
)

// PodRequests is Kubernetes' effective pod request (the resource helper's
// PodRequests): the sum of the containers' requests, sidecar init containers
// (restartPolicy Always) included, or more for a resource an init container
// needs more of while it runs next to the sidecars started before it; cpu
// and memory set at pod level (spec.resources, requests or else limits)
// replace the sum; spec.overhead is added.
func PodRequests(pod *corev1.Pod) corev1.ResourceList {
	return podRequests(pod, true)
}

// PodLimits is Kubernetes' effective pod limit (PodLimits), computed like
// PodRequests from the limits; spec.overhead is added only to resources
// that have a limit.
func PodLimits(pod *corev1.Pod) corev1.ResourceList {
	return podLimits(pod, true)
}

func podRequests(pod *corev1.Pod, overhead bool) corev1.ResourceList {
	reqs := effective(pod.Spec.Containers, pod.Spec.InitContainers, func(c *corev1.Container) corev1.ResourceList { return c.Resources.Requests })
	if pr := pod.Spec.Resources; pr != nil {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := pr.Requests[name]; ok {
				reqs[name] = q.DeepCopy()
			} else if q, ok := pr.Limits[name]; ok {
				reqs[name] = q.DeepCopy() // the pod-level request defaults to the limit
			}
		}
	}
	if overhead {
		addList(reqs, pod.Spec.Overhead)
	}
	return reqs
}

func podLimits(pod *corev1.Pod, overhead bool) corev1.ResourceList {
	limits := effective(pod.Spec.Containers, pod.Spec.InitContainers, func(c *corev1.Container) corev1.ResourceList { return c.Resources.Limits })
	if pr := pod.Spec.Resources; pr != nil {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := pr.Limits[name]; ok {
				limits[name] = q.DeepCopy()
			}
		}
	}
	if overhead {
		for name, q := range pod.Spec.Overhead {
			if v, ok := limits[name]; ok {
				v.Add(q)
				limits[name] = v
			}
		}
	}
	return limits
}

// effective sums what of returns for the containers and folds in the init
// containers the way PodRequests does.
func effective(containers, inits []corev1.Container, of func(*corev1.Container) corev1.ResourceList) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for i := range containers {
		addList(sum, of(&containers[i]))
	}
	sidecars, initMax := corev1.ResourceList{}, corev1.ResourceList{}
	for i := range inits {
		c := &inits[i]
		var need corev1.ResourceList
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			addList(sum, of(c))
			addList(sidecars, of(c))
			need = sidecars
		} else {
			need = corev1.ResourceList{}
			addList(need, of(c))
			addList(need, sidecars)
		}
		maxList(initMax, need)
	}
	maxList(sum, initMax)
	return sum
}

// addList adds the quantities of add to list.
func addList(list, add corev1.ResourceList) {
	for name, q := range add {
		if v, ok := list[name]; ok {
			v.Add(q)
			list[name] = v
		} else {
			list[name] = q.DeepCopy()
		}
	}
}

// maxList raises the quantities of list to those of other where larger.
func maxList(list, other corev1.ResourceList) {
	for name, q := range other {
		if v, ok := list[name]; !ok || q.Cmp(v) > 0 {
			list[name] = q.DeepCopy()
		}
	}
}

// subtractNonNegative is a - b per resource of a, never below zero
// (quota.SubtractWithNonNegativeResult).
func subtractNonNegative(a, b corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, q := range a {
		v := q.DeepCopy()
		if o, ok := b[name]; ok {
			v.Sub(o)
		}
		if v.Sign() < 0 {
			v = resource.Quantity{Format: q.Format}
		}
		out[name] = v
	}
	return out
}

// isZero reports whether every quantity of list is zero.
func isZero(list corev1.ResourceList) bool {
	for _, q := range list {
		if !q.IsZero() {
			return false
		}
	}
	return true
}

// mask keeps the resources of list named in names.
func mask(list corev1.ResourceList, names []corev1.ResourceName) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, name := range names {
		if q, ok := list[name]; ok {
			out[name] = q.DeepCopy()
		}
	}
	return out
}

// prettyPrint formats a resource list as the quota admission plugin does:
// name=value pairs in name order, joined by commas.
func prettyPrint(list corev1.ResourceList) string {
	parts := make([]string, 0, len(list))
	for _, name := range sortedNames(list) {
		q := list[name]
		parts = append(parts, string(name)+"="+q.String())
	}
	return strings.Join(parts, ",")
}

func sortedNames[V any](list map[corev1.ResourceName]V) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(list))
	for name := range list {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func count(n int64) resource.Quantity { return *resource.NewQuantity(n, resource.DecimalSI) }

// ref identifies one object.
type ref struct {
	kind, namespace, name string
}

// kindOf returns an object's kind: from apiVersion/kind when set, else
// from its Go type (the k8s.io/api types are named after their kinds).
func kindOf(obj runtime.Object) string {
	if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	t := reflect.TypeOf(obj)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

func refOf(obj runtime.Object) ref {
	r := ref{kind: kindOf(obj)}
	if m, err := meta.Accessor(obj); err == nil {
		r.namespace, r.name = m.GetNamespace(), m.GetName()
	}
	return r
}

// apiResource is what Kubernetes calls the objects of a kind: the resource
// (plural, lower case) and the API group.
type apiResource struct {
	resource, group string
}

// countName is the resource's object count quota name, count/<resource>
// or count/<resource>.<group>.
func (r apiResource) countName() corev1.ResourceName {
	if r.group == "" {
		return corev1.ResourceName("count/" + r.resource)
	}
	return corev1.ResourceName("count/" + r.resource + "." + r.group)
}

// apiResources are the namespaced kinds clusterctl stores, by kind.
func apiResources() map[string]apiResource {
	return map[string]apiResource{
		"Pod":                     {"pods", ""},
		"ConfigMap":               {"configmaps", ""},
		"Secret":                  {"secrets", ""},
		"Service":                 {"services", ""},
		"Endpoints":               {"endpoints", ""},
		"EndpointSlice":           {"endpointslices", "discovery.k8s.io"},
		"Deployment":              {"deployments", "apps"},
		"ReplicaSet":              {"replicasets", "apps"},
		"DaemonSet":               {"daemonsets", "apps"},
		"StatefulSet":             {"statefulsets", "apps"},
		"ControllerRevision":      {"controllerrevisions", "apps"},
		"ReplicationController":   {"replicationcontrollers", ""},
		"Job":                     {"jobs", "batch"},
		"CronJob":                 {"cronjobs", "batch"},
		"HorizontalPodAutoscaler": {"horizontalpodautoscalers", "autoscaling"},
		"PersistentVolumeClaim":   {"persistentvolumeclaims", ""},
		"ResourceQuota":           {"resourcequotas", ""},
		"LimitRange":              {"limitranges", ""},
		"PodDisruptionBudget":     {"poddisruptionbudgets", "policy"},
	}
}

// legacyCounts are the object counts quotas also know by their plain
// resource name (pods, services, ...), as well as count/<resource>.
func legacyCounts() []string {
	return []string{"pods", "services", "configmaps", "secrets", "persistentvolumeclaims", "replicationcontrollers", "resourcequotas"}
}

// PodTemplate returns the pod template of a workload (Deployment,
// ReplicaSet, ReplicationController, DaemonSet, StatefulSet, Job, CronJob),
// or nil for other objects. It is the object's own template, not a copy.
func PodTemplate(obj runtime.Object) *corev1.PodTemplateSpec {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template
	case *appsv1.ReplicaSet:
		return &o.Spec.Template
	case *appsv1.DaemonSet:
		return &o.Spec.Template
	case *appsv1.StatefulSet:
		return &o.Spec.Template
	case *corev1.ReplicationController:
		return o.Spec.Template
	case *batchv1.Job:
		return &o.Spec.Template
	case *batchv1.CronJob:
		return &o.Spec.JobTemplate.Spec.Template
	}
	return nil
}

// describeObject names an object in messages: "pod default/web".
func describeObject(kind, namespace, name string) string {
	if namespace == "" {
		return fmt.Sprintf("%s %s", strings.ToLower(kind), name)
	}
	return fmt.Sprintf("%s %s/%s", strings.ToLower(kind), namespace, name)
}

// sortByName orders objects by name, for a deterministic order.
func sortByName[T interface{ GetName() string }](objs []T) {
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].GetName() < objs[j].GetName() })
}
