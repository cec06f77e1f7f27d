package cron

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // real zones without depending on the host's database

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// base is the fixtures' CronJob creation time.
var base = time.Date(2024, 3, 1, 10, 0, 30, 0, time.UTC)

func at(hhmmss string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", "2024-03-01 "+hhmmss)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func ptr[T any](v T) *T { return &v }

// template is a lowered pod template with placeholder metadata.
func template() nodeapi.PodSpec {
	return nodeapi.PodSpec{
		UID: nodeapi.CronPodUIDPlaceholder, Namespace: "default", Name: nodeapi.CronPodNamePlaceholder,
		Labels: map[string]string{"app": "tick", JobNameLabel: nodeapi.CronJobNamePlaceholder,
			"batch.kubernetes.io/controller-uid": nodeapi.CronJobUIDPlaceholder},
		Hostname:      nodeapi.CronPodNamePlaceholder,
		RestartPolicy: nodeapi.RestartNever,
		Containers: []nodeapi.ContainerSpec{{Name: "c", Image: "busybox", Command: []string{"sh", "-c", "echo " + nodeapi.CronPodNamePlaceholder},
			Env: []nodeapi.EnvVar{{Name: "POD", Value: nodeapi.CronPodNamePlaceholder}, {Name: "UID", Value: nodeapi.CronPodUIDPlaceholder}}}},
	}
}

type cjOpt func(*nodeapi.CronJobSpec)

func cronJob(opts ...cjOpt) nodeapi.CronJobSpec {
	cj := nodeapi.CronJobSpec{UID: "cj-uid", Namespace: "default", Name: "tick", CreationTimestamp: base,
		Schedule: "*/1 * * * *", ConcurrencyPolicy: nodeapi.ConcurrencyAllow, SuccessfulJobsHistoryLimit: 3, FailedJobsHistoryLimit: 1,
		PodsPerRun: 1, Templates: []nodeapi.PodSpec{template()}}
	for _, o := range opts {
		o(&cj)
	}
	return cj
}

func policy(p string) cjOpt { return func(cj *nodeapi.CronJobSpec) { cj.ConcurrencyPolicy = p } }
func cliLast(t time.Time) cjOpt {
	return func(cj *nodeapi.CronJobSpec) { cj.LastScheduleTime = &t }
}
func cliActive(names ...string) cjOpt {
	return func(cj *nodeapi.CronJobSpec) { cj.ActiveJobs = names }
}

// fired returns the state after firing cj at the scheduled times, in
// order, each one started on time, with nothing else happening.
func fired(cj nodeapi.CronJobSpec, times ...time.Time) State {
	var st State
	for _, t := range times {
		res := Plan(st, Input{Now: t.Add(time.Second), CronJobs: []nodeapi.CronJobSpec{cj}})
		if len(res.Started) != 1 || !res.Started[0].ScheduledTime.Equal(t) {
			panic("fixture: no run at " + t.String())
		}
		st = res.State
	}
	return st
}

func jobName(t time.Time) string { return nodeapi.CronRunName("tick", t) }

// podsOf returns the statuses of every pod of the state's runs, in phase.
func podsOf(st State, phase string, jobs ...string) map[string]*nodeapi.PodStatus {
	out := map[string]*nodeapi.PodStatus{}
	for _, r := range st.Runs {
		if len(jobs) > 0 && !slices.Contains(jobs, r.JobName) {
			continue
		}
		for _, p := range r.Pods {
			out[p.Spec.UID] = &nodeapi.PodStatus{UID: p.Spec.UID, Phase: phase}
		}
	}
	return out
}

func merge(ms ...map[string]*nodeapi.PodStatus) map[string]*nodeapi.PodStatus {
	out := map[string]*nodeapi.PodStatus{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// cliPod is a spec pod of an adopted Job, as the CLI lowers it.
func cliPod(uid, job, phase string) (nodeapi.PodSpec, map[string]*nodeapi.PodStatus) {
	p := template()
	p.UID, p.Name = uid, job+"-abcde"
	p.Labels = map[string]string{JobNameLabel: job}
	return p, map[string]*nodeapi.PodStatus{uid: {UID: uid, Phase: phase}}
}

func runNames(runs []Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.JobName)
	}
	return out
}

func droppedNames(ds []Dropped) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Run.JobName+":"+d.Reason)
	}
	return out
}

func reasons(st State, uid string) []string {
	var out []string
	if cs := st.CronJobs[uid]; cs != nil {
		for _, e := range cs.Events {
			out = append(out, e.Reason)
		}
	}
	return out
}

func TestPlan(t *testing.T) {
	t1, t2, t3 := at("10:01:00"), at("10:02:00"), at("10:03:00")
	running := nodeapi.PodRunning
	tests := []struct {
		name string
		prev State
		in   Input
		// want
		started    []string
		dropped    []string
		runs       []string // held after the tick
		last       time.Time
		events     []string // reasons of the CronJob's events after the tick
		heldBack   int
		unchanged  bool
		eventMatch string // a regexp one event message must match
	}{
		{
			name: "nothing due before the first scheduled time",
			in:   Input{Now: at("10:00:50"), CronJobs: []nodeapi.CronJobSpec{cronJob()}},
			// The CronJob's state is made (empty), which is a change.
		},
		{
			name: "the first time fires", in: Input{Now: at("10:01:01"), CronJobs: []nodeapi.CronJobSpec{cronJob()}},
			started: []string{jobName(t1)}, runs: []string{jobName(t1)}, last: t1, events: []string{ReasonSuccessfulCreate},
		},
		{
			name: "a fired time does not fire again", prev: fired(cronJob(), t1),
			in:   Input{Now: at("10:01:40"), CronJobs: []nodeapi.CronJobSpec{cronJob()}},
			runs: []string{jobName(t1)}, last: t1, events: []string{ReasonSuccessfulCreate}, unchanged: true,
		},
		{
			name: "the CLI's later schedule time wins: a moved CronJob does not fire a time twice",
			in:   Input{Now: at("10:02:30"), CronJobs: []nodeapi.CronJobSpec{cronJob(cliLast(t2))}},
		},
		{
			name:    "missed times: only the most recent fires",
			in:      Input{Now: at("10:03:05"), CronJobs: []nodeapi.CronJobSpec{cronJob()}},
			started: []string{jobName(t3)}, runs: []string{jobName(t3)}, last: t3, events: []string{ReasonSuccessfulCreate},
		},
		{
			name: "suspend fires nothing",
			in:   Input{Now: at("10:01:01"), CronJobs: []nodeapi.CronJobSpec{cronJob(func(c *nodeapi.CronJobSpec) { c.Suspend = true })}},
		},
		{
			name: "starting deadline passed: the time is missed and recorded",
			in: Input{Now: at("10:01:20"), CronJobs: []nodeapi.CronJobSpec{cronJob(func(c *nodeapi.CronJobSpec) {
				c.StartingDeadlineSeconds = ptr(int64(10))
			})}},
			events: []string{ReasonMissSchedule}, eventMatch: `^Missed scheduled time to start a job: Fri, 01 Mar 2024 10:01:00 \+0000$`,
		},
		{
			name: "within the starting deadline it fires",
			in: Input{Now: at("10:01:09"), CronJobs: []nodeapi.CronJobSpec{cronJob(func(c *nodeapi.CronJobSpec) {
				c.StartingDeadlineSeconds = ptr(int64(10))
			})}},
			started: []string{jobName(t1)}, runs: []string{jobName(t1)}, last: t1, events: []string{ReasonSuccessfulCreate},
		},
		{
			name: "more than 100 missed times: the most recent fires with a warning",
			in: Input{Now: time.Date(2024, 3, 2, 10, 0, 5, 0, time.UTC), CronJobs: []nodeapi.CronJobSpec{cronJob(
				cliLast(at("10:00:00")))}},
			started: []string{nodeapi.CronRunName("tick", time.Date(2024, 3, 2, 10, 0, 0, 0, time.UTC))},
			runs:    []string{nodeapi.CronRunName("tick", time.Date(2024, 3, 2, 10, 0, 0, 0, time.UTC))},
			last:    time.Date(2024, 3, 2, 10, 0, 0, 0, time.UTC), events: []string{ReasonTooManyMissedTimes, ReasonSuccessfulCreate},
		},
		{
			name: "Allow starts another run while one is active", prev: fired(cronJob(), t1),
			in: Input{Now: at("10:02:01"), CronJobs: []nodeapi.CronJobSpec{cronJob()},
				Pods: podsOf(fired(cronJob(), t1), running)},
			started: []string{jobName(t2)}, runs: []string{jobName(t1), jobName(t2)}, last: t2,
			events: []string{ReasonSuccessfulCreate, ReasonSuccessfulCreate},
		},
		{
			name: "Forbid skips while a local run is active", prev: fired(cronJob(policy(nodeapi.ConcurrencyForbid)), t1),
			in: Input{Now: at("10:02:01"), CronJobs: []nodeapi.CronJobSpec{cronJob(policy(nodeapi.ConcurrencyForbid))},
				Pods: podsOf(fired(cronJob(), t1), running)},
			runs: []string{jobName(t1)}, last: t1, events: []string{ReasonSuccessfulCreate, ReasonJobAlreadyActive},
			eventMatch: `^Not starting job because prior execution is running and concurrency policy is Forbid \(scheduled at 2024-03-01T10:02:00Z\)$`,
		},
		{
			name: "Forbid: a run whose pod has not reported yet is active", prev: fired(cronJob(policy(nodeapi.ConcurrencyForbid)), t1),
			in:   Input{Now: at("10:02:01"), CronJobs: []nodeapi.CronJobSpec{cronJob(policy(nodeapi.ConcurrencyForbid))}},
			runs: []string{jobName(t1)}, last: t1, events: []string{ReasonSuccessfulCreate, ReasonJobAlreadyActive},
		},
		{
			name: "Forbid: the skipped time fires late once the run finished, as in Kubernetes",
			prev: fired(cronJob(policy(nodeapi.ConcurrencyForbid)), t1),
			in: Input{Now: at("10:02:40"), CronJobs: []nodeapi.CronJobSpec{cronJob(policy(nodeapi.ConcurrencyForbid))},
				Pods: podsOf(fired(cronJob(), t1), nodeapi.PodSucceeded)},
			started: []string{jobName(t2)}, runs: []string{jobName(t1), jobName(t2)}, last: t2,
			events: []string{ReasonSuccessfulCreate, ReasonSuccessfulCreate},
		},
		{
			name: "Forbid skips while a Job the CLI lists as active runs a pod here",
			in: func() Input {
				p, st := cliPod("cli-pod", jobName(t1), running)
				return Input{Now: at("10:02:01"), CronJobs: []nodeapi.CronJobSpec{cronJob(policy(nodeapi.ConcurrencyForbid), cliLast(t1), cliActive(jobName(t1)))},
					SpecPods: []nodeapi.PodSpec{p}, Pods: st}
			}(),
			events: []string{ReasonJobAlreadyActive},
		},
		{
			name: "Forbid: a Job the CLI lists as active whose pod here finished is not active",
			in: func() Input {
				p, st := cliPod("cli-pod", jobName(t1), nodeapi.PodSucceeded)
				return Input{Now: at("10:02:01"), CronJobs: []nodeapi.CronJobSpec{cronJob(policy(nodeapi.ConcurrencyForbid), cliLast(t1), cliActive(jobName(t1)))},
					SpecPods: []nodeapi.PodSpec{p}, Pods: st}
			}(),
			started: []string{jobName(t2)}, runs: []string{jobName(t2)}, last: t2, events: []string{ReasonSuccessfulCreate},
		},
		{
			name: "Replace stops the active local run and fires", prev: fired(cronJob(policy(nodeapi.ConcurrencyReplace)), t1),
			in: Input{Now: at("10:02:01"), CronJobs: []nodeapi.CronJobSpec{cronJob(policy(nodeapi.ConcurrencyReplace))},
				Pods: podsOf(fired(cronJob(), t1), running)},
			started: []string{jobName(t2)}, dropped: []string{jobName(t1) + ":" + DropReplaced}, runs: []string{jobName(t2)}, last: t2,
			events: []string{ReasonSuccessfulCreate, ReasonSuccessfulDelete, ReasonSuccessfulCreate},
		},
		{
			name: "Replace holds back the spec pods of the CLI's active Job and fires",
			in: func() Input {
				p, st := cliPod("cli-pod", jobName(t1), running)
				return Input{Now: at("10:02:01"), CronJobs: []nodeapi.CronJobSpec{cronJob(policy(nodeapi.ConcurrencyReplace), cliLast(t1), cliActive(jobName(t1)))},
					SpecPods: []nodeapi.PodSpec{p}, Pods: st}
			}(),
			started: []string{jobName(t2)}, runs: []string{jobName(t2)}, last: t2, heldBack: 1,
			events: []string{ReasonSuccessfulDelete, ReasonSuccessfulCreate},
		},
		{
			name: "a run whose pod is in the spec was adopted: the spec pod takes over",
			prev: fired(cronJob(), t1),
			in: Input{Now: at("10:01:30"), CronJobs: []nodeapi.CronJobSpec{cronJob(cliLast(t1), cliActive(jobName(t1)))},
				SpecPods: []nodeapi.PodSpec{fired(cronJob(), t1).Runs[0].Pods[0].Spec}},
			dropped: []string{jobName(t1) + ":" + DropAdopted}, last: t1, events: []string{ReasonSuccessfulCreate},
		},
		{
			name:    "a run the CLI collected and deleted is forgotten",
			prev:    fired(cronJob(), t1, t2),
			in:      Input{Now: at("10:02:30"), CronJobs: []nodeapi.CronJobSpec{cronJob(cliLast(t1))}},
			dropped: []string{jobName(t1) + ":" + DropCollected}, runs: []string{jobName(t2)}, last: t2,
			events: []string{ReasonSuccessfulCreate, ReasonSuccessfulCreate},
		},
		{
			name: "runs of a CronJob that left the spec are kept for the grace period",
			prev: fired(cronJob(), t1),
			in:   Input{Now: at("10:01:30")},
			runs: []string{jobName(t1)}, last: t1, events: []string{ReasonSuccessfulCreate},
		},
		{
			name: "finished history beyond the limit is forgotten, oldest first",
			prev: fired(cronJob(), t1, t2),
			in: Input{Now: at("10:02:30"), CronJobs: []nodeapi.CronJobSpec{cronJob(func(c *nodeapi.CronJobSpec) { c.SuccessfulJobsHistoryLimit = 1 })},
				Pods: podsOf(fired(cronJob(), t1, t2), nodeapi.PodSucceeded)},
			dropped: []string{jobName(t1) + ":" + DropHistory}, runs: []string{jobName(t2)}, last: t2,
			events: []string{ReasonSuccessfulCreate, ReasonSuccessfulCreate, ReasonSuccessfulDelete},
		},
		{
			name: "failed history has its own limit",
			prev: fired(cronJob(), t1, t2),
			in: Input{Now: at("10:02:30"), CronJobs: []nodeapi.CronJobSpec{cronJob(func(c *nodeapi.CronJobSpec) { c.FailedJobsHistoryLimit = 0 })},
				Pods: merge(podsOf(fired(cronJob(), t1, t2), nodeapi.PodFailed, jobName(t1)), podsOf(fired(cronJob(), t1, t2), nodeapi.PodSucceeded, jobName(t2)))},
			dropped: []string{jobName(t1) + ":" + DropHistory}, runs: []string{jobName(t2)}, last: t2,
			events: []string{ReasonSuccessfulCreate, ReasonSuccessfulCreate, ReasonSuccessfulDelete},
		},
		{
			name:   "TZ in the schedule is refused as by the API server",
			in:     Input{Now: at("10:01:01"), CronJobs: []nodeapi.CronJobSpec{cronJob(func(c *nodeapi.CronJobSpec) { c.Schedule = "CRON_TZ=UTC */1 * * * *" })}},
			events: []string{ReasonUnparseableSchedule}, eventMatch: `cannot use TZ or CRON_TZ in schedule, use timeZone field instead`,
		},
		{
			name:   "a schedule robfig/cron cannot parse",
			in:     Input{Now: at("10:01:01"), CronJobs: []nodeapi.CronJobSpec{cronJob(func(c *nodeapi.CronJobSpec) { c.Schedule = "61 * * * *" })}},
			events: []string{ReasonUnparseableSchedule}, eventMatch: `end of range \(61\) above maximum \(59\)`,
		},
		{
			name: "an unknown time zone",
			in: Input{Now: at("10:01:01"), LoadLocation: time.LoadLocation,
				CronJobs: []nodeapi.CronJobSpec{cronJob(func(c *nodeapi.CronJobSpec) { c.TimeZone = ptr("Mars/Olympus") })}},
			events: []string{ReasonUnknownTimeZone},
		},
		{
			name:   "a schedule that never fires",
			in:     Input{Now: at("10:01:01"), CronJobs: []nodeapi.CronJobSpec{cronJob(func(c *nodeapi.CronJobSpec) { c.Schedule = "0 0 30 2 *" })}},
			events: []string{ReasonInvalidSchedule},
		},
		{
			name: "the time zone places the schedule: 09:00 in Paris is 08:00 UTC in March",
			in: Input{Now: at("08:00:01"), LoadLocation: time.LoadLocation,
				CronJobs: []nodeapi.CronJobSpec{cronJob(func(c *nodeapi.CronJobSpec) {
					c.Schedule, c.TimeZone, c.CreationTimestamp = "0 9 * * *", ptr("Europe/Paris"), at("07:00:00")
				})}},
			started: []string{jobName(at("08:00:00"))}, runs: []string{jobName(at("08:00:00"))}, last: at("08:00:00"),
			events: []string{ReasonSuccessfulCreate},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.prev.clone()
			res := Plan(tt.prev, tt.in)
			if !tt.prev.equal(before) {
				t.Error("Plan modified its input state")
			}
			if diff := cmp.Diff(tt.started, runNames(res.Started)); diff != "" {
				t.Errorf("started (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.dropped, droppedNames(res.Dropped)); diff != "" {
				t.Errorf("dropped (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.runs, runNames(res.State.Runs)); diff != "" {
				t.Errorf("held runs (-want +got):\n%s", diff)
			}
			var last time.Time
			if cs := res.State.CronJobs["cj-uid"]; cs != nil {
				last = cs.LastScheduleTime
			}
			if !last.Equal(tt.last) {
				t.Errorf("last schedule time = %s, want %s", last, tt.last)
			}
			if diff := cmp.Diff(tt.events, reasons(res.State, "cj-uid")); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if len(res.State.HeldBack) != tt.heldBack {
				t.Errorf("held back = %v, want %d", res.State.HeldBack, tt.heldBack)
			}
			if res.Changed == tt.unchanged {
				t.Errorf("Changed = %v, want %v", res.Changed, !tt.unchanged)
			}
			if tt.eventMatch != "" {
				re := regexp.MustCompile(tt.eventMatch)
				found := false
				for _, e := range res.State.CronJobs["cj-uid"].Events {
					found = found || re.MatchString(e.Message)
				}
				if !found {
					t.Errorf("no event message matches %s: %+v", tt.eventMatch, res.State.CronJobs["cj-uid"].Events)
				}
			}
			// Whatever was started is run exactly once, and nothing
			// forgotten is run.
			pods := res.State.Pods(tt.in.SpecPods)
			seen := map[string]int{}
			for _, p := range pods {
				seen[p.UID]++
			}
			for uid, n := range seen {
				if n != 1 {
					t.Errorf("pod %s run %d times", uid, n)
				}
			}
			for _, d := range res.Dropped {
				for _, p := range d.Run.Pods {
					if seen[p.Spec.UID] > 0 && !slices.ContainsFunc(tt.in.SpecPods, func(s nodeapi.PodSpec) bool { return s.UID == p.Spec.UID }) {
						t.Errorf("dropped run %s still runs pod %s", d.Run.JobName, p.Spec.Name)
					}
				}
			}
		})
	}
}

// TestRunPods checks a run's pods: names as Kubernetes' generateName makes
// them, metadata substituted everywhere, stable across firings.
func TestRunPods(t *testing.T) {
	t1 := at("10:01:00")
	st := fired(cronJob(), t1)
	run := st.Runs[0]
	if run.JobName != "tick-28488121" {
		t.Errorf("job name = %q, want tick-<unix minutes> tick-28488121", run.JobName)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(run.JobUID) {
		t.Errorf("job uid %q is not a v4 UUID", run.JobUID)
	}
	if len(run.Pods) != 1 {
		t.Fatalf("pods = %d, want 1", len(run.Pods))
	}
	p := run.Pods[0].Spec
	if !regexp.MustCompile(`^tick-28488121-[bcdfghjklmnpqrstvwxz2456789]{5}$`).MatchString(p.Name) {
		t.Errorf("pod name %q", p.Name)
	}
	want := nodeapi.PodSpec{UID: p.UID, Namespace: "default", Name: p.Name,
		Labels:   map[string]string{"app": "tick", JobNameLabel: run.JobName, "batch.kubernetes.io/controller-uid": run.JobUID},
		Hostname: p.Name, RestartPolicy: nodeapi.RestartNever,
		Containers: []nodeapi.ContainerSpec{{Name: "c", Image: "busybox", Command: []string{"sh", "-c", "echo " + p.Name},
			Env: []nodeapi.EnvVar{{Name: "POD", Value: p.Name}, {Name: "UID", Value: p.UID}}}}}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("run pod (-want +got):\n%s", diff)
	}
	if again := fired(cronJob(), t1); !again.equal(st) {
		t.Error("firing the same time again gave other names or uids")
	}
	other := fired(cronJob(func(c *nodeapi.CronJobSpec) { c.UID = "other" }), t1)
	if other.Runs[0].JobUID == run.JobUID || other.Runs[0].Pods[0].Spec.UID == p.UID {
		t.Error("two CronJobs' runs share uids")
	}
}

func TestIndexedRun(t *testing.T) {
	cj := cronJob(func(c *nodeapi.CronJobSpec) {
		c.Indexed, c.PodsPerRun = true, 2
		c.Templates = nil
		for i := range 2 {
			tp := template()
			tp.Hostname = nodeapi.CronJobNamePlaceholder + "-" + string(rune('0'+i))
			c.Templates = append(c.Templates, tp)
		}
	})
	if err := cj.Validate(); err != nil {
		t.Fatal(err)
	}
	run := fired(cj, at("10:01:00")).Runs[0]
	if len(run.Pods) != 2 {
		t.Fatalf("pods = %d, want 2", len(run.Pods))
	}
	for i, p := range run.Pods {
		if p.CompletionIndex == nil || int(*p.CompletionIndex) != i {
			t.Errorf("pod %d: completion index %v", i, p.CompletionIndex)
		}
		if want := regexp.MustCompile(`^tick-28488121-` + string(rune('0'+i)) + `-[a-z0-9]{5}$`); !want.MatchString(p.Spec.Name) {
			t.Errorf("pod %d name %q", i, p.Spec.Name)
		}
		if p.Spec.Hostname != "tick-28488121-"+string(rune('0'+i)) {
			t.Errorf("pod %d hostname %q", i, p.Spec.Hostname)
		}
	}
	if run.Pods[0].Spec.UID == run.Pods[1].Spec.UID {
		t.Error("the pods of a run share a uid")
	}
}

// TestOrphanGrace follows a run whose CronJob left the spec: reported and
// running for OrphanGrace, then forgotten with the CronJob's state.
func TestOrphanGrace(t *testing.T) {
	st := fired(cronJob(), at("10:01:00"))
	res := Plan(st, Input{Now: at("10:01:30")})
	if len(res.State.Runs) != 1 || !res.State.Runs[0].OrphanedAt.Equal(at("10:01:30")) || !res.Changed {
		t.Fatalf("first tick without the CronJob: runs %+v", res.State.Runs)
	}
	res = Plan(res.State, Input{Now: at("10:01:30").Add(OrphanGrace - time.Second)})
	if len(res.State.Runs) != 1 || len(res.Dropped) != 0 {
		t.Fatalf("run dropped before the grace period: %+v", res.Dropped)
	}
	res = Plan(res.State, Input{Now: at("10:01:30").Add(OrphanGrace)})
	if diff := cmp.Diff([]string{jobName(at("10:01:00")) + ":" + DropOrphaned}, droppedNames(res.Dropped)); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	if len(res.State.Runs) != 0 || len(res.State.Pods(nil)) != 0 {
		t.Errorf("the orphaned run still runs: %+v", res.State.Runs)
	}
	// The CronJob's state went out of the spec at the same tick (10:01:30).
	if res.State.CronJobs != nil {
		t.Errorf("the gone CronJob's state is kept: %+v", res.State.CronJobs)
	}
	// Back in the spec before the grace period: the run is its own again.
	res = Plan(fired(cronJob(), at("10:01:00")), Input{Now: at("10:01:30")})
	res = Plan(res.State, Input{Now: at("10:01:40"), CronJobs: []nodeapi.CronJobSpec{cronJob()}})
	if len(res.State.Runs) != 1 || !res.State.Runs[0].OrphanedAt.IsZero() {
		t.Errorf("a CronJob back in the spec: runs %+v", res.State.Runs)
	}
}

// TestForbidOverTime drives a Forbid CronJob minute by minute through
// ticks every 2 s while its runs take 90 s: runs never overlap and each
// starts at most one tick after the previous one finished.
func TestForbidOverTime(t *testing.T) {
	cj := cronJob(policy(nodeapi.ConcurrencyForbid))
	var st State
	finishAt := map[string]time.Time{} // pod uid → when its 90 s run ends
	startedAt := map[string]time.Time{}
	var order []string
	for now := at("10:00:31"); now.Before(at("10:07:00")); now = now.Add(2 * time.Second) {
		pods := map[string]*nodeapi.PodStatus{}
		for uid, end := range finishAt {
			phase := nodeapi.PodRunning
			if !now.Before(end) {
				phase = nodeapi.PodSucceeded
			}
			pods[uid] = &nodeapi.PodStatus{UID: uid, Phase: phase}
		}
		res := Plan(st, Input{Now: now, CronJobs: []nodeapi.CronJobSpec{cj}, Pods: pods})
		for _, r := range res.Started {
			uid := r.Pods[0].Spec.UID
			finishAt[uid] = now.Add(90 * time.Second)
			startedAt[r.JobName] = now
			order = append(order, r.JobName)
		}
		st = res.State
	}
	if len(order) < 4 {
		t.Fatalf("runs %v: want at least 4 in 6.5 minutes", order)
	}
	for i := 1; i < len(order); i++ {
		prevEnd := startedAt[order[i-1]].Add(90 * time.Second)
		start := startedAt[order[i]]
		if start.Before(prevEnd) {
			t.Errorf("run %s started at %s, before %s ended at %s", order[i], start.Format(time.TimeOnly), order[i-1], prevEnd.Format(time.TimeOnly))
		}
		if start.Sub(prevEnd) > 2*time.Second+time.Minute {
			t.Errorf("run %s started %s after the previous ended", order[i], start.Sub(prevEnd))
		}
	}
	// Each run is the most recent time when it started (the skipped time
	// fires late, as Kubernetes does).
	for _, name := range order {
		sched, start := startedAt[name].Truncate(time.Minute), startedAt[name]
		if name != jobName(sched) {
			t.Errorf("run started at %s is %s, want %s", start.Format(time.TimeOnly), name, jobName(sched))
		}
	}
	if !slices.Contains(reasons(st, "cj-uid"), ReasonJobAlreadyActive) {
		t.Errorf("no JobAlreadyActive event: %v", reasons(st, "cj-uid"))
	}
}

func TestStatus(t *testing.T) {
	st := fired(cronJob(), at("10:01:00"), at("10:02:00"))
	pods := podsOf(st, nodeapi.PodSucceeded, jobName(at("10:01:00")))
	got := st.Status(pods)
	if len(got) != 1 {
		t.Fatalf("status = %+v", got)
	}
	cs := got[0]
	if cs.UID != "cj-uid" || cs.Namespace != "default" || cs.Name != "tick" || cs.LastScheduleTime == nil || !cs.LastScheduleTime.Equal(at("10:02:00")) {
		t.Errorf("status %+v", cs)
	}
	var phases []string
	for _, r := range cs.Runs {
		if r.JobUID == "" || r.StartedAt.IsZero() || len(r.Pods) != 1 || r.Pods[0].UID == "" || r.Pods[0].Name == "" {
			t.Errorf("run %+v", r)
		}
		phases = append(phases, r.JobName+"="+r.Pods[0].Phase)
	}
	want := []string{jobName(at("10:01:00")) + "=Succeeded", jobName(at("10:02:00")) + "=Pending"}
	if diff := cmp.Diff(want, phases); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	if len(cs.Events) != 2 || !strings.HasPrefix(cs.Events[0].Message, "Created job tick-") {
		t.Errorf("events %+v", cs.Events)
	}
	if len((&State{}).Status(nil)) != 0 {
		t.Error("an empty state reports CronJobs")
	}
}

func TestEventsAreBounded(t *testing.T) {
	cj := cronJob()
	var st State
	for m := 1; m <= 2*maxEvents; m++ {
		st = Plan(st, Input{Now: base.Add(time.Duration(m) * time.Minute), CronJobs: []nodeapi.CronJobSpec{cj},
			Pods: podsOf(st, nodeapi.PodSucceeded)}).State
	}
	if n := len(st.CronJobs["cj-uid"].Events); n != maxEvents {
		t.Errorf("events = %d, want %d", n, maxEvents)
	}
	// The history limit (3) holds finished runs; the last one is running.
	if n := len(st.Runs); n != 4 {
		t.Errorf("held runs = %d, want 3 finished and 1 running", n)
	}
}
