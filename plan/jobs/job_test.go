package jobs

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var podName = regexp.MustCompile(`^[a-z0-9-]+-[bcdfghjklmnpqrstvwxz2456789]{5}$`)

func TestNewJobIsAdmittedAndStarted(t *testing.T) {
	r := run(t, input(t0, newJob("pi")))
	job := r.job("pi")
	if job.UID == "" || !job.CreationTimestamp.Time.Equal(t0) {
		t.Fatalf("uid %q, creationTimestamp %v: want both set", job.UID, job.CreationTimestamp)
	}
	uid := string(job.UID)
	wantSpec := batchv1.JobSpec{
		Completions: ptr(int32(1)), Parallelism: ptr(int32(1)), BackoffLimit: ptr(int32(6)),
		CompletionMode: ptr(batchv1.NonIndexedCompletion), Suspend: ptr(false),
		PodReplacementPolicy: ptr(batchv1.TerminatingOrFailed),
		Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: uid}},
	}
	gotSpec := job.Spec.DeepCopy()
	gotSpec.Template = batchv1.JobSpec{}.Template
	if diff := cmp.Diff(wantSpec, *gotSpec); diff != "" {
		t.Errorf("defaulted spec (-want +got):\n%s", diff)
	}
	wantLabels := map[string]string{"app": "pi", "job-name": "pi", batchv1.JobNameLabel: "pi", "controller-uid": uid, batchv1.ControllerUidLabel: uid}
	if diff := cmp.Diff(wantLabels, job.Spec.Template.Labels); diff != "" {
		t.Errorf("template labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"app": "pi"}, job.Labels); diff != "" {
		t.Errorf("job labels copied from the template before the generated ones (-want +got):\n%s", diff)
	}

	pods := r.createdPods()
	if len(pods) != 1 {
		t.Fatalf("created %v, want one pod", names(pods))
	}
	p := pods[0]
	if !podName.MatchString(p.Name) || !strings.HasPrefix(p.Name, "pi-") || len(p.Name) != len("pi-")+5 {
		t.Errorf("pod name %q, want pi-<5 chars>", p.Name)
	}
	if diff := cmp.Diff(wantLabels, p.Labels); diff != "" {
		t.Errorf("pod labels (-want +got):\n%s", diff)
	}
	ref := metav1.GetControllerOf(p)
	if ref == nil || ref.UID != job.UID || ref.Kind != "Job" || ref.APIVersion != "batch/v1" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("owner reference %+v, want the Job as controller", ref)
	}
	if diff := cmp.Diff([]string{batchv1.JobTrackingFinalizer}, p.Finalizers); diff != "" {
		t.Errorf("finalizers (-want +got):\n%s", diff)
	}
	if p.UID == "" || p.Status.Phase != corev1.PodPending || p.Kind != "Pod" || p.APIVersion != "v1" {
		t.Errorf("pod uid %q phase %q gvk %s/%s", p.UID, p.Status.Phase, p.APIVersion, p.Kind)
	}
	want := batchv1.JobStatus{StartTime: mt(t0), Active: 1, Ready: ptr(int32(0)), Terminating: ptr(int32(0))}
	if diff := cmp.Diff(want, job.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"SuccessfulCreate"}, r.reasons()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestSeedMakesNamesAndUIDs(t *testing.T) {
	a := ReconcileJobs(input(t0, newJob("pi")))
	in := input(t0, newJob("pi"))
	in.Seed = "other"
	b := ReconcileJobs(in)
	ja, jb := a.Put[0].(*batchv1.Job), b.Put[0].(*batchv1.Job)
	pa, pb := a.Put[1].(*corev1.Pod), b.Put[1].(*corev1.Pod)
	if ja.UID == jb.UID || pa.Name == pb.Name || pa.UID == pb.UID {
		t.Errorf("different seeds gave the same uid or name: %s %s %s", ja.UID, pa.Name, pa.UID)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(string(ja.UID)) {
		t.Errorf("uid %q is not a version 4 UUID", ja.UID)
	}
}

func TestJobPods(t *testing.T) {
	tests := []struct {
		name        string
		job         *batchv1.Job
		pods        func(*batchv1.Job) []*corev1.Pod
		now         time.Time
		wantCreated int
		wantDeleted int
		wantStatus  func(*batchv1.JobStatus) // fields checked, others ignored
		wantConds   []string
		wantEvents  []string
	}{
		{
			name: "parallelism caps active pods", job: storedJob("work", completions(10), parallelism(3)),
			wantCreated: 3,
			wantStatus:  func(s *batchv1.JobStatus) { s.Active = 3 },
			wantEvents:  []string{"SuccessfulCreate", "SuccessfulCreate", "SuccessfulCreate"},
		},
		{
			name: "remaining completions cap active pods", job: storedJob("work", completions(5), parallelism(3), succeededCount(4)),
			wantCreated: 1,
			wantStatus:  func(s *batchv1.JobStatus) { s.Active, s.Succeeded = 1, 4 },
			wantEvents:  []string{"SuccessfulCreate"},
		},
		{
			name: "running pods are kept, ready ones counted", job: storedJob("work", completions(2), parallelism(2)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", running(true)), podOf(j, "bbbbb", running(false))}
			},
			wantStatus: func(s *batchv1.JobStatus) { s.Active, s.Ready = 2, ptr(int32(1)) },
		},
		{
			name: "a succeeded pod is counted once and replaced", job: storedJob("work", completions(2)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", succeeded(ago(time.Minute)))}
			},
			wantCreated: 1,
			wantStatus:  func(s *batchv1.JobStatus) { s.Active, s.Succeeded = 1, 1 },
			wantEvents:  []string{"SuccessfulCreate"},
		},
		{
			name: "pods counted before are not counted again", job: storedJob("work", completions(3), succeededCount(1), failedCount(1)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", succeeded(ago(time.Hour)), counted()), podOf(j, "bbbbb", failed(1, ago(time.Hour)), counted()), podOf(j, "ccccc", running(true))}
			},
			wantStatus: func(s *batchv1.JobStatus) { s.Active, s.Succeeded, s.Failed, s.Ready = 1, 1, 1, ptr(int32(1)) },
		},
		{
			name: "last completion completes the Job and keeps its pods", job: storedJob("work", completions(2), succeededCount(1)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", succeeded(ago(time.Hour)), counted()), podOf(j, "bbbbb", succeeded(ago(time.Second)))}
			},
			wantStatus: func(s *batchv1.JobStatus) { s.Succeeded, s.CompletionTime = 2, mt(t0) },
			wantConds:  []string{"SuccessCriteriaMet=True/CompletionsReached", "Complete=True/CompletionsReached"},
			wantEvents: []string{"Completed"},
		},
		{
			name: "without completions the first success ends the work", job: storedJob("work", spec(func(s *batchv1.JobSpec) { s.Completions = nil }), parallelism(3)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", succeeded(ago(time.Second))), podOf(j, "bbbbb", running(true))}
			},
			wantStatus: func(s *batchv1.JobStatus) { s.Active, s.Succeeded, s.Ready = 1, 1, ptr(int32(1)) },
		},
		{
			name: "without completions the Job completes when the rest finish", job: storedJob("work", spec(func(s *batchv1.JobSpec) { s.Completions = nil }), parallelism(2), succeededCount(1)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", succeeded(ago(time.Minute)), counted()), podOf(j, "bbbbb", failed(1, ago(time.Second)))}
			},
			wantStatus: func(s *batchv1.JobStatus) { s.Succeeded, s.Failed, s.CompletionTime = 1, 1, mt(t0) },
			wantConds:  []string{"SuccessCriteriaMet=True/CompletionsReached", "Complete=True/CompletionsReached"},
			wantEvents: []string{"Completed"},
		},
		{
			name: "more pods than wanted: the least advanced go", job: storedJob("work", completions(4), parallelism(1)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", running(true)), podOf(j, "bbbbb")}
			},
			wantDeleted: 1,
			wantStatus:  func(s *batchv1.JobStatus) { s.Active, s.Ready = 1, ptr(int32(1)) },
			wantEvents:  []string{"SuccessfulDelete"},
		},
		{
			name: "backoffLimit reached fails the Job and deletes active pods", job: storedJob("work", completions(3), parallelism(2), backoffLimit(1), failedCount(1)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", failed(1, ago(time.Hour)), counted()), podOf(j, "bbbbb", failed(2, ago(time.Second))), podOf(j, "ccccc", running(true))}
			},
			wantDeleted: 1,
			wantStatus:  func(s *batchv1.JobStatus) { s.Failed = 3 },
			wantConds:   []string{"FailureTarget=True/BackoffLimitExceeded", "Failed=True/BackoffLimitExceeded"},
			wantEvents:  []string{"SuccessfulDelete", "BackoffLimitExceeded"},
		},
		{
			name: "backoffLimit 0: the first failure fails the Job", job: storedJob("work", backoffLimit(0)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", failed(1, ago(time.Second)))}
			},
			wantStatus: func(s *batchv1.JobStatus) { s.Failed = 1 },
			wantConds:  []string{"FailureTarget=True/BackoffLimitExceeded", "Failed=True/BackoffLimitExceeded"},
			wantEvents: []string{"BackoffLimitExceeded"},
		},
		{
			name: "below backoffLimit: replacement waits for the back-off", job: storedJob("work"),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", failed(1, ago(5*time.Second)))}
			},
			wantStatus: func(s *batchv1.JobStatus) { s.Failed = 1 },
		},
		{
			name: "below backoffLimit: replaced after the back-off", job: storedJob("work", failedCount(1)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", failed(1, ago(11*time.Second)), counted())}
			},
			wantCreated: 1,
			wantStatus:  func(s *batchv1.JobStatus) { s.Failed, s.Active = 1, 1 },
			wantEvents:  []string{"SuccessfulCreate"},
		},
		{
			name: "back-off doubles per consecutive failure", job: storedJob("work", failedCount(3)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{
					podOf(j, "aaaaa", failed(1, ago(5*time.Minute)), counted()),
					podOf(j, "bbbbb", failed(1, ago(3*time.Minute)), counted()),
					podOf(j, "ccccc", failed(1, ago(39*time.Second)), counted()), // 3 failures: 40 s
				}
			},
			wantStatus: func(s *batchv1.JobStatus) { s.Failed = 3 },
		},
		{
			name: "OnFailure: container restarts count towards backoffLimit", job: storedJob("work", onFailure(), backoffLimit(2)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", running(false), restarts(2))}
			},
			wantDeleted: 1,
			wantStatus:  func(s *batchv1.JobStatus) { s.Failed = 1 },
			wantConds:   []string{"FailureTarget=True/BackoffLimitExceeded", "Failed=True/BackoffLimitExceeded"},
			wantEvents:  []string{"SuccessfulDelete", "BackoffLimitExceeded"},
		},
		{
			name: "OnFailure: fewer restarts than the limit", job: storedJob("work", onFailure(), backoffLimit(3)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", running(true), restarts(2))}
			},
			wantStatus: func(s *batchv1.JobStatus) { s.Active, s.Ready = 1, ptr(int32(1)) },
		},
		{
			name: "activeDeadlineSeconds exceeded", job: storedJob("work", activeDeadline(60), startedAt(ago(61*time.Second))),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", running(true))}
			},
			wantDeleted: 1,
			wantStatus:  func(s *batchv1.JobStatus) { s.Failed = 1 },
			wantConds:   []string{"FailureTarget=True/DeadlineExceeded", "Failed=True/DeadlineExceeded"},
			wantEvents:  []string{"SuccessfulDelete", "DeadlineExceeded"},
		},
		{
			name: "activeDeadlineSeconds not yet", job: storedJob("work", activeDeadline(60), startedAt(ago(59*time.Second))),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", running(true))}
			},
			wantStatus: func(s *batchv1.JobStatus) { s.Active, s.Ready = 1, ptr(int32(1)) },
		},
		{
			name: "suspend deletes active pods without counting them", job: storedJob("work", completions(2), parallelism(2), suspended(true)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", running(true)), podOf(j, "bbbbb", running(false))}
			},
			wantDeleted: 2,
			wantConds:   []string{"Suspended=True/JobSuspended"},
			wantEvents:  []string{"SuccessfulDelete", "SuccessfulDelete", "Suspended"},
		},
		{
			name: "suspended from the start: nothing starts", job: storedJob("work", suspended(true), func(j *batchv1.Job) { j.Status.StartTime = nil }),
			wantStatus: func(s *batchv1.JobStatus) { s.StartTime = nil },
			wantConds:  []string{"Suspended=True/JobSuspended"},
			wantEvents: []string{"Suspended"},
		},
		{
			name: "resume restarts the deadline clock and creates pods", job: storedJob("work", activeDeadline(60), withCondition(batchv1.JobSuspended, "JobSuspended", ago(time.Hour))),
			wantCreated: 1,
			wantStatus:  func(s *batchv1.JobStatus) { s.Active, s.StartTime = 1, mt(t0) },
			wantConds:   []string{"Suspended=False/JobResumed"},
			wantEvents:  []string{"SuccessfulCreate", "Resumed"},
		},
		{
			name: "a Job managed by another controller is left alone", job: storedJob("work", spec(func(s *batchv1.JobSpec) { s.ManagedBy = ptr("example.com/queue") })),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pods []*corev1.Pod
			if tt.pods != nil {
				pods = tt.pods(tt.job)
			}
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			r := run(t, input(now, tt.job, pods))
			if got := len(r.createdPods()); got != tt.wantCreated {
				t.Errorf("created %d pods %v, want %d", got, names(r.createdPods()), tt.wantCreated)
			}
			if got := len(r.deletedNames("Pod")); got != tt.wantDeleted {
				t.Errorf("deleted %d pods %v, want %d", got, r.deletedNames("Pod"), tt.wantDeleted)
			}
			job := r.job(tt.job.Name)
			want := tt.job.Status.DeepCopy()
			want.Active, want.Ready, want.Terminating, want.Conditions = 0, ptr(int32(0)), ptr(int32(0)), job.Status.Conditions
			if tt.job.Spec.ManagedBy != nil {
				want.Ready, want.Terminating = nil, nil
			}
			if tt.wantStatus != nil {
				tt.wantStatus(want)
			}
			if diff := cmp.Diff(want, &job.Status); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantConds, conditions(job)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEvents, r.reasons()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			// Every finished pod that was counted lost its finalizer.
			for _, o := range r.Put {
				if p, ok := o.(*corev1.Pod); ok && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) && hasTrackingFinalizer(p) {
					t.Errorf("pod %s finished but still has the tracking finalizer", p.Name)
				}
			}
		})
	}
}

func TestFailedJobMessages(t *testing.T) {
	job := storedJob("work", backoffLimit(0))
	r := run(t, input(t0, job, podOf(job, "aaaaa", failed(3, ago(time.Second)))))
	e := r.event("BackoffLimitExceeded")
	if e == nil || e.Type != "Warning" || e.Message != "Job has reached the specified backoff limit" || e.Object.Name != "work" {
		t.Errorf("event %+v", e)
	}
	c := findCondition(r.job("work").Status.Conditions, batchv1.JobFailed)
	if c.Message != "Job has reached the specified backoff limit" || !c.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("Failed condition %+v", c)
	}
}

func TestTTLAfterFinished(t *testing.T) {
	tests := []struct {
		name       string
		job        *batchv1.Job
		pods       func(*batchv1.Job) []*corev1.Pod
		wantGone   bool
		wantPodDel []string
	}{
		{
			name: "expired: the Job and its pods are deleted", job: storedJob("work", ttl(60), completedAt(ago(61*time.Second))),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", succeeded(ago(2*time.Minute)), counted()), podOf(j, "bbbbb", failed(1, ago(3*time.Minute)), counted())}
			},
			wantGone: true, wantPodDel: []string{"work-aaaaa", "work-bbbbb"},
		},
		{
			name: "failed Jobs expire too", job: storedJob("work", ttl(0), failedAt(ago(time.Second))),
			wantGone: true,
		},
		{
			name: "not yet expired", job: storedJob("work", ttl(60), completedAt(ago(59*time.Second))),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", succeeded(ago(2*time.Minute)), counted())}
			},
		},
		{
			name: "ttl 0: deleted in the pass that completes it", job: storedJob("work", ttl(0)),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", succeeded(ago(time.Second)))}
			},
			wantGone: true, wantPodDel: []string{"work-aaaaa"},
		},
		{
			name: "no ttl: finished Jobs stay", job: storedJob("work", completedAt(ago(24*time.Hour))),
			pods: func(j *batchv1.Job) []*corev1.Pod {
				return []*corev1.Pod{podOf(j, "aaaaa", succeeded(ago(25*time.Hour)), counted())}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pods []*corev1.Pod
			if tt.pods != nil {
				pods = tt.pods(tt.job)
			}
			r := run(t, input(t0, tt.job, pods))
			if got := r.deleted("Job", "work"); got != tt.wantGone {
				t.Errorf("job deleted = %v, want %v (changes %v)", got, tt.wantGone, describe(r.Changes))
			}
			if diff := cmp.Diff(tt.wantPodDel, r.deletedNames("Pod")); diff != "" {
				t.Errorf("deleted pods (-want +got):\n%s", diff)
			}
			if !tt.wantGone && len(r.Put) > 0 {
				t.Errorf("unexpected puts: %v", describe(r.Changes))
			}
		})
	}
}

func TestIndexedJob(t *testing.T) {
	t.Run("first pods get the lowest indexes", func(t *testing.T) {
		job := storedJob("idx", indexed(), completions(3), parallelism(2))
		job.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox",
			Env: []corev1.EnvVar{{Name: completionIndexEnv, Value: "mine"}}}}
		r := run(t, input(t0, job))
		pods := r.createdPods()
		if len(pods) != 2 {
			t.Fatalf("created %v, want 2 pods", names(pods))
		}
		for i, p := range pods {
			ix := []string{"0", "1"}[i]
			if !strings.HasPrefix(p.Name, "idx-"+ix+"-") || !podName.MatchString(p.Name) || len(p.Name) != len("idx-0-")+5 {
				t.Errorf("pod name %q, want idx-%s-<5 chars>", p.Name, ix)
			}
			if p.Annotations[batchv1.JobCompletionIndexAnnotation] != ix || p.Labels[batchv1.JobCompletionIndexAnnotation] != ix {
				t.Errorf("pod %s annotations %v labels %v, want index %s", p.Name, p.Annotations, p.Labels, ix)
			}
			if p.Spec.Hostname != "idx-"+ix {
				t.Errorf("hostname %q, want idx-%s", p.Spec.Hostname, ix)
			}
			wantEnv := []corev1.EnvVar{{Name: "JOB_COMPLETION_INDEX", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}}
			if diff := cmp.Diff(wantEnv, p.Spec.Containers[0].Env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]corev1.EnvVar{{Name: completionIndexEnv, Value: "mine"}}, p.Spec.InitContainers[0].Env); diff != "" {
				t.Errorf("a container's own JOB_COMPLETION_INDEX is kept (-want +got):\n%s", diff)
			}
		}
		if r.job("idx").Status.CompletedIndexes != "" {
			t.Errorf("completedIndexes %q", r.job("idx").Status.CompletedIndexes)
		}
	})
	t.Run("completed indexes and pending ones", func(t *testing.T) {
		job := storedJob("idx", indexed(), completions(9), parallelism(3))
		var pods []*corev1.Pod
		for _, ix := range []int{0, 1, 2, 4, 6, 7} {
			pods = append(pods, podOf(job, "s"+string(rune('a'+ix))+"xxx", index(ix), succeeded(ago(time.Minute))))
		}
		pods = append(pods, podOf(job, "rxxxx", index(3), running(true)))
		r := run(t, input(t0, job, pods))
		got := r.job("idx")
		if got.Status.CompletedIndexes != "0-2,4,6,7" || got.Status.Succeeded != 6 {
			t.Errorf("completedIndexes %q succeeded %d, want 0-2,4,6,7 and 6", got.Status.CompletedIndexes, got.Status.Succeeded)
		}
		var ixs []string
		for _, p := range r.createdPods() {
			ixs = append(ixs, p.Annotations[batchv1.JobCompletionIndexAnnotation])
		}
		if diff := cmp.Diff([]string{"5", "8"}, ixs); diff != "" {
			t.Errorf("created indexes (-want +got):\n%s", diff)
		}
		if got.Status.Active != 3 {
			t.Errorf("active %d, want 3", got.Status.Active)
		}
	})
	t.Run("all indexes done completes", func(t *testing.T) {
		job := storedJob("idx", indexed(), completions(2), parallelism(2), func(j *batchv1.Job) { j.Status.CompletedIndexes = "0"; j.Status.Succeeded = 1 })
		pods := []*corev1.Pod{podOf(job, "aaaaa", index(0), succeeded(ago(time.Hour)), counted()), podOf(job, "bbbbb", index(1), succeeded(ago(time.Second)))}
		r := run(t, input(t0, job, pods))
		got := r.job("idx")
		if got.Status.CompletedIndexes != "0,1" || got.Status.Succeeded != 2 || !isFinished(got) {
			t.Errorf("status %+v", got.Status)
		}
	})
	t.Run("duplicate and out-of-range indexes are removed", func(t *testing.T) {
		job := storedJob("idx", indexed(), completions(2), parallelism(2))
		pods := []*corev1.Pod{
			podOf(job, "aaaaa", index(0), running(true)),
			podOf(job, "bbbbb", index(0)),
			podOf(job, "ccccc", index(7), running(true)),
			podOf(job, "ddddd", index(1), running(true)),
		}
		r := run(t, input(t0, job, pods))
		if diff := cmp.Diff([]string{"idx-bbbbb", "idx-ccccc"}, r.deletedNames("Pod")); diff != "" {
			t.Errorf("deleted (-want +got):\n%s", diff)
		}
	})
}

func TestBackoffLimitPerIndex(t *testing.T) {
	perIndex := func(limit int32) jobOpt {
		return func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = &limit }
	}
	t.Run("a failed index is retried with its failure count", func(t *testing.T) {
		job := storedJob("idx", indexed(), completions(2), parallelism(2), perIndex(1))
		pods := []*corev1.Pod{
			podOf(job, "aaaaa", index(0), annotation(batchv1.JobIndexFailureCountAnnotation, "0"), failed(1, ago(time.Minute))),
			podOf(job, "bbbbb", index(1), running(true)),
		}
		r := run(t, input(t0, job, pods))
		created := r.createdPods()
		if len(created) != 1 || created[0].Annotations[batchv1.JobIndexFailureCountAnnotation] != "1" || created[0].Annotations[batchv1.JobCompletionIndexAnnotation] != "0" {
			t.Fatalf("created %v", describe(r.Changes))
		}
		if got := r.job("idx"); got.Status.FailedIndexes == nil || *got.Status.FailedIndexes != "" || got.Status.Failed != 1 {
			t.Errorf("failedIndexes %v failed %d", got.Status.FailedIndexes, got.Status.Failed)
		}
	})
	t.Run("an index past its limit fails; the Job fails when the rest is done", func(t *testing.T) {
		job := storedJob("idx", indexed(), completions(2), parallelism(2), perIndex(1))
		pods := []*corev1.Pod{
			podOf(job, "aaaaa", index(0), annotation(batchv1.JobIndexFailureCountAnnotation, "1"), failed(1, ago(time.Minute))),
			podOf(job, "bbbbb", index(1), succeeded(ago(time.Minute))),
		}
		r := run(t, input(t0, job, pods))
		got := r.job("idx")
		if got.Status.FailedIndexes == nil || *got.Status.FailedIndexes != "0" || got.Status.CompletedIndexes != "1" {
			t.Errorf("failedIndexes %v completedIndexes %q", got.Status.FailedIndexes, got.Status.CompletedIndexes)
		}
		if diff := cmp.Diff([]string{"FailureTarget=True/FailedIndexes", "Failed=True/FailedIndexes"}, conditions(got)); diff != "" {
			t.Errorf("conditions (-want +got):\n%s", diff)
		}
		if len(r.createdPods()) != 0 {
			t.Errorf("created %v", names(r.createdPods()))
		}
	})
	t.Run("maxFailedIndexes", func(t *testing.T) {
		job := storedJob("idx", indexed(), completions(4), parallelism(4), perIndex(0), spec(func(s *batchv1.JobSpec) { s.MaxFailedIndexes = ptr(int32(0)) }))
		pods := []*corev1.Pod{
			podOf(job, "aaaaa", index(0), failed(1, ago(time.Second))),
			podOf(job, "bbbbb", index(1), running(true)),
		}
		r := run(t, input(t0, job, pods))
		if diff := cmp.Diff([]string{"FailureTarget=True/MaxFailedIndexesExceeded", "Failed=True/MaxFailedIndexesExceeded"}, conditions(r.job("idx"))); diff != "" {
			t.Errorf("conditions (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"idx-bbbbb"}, r.deletedNames("Pod")); diff != "" {
			t.Errorf("deleted (-want +got):\n%s", diff)
		}
	})
}

func TestPodFailurePolicy(t *testing.T) {
	withPolicy := func(rules ...batchv1.PodFailurePolicyRule) jobOpt {
		return func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: rules}
			j.Spec.PodReplacementPolicy = ptr(batchv1.Failed)
		}
	}
	failJob42 := batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionFailJob,
		OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}}
	ignoreDisruption := batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionIgnore,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}
	ignore137 := batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionIgnore,
		OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{137}}}

	t.Run("FailJob on an exit code", func(t *testing.T) {
		job := storedJob("work", completions(2), parallelism(2), withPolicy(ignoreDisruption, failJob42))
		pods := []*corev1.Pod{podOf(job, "aaaaa", failed(42, ago(time.Second))), podOf(job, "bbbbb", running(true))}
		r := run(t, input(t0, job, pods))
		got := r.job("work")
		if diff := cmp.Diff([]string{"FailureTarget=True/PodFailurePolicy", "Failed=True/PodFailurePolicy"}, conditions(got)); diff != "" {
			t.Errorf("conditions (-want +got):\n%s", diff)
		}
		want := "Container main for pod default/work-aaaaa failed with exit code 42 matching FailJob rule at index 1"
		if c := findCondition(got.Status.Conditions, batchv1.JobFailed); c.Message != want {
			t.Errorf("message %q, want %q", c.Message, want)
		}
		if got.Status.Failed != 2 {
			t.Errorf("failed %d, want 2 (the failed pod and the deleted running one)", got.Status.Failed)
		}
	})
	t.Run("Ignore does not count and the pod is replaced", func(t *testing.T) {
		job := storedJob("work", backoffLimit(0), withPolicy(ignore137))
		pods := []*corev1.Pod{podOf(job, "aaaaa", failed(137, ago(time.Minute)))}
		r := run(t, input(t0, job, pods))
		got := r.job("work")
		if got.Status.Failed != 0 || isFinished(got) || len(r.createdPods()) != 1 {
			t.Errorf("failed %d finished %v created %v", got.Status.Failed, isFinished(got), names(r.createdPods()))
		}
	})
	t.Run("no rule matches: counted", func(t *testing.T) {
		job := storedJob("work", backoffLimit(0), withPolicy(ignore137))
		pods := []*corev1.Pod{podOf(job, "aaaaa", failed(1, ago(time.Minute)))}
		r := run(t, input(t0, job, pods))
		if diff := cmp.Diff([]string{"FailureTarget=True/BackoffLimitExceeded", "Failed=True/BackoffLimitExceeded"}, conditions(r.job("work"))); diff != "" {
			t.Errorf("conditions (-want +got):\n%s", diff)
		}
	})
	t.Run("only failed pods are replaced: a deleting pod is not", func(t *testing.T) {
		job := storedJob("work", withPolicy(ignore137))
		pods := []*corev1.Pod{podOf(job, "aaaaa", running(true), func(p *corev1.Pod) { p.DeletionTimestamp = mt(ago(time.Second)) })}
		r := run(t, input(t0, job, pods))
		if len(r.createdPods()) != 1 || r.job("work").Status.Failed != 0 {
			t.Errorf("created %v failed %d", names(r.createdPods()), r.job("work").Status.Failed)
		}
	})
}

func TestSuccessPolicy(t *testing.T) {
	job := storedJob("idx", indexed(), completions(4), parallelism(4), spec(func(s *batchv1.JobSpec) {
		s.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr("0-3"), SucceededCount: ptr(int32(2))}}}
	}))
	pods := []*corev1.Pod{
		podOf(job, "aaaaa", index(0), succeeded(ago(time.Second))),
		podOf(job, "bbbbb", index(1), succeeded(ago(time.Second))),
		podOf(job, "ccccc", index(2), running(true)),
	}
	r := run(t, input(t0, job, pods))
	got := r.job("idx")
	if diff := cmp.Diff([]string{"SuccessCriteriaMet=True/SuccessPolicy", "Complete=True/SuccessPolicy"}, conditions(got)); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if got.Status.Failed != 0 || got.Status.CompletedIndexes != "0,1" {
		t.Errorf("failed %d completed %q: running pods of a successful Job are not failures", got.Status.Failed, got.Status.CompletedIndexes)
	}
	if diff := cmp.Diff([]string{"idx-ccccc"}, r.deletedNames("Pod")); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
}

func TestOrphanPodsAreCollected(t *testing.T) {
	gone := storedJob("gone")
	job := storedJob("work")
	pods := []*corev1.Pod{podOf(gone, "aaaaa", succeeded(ago(time.Hour)), counted()), podOf(job, "bbbbb", running(true))}
	other := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}}
	r := run(t, input(t0, job, pods, other))
	if diff := cmp.Diff([]string{"gone-aaaaa"}, r.deletedNames("Pod")); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
}

func TestCompletedJobIsQuiet(t *testing.T) {
	job := storedJob("work", completedAt(ago(time.Hour)), succeededCount(1))
	r := run(t, input(t0, job, podOf(job, "aaaaa", succeeded(ago(time.Hour)), counted())))
	if !r.Empty() || len(r.Events) > 0 {
		t.Errorf("changes for a finished Job: %v", describe(r.Changes))
	}
}
