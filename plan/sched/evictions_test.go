package sched

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEvictions(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(-d)); return &t }
	noExec := func(key string, added *metav1.Time) func(*Node) {
		return func(n *Node) {
			n.Taints = append(n.Taints, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoExecute, TimeAdded: added})
		}
	}
	tolerate := func(key string, secs *int64) podOpt {
		return func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs})
		}
	}
	secs := func(s int64) *int64 { return &s }
	gone := corev1.Taint{Key: "gone", Effect: corev1.TaintEffectNoExecute}
	notReady := corev1.Taint{Key: TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
	unreachable := corev1.Taint{Key: TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	at := func(taint corev1.Taint, added *metav1.Time) corev1.Taint { taint.TimeAdded = added; return taint }
	const untoleratedGone = "untolerated NoExecute taint {gone: }"

	tests := []struct {
		name  string
		pods  []*corev1.Pod
		nodes []Node
		want  []Eviction
	}{
		{"no taints", []*corev1.Pod{newPod("p", boundTo("h1"))}, []Node{node("h1")}, nil},
		{"untolerated", []*corev1.Pod{newPod("p", boundTo("h1"))}, []Node{node("h1", noExec("gone", nil))},
			[]Eviction{{Pod: "default/p", Node: "h1", Taint: gone, Reason: untoleratedGone}}},
		{"NoSchedule and PreferNoSchedule do not evict", []*corev1.Pod{newPod("p", boundTo("h1"))},
			[]Node{node("h1", taint("a", "", corev1.TaintEffectNoSchedule), taint("b", "", corev1.TaintEffectPreferNoSchedule))}, nil},
		{"tolerated for ever", []*corev1.Pod{newPod("p", boundTo("h1"), tolerate("gone", nil))}, []Node{node("h1", noExec("gone", ago(time.Hour)))}, nil},
		{"tolerated by everything", []*corev1.Pod{newPod("p", boundTo("h1"), tolerations(corev1.Toleration{Operator: corev1.TolerationOpExists}))},
			[]Node{node("h1", noExec("gone", ago(time.Hour)), func(n *Node) { n.Unreachable = true })}, nil},
		{"a NoSchedule toleration does not do", []*corev1.Pod{newPod("p", boundTo("h1"), tolerations(corev1.Toleration{Key: "gone",
			Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}))}, []Node{node("h1", noExec("gone", nil))},
			[]Eviction{{Pod: "default/p", Node: "h1", Taint: gone, Reason: untoleratedGone}}},
		{"tolerationSeconds not run out", []*corev1.Pod{newPod("p", boundTo("h1"), tolerate("gone", secs(60)))},
			[]Node{node("h1", noExec("gone", ago(59*time.Second)))}, nil},
		{"tolerationSeconds run out", []*corev1.Pod{newPod("p", boundTo("h1"), tolerate("gone", secs(60)))},
			[]Node{node("h1", noExec("gone", ago(60*time.Second)))},
			[]Eviction{{Pod: "default/p", Node: "h1", Taint: at(gone, ago(time.Minute)), Reason: "NoExecute taint {gone: } tolerated for 1m0s, which has passed"}}},
		{"without timeAdded the taint is new", []*corev1.Pod{newPod("p", boundTo("h1"), tolerate("gone", secs(60)))},
			[]Node{node("h1", noExec("gone", nil))}, nil},
		{"tolerationSeconds 0 evicts at once", []*corev1.Pod{newPod("p", boundTo("h1"), tolerate("gone", secs(0)))},
			[]Node{node("h1", noExec("gone", nil))},
			[]Eviction{{Pod: "default/p", Node: "h1", Taint: gone, Reason: "NoExecute taint {gone: } tolerated for 0s, which has passed"}}},
		{"negative tolerationSeconds evict at once", []*corev1.Pod{newPod("p", boundTo("h1"), tolerate("gone", secs(-5)))},
			[]Node{node("h1", noExec("gone", nil))},
			[]Eviction{{Pod: "default/p", Node: "h1", Taint: gone, Reason: "NoExecute taint {gone: } tolerated for 0s, which has passed"}}},
		{"the first matching toleration decides", []*corev1.Pod{newPod("p", boundTo("h1"), tolerate("gone", secs(10)), tolerate("", nil))},
			[]Node{node("h1", noExec("gone", ago(time.Minute)))},
			[]Eviction{{Pod: "default/p", Node: "h1", Taint: at(gone, ago(time.Minute)), Reason: "NoExecute taint {gone: } tolerated for 10s, which has passed"}}},
		{"not ready: default toleration, implied taint is new", []*corev1.Pod{newPod("p", boundTo("h1"))},
			[]Node{node("h1", func(n *Node) { n.Ready = false })}, nil},
		{"not ready for longer than the default toleration", []*corev1.Pod{newPod("p", boundTo("h1"))},
			[]Node{node("h1", func(n *Node) { n.Ready = false }, noExec(TaintNodeNotReady, ago(5*time.Minute)))},
			[]Eviction{{Pod: "default/p", Node: "h1", Taint: at(notReady, ago(5*time.Minute)),
				Reason: "NoExecute taint {node.kubernetes.io/not-ready: } tolerated for 5m0s, which has passed"}}},
		{"unreachable within the default toleration", []*corev1.Pod{newPod("p", boundTo("h1"))},
			[]Node{node("h1", func(n *Node) { n.Unreachable = true }, noExec(TaintNodeUnreachable, ago(4*time.Minute)))}, nil},
		{"own toleration of unreachable", []*corev1.Pod{newPod("p", boundTo("h1"), tolerate(TaintNodeUnreachable, secs(30)))},
			[]Node{node("h1", noExec(TaintNodeUnreachable, ago(time.Minute)))},
			[]Eviction{{Pod: "default/p", Node: "h1", Taint: at(unreachable, ago(time.Minute)),
				Reason: "NoExecute taint {node.kubernetes.io/unreachable: } tolerated for 30s, which has passed"}}},
		{"own toleration of the implied taint", []*corev1.Pod{newPod("p", boundTo("h1"), tolerate(TaintNodeUnreachable, secs(0)))},
			[]Node{node("h1", func(n *Node) { n.Unreachable = true })},
			[]Eviction{{Pod: "default/p", Node: "h1", Taint: unreachable,
				Reason: "NoExecute taint {node.kubernetes.io/unreachable: } tolerated for 0s, which has passed"}}},
		{"an empty-key NoExecute toleration keeps the defaults out", []*corev1.Pod{newPod("p", boundTo("h1"),
			tolerations(corev1.Toleration{Key: "x", Operator: corev1.TolerationOpExists}, corev1.Toleration{Effect: corev1.TaintEffectNoExecute, Operator: corev1.TolerationOpExists, TolerationSeconds: secs(60)}))},
			[]Node{node("h1", func(n *Node) { n.Ready = false }, noExec(TaintNodeNotReady, ago(2*time.Minute)))},
			[]Eviction{{Pod: "default/p", Node: "h1", Taint: at(notReady, ago(2*time.Minute)),
				Reason: "NoExecute taint {node.kubernetes.io/not-ready: } tolerated for 1m0s, which has passed"}}},
		{"the first evicting taint is named", []*corev1.Pod{newPod("p", boundTo("h1"), tolerate("a", nil))},
			[]Node{node("h1", noExec("a", nil), noExec("b", nil), noExec("c", nil))},
			[]Eviction{{Pod: "default/p", Node: "h1", Taint: corev1.Taint{Key: "b", Effect: corev1.TaintEffectNoExecute},
				Reason: "untolerated NoExecute taint {b: }"}}},
		{"left out: unbound, finished, deleting, on a missing node", []*corev1.Pod{
			newPod("unbound"), newPod("done", boundTo("h1"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
			newPod("failed", boundTo("h1"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
			newPod("leaving", boundTo("h1"), deleting()), newPod("lost", boundTo("h9")), nil,
		}, []Node{node("h1", noExec("gone", nil))}, nil},
		{"sorted by pod", []*corev1.Pod{newPod("c", boundTo("h1")), newPod("a", boundTo("h2")), newPod("b", boundTo("h1")), newPod("z", boundTo("h3"))},
			[]Node{node("h1", noExec("gone", nil)), node("h2", noExec("gone", nil)), node("h3")},
			[]Eviction{
				{Pod: "default/a", Node: "h2", Taint: gone, Reason: untoleratedGone},
				{Pod: "default/b", Node: "h1", Taint: gone, Reason: untoleratedGone},
				{Pod: "default/c", Node: "h1", Taint: gone, Reason: untoleratedGone},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []*corev1.Pod
			for _, p := range tt.pods {
				before = append(before, p.DeepCopy())
			}
			nodesBefore := slices.Clone(tt.nodes)
			got := Evictions(tt.pods, tt.nodes, now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Evictions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tt.pods); diff != "" {
				t.Errorf("pods modified:\n%s", diff)
			}
			if diff := cmp.Diff(nodesBefore, tt.nodes); diff != "" {
				t.Errorf("nodes modified:\n%s", diff)
			}
		})
	}
}
