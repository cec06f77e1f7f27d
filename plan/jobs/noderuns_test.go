package jobs

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func boundTo(node string) cronOpt {
	return func(cj *batchv1.CronJob) {
		if cj.Annotations == nil {
			cj.Annotations = map[string]string{}
		}
		cj.Annotations[CronJobNodeAnnotation] = node
	}
}

// TestBoundCronJobIsLeftToItsNode: the loop fires an unbound CronJob that
// is due, and leaves a bound one to its node while still tracking its Jobs.
func TestBoundCronJobIsLeftToItsNode(t *testing.T) {
	unbound := storedCronJob("tick", "*/1 * * * *", lastScheduled(ago(time.Minute)))
	r := run(t, input(t0.Add(time.Second), unbound))
	if got := r.deletedNames("Job"); r.job(JobNameForSchedule("tick", t0)) == nil || len(got) != 0 {
		t.Fatalf("unbound CronJob: no Job for %s", t0)
	}

	bound := storedCronJob("tick", "*/1 * * * *", lastScheduled(ago(time.Minute)), boundTo("h1"))
	r = run(t, input(t0.Add(time.Second), bound))
	if r.job(JobNameForSchedule("tick", t0)) != nil || len(r.Put) != 0 {
		t.Errorf("the loop fired a node-bound CronJob: %v", describe(r.Changes))
	}

	// A node-fired run, once adopted, is tracked as any run: finished, it
	// leaves status.active and sets lastSuccessfulTime.
	job := runOf(bound, t0, ownedBy(bound), completedAt(t0.Add(30*time.Second)))
	active := storedCronJob("tick", "*/1 * * * *", lastScheduled(t0), boundTo("h1"), activeJobs(job))
	r = run(t, input(t0.Add(40*time.Second), active, job))
	cj := r.cronJob("tick")
	if len(cj.Status.Active) != 0 || cj.Status.LastSuccessfulTime == nil || !cj.Status.LastSuccessfulTime.Time.Equal(t0.Add(30*time.Second)) {
		t.Errorf("status after the run finished: %+v", cj.Status)
	}
}

func TestNodeFireableAndPodsPerRun(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*batchv1.JobSpec)
		fireable bool
		pods     int32
	}{
		{"defaults", func(*batchv1.JobSpec) {}, true, 1},
		{"parallelism below completions", func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = ptr(int32(5)), ptr(int32(2)) }, true, 2},
		{"completions below parallelism", func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = ptr(int32(2)), ptr(int32(5)) }, true, 2},
		{"work queue: parallelism without completions", func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = nil, ptr(int32(3)) }, true, 3},
		{"zero completions", func(s *batchv1.JobSpec) { s.Completions = ptr(int32(0)) }, false, 0},
		{"suspended template", func(s *batchv1.JobSpec) { s.Suspend = ptr(true) }, false, 1},
		{"other controller", func(s *batchv1.JobSpec) { s.ManagedBy = ptr("example.com/queue") }, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cj := storedCronJob("tick", "*/1 * * * *")
			cj.Spec.JobTemplate.Spec.Completions, cj.Spec.JobTemplate.Spec.Parallelism = nil, nil
			tt.mutate(&cj.Spec.JobTemplate.Spec)
			if got := NodeFireable(cj); got != tt.fireable {
				t.Errorf("NodeFireable = %v, want %v", got, tt.fireable)
			}
			if got := PodsPerRun(cj); got != tt.pods {
				t.Errorf("PodsPerRun = %d, want %d", got, tt.pods)
			}
		})
	}
}

func TestRunPodTemplates(t *testing.T) {
	cj := storedCronJob("tick", "*/1 * * * *")
	pods := RunPodTemplates(cj, "h1")
	if len(pods) != 1 {
		t.Fatalf("templates = %d, want 1", len(pods))
	}
	p := pods[0]
	if p.Name != nodeapi.CronPodNamePlaceholder || p.UID != types.UID(nodeapi.CronPodUIDPlaceholder) || p.Spec.NodeName != "h1" || p.Namespace != ns {
		t.Errorf("template metadata %s/%s uid %s node %s", p.Namespace, p.Name, p.UID, p.Spec.NodeName)
	}
	want := map[string]string{"app": "tick", "job-name": nodeapi.CronJobNamePlaceholder, batchv1.JobNameLabel: nodeapi.CronJobNamePlaceholder,
		"controller-uid": nodeapi.CronJobUIDPlaceholder, batchv1.ControllerUidLabel: nodeapi.CronJobUIDPlaceholder}
	if diff := cmp.Diff(want, p.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != types.UID(nodeapi.CronJobUIDPlaceholder) || ref.Name != nodeapi.CronJobNamePlaceholder {
		t.Errorf("owner %+v", ref)
	}

	cj.Spec.JobTemplate.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
	cj.Spec.JobTemplate.Spec.Completions, cj.Spec.JobTemplate.Spec.Parallelism = ptr(int32(4)), ptr(int32(2))
	pods = RunPodTemplates(cj, "h1")
	if len(pods) != 2 {
		t.Fatalf("indexed templates = %d, want 2", len(pods))
	}
	for i, p := range pods {
		ix := []string{"0", "1"}[i]
		if p.Annotations[batchv1.JobCompletionIndexAnnotation] != ix || p.Spec.Hostname != nodeapi.CronJobNamePlaceholder+"-"+ix {
			t.Errorf("index %d: annotations %v hostname %q", i, p.Annotations, p.Spec.Hostname)
		}
	}
}

// nodeRun is a run as a node reports it.
func nodeRun(cj *batchv1.CronJob, scheduled time.Time, phases ...string) nodeapi.CronRunStatus {
	name := JobNameForSchedule(cj.Name, scheduled)
	r := nodeapi.CronRunStatus{JobName: name, JobUID: "job-" + name, ScheduledTime: scheduled, StartedAt: scheduled.Add(time.Second)}
	for i, ph := range phases {
		r.Pods = append(r.Pods, nodeapi.CronRunPod{Name: name + "-pod" + string(rune('a'+i)), UID: "pod-" + name + string(rune('a'+i)), Phase: ph})
	}
	return r
}

func report(node string, cj *batchv1.CronJob, last *time.Time, runs ...nodeapi.CronRunStatus) NodeCronReport {
	return NodeCronReport{Node: node, Status: nodeapi.CronJobStatus{UID: string(cj.UID), Namespace: cj.Namespace, Name: cj.Name,
		LastScheduleTime: last, Runs: runs}}
}

func TestAdoptNodeRuns(t *testing.T) {
	paris := "Europe/Paris"
	cj := storedCronJob("tick", "*/1 * * * *", lastScheduled(ago(time.Minute)), boundTo("h1"), func(c *batchv1.CronJob) {
		c.Spec.TimeZone = &paris
		c.Spec.JobTemplate.Annotations = map[string]string{"note": "x"}
	})
	t1 := t0.Add(time.Minute)
	in := AdoptInput{CronJobs: []*batchv1.CronJob{cj}, LoadLocation: time.LoadLocation,
		Reports: []NodeCronReport{report("h1", cj, &t1, nodeRun(cj, t0, nodeapi.PodSucceeded), nodeRun(cj, t1, nodeapi.PodRunning))}}
	ch := AdoptNodeRuns(in)
	want := []string{
		"put CronJob default/tick",
		"put Job default/" + JobNameForSchedule("tick", t0),
		"put Job default/" + JobNameForSchedule("tick", t1),
		"put Pod default/" + JobNameForSchedule("tick", t0) + "-poda",
		"put Pod default/" + JobNameForSchedule("tick", t1) + "-poda",
		"event CronJob Normal SuccessfulCreate: Created job tick-28488120 (fired by node h1 at 2024-03-01T10:00:01Z)",
		"event CronJob Normal SuccessfulCreate: Created job tick-28488121 (fired by node h1 at 2024-03-01T10:01:01Z)",
	}
	if diff := cmp.Diff(want, describe(ch)); diff != "" {
		t.Fatalf("changes (-want +got):\n%s", diff)
	}
	r := result{in: JobInput{CronJobs: in.CronJobs}, Changes: ch}
	job := r.job(JobNameForSchedule("tick", t0))
	if job.UID != "job-tick-28488120" || !job.CreationTimestamp.Time.Equal(t0.Add(time.Second)) ||
		job.Status.StartTime == nil || !job.Status.StartTime.Time.Equal(t0.Add(time.Second)) || job.Status.Active != 0 {
		t.Errorf("job identity/status: uid %s created %s status %+v", job.UID, job.CreationTimestamp, job.Status)
	}
	if got := job.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2024-03-01T11:00:00+01:00" || job.Annotations["note"] != "x" {
		t.Errorf("job annotations %v, want the scheduled time in Paris and the template's", job.Annotations)
	}
	if ref := metav1.GetControllerOf(job); ref == nil || ref.UID != cj.UID || ref.Kind != "CronJob" {
		t.Errorf("job owner %+v", ref)
	}
	if job.Spec.Selector == nil || job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] != "job-tick-28488120" || job.Labels["cron"] != "tick" {
		t.Errorf("job selector %+v", job.Spec.Selector)
	}
	if j1 := r.job(JobNameForSchedule("tick", t1)); j1.Status.Active != 1 {
		t.Errorf("running run's Job active = %d, want 1", j1.Status.Active)
	}
	var pod *corev1.Pod
	for _, o := range ch.Put {
		if p, ok := o.(*corev1.Pod); ok && p.Name == JobNameForSchedule("tick", t0)+"-poda" {
			pod = p
		}
	}
	if pod.UID != "pod-tick-28488120a" || pod.Spec.NodeName != "h1" || pod.Labels[batchv1.ControllerUidLabel] != "job-tick-28488120" ||
		pod.Labels[batchv1.JobNameLabel] != JobNameForSchedule("tick", t0) || len(pod.Finalizers) != 1 || pod.Finalizers[0] != batchv1.JobTrackingFinalizer {
		t.Errorf("pod %s uid %s node %s labels %v finalizers %v", pod.Name, pod.UID, pod.Spec.NodeName, pod.Labels, pod.Finalizers)
	}
	if ref := metav1.GetControllerOf(pod); ref == nil || ref.UID != job.UID {
		t.Errorf("pod owner %+v", ref)
	}
	got := r.cronJob("tick")
	if got.Status.LastScheduleTime == nil || !got.Status.LastScheduleTime.Time.Equal(t1) || len(got.Status.Active) != 2 {
		t.Errorf("cronjob status %+v", got.Status)
	}

	// The Job controller carries on from the adopted objects: nothing more
	// to create for the running run, the finished one completes; the
	// CronJob tracks both.
	next := apply(input(t1.Add(10*time.Second), cj), ch)
	for _, p := range next.Pods {
		if strings.HasPrefix(p.Name, JobNameForSchedule("tick", t0)) {
			succeeded(t0.Add(20 * time.Second))(p)
		} else {
			running(true)(p)
		}
	}
	pass := ReconcileJobs(next)
	after := result{in: next, Changes: pass}
	if created := after.createdPods(); len(created) != 0 {
		t.Errorf("the Job controller created pods for adopted runs: %v", names(created))
	}
	if j := after.job(JobNameForSchedule("tick", t0)); !isFinished(j) || j.Status.Succeeded != 1 {
		t.Errorf("finished run's Job: %v succeeded %d", conditions(j), j.Status.Succeeded)
	}
	if j := after.job(JobNameForSchedule("tick", t1)); isFinished(j) || j.Status.Active != 1 {
		t.Errorf("running run's Job: %v active %d", conditions(j), j.Status.Active)
	}
	if c := after.cronJob("tick"); len(c.Status.Active) != 1 || c.Status.Active[0].Name != JobNameForSchedule("tick", t1) {
		t.Errorf("cronjob active after the pass: %+v", c.Status.Active)
	}

	// The same report again adopts nothing: the Jobs exist.
	again := AdoptNodeRuns(AdoptInput{CronJobs: next.CronJobs, Jobs: next.Jobs, Pods: next.Pods, Reports: in.Reports})
	if !again.Empty() {
		t.Errorf("a second adoption changed: %v", describe(again))
	}
}

func TestAdoptNodeRunsSkips(t *testing.T) {
	t1 := t0.Add(time.Minute)
	cj := storedCronJob("tick", "*/1 * * * *", lastScheduled(t0), boundTo("h1"))
	gone := storedCronJob("gone", "*/1 * * * *")
	later := t1.Add(3 * time.Minute)
	tests := []struct {
		name string
		in   AdoptInput
		want []string
	}{
		{"a run no later than the stored lastScheduleTime whose Job is gone was adopted before",
			AdoptInput{CronJobs: []*batchv1.CronJob{cj}, Reports: []NodeCronReport{report("h1", cj, nil, nodeRun(cj, t0, nodeapi.PodSucceeded))}}, nil},
		{"a run whose Job exists",
			AdoptInput{CronJobs: []*batchv1.CronJob{cj}, Jobs: []*batchv1.Job{runOf(cj, t1, ownedBy(cj))},
				Reports: []NodeCronReport{report("h1", cj, nil, nodeRun(cj, t1, nodeapi.PodRunning))}}, nil},
		{"a CronJob that is gone", AdoptInput{CronJobs: []*batchv1.CronJob{cj},
			Reports: []NodeCronReport{report("h1", gone, nil, nodeRun(gone, t1, nodeapi.PodRunning))}}, nil},
		{"a CronJob replaced under the same name (other uid)", AdoptInput{CronJobs: []*batchv1.CronJob{cj},
			Reports: []NodeCronReport{func() NodeCronReport {
				r := report("h1", cj, nil, nodeRun(cj, t1, nodeapi.PodRunning))
				r.Status.UID = "old-uid"
				return r
			}()}}, nil},
		{"a run misnamed for its time", AdoptInput{CronJobs: []*batchv1.CronJob{cj},
			Reports: []NodeCronReport{report("h1", cj, nil, func() nodeapi.CronRunStatus {
				r := nodeRun(cj, t1, nodeapi.PodRunning)
				r.JobName = "tick-1"
				return r
			}())}}, nil},
		{"history dropped on the node: only lastScheduleTime moves",
			AdoptInput{CronJobs: []*batchv1.CronJob{cj}, Reports: []NodeCronReport{report("h1", cj, &later)}},
			[]string{"put CronJob default/tick"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := AdoptNodeRuns(tt.in)
			if diff := cmp.Diff(tt.want, describe(ch)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAdoptReplace: a Replace run deletes the CronJob's older active Jobs
// with their pods, as the CronJob controller does when it fires.
func TestAdoptReplace(t *testing.T) {
	t1 := t0.Add(time.Minute)
	cj := storedCronJob("tick", "*/1 * * * *", policy(batchv1.ReplaceConcurrent), lastScheduled(t0), boundTo("h1"))
	old := runOf(cj, t0, ownedBy(cj))
	oldPod := podOf(old, "abcde", running(true))
	cj.Status.Active = []corev1.ObjectReference{jobReference(old)}
	ch := AdoptNodeRuns(AdoptInput{CronJobs: []*batchv1.CronJob{cj}, Jobs: []*batchv1.Job{old}, Pods: []*corev1.Pod{oldPod},
		Reports: []NodeCronReport{report("h1", cj, &t1, nodeRun(cj, t1, nodeapi.PodRunning))}})
	r := result{in: JobInput{CronJobs: []*batchv1.CronJob{cj}, Jobs: []*batchv1.Job{old}}, Changes: ch}
	if !r.deleted("Job", old.Name) || !r.deleted("Pod", oldPod.Name) {
		t.Errorf("old run not deleted: %v", describe(ch))
	}
	got := r.cronJob("tick")
	if len(got.Status.Active) != 1 || got.Status.Active[0].Name != JobNameForSchedule("tick", t1) {
		t.Errorf("active = %+v, want only the new run", got.Status.Active)
	}
	if e := r.event("SuccessfulDelete"); e == nil || e.Message != "Deleted job "+old.Name {
		t.Errorf("events %v", r.reasons())
	}
}

// TestAdoptIndexed: the pods of an Indexed run carry their index.
func TestAdoptIndexed(t *testing.T) {
	cj := storedCronJob("tick", "*/1 * * * *", boundTo("h1"), func(c *batchv1.CronJob) {
		c.Spec.JobTemplate.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
		c.Spec.JobTemplate.Spec.Completions, c.Spec.JobTemplate.Spec.Parallelism = ptr(int32(2)), ptr(int32(2))
	})
	run := nodeRun(cj, t0, nodeapi.PodRunning, nodeapi.PodRunning)
	for i := range run.Pods {
		ix := int32(i)
		run.Pods[i].CompletionIndex = &ix
	}
	ch := AdoptNodeRuns(AdoptInput{CronJobs: []*batchv1.CronJob{cj}, Reports: []NodeCronReport{report("h1", cj, nil, run)}})
	var got []string
	for _, o := range ch.Put {
		if p, ok := o.(*corev1.Pod); ok {
			got = append(got, p.Name+" "+p.Annotations[batchv1.JobCompletionIndexAnnotation]+" "+p.Spec.Hostname)
		}
	}
	name := JobNameForSchedule("tick", t0)
	want := []string{name + "-poda 0 " + name + "-0", name + "-podb 1 " + name + "-1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}
}

// TestAdoptFromTwoNodes: a CronJob moved between nodes has runs reported
// by both; each is adopted once, bound to the node that ran it.
func TestAdoptFromTwoNodes(t *testing.T) {
	t1 := t0.Add(time.Minute)
	cj := storedCronJob("tick", "*/1 * * * *", lastScheduled(ago(time.Minute)), boundTo("h2"))
	ch := AdoptNodeRuns(AdoptInput{CronJobs: []*batchv1.CronJob{cj}, Reports: []NodeCronReport{
		report("h2", cj, &t1, nodeRun(cj, t1, nodeapi.PodRunning)),
		report("h1", cj, &t0, nodeRun(cj, t0, nodeapi.PodSucceeded)),
	}})
	nodes := map[string]string{}
	for _, o := range ch.Put {
		if p, ok := o.(*corev1.Pod); ok {
			nodes[p.Name] = p.Spec.NodeName
		}
	}
	want := map[string]string{JobNameForSchedule("tick", t0) + "-poda": "h1", JobNameForSchedule("tick", t1) + "-poda": "h2"}
	if diff := cmp.Diff(want, nodes); diff != "" {
		t.Errorf("pods' nodes (-want +got):\n%s", diff)
	}
	r := result{in: JobInput{CronJobs: []*batchv1.CronJob{cj}}, Changes: ch}
	if c := r.cronJob("tick"); !c.Status.LastScheduleTime.Time.Equal(t1) || len(c.Status.Active) != 2 {
		t.Errorf("cronjob status %+v", c.Status)
	}
}
