package admission

import (
	"fmt"
	"math/big"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
)

// LimitRangerAnnotation is the annotation the LimitRanger admission plugin
// puts on a pod whose requests or limits it set, e.g. "LimitRanger plugin
// set: cpu, memory request for container app; cpu limit for container app".
const LimitRangerAnnotation = "kubernetes.io/limit-ranger"

// inNamespace returns the LimitRanges of namespace ns, in name order.
func inNamespace(ranges []*corev1.LimitRange, ns string) []*corev1.LimitRange {
	var out []*corev1.LimitRange
	for _, lr := range ranges {
		if lr != nil && lr.Namespace == ns {
			out = append(out, lr)
		}
	}
	sortByName(out)
	return out
}

// effectiveItem is a LimitRangeItem with the API server's defaults
// (SetDefaults_LimitRangeItem) applied: for a Container item the default
// limit comes from max, the default request from the default limit and then
// from min. Stored LimitRanges already have them; this makes the package
// independent of that.
func effectiveItem(item corev1.LimitRangeItem) corev1.LimitRangeItem {
	if item.Type != corev1.LimitTypeContainer {
		return item
	}
	item.Default = item.Default.DeepCopy()
	item.DefaultRequest = item.DefaultRequest.DeepCopy()
	if item.Default == nil {
		item.Default = corev1.ResourceList{}
	}
	if item.DefaultRequest == nil {
		item.DefaultRequest = corev1.ResourceList{}
	}
	fill := func(dst, src corev1.ResourceList) {
		for name, q := range src {
			if _, ok := dst[name]; !ok {
				dst[name] = q.DeepCopy()
			}
		}
	}
	fill(item.Default, item.Max)
	fill(item.DefaultRequest, item.Default)
	fill(item.DefaultRequest, item.Min)
	return item
}

// defaulting records what DefaultPodSpec set.
type defaulting struct {
	// notes are the parts of the LimitRanger annotation.
	notes []string
	// limitFrom maps a container name and resource to the LimitRange
	// (namespace/name) whose default limit was set on it.
	limitFrom map[string]map[corev1.ResourceName]string
}

// DefaultPodSpec sets, in place, the requests and limits the containers and
// init containers of spec leave unset from the defaults of the Container
// items of the LimitRanges in namespace ns (LimitRanges of other namespaces
// are ignored), as the LimitRanger admission plugin does: a missing limit
// gets the item's default, a missing request its defaultRequest (which the
// API server defaults from default, then from min). LimitRanges are
// consulted in name order, so for a resource two of them default, the
// first by name wins (Kubernetes takes them in no defined order). It
// returns the LimitRanger annotation's value describing what it set, or ""
// when it set nothing.
//
// Pods get this from LimitPod. DefaultPodSpec is exported for callers that
// want defaults written into a pod template too, which Kubernetes never
// does (see the package documentation).
func DefaultPodSpec(ns string, spec *corev1.PodSpec, ranges []*corev1.LimitRange) string {
	d := defaultSpec(spec, inNamespace(ranges, ns))
	if len(d.notes) == 0 {
		return ""
	}
	return "LimitRanger plugin set: " + strings.Join(d.notes, "; ")
}

func defaultSpec(spec *corev1.PodSpec, ranges []*corev1.LimitRange) defaulting {
	d := defaulting{limitFrom: map[string]map[corev1.ResourceName]string{}}
	for _, lr := range ranges {
		limits, requests := corev1.ResourceList{}, corev1.ResourceList{}
		for _, item := range lr.Spec.Limits {
			if item.Type != corev1.LimitTypeContainer {
				continue
			}
			item = effectiveItem(item)
			for name, q := range item.DefaultRequest {
				requests[name] = q.DeepCopy()
			}
			for name, q := range item.Default {
				limits[name] = q.DeepCopy()
			}
		}
		if len(limits) == 0 && len(requests) == 0 {
			continue
		}
		lrName := lr.Namespace + "/" + lr.Name
		for i := range spec.Containers {
			d.merge(&spec.Containers[i], "container", lrName, limits, requests)
		}
		for i := range spec.InitContainers {
			d.merge(&spec.InitContainers[i], "init container", lrName, limits, requests)
		}
	}
	return d
}

// merge is the plugin's mergeContainerResources.
func (d *defaulting) merge(c *corev1.Container, what, lrName string, limits, requests corev1.ResourceList) {
	var setLimits, setRequests []string
	for _, name := range sortedNames(limits) {
		if _, ok := c.Resources.Limits[name]; ok {
			continue
		}
		if c.Resources.Limits == nil {
			c.Resources.Limits = corev1.ResourceList{}
		}
		c.Resources.Limits[name] = limits[name].DeepCopy()
		setLimits = append(setLimits, string(name))
		if d.limitFrom[c.Name] == nil {
			d.limitFrom[c.Name] = map[corev1.ResourceName]string{}
		}
		d.limitFrom[c.Name][name] = lrName
	}
	for _, name := range sortedNames(requests) {
		if _, ok := c.Resources.Requests[name]; ok {
			continue
		}
		if c.Resources.Requests == nil {
			c.Resources.Requests = corev1.ResourceList{}
		}
		c.Resources.Requests[name] = requests[name].DeepCopy()
		setRequests = append(setRequests, string(name))
	}
	if len(setRequests) > 0 {
		d.notes = append(d.notes, fmt.Sprintf("%s request for %s %s", strings.Join(setRequests, ", "), what, c.Name))
	}
	if len(setLimits) > 0 {
		d.notes = append(d.notes, fmt.Sprintf("%s limit for %s %s", strings.Join(setLimits, ", "), what, c.Name))
	}
}

// LimitPod is the LimitRanger admission plugin for a new pod: it sets the
// defaults of the LimitRanges in the pod's namespace in place
// (DefaultPodSpec; the LimitRangerAnnotation records them) and then checks
// the pod against every one of those LimitRanges. Container items bound
// each container and init container (min: request and limit at least;
// max: limit and request at most, a limit required; maxLimitRequestRatio:
// limit over request at most, both required and not 0); Pod items bound the
// pod's effective requests and limits (PodRequests and PodLimits without
// overhead). It also reports a request above a limit that a default just
// set, which the API server's pod validation would refuse. It returns every
// violation, or nil.
func LimitPod(pod *corev1.Pod, ranges []*corev1.LimitRange) Violations {
	msgs := limitPod(pod, inNamespace(ranges, pod.Namespace))
	return violations("Pod", pod.Namespace, pod.Name, "", msgs)
}

func limitPod(pod *corev1.Pod, ranges []*corev1.LimitRange) []string {
	d := defaultSpec(&pod.Spec, ranges)
	if len(d.notes) > 0 {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[LimitRangerAnnotation] = "LimitRanger plugin set: " + strings.Join(d.notes, "; ")
	}
	var msgs []string
	containers := func(f func(subject string, c *corev1.Container)) {
		for i := range pod.Spec.InitContainers {
			f("init container "+pod.Spec.InitContainers[i].Name, &pod.Spec.InitContainers[i])
		}
		for i := range pod.Spec.Containers {
			f("container "+pod.Spec.Containers[i].Name, &pod.Spec.Containers[i])
		}
	}
	containers(func(subject string, c *corev1.Container) {
		for _, name := range sortedNames(d.limitFrom[c.Name]) {
			req, hasReq := c.Resources.Requests[name]
			limit := c.Resources.Limits[name]
			if hasReq && req.Cmp(limit) > 0 {
				msgs = append(msgs, fmt.Sprintf("%s: %s request %s is greater than its limit %s, the default of LimitRange %s",
					subject, name, req.String(), limit.String(), d.limitFrom[c.Name][name]))
			}
		}
	})
	for _, lr := range ranges {
		lrName := lr.Namespace + "/" + lr.Name
		for _, item := range lr.Spec.Limits {
			item = effectiveItem(item)
			switch item.Type {
			case corev1.LimitTypeContainer:
				containers(func(subject string, c *corev1.Container) {
					msgs = append(msgs, constraints(subject, lrName, item, c.Resources.Requests, c.Resources.Limits)...)
				})
			case corev1.LimitTypePod:
				msgs = append(msgs, constraints("pod total", lrName, item, podRequests(pod, false), podLimits(pod, false))...)
			}
		}
	}
	return msgs
}

// constraints checks one subject's requests and limits against the min,
// max and maxLimitRequestRatio of a Container or Pod item (the plugin's
// minConstraint, maxConstraint and limitRequestRatioConstraint).
func constraints(subject, lr string, item corev1.LimitRangeItem, requests, limits corev1.ResourceList) []string {
	var msgs []string
	add := func(format string, a ...any) { msgs = append(msgs, subject+": "+fmt.Sprintf(format, a...)) }
	for _, name := range sortedNames(item.Min) {
		min := item.Min[name]
		req, hasReq := requests[name]
		limit, hasLimit := limits[name]
		switch {
		case !hasReq:
			add("%s request must be set: LimitRange %s min is %s", name, lr, min.String())
		case min.Cmp(req) > 0:
			add("%s request %s is below LimitRange %s min %s", name, req.String(), lr, min.String())
		case hasLimit && min.Cmp(limit) > 0:
			add("%s limit %s is below LimitRange %s min %s", name, limit.String(), lr, min.String())
		}
	}
	for _, name := range sortedNames(item.Max) {
		max := item.Max[name]
		req, hasReq := requests[name]
		limit, hasLimit := limits[name]
		switch {
		case !hasLimit:
			add("%s limit must be set: LimitRange %s max is %s", name, lr, max.String())
		case limit.Cmp(max) > 0:
			add("%s limit %s exceeds LimitRange %s max %s", name, limit.String(), lr, max.String())
		case hasReq && req.Cmp(max) > 0:
			add("%s request %s exceeds LimitRange %s max %s", name, req.String(), lr, max.String())
		}
	}
	for _, name := range sortedNames(item.MaxLimitRequestRatio) {
		ratio := item.MaxLimitRequestRatio[name]
		req, hasReq := requests[name]
		limit, hasLimit := limits[name]
		switch {
		case !hasReq || req.Sign() == 0 || !hasLimit || limit.Sign() == 0:
			add("%s request and limit must be set and not 0: LimitRange %s maxLimitRequestRatio is %s", name, lr, ratio.String())
		default:
			observed := new(big.Rat).Quo(rat(limit), rat(req))
			if observed.Cmp(rat(ratio)) > 0 {
				add("%s limit to request ratio %s exceeds LimitRange %s maxLimitRequestRatio %s",
					name, strings.TrimRight(strings.TrimRight(observed.FloatString(6), "0"), "."), lr, ratio.String())
			}
		}
	}
	return msgs
}

// rat is a quantity as an exact rational number.
func rat(q resource.Quantity) *big.Rat {
	r, ok := new(big.Rat).SetString(q.AsDec().String())
	if !ok {
		return new(big.Rat) // cannot happen: inf.Dec prints decimal numbers
	}
	return r
}

// LimitClaim is the LimitRanger for a new PersistentVolumeClaim: its
// storage request must be within the min and max of the
// PersistentVolumeClaim items of the LimitRanges in its namespace (a
// request is required when there is a min or a max). Claims get no
// defaults. It returns every violation, or nil.
func LimitClaim(pvc *corev1.PersistentVolumeClaim, ranges []*corev1.LimitRange) Violations {
	return violations("PersistentVolumeClaim", pvc.Namespace, pvc.Name, "", limitClaim(pvc, nil, inNamespace(ranges, pvc.Namespace)))
}

// limitClaim checks a claim; on an update (old not nil) a request the old
// claim already had is not checked again, as the plugin does.
func limitClaim(pvc, old *corev1.PersistentVolumeClaim, ranges []*corev1.LimitRange) []string {
	requests := pvc.Spec.Resources.Requests
	unchanged := func(name corev1.ResourceName) bool {
		if old == nil {
			return false
		}
		q, ok := requests[name]
		o, oldOK := old.Spec.Resources.Requests[name]
		return ok && oldOK && q.Cmp(o) == 0
	}
	var msgs []string
	for _, lr := range ranges {
		lrName := lr.Namespace + "/" + lr.Name
		for _, item := range lr.Spec.Limits {
			if item.Type != corev1.LimitTypePersistentVolumeClaim {
				continue
			}
			for _, name := range sortedNames(item.Min) {
				min := item.Min[name]
				req, ok := requests[name]
				switch {
				case unchanged(name):
				case !ok:
					msgs = append(msgs, fmt.Sprintf("%s request must be set: LimitRange %s min is %s", name, lrName, min.String()))
				case min.Cmp(req) > 0:
					msgs = append(msgs, fmt.Sprintf("%s request %s is below LimitRange %s min %s", name, req.String(), lrName, min.String()))
				}
			}
			for _, name := range sortedNames(item.Max) {
				max := item.Max[name]
				req, ok := requests[name]
				switch {
				case unchanged(name):
				case !ok:
					msgs = append(msgs, fmt.Sprintf("%s request must be set: LimitRange %s max is %s", name, lrName, max.String()))
				case req.Cmp(max) > 0:
					msgs = append(msgs, fmt.Sprintf("%s request %s exceeds LimitRange %s max %s", name, req.String(), lrName, max.String()))
				}
			}
		}
	}
	return msgs
}

// CheckTemplate checks that a pod made from the pod template of a workload
// (see PodTemplate) would pass LimitPod, without changing the workload.
// Violations name the workload; their messages start with "pod template: ".
// Objects without a pod template have none.
func CheckTemplate(obj runtime.Object, ranges []*corev1.LimitRange) Violations {
	r := refOf(obj)
	pod := templatePod(obj, r.namespace)
	if pod == nil {
		return nil
	}
	return violations(r.kind, r.namespace, r.name, "pod template: ", limitPod(pod, inNamespace(ranges, r.namespace)))
}

// templatePod returns a pod made from obj's template in namespace ns, or
// nil when obj has no pod template.
func templatePod(obj runtime.Object, ns string) *corev1.Pod {
	tmpl := PodTemplate(obj)
	if tmpl == nil {
		return nil
	}
	pod := &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
	pod.Namespace = ns
	return pod
}
