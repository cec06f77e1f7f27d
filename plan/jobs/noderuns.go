package jobs

import (
	"fmt"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan/controller"
	"github.com/clusterctl/clusterctl/plan/cronsched"
)

// CronJobs fired by nodes. The cluster loop binds each CronJob it can to
// one node (CronJobNodeAnnotation) and puts it in that node's spec; the
// node's agentlet fires its runs on time with no CLI connected. The CronJob
// controller above leaves the runs of a bound CronJob to its node and keeps
// doing the rest (status.active, lastSuccessfulTime, history limits).
// AdoptNodeRuns turns each run a node reports into the Job and pods the
// controller would have made, with the names and UIDs the node gave them,
// so the Job controller carries on from there.

// CronJobNodeAnnotation names the node a CronJob is bound to; its runs are
// fired by that node's agentlet, not by the cluster loop.
const CronJobNodeAnnotation = "cronjob.clusterctl.io/node"

// NodeFireable reports whether a node can fire the CronJob's runs: its job
// template starts at least one pod and is left to the built-in Job
// controller, not suspended. Other CronJobs stay with the cluster loop.
func NodeFireable(cj *batchv1.CronJob) bool {
	js := &cj.Spec.JobTemplate.Spec
	if js.Suspend != nil && *js.Suspend {
		return false
	}
	if js.ManagedBy != nil && *js.ManagedBy != batchv1.JobControllerName {
		return false
	}
	if m := js.CompletionMode; m != nil && *m != batchv1.NonIndexedCompletion && *m != batchv1.IndexedCompletion {
		return false
	}
	return PodsPerRun(cj) > 0
}

// PodsPerRun is how many pods a run of the CronJob starts at once:
// min(parallelism, completions), parallelism without completions (both
// defaulted as the API server does).
func PodsPerRun(cj *batchv1.CronJob) int32 {
	js := &cj.Spec.JobTemplate.Spec
	parallelism := deref(js.Parallelism, 1)
	if js.Completions == nil {
		if js.Parallelism == nil {
			return 1
		}
		return max(parallelism, 0)
	}
	return max(min(parallelism, *js.Completions), 0)
}

func isIndexedTemplate(cj *batchv1.CronJob) bool {
	m := cj.Spec.JobTemplate.Spec.CompletionMode
	return m != nil && *m == batchv1.IndexedCompletion
}

// RunPodTemplates are the pods a run of cj starts on node, with the
// nodeapi placeholders as pod name and uid and as the Job's name and uid:
// one per completion index for an Indexed job template, otherwise one that
// every pod of the run is made from. Lowered (plan.LowerPod) they are the
// templates of nodeapi.CronJobSpec; nodeapi.InstantiateCronPod then gives
// what lowering the pod AdoptNodeRuns stores gives.
func RunPodTemplates(cj *batchv1.CronJob, node string) []*corev1.Pod {
	job := newJobFromTemplate(cj, nodeapi.CronJobNamePlaceholder, cj.CreationTimestamp.Time, time.UTC)
	job.UID = types.UID(nodeapi.CronJobUIDPlaceholder)
	admitJob(job, "", cj.CreationTimestamp.Time)
	n := 1
	if isIndexedTemplate(cj) {
		n = int(PodsPerRun(cj))
	}
	out := make([]*corev1.Pod, 0, n)
	for i := range n {
		index := unknownIndex
		if isIndexedTemplate(cj) {
			index = i
		}
		out = append(out, runPod(job, index, nodeapi.CronPodNamePlaceholder, types.UID(nodeapi.CronPodUIDPlaceholder), node, cj.CreationTimestamp.Time))
	}
	return out
}

// runPod is pod index (unknownIndex: not Indexed) of a run's Job, bound to
// node.
func runPod(job *batchv1.Job, index int, name string, uid types.UID, node string, created time.Time) *corev1.Pod {
	t := job.Spec.Template.DeepCopy()
	if index != unknownIndex {
		addCompletionIndex(t, job.Name, index)
	}
	p := newJobPod(job, t, name, uid, created)
	p.Spec.NodeName = node
	return p
}

// NodeCronReport is one CronJob as one node reports it.
type NodeCronReport struct {
	Node   string
	Status nodeapi.CronJobStatus
}

// AdoptInput is what AdoptNodeRuns sees.
type AdoptInput struct {
	// CronJobs, Jobs and Pods are the stored objects.
	CronJobs []*batchv1.CronJob
	Jobs     []*batchv1.Job
	Pods     []*corev1.Pod
	// Reports are what the nodes reported (NodeStatus.CronJobs).
	Reports []NodeCronReport
	// LoadLocation resolves CronJob time zones for the Jobs' scheduled
	// timestamp annotation (nil: UTC).
	LoadLocation cronsched.LoadLocation
}

// AdoptNodeRuns makes the Job and pods of every node-fired run the store
// does not know yet, as the CronJob controller would have made them: the
// Job named after the scheduled time with the node's uid, the CronJob as its
// controller, the job template's labels and annotations and
// batch.kubernetes.io/cronjob-scheduled-timestamp, the API defaults and
// generated selector, status.startTime the time the node fired it; and one
// pod per pod the node started, with the node's name and uid, bound to that
// node, carrying the Job tracking finalizer. The CronJob gets the Job in
// status.active and status.lastScheduleTime moves up to the latest time a
// node reports. A run whose Job exists is never made again; neither is a run
// scheduled no later than the CronJob's stored lastScheduleTime whose Job
// is gone: it was adopted before and deleted (history limits, Replace, a
// user), as the node concludes too. A run of concurrencyPolicy Replace
// deletes the CronJob's other active Jobs scheduled before it, with their
// pods (the node has already stopped the ones it ran).
//
// Runs of a CronJob that is gone (or has another uid) are not adopted: the
// node stops them (agentlet/cron).
func AdoptNodeRuns(in AdoptInput) controller.Changes {
	var ch controller.Changes
	cronJobs := map[types.UID]*batchv1.CronJob{}
	for _, cj := range in.CronJobs {
		if cj != nil && cj.UID != "" {
			cronJobs[cj.UID] = cj
		}
	}
	jobs := map[nsName]*batchv1.Job{}
	for _, j := range in.Jobs {
		if j != nil {
			jobs[nsName{j.Namespace, j.Name}] = j
		}
	}
	reports := append([]NodeCronReport(nil), in.Reports...)
	sort.SliceStable(reports, func(i, j int) bool {
		a, b := &reports[i], &reports[j]
		if a.Status.Namespace != b.Status.Namespace || a.Status.Name != b.Status.Name {
			return a.Status.Namespace < b.Status.Namespace || a.Status.Namespace == b.Status.Namespace && a.Status.Name < b.Status.Name
		}
		return a.Node < b.Node
	})
	work := map[types.UID]*batchv1.CronJob{} // changed CronJobs
	known := map[types.UID]*metav1.Time{}    // lastScheduleTime as stored
	deleted := map[nsName]bool{}
	for _, rep := range reports {
		st := &rep.Status
		orig := cronJobs[types.UID(st.UID)]
		if orig == nil || orig.Namespace != st.Namespace || orig.Name != st.Name || orig.DeletionTimestamp != nil {
			continue
		}
		cj := work[orig.UID]
		if cj == nil {
			cj = orig.DeepCopy()
			cj.SetGroupVersionKind(cronJobGVK)
			known[cj.UID] = orig.Status.LastScheduleTime
		}
		changed := false
		if st.LastScheduleTime != nil && laterThan(*st.LastScheduleTime, cj.Status.LastScheduleTime) {
			cj.Status.LastScheduleTime = &metav1.Time{Time: *st.LastScheduleTime}
			changed = true
		}
		loc := time.UTC
		if tz := cj.Spec.TimeZone; tz != nil {
			if l, err := cronsched.LoadTimeZone(*tz, in.LoadLocation); err == nil {
				loc = l
			}
		}
		runs := append([]nodeapi.CronRunStatus(nil), st.Runs...)
		sort.SliceStable(runs, func(i, j int) bool { return runs[i].ScheduledTime.Before(runs[j].ScheduledTime) })
		for _, run := range runs {
			key := nsName{cj.Namespace, run.JobName}
			if jobs[key] != nil || deleted[key] || run.JobName != JobNameForSchedule(cj.Name, run.ScheduledTime) {
				continue
			}
			if k := known[cj.UID]; k != nil && !k.Time.Before(run.ScheduledTime) {
				continue // adopted before, and gone since
			}
			if cj.Spec.ConcurrencyPolicy == batchv1.ReplaceConcurrent {
				for _, ref := range cj.Status.Active {
					old := jobs[nsName{ref.Namespace, ref.Name}]
					if old == nil || deleted[nsName{ref.Namespace, ref.Name}] {
						continue
					}
					if t, ok := ScheduledTimeFromJobName(cj.Name, old.Name); ok && t.Before(run.ScheduledTime) {
						deleteWithPods(&ch, old, in.Pods)
						deleted[nsName{old.Namespace, old.Name}] = true
						deleteFromActiveList(cj, old.UID)
						ch.Events = append(ch.Events, controller.Event{Object: cronJobRef(cj), Type: controller.EventNormal,
							Reason: "SuccessfulDelete", Message: "Deleted job " + old.Name})
					}
				}
			}
			job, pods := adoptRun(cj, rep.Node, run, loc)
			jobs[key] = job
			ch.Put = append(ch.Put, job)
			for _, p := range pods {
				ch.Put = append(ch.Put, p)
			}
			cj.Status.Active = append(cj.Status.Active, jobReference(job))
			if laterThan(run.ScheduledTime, cj.Status.LastScheduleTime) {
				cj.Status.LastScheduleTime = &metav1.Time{Time: run.ScheduledTime}
			}
			ch.Events = append(ch.Events, controller.Event{Object: cronJobRef(cj), Type: controller.EventNormal, Reason: "SuccessfulCreate",
				Message: fmt.Sprintf("Created job %s (fired by node %s at %s)", job.Name, rep.Node, run.StartedAt.UTC().Format(time.RFC3339))})
			changed = true
		}
		if changed {
			work[cj.UID] = cj
		}
	}
	for _, cj := range work {
		ch.Put = append(ch.Put, cj)
	}
	ch.Sort()
	return ch
}

func laterThan(t time.Time, than *metav1.Time) bool {
	return than == nil || t.After(than.Time)
}

// adoptRun is the Job and pods of a node-fired run.
func adoptRun(cj *batchv1.CronJob, node string, run nodeapi.CronRunStatus, loc *time.Location) (*batchv1.Job, []*corev1.Pod) {
	job := newJobFromTemplate(cj, run.JobName, run.ScheduledTime, loc)
	job.UID = types.UID(run.JobUID)
	admitJob(job, "", run.StartedAt)
	job.CreationTimestamp = metav1.NewTime(run.StartedAt)
	start := metav1.NewTime(run.StartedAt)
	job.Status.StartTime = &start
	var pods []*corev1.Pod
	for _, rp := range run.Pods {
		index := unknownIndex
		if rp.CompletionIndex != nil && isIndexed(job) {
			index = int(*rp.CompletionIndex)
		}
		p := runPod(job, index, rp.Name, types.UID(rp.UID), node, run.StartedAt)
		pods = append(pods, p)
		if rp.Phase != nodeapi.PodSucceeded && rp.Phase != nodeapi.PodFailed {
			job.Status.Active++
		}
	}
	return job, pods
}

// deleteWithPods deletes a Job and, as the garbage collector would, the
// stored pods it controls.
func deleteWithPods(ch *controller.Changes, job *batchv1.Job, pods []*corev1.Pod) {
	ch.Delete = append(ch.Delete, jobRef(job))
	for _, p := range pods {
		if p != nil && p.Namespace == job.Namespace {
			if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == job.UID {
				ch.Delete = append(ch.Delete, controller.Ref{Kind: podGVK.Kind, Namespace: p.Namespace, Name: p.Name})
			}
		}
	}
}
