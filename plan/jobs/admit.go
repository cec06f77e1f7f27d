package jobs

import (
	"math"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What the API server does to a Job or CronJob when it is created, done here
// because clusterctl has no API server: an object from a manifest arrives
// without uid or creationTimestamp, and the first pass that sees it gives it
// both and the defaults below, and stores it (one Put). Later passes find
// nothing to do.

// Labels the API server puts on a Job's pod template (and so on its pods),
// with and without the batch.kubernetes.io/ prefix.
const (
	legacyJobNameLabel       = "job-name"
	legacyControllerUIDLabel = "controller-uid"
)

var (
	jobGVK     = batchv1.SchemeGroupVersion.WithKind("Job")
	cronJobGVK = batchv1.SchemeGroupVersion.WithKind("CronJob")
	podGVK     = corev1.SchemeGroupVersion.WithKind("Pod")
)

// admitJob gives a Job that has never been stored its uid, creationTimestamp,
// defaults (SetDefaults_Job) and generated selector (the Job strategy's
// generateSelector).
// It does nothing to a Job that has a uid and a selector: that Job was
// admitted before. (`clusterctl apply` gives objects their uid and
// creationTimestamp itself, so a uid alone does not mean admitted.)
func admitJob(job *batchv1.Job, seed string, now time.Time) {
	job.SetGroupVersionKind(jobGVK)
	if job.UID != "" && job.Spec.Selector != nil {
		return
	}
	if job.UID == "" {
		job.UID = deriveUID(seed, "Job", job.Namespace, job.Name, timeKey(now))
	}
	if job.CreationTimestamp.IsZero() {
		job.CreationTimestamp = metav1.NewTime(now)
	}
	defaultJobSpec(&job.Spec, &job.ObjectMeta)
	if job.Spec.ManualSelector == nil || !*job.Spec.ManualSelector {
		generateSelector(job)
	}
}

// defaultJobSpec is SetDefaults_Job.
func defaultJobSpec(spec *batchv1.JobSpec, meta *metav1.ObjectMeta) {
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions = ptr(int32(1))
		spec.Parallelism = ptr(int32(1))
	}
	if spec.Parallelism == nil {
		spec.Parallelism = ptr(int32(1))
	}
	if spec.BackoffLimit == nil {
		if spec.BackoffLimitPerIndex != nil {
			spec.BackoffLimit = ptr(int32(math.MaxInt32))
		} else {
			spec.BackoffLimit = ptr(int32(6))
		}
	}
	if meta != nil && len(meta.Labels) == 0 && spec.Template.Labels != nil {
		meta.Labels = copyMap(spec.Template.Labels)
	}
	if spec.CompletionMode == nil {
		spec.CompletionMode = ptr(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = ptr(false)
	}
	if spec.PodFailurePolicy != nil {
		for _, rule := range spec.PodFailurePolicy.Rules {
			for i := range rule.OnPodConditions {
				if rule.OnPodConditions[i].Status == "" {
					rule.OnPodConditions[i].Status = corev1.ConditionTrue
				}
			}
		}
	}
	if spec.PodReplacementPolicy == nil {
		if spec.PodFailurePolicy != nil {
			spec.PodReplacementPolicy = ptr(batchv1.Failed)
		} else {
			spec.PodReplacementPolicy = ptr(batchv1.TerminatingOrFailed)
		}
	}
}

// generateSelector labels the pod template with the job's name and uid and
// selects on the uid, leaving labels the user set alone.
func generateSelector(job *batchv1.Job) {
	if job.Spec.Template.Labels == nil {
		job.Spec.Template.Labels = make(map[string]string)
	}
	for _, l := range []string{legacyJobNameLabel, batchv1.JobNameLabel} {
		if _, ok := job.Spec.Template.Labels[l]; !ok {
			job.Spec.Template.Labels[l] = job.Name
		}
	}
	for _, l := range []string{legacyControllerUIDLabel, batchv1.ControllerUidLabel} {
		if _, ok := job.Spec.Template.Labels[l]; !ok {
			job.Spec.Template.Labels[l] = string(job.UID)
		}
	}
	if job.Spec.Selector == nil {
		job.Spec.Selector = &metav1.LabelSelector{}
	}
	if job.Spec.Selector.MatchLabels == nil {
		job.Spec.Selector.MatchLabels = make(map[string]string)
	}
	if _, ok := job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel]; !ok {
		job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = string(job.UID)
	}
}

// admitCronJob gives a CronJob that has never been stored its uid,
// creationTimestamp and defaults (SetDefaults_CronJob).
// It does nothing to a CronJob that has a uid.
func admitCronJob(cj *batchv1.CronJob, seed string, now time.Time) {
	cj.SetGroupVersionKind(cronJobGVK)
	if cj.UID != "" {
		return
	}
	cj.UID = deriveUID(seed, "CronJob", cj.Namespace, cj.Name, timeKey(now))
	if cj.CreationTimestamp.IsZero() {
		cj.CreationTimestamp = metav1.NewTime(now)
	}
	if cj.Spec.ConcurrencyPolicy == "" {
		cj.Spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if cj.Spec.Suspend == nil {
		cj.Spec.Suspend = ptr(false)
	}
	if cj.Spec.SuccessfulJobsHistoryLimit == nil {
		cj.Spec.SuccessfulJobsHistoryLimit = ptr(int32(3))
	}
	if cj.Spec.FailedJobsHistoryLimit == nil {
		cj.Spec.FailedJobsHistoryLimit = ptr(int32(1))
	}
}

func ptr[T any](v T) *T { return &v }

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
