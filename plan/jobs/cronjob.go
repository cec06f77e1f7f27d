package jobs

import (
	"fmt"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/plan/controller"
	"github.com/clusterctl/clusterctl/plan/cronsched"
)

// childrenOf returns the live Jobs a CronJob controls, by name.
func (r *reconciler) childrenOf(cj *batchv1.CronJob) []*batchv1.Job {
	var out []*batchv1.Job
	for _, key := range r.byOwner[cj.UID] {
		if job := r.jobs[key]; job != nil && job.Namespace == cj.Namespace && isControlledBy(job, cj.UID) {
			out = append(out, job)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func isControlledBy(job *batchv1.Job, uid types.UID) bool {
	ref := metav1.GetControllerOf(job)
	return ref != nil && ref.UID == uid
}

// syncCronJobStatus is the first half of Kubernetes' syncCronJob: it keeps
// status.active and status.lastSuccessfulTime in step with the Jobs. It also
// sees Jobs deleted earlier in the pass (a finished Job whose TTL expired),
// so that their outcome is not lost.
func (r *reconciler) syncCronJobStatus(cj *batchv1.CronJob) {
	seen := map[types.UID]bool{}
	observe := func(job *batchv1.Job, live bool) {
		seen[job.UID] = true
		found := inActiveList(cj, job.UID)
		ftype, finished := finishedType(job)
		switch {
		case !found && !finished && live:
			// Kubernetes only warns here; clusterctl adopts the Job into
			// status.active so that concurrencyPolicy sees it. It happens
			// when a run was started by someone else under the run's name.
			cj.Status.Active = append(cj.Status.Active, jobReference(job))
			r.event(cronJobRef(cj), controller.EventWarning, "UnexpectedJob", "Saw a job that the controller did not create or forgot: "+job.Name)
		case found && finished:
			deleteFromActiveList(cj, job.UID)
			r.event(cronJobRef(cj), controller.EventNormal, "SawCompletedJob", fmt.Sprintf("Saw completed job: %s, status: %v", job.Name, ftype))
		}
		if finished && ftype == batchv1.JobComplete && job.Status.CompletionTime != nil {
			if last := cj.Status.LastSuccessfulTime; last == nil || job.Status.CompletionTime.After(last.Time) {
				cj.Status.LastSuccessfulTime = job.Status.CompletionTime.DeepCopy()
			}
		}
	}
	for _, job := range r.childrenOf(cj) {
		observe(job, true)
	}
	var gone []*batchv1.Job
	for key, last := range r.lastState {
		if r.jobs[key] == nil && last.Namespace == cj.Namespace && isControlledBy(last, cj.UID) && isFinished(last) {
			gone = append(gone, last)
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].Name < gone[j].Name })
	for _, job := range gone {
		observe(job, false)
	}
	// An active Job that is gone will never finish.
	var kept []corev1.ObjectReference
	for _, ref := range cj.Status.Active {
		if !seen[ref.UID] {
			r.event(cronJobRef(cj), controller.EventNormal, "MissingJob", "Active job went missing: "+ref.Name)
			continue
		}
		kept = append(kept, ref)
	}
	if len(kept) != len(cj.Status.Active) {
		cj.Status.Active = kept
	}
}

// scheduleCronJob is the second half of Kubernetes' syncCronJob: it starts
// the run that is due, if any, honouring suspend, startingDeadlineSeconds
// and concurrencyPolicy. A run whose Job exists is never started again.
func (r *reconciler) scheduleCronJob(cj *batchv1.CronJob) {
	if cj.DeletionTimestamp != nil || cj.Annotations[CronJobNodeAnnotation] != "" {
		return // a node-bound CronJob is fired by its node (noderuns.go)
	}
	ref := cronJobRef(cj)
	if tz := cj.Spec.TimeZone; tz != nil {
		if _, err := cronsched.LoadTimeZone(*tz, r.load); err != nil {
			r.event(ref, controller.EventWarning, "UnknownTimeZone", fmt.Sprintf("invalid timeZone: %q: %s", *tz, err))
			return
		}
	}
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		return
	}
	sched, err := cronsched.Parse(cj.Spec.Schedule, cj.Spec.TimeZone, r.load)
	if err != nil {
		r.event(ref, controller.EventWarning, "UnparseableSchedule", fmt.Sprintf("unparseable schedule: %q : %s", cj.Spec.Schedule, err))
		return
	}
	var last time.Time
	if cj.Status.LastScheduleTime != nil {
		last = cj.Status.LastScheduleTime.Time
	}
	due, err := sched.MostRecent(last, cj.CreationTimestamp.Time, r.now, cj.Spec.StartingDeadlineSeconds)
	if err != nil {
		r.event(ref, controller.EventWarning, "InvalidSchedule", fmt.Sprintf("invalid schedule: %s : %s", cj.Spec.Schedule, err))
		return
	}
	if due.MostRecent.IsZero() {
		return
	}
	if due.TooMany {
		r.event(ref, controller.EventWarning, "TooManyMissedTimes", cronsched.TooManyMissedMessage)
	}
	scheduled := due.MostRecent
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && scheduled.Add(time.Duration(*d)*time.Second).Before(r.now) {
		r.event(ref, controller.EventWarning, "MissSchedule", "Missed scheduled time to start a job: "+scheduled.UTC().Format(time.RFC1123Z))
		return
	}
	name := JobNameForSchedule(cj.Name, scheduled)
	if inActiveListByName(cj, name) || (cj.Status.LastScheduleTime != nil && cj.Status.LastScheduleTime.Time.Equal(scheduled)) {
		return // already processed
	}
	key := nsName{cj.Namespace, name}
	if existing := r.jobs[key]; existing != nil || r.origJobs[key] != nil {
		// The run's Job exists (Kubernetes' AlreadyExists): it is never
		// created twice. Ours but not tracked: track it.
		if existing != nil && isControlledBy(existing, cj.UID) {
			if !inActiveList(cj, existing.UID) && !isFinished(existing) {
				cj.Status.Active = append(cj.Status.Active, jobReference(existing))
			}
			cj.Status.LastScheduleTime = &metav1.Time{Time: scheduled}
		}
		return
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(cj.Status.Active) > 0 {
			r.event(ref, controller.EventNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
			return
		}
	case batchv1.ReplaceConcurrent:
		for _, a := range cj.Status.Active {
			if job := r.jobs[nsName{a.Namespace, a.Name}]; job != nil {
				r.deleteJob(job)
				r.event(ref, controller.EventNormal, "SuccessfulDelete", "Deleted job "+a.Name)
			}
		}
		cj.Status.Active = nil
	}

	job := newJobFromTemplate(cj, name, scheduled, sched.Location())
	admitJob(job, r.seed, r.now)
	r.addJob(key, job)
	r.event(ref, controller.EventNormal, "SuccessfulCreate", "Created job "+name)
	cj.Status.Active = append(cj.Status.Active, jobReference(job))
	cj.Status.LastScheduleTime = &metav1.Time{Time: scheduled}
}

// newJobFromTemplate is Kubernetes' getJobFromTemplate2: the Job of the run
// scheduled at scheduled, not admitted yet (admitJob).
func newJobFromTemplate(cj *batchv1.CronJob, name string, scheduled time.Time, loc *time.Location) *batchv1.Job {
	annotations := copyMap(cj.Spec.JobTemplate.Annotations)
	if annotations == nil {
		annotations = make(map[string]string)
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = scheduled.In(loc).Format(time.RFC3339)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       cj.Namespace,
			Labels:          copyMap(cj.Spec.JobTemplate.Labels),
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, cronJobGVK)},
		},
	}
	cj.Spec.JobTemplate.Spec.DeepCopyInto(&job.Spec)
	return job
}

// cleanupFinishedJobs deletes the oldest finished Jobs beyond
// successfulJobsHistoryLimit and failedJobsHistoryLimit, with their pods.
func (r *reconciler) cleanupFinishedJobs(cj *batchv1.CronJob) {
	if cj.DeletionTimestamp != nil || (cj.Spec.SuccessfulJobsHistoryLimit == nil && cj.Spec.FailedJobsHistoryLimit == nil) {
		return
	}
	var succeeded, failed []*batchv1.Job
	for _, job := range r.childrenOf(cj) {
		switch t, _ := finishedType(job); t {
		case batchv1.JobComplete:
			succeeded = append(succeeded, job)
		case batchv1.JobFailed:
			failed = append(failed, job)
		}
	}
	if l := cj.Spec.SuccessfulJobsHistoryLimit; l != nil {
		r.removeOldestJobs(cj, succeeded, int(*l))
	}
	if l := cj.Spec.FailedJobsHistoryLimit; l != nil {
		r.removeOldestJobs(cj, failed, int(*l))
	}
}

func (r *reconciler) removeOldestJobs(cj *batchv1.CronJob, jobs []*batchv1.Job, keep int) {
	n := len(jobs) - keep
	if n <= 0 {
		return
	}
	sort.SliceStable(jobs, func(i, j int) bool {
		a, b := jobs[i].Status.StartTime, jobs[j].Status.StartTime
		switch {
		case a == nil && b != nil:
			return false
		case a != nil && b == nil:
			return true
		case a == nil || a.Equal(b):
			return jobs[i].Name < jobs[j].Name
		}
		return a.Before(b)
	})
	for _, job := range jobs[:n] {
		r.deleteJob(job)
		deleteFromActiveList(cj, job.UID)
		r.event(cronJobRef(cj), controller.EventNormal, "SuccessfulDelete", "Deleted job "+job.Name)
	}
}

func jobReference(job *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{
		Kind:       jobGVK.Kind,
		APIVersion: batchv1.SchemeGroupVersion.String(),
		Namespace:  job.Namespace,
		Name:       job.Name,
		UID:        job.UID,
	}
}

func inActiveList(cj *batchv1.CronJob, uid types.UID) bool {
	for _, a := range cj.Status.Active {
		if a.UID == uid {
			return true
		}
	}
	return false
}

func inActiveListByName(cj *batchv1.CronJob, name string) bool {
	for _, a := range cj.Status.Active {
		if a.Name == name && a.Namespace == cj.Namespace {
			return true
		}
	}
	return false
}

func deleteFromActiveList(cj *batchv1.CronJob, uid types.UID) {
	var kept []corev1.ObjectReference
	for _, a := range cj.Status.Active {
		if a.UID != uid {
			kept = append(kept, a)
		}
	}
	if len(kept) != len(cj.Status.Active) {
		cj.Status.Active = kept
	}
}
