package jobs

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // zoned CronJobs without depending on the host's database

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterctl/clusterctl/plan/controller"
)

// t0 is the time of most passes in these tests.
var t0 = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)

const ns = "default"

func ago(d time.Duration) time.Time { return t0.Add(-d) }

func mt(t time.Time) *metav1.Time { v := metav1.NewTime(t); return &v }

// --- Jobs ---

type jobOpt func(*batchv1.Job)

// newJob returns a Job as a manifest gives it: no uid, no defaults.
func newJob(name string, opts ...jobOpt) *batchv1.Job {
	j := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
			},
		}},
	}
	for _, o := range opts {
		o(j)
	}
	return j
}

// storedJob returns a Job as a previous pass stored it: admitted an hour
// before t0, started then.
func storedJob(name string, opts ...jobOpt) *batchv1.Job {
	j := newJob(name)
	admitJob(j, "fixture", ago(time.Hour))
	j.Status.StartTime = mt(ago(time.Hour))
	for _, o := range opts {
		o(j)
	}
	return j
}

func completions(n int32) jobOpt { return func(j *batchv1.Job) { j.Spec.Completions = &n } }
func parallelism(n int32) jobOpt { return func(j *batchv1.Job) { j.Spec.Parallelism = &n } }
func backoffLimit(n int32) jobOpt {
	return func(j *batchv1.Job) { j.Spec.BackoffLimit = &n }
}
func indexed() jobOpt {
	return func(j *batchv1.Job) { j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion) }
}
func onFailure() jobOpt {
	return func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure }
}
func suspended(b bool) jobOpt { return func(j *batchv1.Job) { j.Spec.Suspend = &b } }
func activeDeadline(s int64) jobOpt {
	return func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = &s }
}
func ttl(s int32) jobOpt           { return func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = &s } }
func startedAt(t time.Time) jobOpt { return func(j *batchv1.Job) { j.Status.StartTime = mt(t) } }
func succeededCount(n int32) jobOpt {
	return func(j *batchv1.Job) { j.Status.Succeeded = n }
}
func failedCount(n int32) jobOpt { return func(j *batchv1.Job) { j.Status.Failed = n } }
func withCondition(t batchv1.JobConditionType, reason string, at time.Time) jobOpt {
	return func(j *batchv1.Job) {
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{
			Type: t, Status: corev1.ConditionTrue, Reason: reason,
			LastProbeTime: metav1.NewTime(at), LastTransitionTime: metav1.NewTime(at),
		})
	}
}
func completedAt(at time.Time) jobOpt {
	return func(j *batchv1.Job) {
		withCondition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, at)(j)
		withCondition(batchv1.JobComplete, batchv1.JobReasonCompletionsReached, at)(j)
		j.Status.CompletionTime = mt(at)
	}
}
func failedAt(at time.Time) jobOpt {
	return func(j *batchv1.Job) {
		withCondition(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, at)(j)
		withCondition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded, at)(j)
	}
}
func ownedBy(cj *batchv1.CronJob) jobOpt {
	return func(j *batchv1.Job) {
		j.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(cj, cronJobGVK)}
	}
}
func spec(f func(*batchv1.JobSpec)) jobOpt { return func(j *batchv1.Job) { f(&j.Spec) } }

// --- Pods ---

type podOpt func(*corev1.Pod)

// podOf returns a pod of job as the controller creates it, scheduled,
// created a minute before t0, with the tracking finalizer.
func podOf(job *batchv1.Job, suffix string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              job.Name + "-" + suffix,
			Namespace:         job.Namespace,
			UID:               deriveUID("fixture", "Pod", job.Name, suffix),
			CreationTimestamp: metav1.NewTime(ago(time.Minute)),
			Labels:            copyMap(job.Spec.Template.Labels),
			Finalizers:        []string{batchv1.JobTrackingFinalizer},
			OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(job, jobGVK)},
		},
		Spec:   *job.Spec.Template.Spec.DeepCopy(),
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	p.Spec.NodeName = "node-1"
	for _, o := range opts {
		o(p)
	}
	return p
}

func running(ready bool) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", Ready: ready,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(ago(time.Minute))}}}}
	}
}

func exited(phase corev1.PodPhase, code int32, at time.Time) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Phase = phase
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(at)}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(at)}}}}
	}
}

func succeeded(at time.Time) podOpt { return exited(corev1.PodSucceeded, 0, at) }
func failed(code int32, at time.Time) podOpt {
	return exited(corev1.PodFailed, code, at)
}
func restarts(n int32) podOpt {
	return func(p *corev1.Pod) {
		for i := range p.Status.ContainerStatuses {
			p.Status.ContainerStatuses[i].RestartCount = n
		}
	}
}
func counted() podOpt { return func(p *corev1.Pod) { p.Finalizers = nil } }
func index(i int) podOpt {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[batchv1.JobCompletionIndexAnnotation] = fmt.Sprint(i)
	}
}
func annotation(k, v string) podOpt {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[k] = v
	}
}

// --- CronJobs ---

type cronOpt func(*batchv1.CronJob)

// storedCronJob returns a CronJob stored a day before t0.
func storedCronJob(name, schedule string, opts ...cronOpt) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.CronJobSpec{
			Schedule: schedule,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"cron": name}},
				Spec:       newJob(name).Spec,
			},
		},
	}
	admitCronJob(cj, "fixture", ago(24*time.Hour))
	for _, o := range opts {
		o(cj)
	}
	return cj
}

func lastScheduled(t time.Time) cronOpt {
	return func(cj *batchv1.CronJob) { cj.Status.LastScheduleTime = mt(t) }
}
func policy(p batchv1.ConcurrencyPolicy) cronOpt {
	return func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = p }
}
func activeJobs(jobs ...*batchv1.Job) cronOpt {
	return func(cj *batchv1.CronJob) {
		for _, j := range jobs {
			cj.Status.Active = append(cj.Status.Active, jobReference(j))
		}
	}
}
func cronSpec(f func(*batchv1.CronJobSpec)) cronOpt {
	return func(cj *batchv1.CronJob) { f(&cj.Spec) }
}

// runOf returns the stored Job of cj's run at scheduled, started then.
func runOf(cj *batchv1.CronJob, scheduled time.Time, opts ...jobOpt) *batchv1.Job {
	j := newJobFromTemplate(cj, JobNameForSchedule(cj.Name, scheduled), scheduled, time.UTC)
	admitJob(j, "fixture", scheduled)
	j.Status.StartTime = mt(scheduled)
	for _, o := range opts {
		o(j)
	}
	return j
}

// --- passes ---

// result is one pass's changes with accessors.
type result struct {
	in JobInput
	controller.Changes
}

// run runs a pass, checks that it leaves its input alone, is deterministic,
// and that a second pass over its applied changes changes nothing.
func run(t *testing.T, in JobInput) result {
	t.Helper()
	before := cloneInput(in)
	ch := ReconcileJobs(in)
	if diff := cmp.Diff(before, cloneInput(in)); diff != "" {
		t.Fatalf("ReconcileJobs modified its input (-before +after):\n%s", diff)
	}
	if again := ReconcileJobs(in); !cmp.Equal(describe(ch), describe(again)) {
		t.Fatalf("ReconcileJobs is not deterministic:\n%s", cmp.Diff(describe(ch), describe(again)))
	}
	next := apply(in, ch)
	if second := ReconcileJobs(next); !second.Empty() {
		t.Errorf("second pass over the applied changes is not empty:\n%s", strings.Join(describe(second), "\n"))
	}
	return result{in: in, Changes: ch}
}

func cloneInput(in JobInput) JobInput {
	out := in
	out.Jobs, out.CronJobs, out.Pods = nil, nil, nil
	for _, j := range in.Jobs {
		out.Jobs = append(out.Jobs, j.DeepCopy())
	}
	for _, c := range in.CronJobs {
		out.CronJobs = append(out.CronJobs, c.DeepCopy())
	}
	for _, p := range in.Pods {
		out.Pods = append(out.Pods, p.DeepCopy())
	}
	out.LoadLocation = nil
	return out
}

// apply returns the input of the next pass: the stored objects with the
// changes applied, nothing else observed to change.
func apply(in JobInput, ch controller.Changes) JobInput {
	out := in
	out.Jobs, out.CronJobs, out.Pods = nil, nil, nil
	gone := map[controller.Ref]bool{}
	for _, d := range ch.Delete {
		gone[d] = true
	}
	put := map[controller.Ref]controller.Object{}
	for _, o := range ch.Put {
		put[controller.RefOf(o)] = o
	}
	for _, j := range in.Jobs {
		ref := controller.Ref{Kind: "Job", Namespace: j.Namespace, Name: j.Name}
		if o, ok := put[ref]; ok {
			out.Jobs = append(out.Jobs, o.(*batchv1.Job))
			delete(put, ref)
		} else if !gone[ref] {
			out.Jobs = append(out.Jobs, j)
		}
	}
	for _, c := range in.CronJobs {
		ref := controller.Ref{Kind: "CronJob", Namespace: c.Namespace, Name: c.Name}
		if o, ok := put[ref]; ok {
			out.CronJobs = append(out.CronJobs, o.(*batchv1.CronJob))
			delete(put, ref)
		} else if !gone[ref] {
			out.CronJobs = append(out.CronJobs, c)
		}
	}
	for _, p := range in.Pods {
		ref := controller.Ref{Kind: "Pod", Namespace: p.Namespace, Name: p.Name}
		if o, ok := put[ref]; ok {
			out.Pods = append(out.Pods, o.(*corev1.Pod))
			delete(put, ref)
		} else if !gone[ref] {
			out.Pods = append(out.Pods, p)
		}
	}
	refs := make([]controller.Ref, 0, len(put))
	for ref := range put {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].Name < refs[j].Name })
	for _, ref := range refs {
		switch o := put[ref].(type) {
		case *batchv1.Job:
			out.Jobs = append(out.Jobs, o)
		case *batchv1.CronJob:
			out.CronJobs = append(out.CronJobs, o)
		case *corev1.Pod:
			out.Pods = append(out.Pods, o)
		}
	}
	return out
}

// describe lists changes as "put Kind ns/name", "delete Kind ns/name" and
// "event Reason: message" lines.
func describe(ch controller.Changes) []string {
	var out []string
	for _, o := range ch.Put {
		r := controller.RefOf(o)
		out = append(out, fmt.Sprintf("put %s %s/%s", r.Kind, r.Namespace, r.Name))
	}
	for _, r := range ch.Delete {
		out = append(out, fmt.Sprintf("delete %s %s/%s", r.Kind, r.Namespace, r.Name))
	}
	for _, e := range ch.Events {
		out = append(out, fmt.Sprintf("event %s %s %s: %s", e.Object.Kind, e.Type, e.Reason, e.Message))
	}
	return out
}

// job returns the Job as the pass left it: put, or unchanged, or nil if
// deleted.
func (r result) job(name string) *batchv1.Job {
	for _, o := range r.Put {
		if j, ok := o.(*batchv1.Job); ok && j.Name == name {
			return j
		}
	}
	if r.deleted("Job", name) {
		return nil
	}
	for _, j := range r.in.Jobs {
		if j.Name == name {
			return j
		}
	}
	return nil
}

func (r result) cronJob(name string) *batchv1.CronJob {
	for _, o := range r.Put {
		if c, ok := o.(*batchv1.CronJob); ok && c.Name == name {
			return c
		}
	}
	for _, c := range r.in.CronJobs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// createdPods returns the pods the pass created, by name.
func (r result) createdPods() []*corev1.Pod {
	existing := map[string]bool{}
	for _, p := range r.in.Pods {
		existing[p.Name] = true
	}
	var out []*corev1.Pod
	for _, o := range r.Put {
		if p, ok := o.(*corev1.Pod); ok && !existing[p.Name] {
			out = append(out, p)
		}
	}
	return out
}

// updatedPods returns the names of existing pods the pass stored again.
func (r result) updatedPods() []string {
	existing := map[string]bool{}
	for _, p := range r.in.Pods {
		existing[p.Name] = true
	}
	var out []string
	for _, o := range r.Put {
		if p, ok := o.(*corev1.Pod); ok && existing[p.Name] {
			out = append(out, p.Name)
		}
	}
	return out
}

func (r result) deletedNames(kind string) []string {
	var out []string
	for _, d := range r.Delete {
		if d.Kind == kind {
			out = append(out, d.Name)
		}
	}
	return out
}

func (r result) deleted(kind, name string) bool {
	for _, d := range r.Delete {
		if d.Kind == kind && d.Name == name {
			return true
		}
	}
	return false
}

// reasons lists the events' reasons in order.
func (r result) reasons() []string {
	var out []string
	for _, e := range r.Events {
		out = append(out, e.Reason)
	}
	return out
}

func (r result) event(reason string) *controller.Event {
	for i := range r.Events {
		if r.Events[i].Reason == reason {
			return &r.Events[i]
		}
	}
	return nil
}

// conditions summarises a Job's conditions as "Type=Status/Reason".
func conditions(j *batchv1.Job) []string {
	var out []string
	for _, c := range j.Status.Conditions {
		out = append(out, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	return out
}

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func input(now time.Time, objs ...any) JobInput {
	in := JobInput{Now: now, Seed: "seed"}
	for _, o := range objs {
		switch o := o.(type) {
		case *batchv1.Job:
			in.Jobs = append(in.Jobs, o)
		case *batchv1.CronJob:
			in.CronJobs = append(in.CronJobs, o)
		case *corev1.Pod:
			in.Pods = append(in.Pods, o)
		case []*corev1.Pod:
			in.Pods = append(in.Pods, o...)
		default:
			panic(fmt.Sprintf("input: unexpected %T", o))
		}
	}
	return in
}
