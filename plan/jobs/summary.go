package jobs

import (
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// JobSummary is a Job's row in `kubectl get jobs`.
type JobSummary struct {
	Status      string // Complete, Failed, Terminating, Suspended, FailureTarget, SuccessCriteriaMet or Running
	Completions string // "2/3"; "0/1" or "0/1 of 3" without spec.completions
	Duration    string // "" before the Job starts, else "45s", "3m4s", ...
	Age         string
}

// JobStatusSummary returns the STATUS, COMPLETIONS, DURATION and AGE
// columns kubectl prints for a Job at now.
func JobStatusSummary(job *batchv1.Job, now time.Time) JobSummary {
	var s JobSummary
	if job.Spec.Completions != nil {
		s.Completions = fmt.Sprintf("%d/%d", job.Status.Succeeded, *job.Spec.Completions)
	} else if p := deref(job.Spec.Parallelism, 0); p > 1 {
		s.Completions = fmt.Sprintf("%d/1 of %d", job.Status.Succeeded, p)
	} else {
		s.Completions = fmt.Sprintf("%d/1", job.Status.Succeeded)
	}
	switch {
	case job.Status.StartTime == nil:
	case job.Status.CompletionTime == nil:
		s.Duration = duration.HumanDuration(now.Sub(job.Status.StartTime.Time))
	default:
		s.Duration = duration.HumanDuration(job.Status.CompletionTime.Sub(job.Status.StartTime.Time))
	}
	switch {
	case hasTrueCondition(job, batchv1.JobComplete):
		s.Status = "Complete"
	case hasTrueCondition(job, batchv1.JobFailed):
		s.Status = "Failed"
	case job.DeletionTimestamp != nil:
		s.Status = "Terminating"
	case hasTrueCondition(job, batchv1.JobSuspended):
		s.Status = "Suspended"
	case hasTrueCondition(job, batchv1.JobFailureTarget):
		s.Status = "FailureTarget"
	case hasTrueCondition(job, batchv1.JobSuccessCriteriaMet):
		s.Status = "SuccessCriteriaMet"
	default:
		s.Status = "Running"
	}
	s.Age = since(job.CreationTimestamp.Time, now)
	return s
}

// CronJobSummary is a CronJob's row in `kubectl get cronjobs`.
type CronJobSummary struct {
	Schedule     string
	TimeZone     string // "<none>" without spec.timeZone
	Suspend      string // "True", "False" or "<unset>"
	Active       int
	LastSchedule string // "<none>" before the first run
	Age          string
}

// CronJobStatusSummary returns the columns kubectl prints for a CronJob at
// now.
func CronJobStatusSummary(cj *batchv1.CronJob, now time.Time) CronJobSummary {
	s := CronJobSummary{
		Schedule:     cj.Spec.Schedule,
		TimeZone:     "<none>",
		Suspend:      "<unset>",
		Active:       len(cj.Status.Active),
		LastSchedule: "<none>",
		Age:          since(cj.CreationTimestamp.Time, now),
	}
	if cj.Spec.TimeZone != nil {
		s.TimeZone = *cj.Spec.TimeZone
	}
	if cj.Spec.Suspend != nil {
		s.Suspend = "False"
		if *cj.Spec.Suspend {
			s.Suspend = "True"
		}
	}
	if cj.Status.LastScheduleTime != nil {
		s.LastSchedule = since(cj.Status.LastScheduleTime.Time, now)
	}
	return s
}

func hasTrueCondition(job *batchv1.Job, t batchv1.JobConditionType) bool {
	c := findCondition(job.Status.Conditions, t)
	return c != nil && c.Status == corev1.ConditionTrue
}

// since is kubectl's translateTimestampSince.
func since(t, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}
