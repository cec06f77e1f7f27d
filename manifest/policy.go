package manifest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Policy kinds: v1 ResourceQuota and LimitRange, policy/v1
// PodDisruptionBudget. Enforcing them is plan/admission's and
// plan/disruption's job; here they are defaulted and validated as the API
// server does (core/v1 SetDefaults_LimitRangeItem; core and policy
// validation), so that a bad budget or quota is caught at apply time.
//
// Defaulting:
//
//   - LimitRange, for items of type Container only: default (the default
//     limit) from max where unset, defaultRequest from default, then from
//     min, where unset.
//   - ResourceQuota and PodDisruptionBudget have no defaults in their
//     API versions (policy/v1 leaves minAvailable and maxUnavailable unset).
//
// Differences from the API server, on purpose:
//
//   - A PodDisruptionBudget must set exactly one of minAvailable and
//     maxUnavailable. Kubernetes accepts neither, and such a budget never
//     allows an eviction (its expected pod count is 0).
//   - ResourceQuota scopes and scope selectors are refused as not supported
//     yet rather than ignored, and so are quota resources clusterctl does not
//     count (Kubernetes accepts any well-formed name and never charges it).
//   - LimitRange item types other than Container, Pod and
//     PersistentVolumeClaim are refused, and a PersistentVolumeClaim item
//     may only constrain storage.

// defaultLimitRange is SetDefaults_LimitRangeItem for every item.
func defaultLimitRange(lr *corev1.LimitRange) {
	for i := range lr.Spec.Limits {
		item := &lr.Spec.Limits[i]
		if item.Type != corev1.LimitTypeContainer {
			continue
		}
		if item.Default == nil {
			item.Default = corev1.ResourceList{}
		}
		if item.DefaultRequest == nil {
			item.DefaultRequest = corev1.ResourceList{}
		}
		for name, q := range item.Max {
			if _, ok := item.Default[name]; !ok {
				item.Default[name] = q.DeepCopy()
			}
		}
		for name, q := range item.Default {
			if _, ok := item.DefaultRequest[name]; !ok {
				item.DefaultRequest[name] = q.DeepCopy()
			}
		}
		for name, q := range item.Min {
			if _, ok := item.DefaultRequest[name]; !ok {
				item.DefaultRequest[name] = q.DeepCopy()
			}
		}
	}
}

// limitRangeFields are the resource lists of a LimitRangeItem, by JSON
// name, in the order they are checked.
func limitRangeFields(item *corev1.LimitRangeItem) []struct {
	name string
	list corev1.ResourceList
} {
	return []struct {
		name string
		list corev1.ResourceList
	}{
		{"max", item.Max}, {"min", item.Min}, {"default", item.Default},
		{"defaultRequest", item.DefaultRequest}, {"maxLimitRequestRatio", item.MaxLimitRequestRatio},
	}
}

func (s *sink) validateLimitRange(lr *corev1.LimitRange) {
	lp := path{}.field("spec").field("limits")
	types := map[corev1.LimitType]int{}
	for i := range lr.Spec.Limits {
		item := &lr.Spec.Limits[i]
		ip := lp.index(i)
		switch item.Type {
		case corev1.LimitTypeContainer, corev1.LimitTypePod, corev1.LimitTypePersistentVolumeClaim:
			if j, dup := types[item.Type]; dup {
				s.at(ip.field("type"), "duplicate type %s (also limits[%d])", item.Type, j)
			} else {
				types[item.Type] = i
			}
		case "":
			s.at(ip.field("type"), "required (Container, Pod or PersistentVolumeClaim)")
			continue
		default:
			s.oneOf(ip.field("type"), "limit type", string(item.Type), "Container", "Pod", "PersistentVolumeClaim")
			continue
		}
		for _, f := range limitRangeFields(item) {
			for _, name := range sortedKeys(f.list) {
				kp := ip.field(f.name).key(string(name))
				q := f.list[name]
				switch {
				case item.Type == corev1.LimitTypePod && (f.name == "default" || f.name == "defaultRequest"):
					s.at(kp, "may not be set when type is Pod (defaults apply to containers: use type Container)")
				case item.Type == corev1.LimitTypePersistentVolumeClaim && (f.name != "min" && f.name != "max"):
					s.at(kp, "not supported for type PersistentVolumeClaim (only min and max storage are)")
				case item.Type == corev1.LimitTypePersistentVolumeClaim && name != corev1.ResourceStorage:
					s.at(kp, "unsupported resource %q for type PersistentVolumeClaim (only storage)", name)
				case item.Type != corev1.LimitTypePersistentVolumeClaim && resourceNameProblem(string(name)) != "":
					s.at(kp, "%s", resourceNameProblem(string(name)))
				case q.Sign() < 0:
					s.at(kp, "must be greater than or equal to 0, got %s", q.String())
				}
			}
		}
		if item.Type == corev1.LimitTypePersistentVolumeClaim {
			_, hasMin := item.Min[corev1.ResourceStorage]
			_, hasMax := item.Max[corev1.ResourceStorage]
			if !hasMin && !hasMax {
				s.at(ip, "either a min or a max storage value is required")
			}
		}
		s.limitRangeRelations(item, ip)
	}
}

// limitRangeRelations checks min <= defaultRequest <= default <= max and
// the limit-to-request ratio for every resource of one item. Values
// defaulting derived (not written in the manifest) are left out of the
// comparisons: each one that could fail repeats a comparison of the values
// they came from.
func (s *sink) limitRangeRelations(item *corev1.LimitRangeItem, ip path) {
	names := map[corev1.ResourceName]bool{}
	for _, f := range limitRangeFields(item) {
		for name := range f.list {
			names[name] = true
		}
	}
	for _, name := range sortedKeys(names) {
		type value struct {
			q       resource.Quantity
			set     bool // written in the manifest
			present bool // written or derived by defaulting
			field   string
		}
		get := func(field string, list corev1.ResourceList) value {
			q, ok := list[name]
			written := ok && s.scalarAt(ip.field(field).key(string(name))) != ""
			return value{q, written, ok, field}
		}
		minV, maxV := get("min", item.Min), get("max", item.Max)
		def, defReq := get("default", item.Default), get("defaultRequest", item.DefaultRequest)
		ratio := get("maxLimitRequestRatio", item.MaxLimitRequestRatio)
		for _, c := range []struct {
			low, high value
			at        string
		}{
			{minV, maxV, "min"},
			{minV, defReq, "defaultRequest"},
			{defReq, maxV, "defaultRequest"},
			{defReq, def, "defaultRequest"},
			{minV, def, "default"},
			{def, maxV, "default"},
		} {
			if c.low.set && c.high.set && c.low.q.Cmp(c.high.q) > 0 {
				s.at(ip.field(c.at).key(string(name)), "%s %s %s is greater than %s %s",
					c.low.field, name, c.low.q.String(), c.high.field, c.high.q.String())
			}
		}
		if ratio.set {
			rp := ip.field("maxLimitRequestRatio").key(string(name))
			if ratio.q.Cmp(resource.MustParse("1")) < 0 {
				s.at(rp, "ratio %s is less than 1", ratio.q.String())
			} else if minV.set && maxV.set && minV.q.Sign() > 0 {
				// max/min is the largest ratio a container within the
				// bounds can have; a larger maximum ratio can never apply.
				if maxRatio := float64(maxV.q.MilliValue()) / float64(minV.q.MilliValue()); ratio.q.AsApproximateFloat64() > maxRatio {
					s.at(rp, "ratio %s is greater than max/min = %f", ratio.q.String(), maxRatio)
				}
			}
		}
		// Unlike the comparisons above, this one may fail for derived
		// values alone (a default limit from max, a written default
		// request), as it does in Kubernetes.
		if def.present && defReq.present && !overcommitAllowed(name) && def.q.Cmp(defReq.q) != 0 {
			s.at(ip.field("default").key(string(name)), "default %s must equal defaultRequest %s for %s, which cannot be overcommitted",
				def.q.String(), defReq.q.String(), name)
		}
	}
}

// overcommitAllowed reports whether a container's limit of the resource may
// exceed its request: only for cpu, memory and ephemeral-storage (not for
// hugepages or extended resources), as Kubernetes' helper.IsOvercommitAllowed.
func overcommitAllowed(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return true
	}
	return false
}

// quotaResources are the ResourceQuota resource names clusterctl counts,
// besides the patterned ones quotaResourceProblem accepts.
func quotaResources() []string {
	return []string{
		"pods", "services", "services.nodeports", "services.loadbalancers", "configmaps", "secrets",
		"persistentvolumeclaims", "replicationcontrollers", "resourcequotas",
		"cpu", "memory", "ephemeral-storage",
		"requests.cpu", "requests.memory", "requests.ephemeral-storage", "requests.storage",
		"limits.cpu", "limits.memory", "limits.ephemeral-storage",
	}
}

// quotaCountResources are the resources count/NAME accepts: the supported
// namespaced kinds, as resource (plural) and group.
func quotaCountResources() []string {
	return []string{
		"pods", "configmaps", "secrets", "services", "endpoints", "endpointslices.discovery.k8s.io",
		"deployments.apps", "replicasets.apps", "daemonsets.apps", "statefulsets.apps", "controllerrevisions.apps",
		"replicationcontrollers", "jobs.batch", "cronjobs.batch", "horizontalpodautoscalers.autoscaling",
		"persistentvolumeclaims", "resourcequotas", "limitranges", "poddisruptionbudgets.policy",
	}
}

// integerQuotaResource reports whether a quota resource counts objects (or
// node ports), so that its hard value must be a whole number.
func integerQuotaResource(name string) bool {
	switch {
	case strings.HasPrefix(name, "count/"), strings.HasSuffix(name, storageClassSuffix+"persistentvolumeclaims"):
		return true
	case strings.HasPrefix(name, "requests.") && strings.Contains(name, "/"):
		return true // an extended resource
	}
	return slices.Contains([]string{"pods", "services", "services.nodeports", "services.loadbalancers", "configmaps",
		"secrets", "persistentvolumeclaims", "replicationcontrollers", "resourcequotas"}, name)
}

const storageClassSuffix = ".storageclass.storage.k8s.io/"

var hugePagesRE = regexp.MustCompile(`^hugepages-[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$`)

// quotaResourceProblem explains what is wrong with a ResourceQuota resource
// name, or returns "".
func quotaResourceProblem(name string) string {
	switch {
	case slices.Contains(quotaResources(), name):
		return ""
	case strings.HasPrefix(name, "count/"):
		r := strings.TrimPrefix(name, "count/")
		if slices.Contains(quotaCountResources(), r) {
			return ""
		}
		msg := fmt.Sprintf("unsupported quota resource %q: clusterctl counts only objects of the kinds it supports (count/%s)",
			name, strings.Join(quotaCountResources(), ", count/"))
		if best := closest(r, quotaCountResources()); best != "" {
			msg += fmt.Sprintf("; did you mean count/%s?", best)
		}
		return msg
	case hugePagesRE.MatchString(name), hugePagesRE.MatchString(strings.TrimPrefix(name, "requests.")):
		return ""
	case strings.HasPrefix(name, "requests.") && strings.Contains(name, "/") &&
		resourceNameProblem(strings.TrimPrefix(name, "requests.")) == "":
		return "" // an extended resource: requests.example.com/gpu
	}
	if class, res, ok := strings.Cut(name, storageClassSuffix); ok && class != "" {
		if res == "requests.storage" || res == "persistentvolumeclaims" {
			return ""
		}
	}
	msg := fmt.Sprintf("unsupported quota resource %q (supported: %s, count/<resource>[.<group>], hugepages-<size>, "+
		"requests.hugepages-<size>, requests.<extended resource>, <class>%srequests.storage, <class>%spersistentvolumeclaims)",
		name, strings.Join(quotaResources(), ", "), storageClassSuffix, storageClassSuffix)
	if best := closest(name, quotaResources()); best != "" {
		msg += fmt.Sprintf("; did you mean %s?", best)
	}
	return msg
}

func (s *sink) validateResourceQuota(rq *corev1.ResourceQuota) {
	sp := path{}.field("spec")
	for _, name := range sortedKeys(rq.Spec.Hard) {
		kp := sp.field("hard").key(string(name))
		q := rq.Spec.Hard[name]
		switch {
		case quotaResourceProblem(string(name)) != "":
			s.at(kp, "%s", quotaResourceProblem(string(name)))
		case q.Sign() < 0:
			s.at(kp, "must be greater than or equal to 0, got %s", q.String())
		case integerQuotaResource(string(name)) && q.MilliValue()%1000 != 0:
			s.at(kp, "must be a whole number, got %s", q.String())
		}
	}
	if len(rq.Spec.Scopes) > 0 {
		s.at(sp.field("scopes"), "not supported yet: a quota applies to every object in its namespace")
	}
	if rq.Spec.ScopeSelector != nil {
		s.at(sp.field("scopeSelector"), "not supported yet: a quota applies to every object in its namespace")
	}
}

func (s *sink) validatePodDisruptionBudget(pdb *policyv1.PodDisruptionBudget) {
	sp := path{}.field("spec")
	spec := &pdb.Spec
	switch {
	case spec.MinAvailable != nil && spec.MaxUnavailable != nil:
		s.at(sp.field("maxUnavailable"), "minAvailable and maxUnavailable cannot be both set")
	case spec.MinAvailable == nil && spec.MaxUnavailable == nil:
		s.at(sp, "exactly one of minAvailable and maxUnavailable is required (an integer or a percentage such as 50%%)")
	}
	s.intOrPercent(sp.field("minAvailable"), spec.MinAvailable)
	s.intOrPercent(sp.field("maxUnavailable"), spec.MaxUnavailable)
	if spec.Selector != nil {
		if _, err := metav1.LabelSelectorAsSelector(spec.Selector); err != nil {
			s.at(sp.field("selector"), "invalid selector: %v", err)
		}
	}
	if p := spec.UnhealthyPodEvictionPolicy; p != nil {
		s.oneOf(sp.field("unhealthyPodEvictionPolicy"), "unhealthy pod eviction policy", string(*p), "IfHealthyBudget", "AlwaysAllow")
	}
}
