package sched

import (
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// metadataNameField is the only field matchFields may select on.
const metadataNameField = "metadata.name"

// nodeSelector is a parsed required node affinity: its terms are ORed.
type nodeSelector struct {
	terms []selectorTerm
}

func newNodeSelector(terms []corev1.NodeSelectorTerm) *nodeSelector {
	ns := &nodeSelector{}
	for _, t := range terms {
		ns.terms = append(ns.terms, newSelectorTerm(t))
	}
	return ns
}

// matches reports whether any term matches; no terms match nothing.
func (ns *nodeSelector) matches(n *Node) bool {
	for i := range ns.terms {
		if ns.terms[i].matches(n) {
			return true
		}
	}
	return false
}

// selectorTerm is one nodeSelectorTerm: its expressions and fields ANDed.
type selectorTerm struct {
	exprs  []requirement
	fields []requirement
	// invalid marks a term with a malformed requirement; like
	// kube-scheduler's lazy-error selector, it matches nothing.
	invalid bool
}

type requirement struct {
	key    string
	op     corev1.NodeSelectorOperator
	values []string
	num    int64 // the value of Gt and Lt
}

type preferredTerm struct {
	weight int64
	term   selectorTerm
}

func newSelectorTerm(t corev1.NodeSelectorTerm) selectorTerm {
	var st selectorTerm
	for _, e := range t.MatchExpressions {
		r, ok := newRequirement(e)
		st.invalid = st.invalid || !ok
		st.exprs = append(st.exprs, r)
	}
	for _, e := range t.MatchFields {
		r := requirement{key: e.Key, op: e.Operator, values: e.Values}
		ok := e.Key == metadataNameField && (e.Operator == corev1.NodeSelectorOpIn || e.Operator == corev1.NodeSelectorOpNotIn) &&
			len(e.Values) == 1
		st.invalid = st.invalid || !ok
		st.fields = append(st.fields, r)
	}
	return st
}

// newRequirement parses a label requirement with the rules of
// k8s.io/apimachinery's labels.NewRequirement for the operators it supports.
func newRequirement(e corev1.NodeSelectorRequirement) (requirement, bool) {
	r := requirement{key: e.Key, op: e.Operator, values: e.Values}
	if e.Key == "" {
		return r, false
	}
	switch e.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		return r, len(e.Values) > 0
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		return r, len(e.Values) == 0
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(e.Values) != 1 {
			return r, false
		}
		n, err := strconv.ParseInt(e.Values[0], 10, 64)
		r.num = n
		return r, err == nil
	default:
		return r, false
	}
}

// matches reports whether the term matches; an empty term matches nothing.
func (t *selectorTerm) matches(n *Node) bool {
	if t.invalid || len(t.exprs) == 0 && len(t.fields) == 0 {
		return false
	}
	for i := range t.exprs {
		if !t.exprs[i].matchesLabels(n.Labels) {
			return false
		}
	}
	for i := range t.fields {
		r := &t.fields[i]
		if (n.Name == r.values[0]) != (r.op == corev1.NodeSelectorOpIn) {
			return false
		}
	}
	return true
}

func (r *requirement) matchesLabels(labels map[string]string) bool {
	v, ok := labels[r.key]
	switch r.op {
	case corev1.NodeSelectorOpIn:
		return ok && slices.Contains(r.values, v)
	case corev1.NodeSelectorOpNotIn:
		return !ok || !slices.Contains(r.values, v)
	case corev1.NodeSelectorOpExists:
		return ok
	case corev1.NodeSelectorOpDoesNotExist:
		return !ok
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		if r.op == corev1.NodeSelectorOpGt {
			return n > r.num
		}
		return n < r.num
	}
	return false
}

// tolerates reports whether a toleration tolerates a taint, as Kubernetes'
// Toleration.ToleratesTaint with the alpha comparison operators off: an
// empty effect matches every effect, an empty key (with Exists) every key,
// and the operator defaults to Equal.
func tolerates(t *corev1.Toleration, taint *corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case "", corev1.TolerationOpEqual:
		return t.Value == taint.Value
	case corev1.TolerationOpExists:
		return true
	default:
		return false
	}
}

func toleratedBy(tolerations []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tolerations {
		if tolerates(&tolerations[i], taint) {
			return true
		}
	}
	return false
}
