package jobs

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestJobNameForSchedule(t *testing.T) {
	at := time.Date(2024, 3, 1, 10, 5, 0, 0, time.UTC)
	if got, want := JobNameForSchedule("backup", at), "backup-28488125"; got != want {
		t.Errorf("JobNameForSchedule = %q, want %q", got, want)
	}
	// The same instant in another zone names the same run.
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	if got := JobNameForSchedule("backup", at.In(paris)); got != "backup-28488125" {
		t.Errorf("zoned time gives %q", got)
	}
	back, ok := ScheduledTimeFromJobName("backup", "backup-28488125")
	if !ok || !back.Equal(at) {
		t.Errorf("ScheduledTimeFromJobName = %v, %v", back, ok)
	}
	for _, bad := range []string{"backup", "backup-", "backupx-1", "backup-abc", "other-28488125", "backup--5"} {
		if _, ok := ScheduledTimeFromJobName("backup", bad); ok {
			t.Errorf("ScheduledTimeFromJobName(%q) accepted", bad)
		}
	}
}

func TestCronJob(t *testing.T) {
	// Every 5 minutes; t0 (10:00) is due, the previous run was 09:55.
	const every5 = "*/5 * * * *"
	prev := ago(5 * time.Minute)
	tests := []struct {
		name        string
		cron        *batchv1.CronJob
		jobs        func(*batchv1.CronJob) []*batchv1.Job
		now         time.Time
		wantCreated []string // Jobs created
		wantDeleted []string // Jobs deleted
		wantActive  []string
		wantLast    time.Time // status.lastScheduleTime, zero for nil
		wantEvents  []string
	}{
		{
			name: "due: the run's Job is created", cron: storedCronJob("backup", every5, lastScheduled(prev)),
			wantCreated: []string{"backup-28488120"}, wantActive: []string{"backup-28488120"}, wantLast: t0,
			wantEvents: []string{"SuccessfulCreate", "SuccessfulCreate"}, // the CronJob's Job, the Job's pod
		},
		{
			name: "due a little earlier: still the same run", cron: storedCronJob("backup", every5, lastScheduled(prev)), now: t0.Add(4 * time.Minute),
			wantCreated: []string{"backup-28488120"}, wantActive: []string{"backup-28488120"}, wantLast: t0,
			wantEvents: []string{"SuccessfulCreate", "SuccessfulCreate"},
		},
		{
			name: "first run counts from creation", cron: storedCronJob("backup", "0 * * * *"),
			wantCreated: []string{"backup-28488120"}, wantActive: []string{"backup-28488120"}, wantLast: t0,
			wantEvents: []string{"SuccessfulCreate", "SuccessfulCreate"},
		},
		{
			name: "not due", cron: storedCronJob("backup", every5, lastScheduled(t0)), now: t0.Add(4 * time.Minute),
			wantLast: t0,
		},
		{
			name: "suspended", cron: storedCronJob("backup", every5, lastScheduled(prev), cronSpec(func(s *batchv1.CronJobSpec) { s.Suspend = ptr(true) })),
			wantLast: prev,
		},
		{
			name:       "Forbid skips while a run is active",
			cron:       storedCronJob("backup", every5, lastScheduled(prev), policy(batchv1.ForbidConcurrent)),
			jobs:       func(cj *batchv1.CronJob) []*batchv1.Job { return tracked(cj, runOf(cj, prev)) },
			wantActive: []string{"backup-28488115"}, wantLast: prev,
			wantEvents: []string{"JobAlreadyActive"},
		},
		{
			name: "Forbid starts once the previous run finished",
			cron: storedCronJob("backup", every5, lastScheduled(prev), policy(batchv1.ForbidConcurrent)),
			jobs: func(cj *batchv1.CronJob) []*batchv1.Job {
				return tracked(cj, runOf(cj, prev, completedAt(ago(time.Minute)), succeededCount(1)))
			},
			wantCreated: []string{"backup-28488120"}, wantActive: []string{"backup-28488120"}, wantLast: t0,
			wantEvents: []string{"SawCompletedJob", "SuccessfulCreate", "SuccessfulCreate"},
		},
		{
			name:        "Allow runs alongside",
			cron:        storedCronJob("backup", every5, lastScheduled(prev)),
			jobs:        func(cj *batchv1.CronJob) []*batchv1.Job { return tracked(cj, runOf(cj, prev)) },
			wantCreated: []string{"backup-28488120"}, wantActive: []string{"backup-28488115", "backup-28488120"}, wantLast: t0,
			wantEvents: []string{"SuccessfulCreate", "SuccessfulCreate"},
		},
		{
			name:        "Replace deletes the active run first",
			cron:        storedCronJob("backup", every5, lastScheduled(prev), policy(batchv1.ReplaceConcurrent)),
			jobs:        func(cj *batchv1.CronJob) []*batchv1.Job { return tracked(cj, runOf(cj, prev)) },
			wantCreated: []string{"backup-28488120"}, wantDeleted: []string{"backup-28488115"},
			wantActive: []string{"backup-28488120"}, wantLast: t0,
			wantEvents: []string{"SuccessfulDelete", "SuccessfulCreate", "SuccessfulCreate"},
		},
		{
			name: "a run whose Job exists is never created again",
			cron: storedCronJob("backup", every5, lastScheduled(prev)),
			jobs: func(cj *batchv1.CronJob) []*batchv1.Job {
				return []*batchv1.Job{runOf(cj, t0, completedAt(t0.Add(time.Second)), succeededCount(1))}
			},
			now:      t0.Add(time.Minute),
			wantLast: t0,
		},
		{
			name: "a Job of another owner under the run's name blocks the run",
			cron: storedCronJob("backup", every5, lastScheduled(prev)),
			jobs: func(cj *batchv1.CronJob) []*batchv1.Job {
				j := storedJob(JobNameForSchedule("backup", t0))
				return []*batchv1.Job{j}
			},
			wantLast: prev,
		},
		{
			name: "startingDeadlineSeconds passed: the run is skipped",
			cron: storedCronJob("backup", every5, lastScheduled(prev), cronSpec(func(s *batchv1.CronJobSpec) { s.StartingDeadlineSeconds = ptr(int64(30)) })),
			now:  t0.Add(time.Minute), wantLast: prev,
		},
		{
			name: "startingDeadlineSeconds not passed",
			cron: storedCronJob("backup", every5, lastScheduled(prev), cronSpec(func(s *batchv1.CronJobSpec) { s.StartingDeadlineSeconds = ptr(int64(90)) })),
			now:  t0.Add(time.Minute), wantCreated: []string{"backup-28488120"}, wantActive: []string{"backup-28488120"}, wantLast: t0,
			wantEvents: []string{"SuccessfulCreate", "SuccessfulCreate"},
		},
		{
			name:        "many missed runs: warn and start only the latest",
			cron:        storedCronJob("backup", "* * * * *", lastScheduled(ago(3*time.Hour))),
			wantCreated: []string{"backup-28488120"}, wantActive: []string{"backup-28488120"}, wantLast: t0,
			wantEvents: []string{"TooManyMissedTimes", "SuccessfulCreate", "SuccessfulCreate"},
		},
		{
			name:        "a few missed runs: start only the latest, quietly",
			cron:        storedCronJob("backup", "* * * * *", lastScheduled(ago(time.Hour))),
			wantCreated: []string{"backup-28488120"}, wantActive: []string{"backup-28488120"}, wantLast: t0,
			wantEvents: []string{"SuccessfulCreate", "SuccessfulCreate"},
		},
		{
			name: "a finished run leaves status.active",
			cron: storedCronJob("backup", every5, lastScheduled(t0)),
			jobs: func(cj *batchv1.CronJob) []*batchv1.Job {
				return tracked(cj, runOf(cj, t0, failedAt(t0.Add(time.Minute))))
			},
			now: t0.Add(2 * time.Minute), wantLast: t0,
			wantEvents: []string{"SawCompletedJob"},
		},
		{
			name: "an active run that went missing",
			cron: storedCronJob("backup", every5, lastScheduled(t0), activeJobs(runOf(storedCronJob("backup", every5), t0))),
			now:  t0.Add(time.Minute), wantLast: t0,
			wantEvents: []string{"MissingJob"},
		},
		{
			name: "a run nobody tracked is adopted",
			cron: storedCronJob("backup", every5, lastScheduled(prev)),
			jobs: func(cj *batchv1.CronJob) []*batchv1.Job {
				return []*batchv1.Job{runOf(cj, prev)}
			},
			now: prev.Add(time.Minute), wantActive: []string{"backup-28488115"}, wantLast: prev,
			wantEvents: []string{"UnexpectedJob"},
		},
		{
			name: "unparseable schedule", cron: storedCronJob("backup", "every day"),
			wantEvents: []string{"UnparseableSchedule"},
		},
		{
			name: "unknown time zone", cron: storedCronJob("backup", every5, cronSpec(func(s *batchv1.CronJobSpec) { s.TimeZone = ptr("Mars/Olympus") })),
			wantEvents: []string{"UnknownTimeZone"},
		},
		{
			name: "schedule that never fires", cron: storedCronJob("backup", "0 0 30 2 *"),
			wantEvents: []string{"InvalidSchedule"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cj := tt.cron
			objs := []any{cj}
			if tt.jobs != nil {
				for _, j := range tt.jobs(cj) {
					objs = append(objs, j)
					if !isFinished(j) {
						objs = append(objs, podOf(j, "aaaaa", running(true)))
					}
				}
			}
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			in := input(now, objs...)
			in.LoadLocation = time.LoadLocation
			r := run(t, in)

			var created []string
			for _, o := range r.Put {
				if j, ok := o.(*batchv1.Job); ok && !contains(in.Jobs, j.Name) {
					created = append(created, j.Name)
				}
			}
			if diff := cmp.Diff(tt.wantCreated, created); diff != "" {
				t.Errorf("created Jobs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantDeleted, r.deletedNames("Job")); diff != "" {
				t.Errorf("deleted Jobs (-want +got):\n%s", diff)
			}
			got := r.cronJob("backup")
			var active []string
			for _, a := range got.Status.Active {
				active = append(active, a.Name)
			}
			if diff := cmp.Diff(tt.wantActive, active); diff != "" {
				t.Errorf("status.active (-want +got):\n%s", diff)
			}
			var last time.Time
			if got.Status.LastScheduleTime != nil {
				last = got.Status.LastScheduleTime.Time
			}
			if !last.Equal(tt.wantLast) {
				t.Errorf("lastScheduleTime %v, want %v", last, tt.wantLast)
			}
			if diff := cmp.Diff(tt.wantEvents, r.reasons()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// tracked adds jobs to cj's status.active, as the pass that created them did.
func tracked(cj *batchv1.CronJob, jobs ...*batchv1.Job) []*batchv1.Job {
	for _, j := range jobs {
		cj.Status.Active = append(cj.Status.Active, jobReference(j))
	}
	return jobs
}

func contains(jobs []*batchv1.Job, name string) bool {
	for _, j := range jobs {
		if j.Name == name {
			return true
		}
	}
	return false
}

func TestCronJobCreatesTheRun(t *testing.T) {
	cj := storedCronJob("backup", "0 9 * * *", lastScheduled(ago(25*time.Hour)), cronSpec(func(s *batchv1.CronJobSpec) {
		s.TimeZone = ptr("Europe/Paris")
		s.JobTemplate.Annotations = map[string]string{"team": "ops"}
	}))
	// 09:00 in Paris is 08:00 UTC in March.
	now := time.Date(2024, 3, 1, 8, 0, 30, 0, time.UTC)
	in := input(now, cj)
	in.LoadLocation = time.LoadLocation
	r := run(t, in)
	job := r.job("backup-28488000")
	if job == nil {
		t.Fatalf("no Job for the 08:00 UTC run: %v", describe(r.Changes))
	}
	wantAnn := map[string]string{"team": "ops", batchv1.CronJobScheduledTimestampAnnotation: "2024-03-01T09:00:00+01:00"}
	if diff := cmp.Diff(wantAnn, job.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"cron": "backup"}, job.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	ref := metav1.GetControllerOf(job)
	if ref == nil || ref.Kind != "CronJob" || ref.UID != cj.UID || ref.Name != "backup" {
		t.Errorf("owner %+v", ref)
	}
	if job.UID == "" || job.Spec.Selector == nil || job.Spec.Template.Labels[batchv1.ControllerUidLabel] != string(job.UID) || *job.Spec.BackoffLimit != 6 {
		t.Errorf("the run's Job is not admitted: uid %q selector %v", job.UID, job.Spec.Selector)
	}
	// Its pod starts in the same pass.
	if pods := r.createdPods(); len(pods) != 1 || metav1.GetControllerOf(pods[0]).UID != job.UID {
		t.Errorf("pods %v", names(pods))
	}
	got := r.cronJob("backup")
	wantActive := []corev1.ObjectReference{{Kind: "Job", APIVersion: "batch/v1", Namespace: ns, Name: job.Name, UID: job.UID}}
	if diff := cmp.Diff(wantActive, got.Status.Active); diff != "" {
		t.Errorf("active (-want +got):\n%s", diff)
	}
	if e := r.event("SuccessfulCreate"); e == nil || e.Message != "Created job backup-28488000" || e.Object.Kind != "CronJob" {
		t.Errorf("event %+v", e)
	}
}

func TestCronJobHistoryLimits(t *testing.T) {
	cj := storedCronJob("backup", "0 * * * *", lastScheduled(t0), cronSpec(func(s *batchv1.CronJobSpec) {
		s.SuccessfulJobsHistoryLimit = ptr(int32(2))
		s.FailedJobsHistoryLimit = ptr(int32(1))
	}))
	var objs []any
	objs = append(objs, cj)
	hours := func(h int) time.Time { return t0.Add(-time.Duration(h) * time.Hour) }
	for _, h := range []int{5, 4, 3, 1} { // four successes
		j := runOf(cj, hours(h), completedAt(hours(h).Add(time.Minute)), succeededCount(1))
		objs = append(objs, j, podOf(j, "aaaaa", succeeded(hours(h).Add(time.Minute)), counted()))
	}
	for _, h := range []int{6, 2} { // two failures
		j := runOf(cj, hours(h), failedAt(hours(h).Add(time.Minute)))
		objs = append(objs, j, podOf(j, "aaaaa", failed(1, hours(h).Add(time.Minute)), counted()))
	}
	running := runOf(cj, t0)
	cj.Status.Active = []corev1.ObjectReference{jobReference(running)}
	objs = append(objs, running, podOf(running, "aaaaa", running2()))
	r := run(t, input(t0.Add(time.Minute), objs...))

	want := []string{"backup-28487760", "backup-28487820", "backup-28487880"} // 6 h (failed), 5 h, 4 h
	if diff := cmp.Diff(want, r.deletedNames("Job")); diff != "" {
		t.Errorf("deleted Jobs (-want +got):\n%s", diff)
	}
	wantPods := []string{"backup-28487760-aaaaa", "backup-28487820-aaaaa", "backup-28487880-aaaaa"}
	if diff := cmp.Diff(wantPods, r.deletedNames("Pod")); diff != "" {
		t.Errorf("deleted pods (-want +got):\n%s", diff)
	}
	last := r.cronJob("backup").Status.LastSuccessfulTime
	if last == nil || !last.Time.Equal(hours(1).Add(time.Minute)) {
		t.Errorf("lastSuccessfulTime %v", last)
	}
}

func running2() podOpt { return running(true) }

// TestCronJobSeesRunFinishInTheSamePass checks that a run finishing in a
// pass updates its CronJob in that pass, so the next pass has nothing to do.
func TestCronJobSeesRunFinishInTheSamePass(t *testing.T) {
	cj := storedCronJob("backup", "0 * * * *", lastScheduled(t0))
	run0 := runOf(cj, t0, spec(func(s *batchv1.JobSpec) { s.TTLSecondsAfterFinished = ptr(int32(0)) }))
	cj.Status.Active = []corev1.ObjectReference{jobReference(run0)}
	pod := podOf(run0, "aaaaa", succeeded(t0.Add(time.Minute)))
	r := run(t, input(t0.Add(2*time.Minute), cj, run0, pod))
	got := r.cronJob("backup")
	if len(got.Status.Active) != 0 || got.Status.LastSuccessfulTime == nil || !got.Status.LastSuccessfulTime.Time.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("status %+v", got.Status)
	}
	if diff := cmp.Diff([]string{"backup-28488120"}, r.deletedNames("Job")); diff != "" {
		t.Errorf("the run's ttl 0 deletes it (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Completed", "SawCompletedJob"}, r.reasons()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestJobsOfDeletedCronJobAreCollected(t *testing.T) {
	gone := storedCronJob("gone", "0 * * * *")
	j := runOf(gone, ago(time.Hour), completedAt(ago(time.Hour)), succeededCount(1))
	r := run(t, input(t0, j, podOf(j, "aaaaa", succeeded(ago(time.Hour)), counted())))
	if diff := cmp.Diff([]string{"gone-28488060"}, r.deletedNames("Job")); diff != "" {
		t.Errorf("deleted Jobs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"gone-28488060-aaaaa"}, r.deletedNames("Pod")); diff != "" {
		t.Errorf("deleted pods (-want +got):\n%s", diff)
	}
}

func TestNewCronJobIsAdmitted(t *testing.T) {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: ns},
		Spec:       batchv1.CronJobSpec{Schedule: "0 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: newJob("x").Spec}},
	}
	r := run(t, input(t0.Add(time.Minute), cj))
	got := r.cronJob("backup")
	want := batchv1.CronJobSpec{
		Schedule: "0 * * * *", ConcurrencyPolicy: batchv1.AllowConcurrent, Suspend: ptr(false),
		SuccessfulJobsHistoryLimit: ptr(int32(3)), FailedJobsHistoryLimit: ptr(int32(1)),
		JobTemplate: cj.Spec.JobTemplate,
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if got.UID == "" || !got.CreationTimestamp.Time.Equal(t0.Add(time.Minute)) || got.Kind != "CronJob" {
		t.Errorf("uid %q creation %v kind %q", got.UID, got.CreationTimestamp, got.Kind)
	}
	if len(r.Put) != 1 {
		t.Errorf("a CronJob created after 10:00 has nothing due: %v", describe(r.Changes))
	}
}
