package admission

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// Violation is one reason admission refuses an object.
type Violation struct {
	// Kind, Namespace and Name identify the refused object (a Pod, a
	// Deployment whose pod template does not fit, ...).
	Kind      string
	Namespace string
	Name      string
	// Message says why, in Kubernetes' words where it has them, e.g.
	// "exceeded quota: compute, requested: requests.cpu=500m, used:
	// requests.cpu=1500m, limited: requests.cpu=2" or "container app: cpu
	// limit 2 exceeds LimitRange default/limits max 1".
	Message string
}

// String names the object and gives the reason: "pod default/web:
// container app: cpu limit 2 exceeds LimitRange default/limits max 1".
func (v Violation) String() string {
	return describeObject(v.Kind, v.Namespace, v.Name) + ": " + v.Message
}

// Violations are every reason admission refused something; nil when it
// admitted everything.
type Violations []Violation

// Err returns nil when there are no violations, else an *Error holding
// them.
func (vs Violations) Err() error {
	if len(vs) == 0 {
		return nil
	}
	return &Error{Violations: vs}
}

// Forbidden formats the violations of one object as the API server's
// Forbidden error does, for a controller's FailedCreate event ("Error
// creating: " + Forbidden()): `pods "web-x" is forbidden: exceeded quota:
// ...`, with several reasons in brackets. It uses the first violation's
// object; "" when there are none.
func (vs Violations) Forbidden() string {
	if len(vs) == 0 {
		return ""
	}
	v := vs[0]
	what := strings.ToLower(v.Kind)
	if r, ok := apiResources()[v.Kind]; ok {
		what = r.resource
		if r.group != "" {
			what += "." + r.group
		}
	}
	msg := v.Message
	if len(vs) > 1 {
		msgs := make([]string, len(vs))
		for i, v := range vs {
			msgs[i] = v.Message
		}
		msg = "[" + strings.Join(msgs, ", ") + "]"
	}
	return fmt.Sprintf("%s %q is forbidden: %s", what, v.Name, msg)
}

// Error is the error of Violations.Err: one violation per line.
type Error struct {
	Violations Violations
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		lines[i] = v.String()
	}
	return strings.Join(lines, "\n")
}

// violations turns messages about one object into Violations.
func violations(kind, ns, name, prefix string, msgs []string) Violations {
	var vs Violations
	for _, m := range msgs {
		vs = append(vs, Violation{Kind: kind, Namespace: ns, Name: name, Message: prefix + m})
	}
	return vs
}

// Admission admits objects against the LimitRanges and ResourceQuotas of
// their namespaces, keeping count of what it admitted, so that several
// admissions in one pass (an apply, a controller creating pods) see each
// other. It is not safe for concurrent use.
type Admission struct {
	objects map[string]map[ref]runtime.Object // by namespace: stored, then admitted
	ranges  map[string][]*corev1.LimitRange   // by namespace, in name order
	quotas  map[string][]*corev1.ResourceQuota
	usage   map[string]corev1.ResourceList // by namespace, once computed
}

// New returns an Admission over the stored objects: every object of every
// kind and namespace, pods with their observed status (a pod in a terminal
// phase does not count toward quotas); the LimitRanges and ResourceQuotas
// among them are the ones enforced. Usage is computed from the objects
// (stored quota status is ignored). The objects are not modified.
func New(stored []runtime.Object) *Admission {
	a := newAdmission(stored)
	for _, obj := range stored {
		a.register(obj)
	}
	return a
}

func newAdmission(stored []runtime.Object) *Admission {
	a := &Admission{
		objects: map[string]map[ref]runtime.Object{},
		ranges:  map[string][]*corev1.LimitRange{},
		quotas:  map[string][]*corev1.ResourceQuota{},
		usage:   map[string]corev1.ResourceList{},
	}
	for _, obj := range stored {
		a.record(refOf(obj), obj)
	}
	return a
}

func (a *Admission) record(r ref, obj runtime.Object) {
	if a.objects[r.namespace] == nil {
		a.objects[r.namespace] = map[ref]runtime.Object{}
	}
	a.objects[r.namespace][r] = obj
}

// register makes a LimitRange or ResourceQuota take effect, replacing one
// of the same name; other objects are ignored.
func (a *Admission) register(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.LimitRange:
		a.ranges[o.Namespace] = replaceByName(a.ranges[o.Namespace], o)
	case *corev1.ResourceQuota:
		a.quotas[o.Namespace] = replaceByName(a.quotas[o.Namespace], o)
	}
}

func replaceByName[T interface{ GetName() string }](list []T, o T) []T {
	list = slices.DeleteFunc(slices.Clone(list), func(x T) bool { return x.GetName() == o.GetName() })
	list = append(list, o)
	sortByName(list)
	return list
}

// Apply admits the objects of one `clusterctl apply`, in order, after
// making the LimitRanges and ResourceQuotas among them take effect
// (replacing stored ones of the same name), so that a manifest's policies
// apply to all of its objects whatever their order. Each object is
// admitted as Admit does. It returns every violation of every object; the
// objects admitted are counted even when others were refused.
func (a *Admission) Apply(objs []runtime.Object) Violations {
	for _, obj := range objs {
		a.register(obj)
	}
	var vs Violations
	for _, obj := range objs {
		vs = append(vs, a.Admit(obj)...)
	}
	return vs
}

// Admit admits one object that is to be created, or to replace the stored
// object of the same kind, namespace and name, and returns why it may not
// be, or nil. What it checks:
//
//   - a new Pod: LimitRange defaults are set in place and the pod is
//     checked (LimitPod); every quota of the namespace that constrains cpu
//     or memory needs each container to specify them ("failed quota: NAME:
//     must specify ..."). A pod already stored is not checked again
//     (Kubernetes does not run the LimitRanger on pod updates).
//   - a PersistentVolumeClaim: LimitClaim, for the requests that changed.
//   - a workload (see PodTemplate) whose template is new or changed: a pod
//     made from the template must pass LimitPod, must satisfy the quotas'
//     must-specify rule and may not on its own exceed a quota's hard
//     limits (Kubernetes would accept the workload and fail every pod with
//     FailedCreate); the workload is not changed.
//   - every object: its Usage (for a replaced object, only what it grows
//     by) may not take any ResourceQuota of its namespace over hard, as
//     the quota admission plugin words it: "exceeded quota: NAME,
//     requested: ..., used: ..., limited: ...".
//
// An admitted object is counted (its usage charged), so later admissions
// see it. A refused one is not.
func (a *Admission) Admit(obj runtime.Object) Violations {
	r := refOf(obj)
	ns := r.namespace
	old := a.objects[ns][r]
	if old != nil && !sameObject(obj, old) {
		old = nil // a new object of the same name: the old one is gone
	}
	var msgs []string
	switch o := obj.(type) {
	case *corev1.Pod:
		if old == nil {
			msgs = limitPod(o, a.ranges[ns])
		}
	case *corev1.PersistentVolumeClaim:
		oldClaim, _ := old.(*corev1.PersistentVolumeClaim)
		msgs = limitClaim(o, oldClaim, a.ranges[ns])
	default:
		if tmpl := PodTemplate(obj); tmpl != nil && (old == nil || !templateEqual(tmpl, PodTemplate(old))) {
			pod := templatePod(obj, ns)
			for _, m := range append(limitPod(pod, a.ranges[ns]), a.templateQuota(pod)...) {
				msgs = append(msgs, "pod template: "+m)
			}
		}
	}
	quotaMsgs, delta := a.checkQuota(obj, old, ns)
	msgs = append(msgs, quotaMsgs...)
	if len(msgs) > 0 {
		return violations(r.kind, ns, r.name, "", msgs)
	}
	if u, ok := a.usage[ns]; ok {
		addList(u, delta)
	}
	a.record(r, obj)
	return nil
}

// sameObject reports whether obj replaces old rather than a new object
// taking its name: their UIDs are equal, or one is unset.
func sameObject(obj, old runtime.Object) bool {
	m1, err1 := meta.Accessor(obj)
	m2, err2 := meta.Accessor(old)
	if err1 != nil || err2 != nil {
		return true
	}
	return m1.GetUID() == "" || m2.GetUID() == "" || m1.GetUID() == m2.GetUID()
}

func templateEqual(a, b *corev1.PodTemplateSpec) bool {
	return a != nil && b != nil && apiequality.Semantic.DeepEqual(a, b)
}

// usageOf returns what the objects of a namespace use, computing it the
// first time.
func (a *Admission) usageOf(ns string) corev1.ResourceList {
	if u, ok := a.usage[ns]; ok {
		return u
	}
	refs := make([]ref, 0, len(a.objects[ns]))
	for r := range a.objects[ns] {
		refs = append(refs, r)
	}
	// A fixed order, so that sums print the same way every time.
	slices.SortFunc(refs, func(x, y ref) int { return cmp.Or(cmp.Compare(x.kind, y.kind), cmp.Compare(x.name, y.name)) })
	u := corev1.ResourceList{}
	for _, r := range refs {
		addList(u, Usage(a.objects[ns][r]))
	}
	a.usage[ns] = u
	return u
}

// checkQuota is the quota admission plugin for one object: the
// must-specify constraints for a new pod, then every quota the object's
// usage (less the replaced object's) would exceed. It returns the messages
// and the usage to charge.
func (a *Admission) checkQuota(obj, old runtime.Object, ns string) ([]string, corev1.ResourceList) {
	quotas := a.quotas[ns]
	if len(quotas) == 0 {
		return nil, nil
	}
	var msgs []string
	if pod, ok := obj.(*corev1.Pod); ok && old == nil {
		for _, q := range quotas {
			if m := podConstraints(pod, q.Spec.Hard); m != "" {
				msgs = append(msgs, fmt.Sprintf("failed quota: %s: %s", q.Name, m))
			}
		}
	}
	delta := Usage(obj)
	if old != nil {
		delta = subtractNonNegative(delta, Usage(old))
	}
	if isZero(delta) {
		return msgs, delta
	}
	usage := a.usageOf(ns)
	for _, q := range quotas {
		requested := mask(delta, sortedNames(q.Spec.Hard))
		used := statusOf(q.Spec.Hard, usage).Used
		var exceeded []corev1.ResourceName
		for _, name := range sortedNames(requested) {
			total := used[name].DeepCopy()
			total.Add(requested[name])
			if total.Cmp(q.Spec.Hard[name]) > 0 {
				exceeded = append(exceeded, name)
			}
		}
		if len(exceeded) > 0 {
			msgs = append(msgs, fmt.Sprintf("exceeded quota: %s, requested: %s, used: %s, limited: %s", q.Name,
				prettyPrint(mask(requested, exceeded)), prettyPrint(mask(used, exceeded)), prettyPrint(mask(q.Spec.Hard, exceeded))))
		}
	}
	return msgs, delta
}

// templateQuota checks a pod made from a workload's template against the
// quotas of its namespace: the must-specify rule, and that the pod alone
// fits within hard.
func (a *Admission) templateQuota(pod *corev1.Pod) []string {
	var msgs []string
	for _, q := range a.quotas[pod.Namespace] {
		if m := podConstraints(pod, q.Spec.Hard); m != "" {
			msgs = append(msgs, fmt.Sprintf("failed quota: %s: %s", q.Name, m))
		}
		u := mask(podUsage(pod), sortedNames(q.Spec.Hard))
		var exceeded []corev1.ResourceName
		for _, name := range sortedNames(u) {
			if v := u[name]; v.Cmp(q.Spec.Hard[name]) > 0 {
				exceeded = append(exceeded, name)
			}
		}
		if len(exceeded) > 0 {
			msgs = append(msgs, fmt.Sprintf("one pod exceeds all of quota %s: requested: %s, limited: %s",
				q.Name, prettyPrint(mask(u, exceeded)), prettyPrint(mask(q.Spec.Hard, exceeded))))
		}
	}
	return msgs
}

// Status returns the status of a quota enforced here (by namespace and
// name), from the objects stored and admitted so far: what get and
// describe show. ok is false for an unknown quota.
func (a *Admission) Status(namespace, name string) (st corev1.ResourceQuotaStatus, ok bool) {
	for _, q := range a.quotas[namespace] {
		if q.Name == name {
			return statusOf(q.Spec.Hard, a.usageOf(namespace)), true
		}
	}
	return corev1.ResourceQuotaStatus{}, false
}

// Admit checks new or changed objects against ResourceQuotas, as the quota
// admission plugin does, and reports every violation at once: it is New
// over current (every stored object; its own ResourceQuotas and
// LimitRanges are ignored) with quotas as the only policies, then Admit
// for each change in order. Changes admitted are counted for the changes
// after them; refused ones are not.
func Admit(quotas []*corev1.ResourceQuota, current, changes []runtime.Object) Violations {
	a := newAdmission(current)
	for _, q := range quotas {
		a.register(q)
	}
	var vs Violations
	for _, obj := range changes {
		vs = append(vs, a.Admit(obj)...)
	}
	return vs
}
