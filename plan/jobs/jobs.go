package jobs

import (
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/plan/controller"
	"github.com/clusterctl/clusterctl/plan/cronsched"
)

// JobInput is everything one pass of the Job and CronJob controllers sees.
type JobInput struct {
	// Now is the time of the pass.
	Now time.Time
	// Seed is the pass's entropy for the uids and name suffixes it makes:
	// the same input gives the same output.
	Seed string
	// Jobs and CronJobs are the stored objects.
	Jobs     []*batchv1.Job
	CronJobs []*batchv1.CronJob
	// Pods are the stored pods, their status filled in from the nodes'
	// observations (phase, conditions, container statuses with restart
	// counts and exit codes). Pods of other owners are ignored.
	Pods []*corev1.Pod
	// LoadLocation resolves CronJob time zones (time.LoadLocation at the
	// edge). Nil allows only UTC.
	LoadLocation cronsched.LoadLocation
}

// ReconcileJobs runs one pass of the CronJob and Job controllers, with
// Kubernetes' garbage collection of their dependents: a Job whose CronJob is
// gone and a pod whose Job is gone are deleted.
//
// Order within the pass: CronJobs observe their Jobs and start the runs that
// are due; Jobs create, count and delete their pods and finish; CronJobs
// observe the Jobs that finished in this pass and trim their history. So a
// pass leaves nothing for the next one to do unless something is observed
// to change or time passes.
func ReconcileJobs(in JobInput) controller.Changes {
	r := newReconciler(in)
	for _, cj := range r.cronJobs {
		r.syncCronJobStatus(cj)
		r.scheduleCronJob(cj)
	}
	r.collectGarbage()
	for _, key := range r.jobOrder() {
		if job := r.jobs[key]; job != nil {
			r.syncJob(job)
		}
	}
	for _, cj := range r.cronJobs {
		r.syncCronJobStatus(cj)
		r.cleanupFinishedJobs(cj)
	}
	return r.changes()
}

type nsName struct{ namespace, name string }

type reconciler struct {
	now  time.Time
	seed string
	load cronsched.LoadLocation

	cronJobs     []*batchv1.CronJob // working copies, sorted
	origCronJobs map[nsName]*batchv1.CronJob

	jobs      map[nsName]*batchv1.Job // working copies, nil once deleted
	byOwner   map[types.UID][]nsName  // Jobs by controller uid
	origJobs  map[nsName]*batchv1.Job // nil for Jobs created in this pass
	lastState map[nsName]*batchv1.Job // deleted Jobs as they were last seen

	pods        map[nsName]*corev1.Pod // stored pods, nil once deleted
	podsByOwner map[types.UID][]*corev1.Pod
	podPuts     map[nsName]*corev1.Pod
	podDeletes  map[nsName]bool
	newPods     map[nsName]bool

	events []controller.Event
}

func newReconciler(in JobInput) *reconciler {
	r := &reconciler{
		now:          in.Now,
		seed:         in.Seed,
		load:         in.LoadLocation,
		origCronJobs: make(map[nsName]*batchv1.CronJob, len(in.CronJobs)),
		jobs:         make(map[nsName]*batchv1.Job, len(in.Jobs)),
		origJobs:     make(map[nsName]*batchv1.Job, len(in.Jobs)),
		lastState:    make(map[nsName]*batchv1.Job),
		byOwner:      make(map[types.UID][]nsName),
		pods:         make(map[nsName]*corev1.Pod, len(in.Pods)),
		podsByOwner:  make(map[types.UID][]*corev1.Pod),
		podPuts:      make(map[nsName]*corev1.Pod),
		podDeletes:   make(map[nsName]bool),
		newPods:      make(map[nsName]bool),
	}
	for _, cj := range in.CronJobs {
		if cj == nil {
			continue
		}
		w := cj.DeepCopy()
		admitCronJob(w, r.seed, r.now)
		r.cronJobs = append(r.cronJobs, w)
		r.origCronJobs[nsName{cj.Namespace, cj.Name}] = cj
	}
	sort.Slice(r.cronJobs, func(i, j int) bool { return lessMeta(&r.cronJobs[i].ObjectMeta, &r.cronJobs[j].ObjectMeta) })
	for _, job := range in.Jobs {
		if job == nil {
			continue
		}
		w := job.DeepCopy()
		admitJob(w, r.seed, r.now)
		key := nsName{job.Namespace, job.Name}
		r.addJob(key, w)
		r.origJobs[key] = job
	}
	for _, p := range in.Pods {
		if p == nil {
			continue
		}
		r.pods[nsName{p.Namespace, p.Name}] = p
		if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == jobGVK.Kind {
			r.podsByOwner[ref.UID] = append(r.podsByOwner[ref.UID], p)
		}
	}
	for _, ps := range r.podsByOwner {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	}
	return r
}

func lessMeta(a, b *metav1.ObjectMeta) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// jobOrder returns the keys of the live Jobs, sorted.
func (r *reconciler) jobOrder() []nsName {
	keys := make([]nsName, 0, len(r.jobs))
	for k, j := range r.jobs {
		if j != nil {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].namespace != keys[j].namespace {
			return keys[i].namespace < keys[j].namespace
		}
		return keys[i].name < keys[j].name
	})
	return keys
}

// addJob records a live Job.
func (r *reconciler) addJob(key nsName, job *batchv1.Job) {
	r.jobs[key] = job
	if ref := metav1.GetControllerOf(job); ref != nil {
		r.byOwner[ref.UID] = append(r.byOwner[ref.UID], key)
	}
}

// podsOf returns the live pods a Job controls, by name.
func (r *reconciler) podsOf(job *batchv1.Job) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range r.podsByOwner[job.UID] {
		key := nsName{p.Namespace, p.Name}
		if r.podDeletes[key] || p.Namespace != job.Namespace {
			continue
		}
		if put := r.podPuts[key]; put != nil {
			p = put
		}
		out = append(out, p)
	}
	return out
}

// addPod records a pod created in this pass.
func (r *reconciler) addPod(p *corev1.Pod, owner types.UID) {
	key := nsName{p.Namespace, p.Name}
	r.pods[key] = p
	r.podPuts[key] = p
	r.newPods[key] = true
	r.podsByOwner[owner] = append(r.podsByOwner[owner], p)
}

// putPod records a changed pod.
func (r *reconciler) putPod(p *corev1.Pod) {
	r.podPuts[nsName{p.Namespace, p.Name}] = p
}

// deletePod records a pod deletion.
func (r *reconciler) deletePod(p *corev1.Pod) {
	key := nsName{p.Namespace, p.Name}
	if r.newPods[key] {
		delete(r.newPods, key)
		delete(r.podPuts, key)
		delete(r.pods, key)
		return
	}
	delete(r.podPuts, key)
	r.podDeletes[key] = true
}

// deleteJob deletes a Job and, as the garbage collector would, its pods.
func (r *reconciler) deleteJob(job *batchv1.Job) {
	key := nsName{job.Namespace, job.Name}
	if r.jobs[key] == nil {
		return
	}
	for _, p := range r.podsOf(job) {
		r.deletePod(p)
	}
	r.lastState[key] = job
	r.jobs[key] = nil
}

// collectGarbage deletes Jobs controlled by a CronJob that is gone and pods
// controlled by a Job that is gone, as Kubernetes' garbage collector does.
func (r *reconciler) collectGarbage() {
	cronJobUIDs := make(map[types.UID]bool, len(r.cronJobs))
	for _, cj := range r.cronJobs {
		cronJobUIDs[cj.UID] = true
	}
	for _, key := range r.jobOrder() {
		job := r.jobs[key]
		if ref := metav1.GetControllerOf(job); ref != nil && ref.Kind == cronJobGVK.Kind && ref.APIVersion == batchv1.SchemeGroupVersion.String() && !cronJobUIDs[ref.UID] {
			r.deleteJob(job)
		}
	}
	jobUIDs := make(map[types.UID]bool, len(r.jobs))
	for _, job := range r.jobs {
		if job != nil {
			jobUIDs[job.UID] = true
		}
	}
	owners := make([]types.UID, 0, len(r.podsByOwner))
	for uid := range r.podsByOwner {
		owners = append(owners, uid)
	}
	sort.Slice(owners, func(i, j int) bool { return owners[i] < owners[j] })
	for _, uid := range owners {
		if jobUIDs[uid] {
			continue
		}
		for _, p := range r.podsByOwner[uid] {
			if ref := metav1.GetControllerOf(p); ref.APIVersion == batchv1.SchemeGroupVersion.String() {
				r.deletePod(p)
			}
		}
	}
}

func (r *reconciler) event(obj controller.Ref, typ, reason, message string) {
	r.events = append(r.events, controller.Event{Object: obj, Type: typ, Reason: reason, Message: message})
}

func jobRef(job *batchv1.Job) controller.Ref {
	return controller.Ref{Kind: jobGVK.Kind, Namespace: job.Namespace, Name: job.Name}
}

func cronJobRef(cj *batchv1.CronJob) controller.Ref {
	return controller.Ref{Kind: cronJobGVK.Kind, Namespace: cj.Namespace, Name: cj.Name}
}

// changes compares the working copies with the stored objects.
func (r *reconciler) changes() controller.Changes {
	var c controller.Changes
	for _, cj := range r.cronJobs {
		if !sameCronJob(r.origCronJobs[nsName{cj.Namespace, cj.Name}], cj) {
			c.Put = append(c.Put, cj)
		}
	}
	for key, job := range r.jobs {
		orig := r.origJobs[key]
		switch {
		case job == nil && orig != nil:
			c.Delete = append(c.Delete, controller.Ref{Kind: jobGVK.Kind, Namespace: key.namespace, Name: key.name})
		case job != nil && !sameJob(orig, job):
			c.Put = append(c.Put, job)
		}
	}
	for _, p := range r.podPuts {
		c.Put = append(c.Put, p)
	}
	for key := range r.podDeletes {
		c.Delete = append(c.Delete, controller.Ref{Kind: podGVK.Kind, Namespace: key.namespace, Name: key.name})
	}
	c.Events = r.events
	c.Sort()
	return c
}

// sameJob and sameCronJob compare a stored object with its working copy,
// ignoring the apiVersion and kind the working copy always carries.
//
// A Job's spec changes only when it is admitted (it had no uid), so only
// its metadata and status are compared otherwise: comparing pod templates
// would dominate the cost of a pass.
func sameJob(orig, work *batchv1.Job) bool {
	if orig == nil || orig.UID == "" {
		return false
	}
	return equality.Semantic.DeepEqual(&orig.Status, &work.Status) && equality.Semantic.DeepEqual(&orig.ObjectMeta, &work.ObjectMeta)
}

func sameCronJob(orig, work *batchv1.CronJob) bool {
	if orig == nil {
		return false
	}
	o := orig.DeepCopy()
	o.TypeMeta = work.TypeMeta
	return equality.Semantic.DeepEqual(o, work)
}
