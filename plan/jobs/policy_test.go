package jobs

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMatchPodFailurePolicy(t *testing.T) {
	job := storedJob("work")
	exit := func(code int32, container string) podOpt {
		return func(p *corev1.Pod) {
			failed(code, ago(time.Second))(p)
			p.Status.ContainerStatuses[0].Name = container
		}
	}
	withCond := func(ct corev1.PodConditionType) podOpt {
		return func(p *corev1.Pod) {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: ct, Status: corev1.ConditionTrue})
		}
	}
	onExit := func(action batchv1.PodFailurePolicyAction, op batchv1.PodFailurePolicyOnExitCodesOperator, container *string, codes ...int32) batchv1.PodFailurePolicyRule {
		return batchv1.PodFailurePolicyRule{Action: action, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{ContainerName: container, Operator: op, Values: codes}}
	}
	onCond := func(action batchv1.PodFailurePolicyAction, ct corev1.PodConditionType) batchv1.PodFailurePolicyRule {
		return batchv1.PodFailurePolicyRule{Action: action, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: ct, Status: corev1.ConditionTrue}}}
	}
	tests := []struct {
		name       string
		rules      []batchv1.PodFailurePolicyRule
		pod        *corev1.Pod
		wantMsg    string
		wantCount  bool
		wantAction batchv1.PodFailurePolicyAction
	}{
		{"no rules", nil, podOf(job, "a", exit(1, "main")), "", true, ""},
		{"In matches", []batchv1.PodFailurePolicyRule{onExit(batchv1.PodFailurePolicyActionCount, batchv1.PodFailurePolicyOnExitCodesOpIn, nil, 1, 2)},
			podOf(job, "a", exit(2, "main")), "", true, batchv1.PodFailurePolicyActionCount},
		{"NotIn matches", []batchv1.PodFailurePolicyRule{onExit(batchv1.PodFailurePolicyActionIgnore, batchv1.PodFailurePolicyOnExitCodesOpNotIn, nil, 1, 2)},
			podOf(job, "a", exit(3, "main")), "", false, batchv1.PodFailurePolicyActionIgnore},
		{"NotIn does not match", []batchv1.PodFailurePolicyRule{onExit(batchv1.PodFailurePolicyActionIgnore, batchv1.PodFailurePolicyOnExitCodesOpNotIn, nil, 3)},
			podOf(job, "a", exit(3, "main")), "", true, ""},
		{"exit code 0 never matches", []batchv1.PodFailurePolicyRule{onExit(batchv1.PodFailurePolicyActionIgnore, batchv1.PodFailurePolicyOnExitCodesOpNotIn, nil, 1)},
			podOf(job, "a", exit(0, "main")), "", true, ""},
		{"other container", []batchv1.PodFailurePolicyRule{onExit(batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyOnExitCodesOpIn, ptr("sidecar"), 1)},
			podOf(job, "a", exit(1, "main")), "", true, ""},
		{"named container", []batchv1.PodFailurePolicyRule{onExit(batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyOnExitCodesOpIn, ptr("main"), 1)},
			podOf(job, "a", exit(1, "main")), "Container main for pod default/work-a failed with exit code 1 matching FailJob rule at index 0", true, batchv1.PodFailurePolicyActionFailJob},
		{"FailIndex", []batchv1.PodFailurePolicyRule{onExit(batchv1.PodFailurePolicyActionFailIndex, batchv1.PodFailurePolicyOnExitCodesOpIn, nil, 1)},
			podOf(job, "a", exit(1, "main")), "", true, batchv1.PodFailurePolicyActionFailIndex},
		{"pod condition FailJob", []batchv1.PodFailurePolicyRule{onCond(batchv1.PodFailurePolicyActionFailJob, corev1.DisruptionTarget)},
			podOf(job, "a", exit(137, "main"), withCond(corev1.DisruptionTarget)), "Pod default/work-a has condition DisruptionTarget matching FailJob rule at index 0", true, batchv1.PodFailurePolicyActionFailJob},
		{"pod condition Count", []batchv1.PodFailurePolicyRule{onCond(batchv1.PodFailurePolicyActionCount, corev1.DisruptionTarget)},
			podOf(job, "a", exit(137, "main"), withCond(corev1.DisruptionTarget)), "", true, batchv1.PodFailurePolicyActionCount},
		{"first matching rule wins", []batchv1.PodFailurePolicyRule{
			onCond(batchv1.PodFailurePolicyActionIgnore, corev1.DisruptionTarget),
			onExit(batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyOnExitCodesOpIn, nil, 137),
		}, podOf(job, "a", exit(137, "main"), withCond(corev1.DisruptionTarget)), "", false, batchv1.PodFailurePolicyActionIgnore},
		{"init container exit code", []batchv1.PodFailurePolicyRule{onExit(batchv1.PodFailurePolicyActionIgnore, batchv1.PodFailurePolicyOnExitCodesOpIn, nil, 5)},
			podOf(job, "a", func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 5}}}}
			}), "", false, batchv1.PodFailurePolicyActionIgnore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var policy *batchv1.PodFailurePolicy
			if tt.rules != nil {
				policy = &batchv1.PodFailurePolicy{Rules: tt.rules}
			}
			msg, count, action := matchPodFailurePolicy(policy, tt.pod)
			if got := deref(msg, ""); got != tt.wantMsg {
				t.Errorf("message %q, want %q", got, tt.wantMsg)
			}
			if count != tt.wantCount || deref(action, "") != tt.wantAction {
				t.Errorf("count %v action %v, want %v %v", count, deref(action, ""), tt.wantCount, tt.wantAction)
			}
		})
	}
}

func TestMatchSuccessPolicy(t *testing.T) {
	tests := []struct {
		name  string
		rules []batchv1.SuccessPolicyRule
		done  string
		want  string
	}{
		{"count only, met", []batchv1.SuccessPolicyRule{{SucceededCount: ptr(int32(2))}}, "3,5", "Matched rules at index 0"},
		{"count only, not met", []batchv1.SuccessPolicyRule{{SucceededCount: ptr(int32(3))}}, "3,5", ""},
		{"indexes only, all needed", []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr("0-2")}}, "0,2", ""},
		{"indexes only, met", []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr("0-2")}}, "0-2,7", "Matched rules at index 0"},
		{"second rule", []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr("0")}, {SucceededIndexes: ptr("4-6"), SucceededCount: ptr(int32(1))}}, "5", "Matched rules at index 1"},
		{"unparsable indexes are skipped", []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr("x")}}, "0", ""},
		{"nothing succeeded", []batchv1.SuccessPolicyRule{{SucceededCount: ptr(int32(0))}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, ok := matchSuccessPolicy(&batchv1.SuccessPolicy{Rules: tt.rules}, 10, parseIndexes(tt.done, 10))
			if msg != tt.want || ok != (tt.want != "") {
				t.Errorf("matchSuccessPolicy = %q, %v, want %q", msg, ok, tt.want)
			}
		})
	}
}

func TestSortActivePods(t *testing.T) {
	job := storedJob("work")
	created := func(d time.Duration) podOpt {
		return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(ago(d)) }
	}
	pods := []*corev1.Pod{
		podOf(job, "ready-old", running(true), created(time.Hour)),
		podOf(job, "ready-new", running(true), created(time.Minute)),
		podOf(job, "unready", running(false)),
		podOf(job, "unready-restarts", running(false), restarts(3)),
		podOf(job, "pending"),
		podOf(job, "unscheduled", func(p *corev1.Pod) { p.Spec.NodeName = "" }),
		podOf(job, "unknown", func(p *corev1.Pod) { p.Status.Phase = corev1.PodUnknown }),
	}
	sortActivePods(pods)
	want := []string{"work-unscheduled", "work-pending", "work-unknown", "work-unready-restarts", "work-unready", "work-ready-new", "work-ready-old"}
	if diff := cmp.Diff(want, names(pods)); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestAdmissionDefaults(t *testing.T) {
	t.Run("pod failure policy", func(t *testing.T) {
		j := newJob("work", spec(func(s *batchv1.JobSpec) {
			s.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:          batchv1.PodFailurePolicyActionIgnore,
				OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}},
			}}}
		}))
		admitJob(j, "s", t0)
		if *j.Spec.PodReplacementPolicy != batchv1.Failed || j.Spec.PodFailurePolicy.Rules[0].OnPodConditions[0].Status != corev1.ConditionTrue {
			t.Errorf("podReplacementPolicy %v, pattern status %q", *j.Spec.PodReplacementPolicy, j.Spec.PodFailurePolicy.Rules[0].OnPodConditions[0].Status)
		}
	})
	t.Run("backoffLimitPerIndex", func(t *testing.T) {
		j := newJob("work", indexed(), completions(3), spec(func(s *batchv1.JobSpec) { s.BackoffLimitPerIndex = ptr(int32(1)) }))
		admitJob(j, "s", t0)
		if *j.Spec.BackoffLimit != math.MaxInt32 || *j.Spec.Parallelism != 1 {
			t.Errorf("backoffLimit %d parallelism %d", *j.Spec.BackoffLimit, *j.Spec.Parallelism)
		}
	})
	t.Run("user labels and manual selector are kept", func(t *testing.T) {
		j := newJob("work", spec(func(s *batchv1.JobSpec) {
			s.ManualSelector = ptr(true)
			s.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "work"}}
		}))
		j.Labels = map[string]string{"team": "a"}
		admitJob(j, "s", t0)
		if diff := cmp.Diff(map[string]string{"app": "work"}, j.Spec.Template.Labels); diff != "" {
			t.Errorf("template labels with a manual selector (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"team": "a"}, j.Labels); diff != "" {
			t.Errorf("labels (-want +got):\n%s", diff)
		}
	})
	t.Run("a stored Job is not defaulted again", func(t *testing.T) {
		j := storedJob("work")
		j.Spec.Suspend = nil
		admitJob(j, "s", t0)
		if j.Spec.Suspend != nil {
			t.Error("defaults applied to a Job that has a uid")
		}
	})
}

func TestIndexBackoff(t *testing.T) {
	job := storedJob("idx", indexed(), completions(1), spec(func(s *batchv1.JobSpec) { s.BackoffLimitPerIndex = ptr(int32(3)) }))
	// Second failure of index 0: 20 s back-off.
	pod := podOf(job, "aaaaa", index(0), annotation(batchv1.JobIndexFailureCountAnnotation, "1"), failed(1, ago(15*time.Second)))
	r := run(t, input(t0, job, pod))
	if len(r.createdPods()) != 0 {
		t.Fatalf("created %v during the back-off", names(r.createdPods()))
	}
	r = run(t, input(t0.Add(6*time.Second), job, pod))
	if c := r.createdPods(); len(c) != 1 || c[0].Annotations[batchv1.JobIndexFailureCountAnnotation] != "2" {
		t.Errorf("created %v", describe(r.Changes))
	}
}

func TestSeveralCronJobsInOrder(t *testing.T) {
	b := storedCronJob("b", "0 * * * *", lastScheduled(ago(time.Hour)))
	a := storedCronJob("a", "0 * * * *", lastScheduled(ago(time.Hour)))
	r := run(t, input(t0, b, a))
	var order []string
	for _, e := range r.Events {
		if e.Object.Kind == "CronJob" {
			order = append(order, e.Object.Name)
		}
	}
	if diff := cmp.Diff([]string{"a", "b"}, order); diff != "" {
		t.Errorf("CronJob order (-want +got):\n%s", diff)
	}
}
