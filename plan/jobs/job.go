package jobs

import (
	"sort"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/plan/controller"
)

// Pod failure back-off, as the Job controller's defaults: 10 s doubling per
// consecutive failure, at most 10 min.
const (
	podFailureBackoff    = 10 * time.Second
	maxPodFailureBackoff = 10 * time.Minute
	// maxPodCreateDeletePerSync caps the pods a Job creates or deletes in
	// one pass, as Kubernetes' MaxPodCreateDeletePerSync.
	maxPodCreateDeletePerSync = 500
)

// Condition messages and reasons the Job controller writes.
const (
	msgBackoffLimit     = "Job has reached the specified backoff limit"
	msgDeadline         = "Job was active longer than specified deadline"
	msgMaxFailedIndexes = "Job has exceeded the specified maximal number of failed indexes"
	msgFailedIndexes    = "Job has failed indexes"
	msgCompletions      = "Reached expected number of succeeded pods"
)

// jobCtx is one Job's sync: Kubernetes' syncJobCtx.
type jobCtx struct {
	job        *batchv1.Job
	pods       []*corev1.Pod
	active     []*corev1.Pod
	succeeded  int32
	failed     int32
	ready      int32
	finished   *batchv1.JobCondition
	succeededI indexSet // Indexed Jobs
	failedI    indexSet // Indexed Jobs with backoffLimitPerIndex
	// uncounted are pods deleted without being counted (suspend, too many).
	uncounted map[string]bool
}

// syncJob is Kubernetes' syncJob for one Job, synchronously: the pass sees
// every pod of the Job, so there are no expectations to wait for, and a pod
// this pass deletes is gone (stopped by its node) rather than terminating.
func (r *reconciler) syncJob(job *batchv1.Job) {
	if job.Spec.ManagedBy != nil && *job.Spec.ManagedBy != batchv1.JobControllerName {
		return // another controller's Job
	}
	if isFinished(job) {
		r.expireJob(job)
		return
	}
	if m := job.Spec.CompletionMode; m != nil && *m != batchv1.NonIndexedCompletion && *m != batchv1.IndexedCompletion {
		r.event(jobRef(job), controller.EventWarning, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
		return
	}
	ctx := &jobCtx{job: job, pods: r.podsOf(job), uncounted: map[string]bool{}}
	for _, p := range ctx.pods {
		if isActive(p) {
			ctx.active = append(ctx.active, p)
			if isReady(p) {
				ctx.ready++
			}
		}
	}
	indexed := isIndexed(job)
	completions := int(deref(job.Spec.Completions, 0))

	var newSucceeded, newFailed int32
	for _, p := range ctx.pods {
		if !hasTrackingFinalizer(p) || (indexed && !validIndex(p, completions)) {
			continue
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			newSucceeded++
		case isPodFailed(p, job):
			if _, count, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); count {
				newFailed++
			}
		}
	}
	ctx.succeeded = job.Status.Succeeded + newSucceeded
	ctx.failed = job.Status.Failed + newFailed

	now := metav1.NewTime(r.now)
	if job.Status.StartTime == nil && !isSuspended(job) {
		job.Status.StartTime = &now
	}

	if c := findCondition(job.Status.Conditions, batchv1.JobSuccessCriteriaMet); c != nil && c.Status == corev1.ConditionTrue {
		ctx.finished = c.DeepCopy()
	}
	if ctx.finished == nil {
		if c := findCondition(job.Status.Conditions, batchv1.JobFailureTarget); c != nil && c.Status == corev1.ConditionTrue {
			ctx.finished = r.condition(batchv1.JobFailed, c.Reason, c.Message)
		} else if msg := failJobMessage(job, ctx.pods); msg != nil {
			ctx.finished = r.condition(batchv1.JobFailureTarget, batchv1.JobReasonPodFailurePolicy, *msg)
		}
	}
	if ctx.finished == nil {
		switch {
		case ctx.failed > deref(job.Spec.BackoffLimit, 6) || pastBackoffLimitOnFailure(job, ctx.pods):
			ctx.finished = r.condition(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, msgBackoffLimit)
		case r.pastActiveDeadline(job):
			ctx.finished = r.condition(batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded, msgDeadline)
		}
	}

	if indexed {
		ctx.succeededI = parseIndexes(job.Status.CompletedIndexes, completions)
		for _, p := range ctx.pods {
			if p.Status.Phase == corev1.PodSucceeded && validIndex(p, completions) {
				ctx.succeededI.add(completionIndex(p))
			}
		}
		ctx.succeeded = int32(len(ctx.succeededI))
		if job.Spec.BackoffLimitPerIndex != nil {
			ctx.failedI = failedIndexes(job, ctx.pods, completions)
			if ctx.finished == nil {
				switch {
				case job.Spec.MaxFailedIndexes != nil && len(ctx.failedI) > int(*job.Spec.MaxFailedIndexes):
					ctx.finished = r.condition(batchv1.JobFailureTarget, batchv1.JobReasonMaxFailedIndexesExceeded, msgMaxFailedIndexes)
				case len(ctx.failedI) > 0 && len(ctx.failedI)+len(ctx.succeededI) >= completions:
					ctx.finished = r.condition(batchv1.JobFailureTarget, batchv1.JobReasonFailedIndexes, msgFailedIndexes)
				}
			}
		}
		if ctx.finished == nil {
			if msg, met := matchSuccessPolicy(job.Spec.SuccessPolicy, completions, ctx.succeededI); met {
				ctx.finished = r.condition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonSuccessPolicy, msg)
			}
		}
	}

	active := int32(len(ctx.active))
	if ctx.finished != nil {
		// The Job is done: remove what still runs. These pods count as
		// failed unless the Job succeeded.
		for _, p := range ctx.active {
			r.deleteJobPod(job, p)
		}
		active, ctx.ready = 0, 0
	} else {
		active = r.manageJob(ctx)
		complete := false
		if job.Spec.Completions == nil {
			// Any success completes the Job once nothing runs any more.
			complete = ctx.succeeded > 0 && active == 0
		} else {
			complete = ctx.succeeded >= *job.Spec.Completions && active == 0
		}
		switch {
		case complete:
			ctx.finished = r.condition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, msgCompletions)
		case isSuspended(job):
			if r.ensureCondition(job, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended") {
				r.event(jobRef(job), controller.EventNormal, "Suspended", "Job suspended")
			}
		default:
			if r.ensureCondition(job, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed") {
				r.event(jobRef(job), controller.EventNormal, "Resumed", "Job resumed")
				// The active deadline counts from the resumption.
				job.Status.StartTime = &now
			}
		}
	}
	job.Status.Active = active
	job.Status.Ready = ptr(ctx.ready)
	job.Status.Terminating = ptr(int32(0))
	r.trackStatus(ctx)
	if isFinished(job) {
		r.expireJob(job)
	}
}

// manageJob creates and deletes pods towards the wanted number of active
// pods and returns the number of active pods after it.
func (r *reconciler) manageJob(ctx *jobCtx) int32 {
	job := ctx.job
	active := int32(len(ctx.active))
	if isSuspended(job) {
		for _, p := range ctx.active {
			r.deleteUncounted(ctx, p)
		}
		ctx.ready = 0
		return 0
	}
	parallelism := deref(job.Spec.Parallelism, 1)
	var want int32
	if job.Spec.Completions == nil {
		// Without completions, any success means the work is done: leave
		// what runs running and start nothing new.
		want = parallelism
		if ctx.succeeded > 0 {
			want = active
		}
	} else {
		want = max(min(*job.Spec.Completions-ctx.succeeded, parallelism), 0)
	}

	if rm := activePodsForRemoval(job, ctx.active, int(max(active-want, 0))); len(rm) > 0 {
		if len(rm) > maxPodCreateDeletePerSync {
			rm = rm[:maxPodCreateDeletePerSync]
		}
		for _, p := range rm {
			r.deleteUncounted(ctx, p)
			if isReady(p) {
				ctx.ready--
			}
		}
		return active - int32(len(rm))
	}

	diff := want - active
	if diff <= 0 {
		return active
	}
	if job.Spec.BackoffLimitPerIndex == nil && r.backoffRemaining(job, ctx.pods) > 0 {
		return active
	}
	diff = min(diff, maxPodCreateDeletePerSync)
	if !isIndexed(job) {
		for range diff {
			r.createPod(job, unknownIndex, nil)
		}
		return active + diff
	}
	created := int32(0)
	for _, ix := range firstPendingIndexes(ctx, int(diff), int(*job.Spec.Completions)) {
		var replaced *corev1.Pod
		if job.Spec.BackoffLimitPerIndex != nil {
			replaced = lastFailedPodOfIndex(job, ctx.pods, ix)
			if r.indexBackoffRemaining(job, replaced) > 0 {
				continue
			}
		}
		r.createPod(job, ix, replaced)
		created++
	}
	return active + created
}

// createPod makes a pod from the Job's template, for a completion index of
// an Indexed Job (unknownIndex otherwise), carrying on the failure counts of
// the pod it replaces when the Job has backoffLimitPerIndex.
func (r *reconciler) createPod(job *batchv1.Job, index int, replaced *corev1.Pod) {
	t := job.Spec.Template.DeepCopy()
	if index != unknownIndex {
		addCompletionIndex(t, job.Name, index)
		if job.Spec.BackoffLimitPerIndex != nil {
			failures, ignored := newIndexFailureCounts(job, replaced)
			t.Annotations[batchv1.JobIndexFailureCountAnnotation] = strconv.Itoa(int(failures))
			if ignored > 0 {
				t.Annotations[batchv1.JobIndexIgnoredFailureCountAnnotation] = strconv.Itoa(int(ignored))
			}
		}
	}
	prefix := podNamePrefix(job.Name, index)
	var name string
	for n := 0; ; n++ {
		name = generateName(prefix, r.seed, string(job.UID), timeKey(r.now), strconv.Itoa(n))
		if _, taken := r.pods[nsName{job.Namespace, name}]; !taken && !r.podDeletes[nsName{job.Namespace, name}] {
			break
		}
	}
	uid := deriveUID(r.seed, "Pod", job.Namespace, name, string(job.UID), timeKey(r.now))
	p := newJobPod(job, t, name, uid, r.now)
	r.addPod(p, job.UID)
	r.event(jobRef(job), controller.EventNormal, "SuccessfulCreate", "Created pod: "+name)
}

// newJobPod is a pod of job made from t (the Job's template, with its
// completion index for an Indexed Job), as the API server stores it: with
// the tracking finalizer and a controller reference to the Job.
func newJobPod(job *batchv1.Job, t *corev1.PodTemplateSpec, name string, uid types.UID, created time.Time) *corev1.Pod {
	finalizers := append([]string(nil), t.Finalizers...)
	if !containsString(finalizers, batchv1.JobTrackingFinalizer) {
		finalizers = append(finalizers, batchv1.JobTrackingFinalizer)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              name,
			Namespace:         job.Namespace,
			UID:               uid,
			CreationTimestamp: metav1.NewTime(created),
			Labels:            t.Labels,
			Annotations:       t.Annotations,
			Finalizers:        finalizers,
			OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(job, jobGVK)},
		},
		Spec:   t.Spec,
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	p.SetGroupVersionKind(podGVK)
	return p
}

// deleteJobPod deletes an active pod of a finished Job; trackStatus counts it.
func (r *reconciler) deleteJobPod(job *batchv1.Job, p *corev1.Pod) {
	r.deletePod(p)
	r.event(jobRef(job), controller.EventNormal, "SuccessfulDelete", "Deleted pod: "+p.Name)
}

// deleteUncounted deletes a pod without counting it: suspension, or more
// pods running than wanted.
func (r *reconciler) deleteUncounted(ctx *jobCtx, p *corev1.Pod) {
	ctx.uncounted[p.Name] = true
	r.deleteJobPod(ctx.job, p)
}

// trackStatus counts the pods that finished since the last pass (those
// still carrying the tracking finalizer, which it removes), and writes the
// counters, the indexes and the finishing conditions.
func (r *reconciler) trackStatus(ctx *jobCtx) {
	job := ctx.job
	indexed := isIndexed(job)
	completions := int(deref(job.Spec.Completions, 0))
	success := ctx.finished != nil && ctx.finished.Type == batchv1.JobSuccessCriteriaMet
	for _, p := range ctx.pods {
		if !hasTrackingFinalizer(p) || ctx.uncounted[p.Name] {
			continue
		}
		failed := isPodFailed(p, job)
		if ctx.finished == nil && p.Status.Phase != corev1.PodSucceeded && !failed {
			continue // still running
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			if !indexed {
				job.Status.Succeeded++
			}
		case failed || !success:
			if !indexed || validIndex(p, completions) {
				if _, count, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); count {
					job.Status.Failed++
				}
			}
		}
		if key := (nsName{p.Namespace, p.Name}); !r.podDeletes[key] {
			q := p.DeepCopy()
			q.Finalizers = removeString(q.Finalizers, batchv1.JobTrackingFinalizer)
			r.putPod(q)
		}
	}
	if indexed {
		job.Status.Succeeded = int32(len(ctx.succeededI))
		job.Status.CompletedIndexes = ctx.succeededI.String()
		if ctx.failedI != nil {
			job.Status.FailedIndexes = ptr(ctx.failedI.String())
		}
	}
	if ctx.finished == nil {
		return
	}
	final := ctx.finished
	switch final.Type {
	case batchv1.JobFailureTarget:
		r.ensureCondition(job, final.Type, corev1.ConditionTrue, final.Reason, final.Message)
		final = r.condition(batchv1.JobFailed, final.Reason, final.Message)
	case batchv1.JobSuccessCriteriaMet:
		r.ensureCondition(job, final.Type, corev1.ConditionTrue, final.Reason, final.Message)
		final = r.condition(batchv1.JobComplete, final.Reason, final.Message)
	}
	// Nothing is left terminating: a deleted pod is gone from the pass's
	// view, so the terminal condition follows at once.
	r.ensureCondition(job, final.Type, corev1.ConditionTrue, final.Reason, final.Message)
	if final.Type == batchv1.JobComplete {
		job.Status.CompletionTime = &findCondition(job.Status.Conditions, batchv1.JobComplete).LastTransitionTime
		if job.Spec.Completions != nil && job.Status.Succeeded > *job.Spec.Completions {
			r.event(jobRef(job), controller.EventWarning, "TooManySucceededPods", "Too many succeeded pods running after completion count reached")
		}
		r.event(jobRef(job), controller.EventNormal, "Completed", "Job completed")
	} else {
		r.event(jobRef(job), controller.EventWarning, final.Reason, final.Message)
	}
}

// expireJob deletes a finished Job and its pods once its
// ttlSecondsAfterFinished has passed, as the TTL-after-finished controller.
func (r *reconciler) expireJob(job *batchv1.Job) {
	if job.Spec.TTLSecondsAfterFinished == nil {
		return
	}
	finished := finishTime(job)
	if finished.IsZero() {
		return
	}
	if !r.now.Before(finished.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second)) {
		r.deleteJob(job)
	}
}

// finishTime is when the Complete or Failed condition became true.
func finishTime(job *batchv1.Job) time.Time {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

func (r *reconciler) condition(t batchv1.JobConditionType, reason, message string) *batchv1.JobCondition {
	now := metav1.NewTime(r.now)
	return &batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastProbeTime: now, LastTransitionTime: now}
}

// ensureCondition is Kubernetes' ensureJobConditionStatus: it sets the
// condition (not adding a False one that is absent) and reports a change.
func (r *reconciler) ensureCondition(job *batchv1.Job, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string) bool {
	if c := findCondition(job.Status.Conditions, t); c != nil {
		if c.Status == status && c.Reason == reason && c.Message == message {
			return false
		}
		*c = *r.condition(t, reason, message)
		c.Status = status
		return true
	}
	if status == corev1.ConditionFalse {
		return false
	}
	c := r.condition(t, reason, message)
	c.Status = status
	job.Status.Conditions = append(job.Status.Conditions, *c)
	return true
}

func findCondition(list []batchv1.JobCondition, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range list {
		if list[i].Type == t {
			return &list[i]
		}
	}
	return nil
}

// isFinished reports a true Complete or Failed condition.
func isFinished(job *batchv1.Job) bool {
	_, ok := finishedType(job)
	return ok
}

func finishedType(job *batchv1.Job) (batchv1.JobConditionType, bool) {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type, true
		}
	}
	return "", false
}

func isSuspended(job *batchv1.Job) bool { return job.Spec.Suspend != nil && *job.Spec.Suspend }

func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

// onlyReplaceFailedPods: podReplacementPolicy Failed, or a pod failure
// policy (which implies it).
func onlyReplaceFailedPods(job *batchv1.Job) bool {
	if job.Spec.PodReplacementPolicy != nil && *job.Spec.PodReplacementPolicy == batchv1.Failed {
		return true
	}
	return job.Spec.PodFailurePolicy != nil
}

// isPodFailed is Kubernetes' isPodFailed: phase Failed, or (unless only
// failed pods are replaced) being deleted before succeeding.
func isPodFailed(p *corev1.Pod, job *batchv1.Job) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if onlyReplaceFailedPods(job) {
		return false
	}
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded
}

// isActive is FilterActivePods' test.
func isActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hasTrackingFinalizer(p *corev1.Pod) bool {
	return containsString(p.Finalizers, batchv1.JobTrackingFinalizer)
}

// failJobMessage returns the message of the first failed pod matching a
// FailJob rule of the pod failure policy.
func failJobMessage(job *batchv1.Job, pods []*corev1.Pod) *string {
	if job.Spec.PodFailurePolicy == nil {
		return nil
	}
	for _, p := range pods {
		if isPodFailed(p, job) {
			if msg, _, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); msg != nil {
				return msg
			}
		}
	}
	return nil
}

// pastBackoffLimitOnFailure: with restartPolicy OnFailure, container
// restarts in running and pending pods count towards the backoff limit.
func pastBackoffLimitOnFailure(job *batchv1.Job, pods []*corev1.Pod) bool {
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodPending || p.Status.Phase == "" {
			for _, cs := range p.Status.InitContainerStatuses {
				restarts += cs.RestartCount
			}
			for _, cs := range p.Status.ContainerStatuses {
				restarts += cs.RestartCount
			}
		}
	}
	limit := deref(job.Spec.BackoffLimit, 6)
	if limit == 0 {
		return restarts > 0
	}
	return restarts >= limit
}

// pastActiveDeadline reports whether the Job has been active for
// activeDeadlineSeconds. Not while suspended, and not in the pass that
// resumes it: the deadline counts from the resumption, as documented
// (Kubernetes itself would still compare against the old start time here).
func (r *reconciler) pastActiveDeadline(job *batchv1.Job) bool {
	if job.Spec.ActiveDeadlineSeconds == nil || job.Status.StartTime == nil || isSuspended(job) {
		return false
	}
	if c := findCondition(job.Status.Conditions, batchv1.JobSuspended); c != nil && c.Status == corev1.ConditionTrue {
		return false
	}
	return r.now.Sub(job.Status.StartTime.Time) >= time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second
}

// backoffRemaining is how long pod creation still waits after consecutive
// failures: 10 s after the first failure since the last success, doubling
// per further failure, at most 10 min, counted from the last failure.
func (r *reconciler) backoffRemaining(job *batchv1.Job, pods []*corev1.Pod) time.Duration {
	var lastSuccess time.Time
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded {
			if t := podFinishTime(p); t.After(lastSuccess) {
				lastSuccess = t
			}
		}
	}
	var failures int
	var lastFailure time.Time
	for _, p := range pods {
		if !isPodFailed(p, job) {
			continue
		}
		if t := podFinishTime(p); t.After(lastSuccess) {
			failures++
			if t.After(lastFailure) {
				lastFailure = t
			}
		}
	}
	return remainingBackoff(failures, lastFailure, r.now)
}

func remainingBackoff(failures int, lastFailure, now time.Time) time.Duration {
	if failures == 0 {
		return 0
	}
	d := podFailureBackoff
	for i := 1; i < failures; i++ {
		d *= 2
		if d >= maxPodFailureBackoff {
			d = maxPodFailureBackoff
			break
		}
	}
	if elapsed := now.Sub(lastFailure); elapsed < d {
		return d - elapsed
	}
	return 0
}

// podFinishTime is Kubernetes' getFinishedTime: the last container exit,
// else when the pod stopped being ready, else its deletion, else its
// creation.
func podFinishTime(p *corev1.Pod) time.Time {
	var last time.Time
	all := len(p.Status.ContainerStatuses) > 0
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Terminated == nil {
			all = false
			break
		}
		if t := cs.State.Terminated.FinishedAt.Time; t.After(last) {
			last = t
		}
	}
	if all && !last.IsZero() {
		return last
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	if p.DeletionTimestamp != nil {
		return p.DeletionTimestamp.Time
	}
	return p.CreationTimestamp.Time
}

// failedIndexes is Kubernetes' calculateFailedIndexes: the indexes recorded
// as failed plus those whose pod failed past backoffLimitPerIndex (or
// matched a FailIndex rule).
func failedIndexes(job *batchv1.Job, pods []*corev1.Pod, completions int) indexSet {
	out := indexSet{}
	if job.Status.FailedIndexes != nil {
		out = parseIndexes(*job.Status.FailedIndexes, completions)
	}
	for _, p := range pods {
		if validIndex(p, completions) && isIndexFailed(job, p) {
			out.add(completionIndex(p))
		}
	}
	return out
}

func isIndexFailed(job *batchv1.Job, p *corev1.Pod) bool {
	if !isPodFailed(p, job) {
		return false
	}
	_, count, action := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p)
	if action != nil && *action == batchv1.PodFailurePolicyActionFailIndex {
		return true
	}
	return count && indexFailureCount(p) >= deref(job.Spec.BackoffLimitPerIndex, 0)
}

// lastFailedPodOfIndex is the failed pod a new pod of index ix replaces:
// the one with the most failures recorded, the latest to finish on ties.
func lastFailedPodOfIndex(job *batchv1.Job, pods []*corev1.Pod, ix int) *corev1.Pod {
	var last *corev1.Pod
	for _, p := range pods {
		if completionIndex(p) != ix || !isPodFailed(p, job) {
			continue
		}
		if last == nil {
			last = p
			continue
		}
		a, b := indexFailureCount(p)+indexIgnoredFailureCount(p), indexFailureCount(last)+indexIgnoredFailureCount(last)
		if a > b || a == b && podFinishTime(p).After(podFinishTime(last)) {
			last = p
		}
	}
	return last
}

// newIndexFailureCounts is Kubernetes' getNewIndexFailureCounts: the
// failure counts of the pod replacing replaced.
func newIndexFailureCounts(job *batchv1.Job, replaced *corev1.Pod) (int32, int32) {
	if replaced == nil {
		return 0, 0
	}
	failures, ignored := indexFailureCount(replaced), indexIgnoredFailureCount(replaced)
	if _, count, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, replaced); count {
		failures++
	} else {
		ignored++
	}
	return failures, ignored
}

// indexBackoffRemaining is the per-index back-off before replacing a pod
// that failed.
func (r *reconciler) indexBackoffRemaining(job *batchv1.Job, replaced *corev1.Pod) time.Duration {
	if replaced == nil {
		return 0
	}
	failures, ignored := newIndexFailureCounts(job, replaced)
	return remainingBackoff(int(failures+ignored), podFinishTime(replaced), r.now)
}

// firstPendingIndexes returns up to count indexes below completions that
// have neither succeeded nor failed nor an active pod, lowest first.
func firstPendingIndexes(ctx *jobCtx, count, completions int) []int {
	busy := make(map[int]bool, len(ctx.active))
	for _, p := range ctx.active {
		if ix := completionIndex(p); ix != unknownIndex {
			busy[ix] = true
		}
	}
	var out []int
	for ix := 0; ix < completions && len(out) < count; ix++ {
		if !busy[ix] && !ctx.succeededI.has(ix) && !ctx.failedI.has(ix) {
			out = append(out, ix)
		}
	}
	return out
}

// activePodsForRemoval picks rmAtLeast active pods to delete (and, for an
// Indexed Job, every pod with a duplicate or invalid index), earliest in
// their life first, as Kubernetes' activePodsForRemoval.
func activePodsForRemoval(job *batchv1.Job, pods []*corev1.Pod, rmAtLeast int) []*corev1.Pod {
	var rm, left []*corev1.Pod
	if isIndexed(job) {
		completions := int(deref(job.Spec.Completions, 0))
		byIndex := map[int][]*corev1.Pod{}
		for _, p := range pods {
			if !validIndex(p, completions) {
				rm = append(rm, p)
				continue
			}
			byIndex[completionIndex(p)] = append(byIndex[completionIndex(p)], p)
		}
		indexes := make([]int, 0, len(byIndex))
		for ix := range byIndex {
			indexes = append(indexes, ix)
		}
		sort.Ints(indexes)
		for _, ix := range indexes {
			ps := byIndex[ix]
			sortActivePods(ps)
			// Keep the most advanced pod of each index.
			rm = append(rm, ps[:len(ps)-1]...)
			left = append(left, ps[len(ps)-1])
		}
	} else {
		left = append(left, pods...)
	}
	if len(rm) < rmAtLeast {
		sortActivePods(left)
		rm = append(rm, left[:rmAtLeast-len(rm)]...)
	}
	return rm
}

// sortActivePods orders pods as controller.ActivePods: unscheduled before
// scheduled, pending before running, not ready before ready, more restarts
// first, newer first, then by name.
func sortActivePods(ps []*corev1.Pod) {
	phase := func(p *corev1.Pod) int {
		switch p.Status.Phase {
		case corev1.PodPending, "":
			return 0
		case corev1.PodUnknown:
			return 1
		}
		return 2
	}
	restarts := func(p *corev1.Pod) int32 {
		var m int32
		for _, cs := range p.Status.ContainerStatuses {
			m = max(m, cs.RestartCount)
		}
		return m
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
			return a.Spec.NodeName == ""
		}
		if phase(a) != phase(b) {
			return phase(a) < phase(b)
		}
		if isReady(a) != isReady(b) {
			return !isReady(a)
		}
		if restarts(a) != restarts(b) {
			return restarts(a) > restarts(b)
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.After(b.CreationTimestamp.Time)
		}
		return a.Name < b.Name
	})
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func removeString(list []string, s string) []string {
	var out []string
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}
