package cron

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan/cronsched"
)

// OrphanGrace is how long the runs of a CronJob that left the spec are
// kept (running, and reported so that a CLI can still adopt them) before
// they are stopped and forgotten.
const OrphanGrace = 5 * time.Minute

// maxEvents is how many recent events are kept per CronJob.
const maxEvents = 10

// JobNameLabel is the label Kubernetes puts on a Job's pods with the Job's
// name; it finds the spec pods of the Jobs the CLI lists as active.
const JobNameLabel = "batch.kubernetes.io/job-name"

// Event reasons, as Kubernetes' CronJob controller records them.
const (
	ReasonSuccessfulCreate    = "SuccessfulCreate"
	ReasonSuccessfulDelete    = "SuccessfulDelete"
	ReasonJobAlreadyActive    = "JobAlreadyActive"
	ReasonMissSchedule        = "MissSchedule"
	ReasonTooManyMissedTimes  = "TooManyMissedTimes"
	ReasonUnparseableSchedule = "UnparseableSchedule"
	ReasonUnknownTimeZone     = "UnknownTimeZone"
	ReasonInvalidSchedule     = "InvalidSchedule"
	ReasonFailedCreate        = "FailedCreate"
)

// StateVersion is the version of the persisted State.
const StateVersion = 1

// State is what agentlet keeps about CronJobs across ticks and restarts.
type State struct {
	Version int `json:"version"`
	// CronJobs are by uid.
	CronJobs map[string]*CronJobState `json:"cronJobs,omitempty"`
	// Runs are the runs this node fired that the CLI has not adopted,
	// sorted by scheduled time, then CronJob and Job name.
	Runs []Run `json:"runs,omitempty"`
	// HeldBack are the uids of spec pods a Replace run stopped: they are
	// kept from the pod runtime until they leave the spec.
	HeldBack []string `json:"heldBack,omitempty"`
}

// CronJobState is one CronJob's part of State.
type CronJobState struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// LastScheduleTime is the scheduled time of the last run fired here.
	LastScheduleTime time.Time `json:"lastScheduleTime,omitempty"`
	// Events are the recent events, oldest first.
	Events []nodeapi.Event `json:"events,omitempty"`
	// OrphanedAt is when the CronJob was first seen missing from the spec
	// (zero while it is in it).
	OrphanedAt time.Time `json:"orphanedAt,omitempty"`
}

// Run is one fired run.
type Run struct {
	CronJobUID    string    `json:"cronJobUID"`
	Namespace     string    `json:"namespace"`
	CronJobName   string    `json:"cronJobName"`
	JobName       string    `json:"jobName"`
	JobUID        string    `json:"jobUID"`
	ScheduledTime time.Time `json:"scheduledTime"`
	StartedAt     time.Time `json:"startedAt"`
	Pods          []RunPod  `json:"pods"`
	// OrphanedAt is when the run's CronJob was first seen missing from
	// the spec (zero while it is in it).
	OrphanedAt time.Time `json:"orphanedAt,omitempty"`
}

// RunPod is one pod of a run, with the spec it runs with.
type RunPod struct {
	Spec            nodeapi.PodSpec `json:"spec"`
	CompletionIndex *int32          `json:"completionIndex,omitempty"`
}

// Input is one tick's view.
type Input struct {
	Now time.Time
	// CronJobs and SpecPods are the held NodeSpec's.
	CronJobs []nodeapi.CronJobSpec
	SpecPods []nodeapi.PodSpec
	// Pods are the last statuses the pod runtime reported, by uid.
	Pods map[string]*nodeapi.PodStatus
	// LoadLocation resolves time zones (time.LoadLocation; nil: UTC only).
	LoadLocation cronsched.LoadLocation
}

// Result is what Plan decided.
type Result struct {
	// State is the new state. Save it before running Pods when Changed.
	State   State
	Changed bool
	// Started are the runs fired in this tick; Dropped the runs forgotten,
	// each with why (adopted, collected, replaced, history, orphaned).
	Started []Run
	Dropped []Dropped
}

// Dropped is a run Plan forgot.
type Dropped struct {
	Run    Run
	Reason string
}

// Reasons a run is dropped.
const (
	DropAdopted   = "adopted"
	DropCollected = "collected"
	DropReplaced  = "replaced"
	DropHistory   = "history"
	DropOrphaned  = "orphaned"
)

// Plan decides one tick: which held runs to forget and which scheduled
// times to fire. prev is not modified.
func Plan(prev State, in Input) Result {
	st := prev.clone()
	st.Version = StateVersion
	p := &planner{st: &st, in: in, now: in.Now,
		specPods: map[string]*nodeapi.PodSpec{}, cronJobs: map[string]*nodeapi.CronJobSpec{}}
	for i := range in.SpecPods {
		p.specPods[in.SpecPods[i].UID] = &in.SpecPods[i]
	}
	for i := range in.CronJobs {
		p.cronJobs[in.CronJobs[i].UID] = &in.CronJobs[i]
	}
	p.forget()
	specs := make([]*nodeapi.CronJobSpec, 0, len(in.CronJobs))
	for i := range in.CronJobs {
		specs = append(specs, &in.CronJobs[i])
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Key() < specs[j].Key() })
	for _, cj := range specs {
		p.fire(cj)
		p.trimHistory(cj)
	}
	st.sortRuns()
	if len(st.CronJobs) == 0 {
		st.CronJobs = nil
	}
	return Result{State: st, Changed: !prev.equal(st), Started: p.started, Dropped: p.dropped}
}

type planner struct {
	st       *State
	in       Input
	now      time.Time
	specPods map[string]*nodeapi.PodSpec
	cronJobs map[string]*nodeapi.CronJobSpec
	started  []Run
	dropped  []Dropped
}

// forget drops the runs the CLI has taken over or that are orphaned past
// the grace period, the held-back pods that left the spec and the states
// of CronJobs gone for longer than the grace period.
func (p *planner) forget() {
	var kept []Run
	for _, r := range p.st.Runs {
		cj := p.cronJobs[r.CronJobUID]
		switch {
		case p.adopted(&r):
			p.drop(r, DropAdopted)
			continue
		case cj == nil:
			if r.OrphanedAt.IsZero() {
				r.OrphanedAt = p.now
			}
			if p.now.Sub(r.OrphanedAt) >= OrphanGrace {
				p.drop(r, DropOrphaned)
				continue
			}
		default:
			r.OrphanedAt = time.Time{}
			if cj.LastScheduleTime != nil && !cj.LastScheduleTime.Before(r.ScheduledTime) {
				p.drop(r, DropCollected)
				continue
			}
		}
		kept = append(kept, r)
	}
	p.st.Runs = kept
	p.st.HeldBack = slices.DeleteFunc(p.st.HeldBack, func(uid string) bool { return p.specPods[uid] == nil })
	if len(p.st.HeldBack) == 0 {
		p.st.HeldBack = nil
	}
	for uid, cs := range p.st.CronJobs {
		if p.cronJobs[uid] != nil {
			cs.OrphanedAt = time.Time{}
			continue
		}
		if cs.OrphanedAt.IsZero() {
			cs.OrphanedAt = p.now
		}
		if p.now.Sub(cs.OrphanedAt) >= OrphanGrace && !p.hasRuns(uid) {
			delete(p.st.CronJobs, uid)
		}
	}
}

func (p *planner) adopted(r *Run) bool {
	for i := range r.Pods {
		if p.specPods[r.Pods[i].Spec.UID] != nil {
			return true
		}
	}
	return false
}

func (p *planner) hasRuns(cronJobUID string) bool {
	for i := range p.st.Runs {
		if p.st.Runs[i].CronJobUID == cronJobUID {
			return true
		}
	}
	return false
}

func (p *planner) drop(r Run, reason string) {
	p.dropped = append(p.dropped, Dropped{Run: r, Reason: reason})
}

// cronState returns the CronJob's state, made on first use.
func (p *planner) cronState(cj *nodeapi.CronJobSpec) *CronJobState {
	if p.st.CronJobs == nil {
		p.st.CronJobs = map[string]*CronJobState{}
	}
	cs := p.st.CronJobs[cj.UID]
	if cs == nil {
		cs = &CronJobState{}
		p.st.CronJobs[cj.UID] = cs
	}
	cs.Namespace, cs.Name, cs.OrphanedAt = cj.Namespace, cj.Name, time.Time{}
	return cs
}

// fire is the second half of Kubernetes' syncCronJob for one CronJob: it
// starts the run that is due, if any.
func (p *planner) fire(cj *nodeapi.CronJobSpec) {
	cs := p.cronState(cj)
	sched, err := cronsched.Parse(cj.Schedule, cj.TimeZone, p.in.LoadLocation)
	if err != nil {
		if tz := cj.TimeZone; tz != nil {
			if _, terr := cronsched.LoadTimeZone(*tz, p.in.LoadLocation); terr != nil {
				cs.note(p.now, ReasonUnknownTimeZone, fmt.Sprintf("invalid timeZone: %q: %s", *tz, terr))
				return
			}
		}
		cs.note(p.now, ReasonUnparseableSchedule, fmt.Sprintf("unparseable schedule: %q : %s", cj.Schedule, err))
		return
	}
	if cj.Suspend {
		return
	}
	last := cs.LastScheduleTime
	if cj.LastScheduleTime != nil && cj.LastScheduleTime.After(last) {
		last = *cj.LastScheduleTime
	}
	// Kubernetes searches from now - startingDeadlineSeconds, so a time
	// that is too late is simply not found. Searching without the deadline
	// first finds it, to record the miss (once per time).
	due, err := sched.MostRecent(last, cj.CreationTimestamp, p.now, nil)
	if err != nil {
		cs.note(p.now, ReasonInvalidSchedule, fmt.Sprintf("invalid schedule: %s : %s", cj.Schedule, err))
		return
	}
	scheduled := due.MostRecent
	if scheduled.IsZero() {
		return
	}
	if d := cj.StartingDeadlineSeconds; d != nil {
		if scheduled.Add(time.Duration(*d) * time.Second).Before(p.now) {
			cs.note(p.now, ReasonMissSchedule, "Missed scheduled time to start a job: "+scheduled.UTC().Format(time.RFC1123Z))
			return
		}
		// Within the deadline: count the missed times as Kubernetes does.
		if due, err = sched.MostRecent(last, cj.CreationTimestamp, p.now, d); err != nil {
			cs.note(p.now, ReasonInvalidSchedule, fmt.Sprintf("invalid schedule: %s : %s", cj.Schedule, err))
			return
		}
	}
	at := " (scheduled at " + scheduled.UTC().Format(time.RFC3339) + ")"
	if due.TooMany {
		cs.note(p.now, ReasonTooManyMissedTimes, cronsched.TooManyMissedMessage+at)
	}
	jobName := nodeapi.CronRunName(cj.Name, scheduled)
	if !scheduled.After(last) || slices.Contains(cj.ActiveJobs, jobName) || p.runNamed(cj.Namespace, jobName) {
		return // already processed
	}
	runs, heldPods := p.active(cj)
	switch cj.ConcurrencyPolicy {
	case nodeapi.ConcurrencyForbid:
		if len(runs)+len(heldPods) > 0 {
			cs.note(p.now, ReasonJobAlreadyActive, "Not starting job because prior execution is running and concurrency policy is Forbid"+at)
			return
		}
	case nodeapi.ConcurrencyReplace:
		for _, name := range runs {
			p.st.Runs = slices.DeleteFunc(p.st.Runs, func(r Run) bool {
				if r.Namespace == cj.Namespace && r.JobName == name {
					p.drop(r, DropReplaced)
					return true
				}
				return false
			})
			cs.note(p.now, ReasonSuccessfulDelete, "Deleted job "+name)
		}
		var names []string
		for _, pod := range heldPods {
			p.st.HeldBack = append(p.st.HeldBack, pod.UID)
			if n := pod.Labels[JobNameLabel]; !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		sort.Strings(p.st.HeldBack)
		for _, n := range names {
			cs.note(p.now, ReasonSuccessfulDelete, "Deleted job "+n)
		}
	}
	run, err := newRun(cj, scheduled, p.now)
	if err != nil {
		cs.note(p.now, ReasonFailedCreate, fmt.Sprintf("Error creating job: %s", err))
		return
	}
	p.st.Runs = append(p.st.Runs, run)
	p.started = append(p.started, run)
	cs.LastScheduleTime = scheduled
	cs.note(p.now, ReasonSuccessfulCreate, "Created job "+run.JobName)
}

func (p *planner) runNamed(namespace, jobName string) bool {
	for i := range p.st.Runs {
		if p.st.Runs[i].Namespace == namespace && p.st.Runs[i].JobName == jobName {
			return true
		}
	}
	return false
}

// active returns the CronJob's running local runs (by Job name) and the
// unfinished spec pods of the Jobs the CLI lists as active.
func (p *planner) active(cj *nodeapi.CronJobSpec) (runs []string, specPods []*nodeapi.PodSpec) {
	for i := range p.st.Runs {
		r := &p.st.Runs[i]
		if r.CronJobUID == cj.UID && !p.finished(r) {
			runs = append(runs, r.JobName)
		}
	}
	held := map[string]bool{}
	for _, uid := range p.st.HeldBack {
		held[uid] = true
	}
	for i := range p.in.SpecPods {
		pod := &p.in.SpecPods[i]
		if pod.Namespace != cj.Namespace || held[pod.UID] || !slices.Contains(cj.ActiveJobs, pod.Labels[JobNameLabel]) {
			continue
		}
		if !terminal(p.in.Pods[pod.UID]) {
			specPods = append(specPods, pod)
		}
	}
	return runs, specPods
}

// finished reports whether every pod of the run has finished.
func (p *planner) finished(r *Run) bool {
	for i := range r.Pods {
		if !terminal(p.in.Pods[r.Pods[i].Spec.UID]) {
			return false
		}
	}
	return true
}

// succeeded reports whether every pod of the run succeeded.
func (p *planner) succeeded(r *Run) bool {
	for i := range r.Pods {
		if st := p.in.Pods[r.Pods[i].Spec.UID]; st == nil || st.Phase != nodeapi.PodSucceeded {
			return false
		}
	}
	return true
}

func terminal(st *nodeapi.PodStatus) bool {
	return st != nil && (st.Phase == nodeapi.PodSucceeded || st.Phase == nodeapi.PodFailed)
}

// trimHistory forgets the oldest finished runs of the CronJob beyond its
// history limits, as the CronJob controller deletes finished Jobs: a CLI
// that comes later would delete them anyway.
func (p *planner) trimHistory(cj *nodeapi.CronJobSpec) {
	var succeeded, failed []string
	for i := range p.st.Runs {
		r := &p.st.Runs[i]
		switch {
		case r.CronJobUID != cj.UID || !p.finished(r):
		case p.succeeded(r):
			succeeded = append(succeeded, r.JobName)
		default:
			failed = append(failed, r.JobName)
		}
	}
	// Runs are sorted by scheduled time: the oldest come first.
	var remove []string
	if n := len(succeeded) - int(cj.SuccessfulJobsHistoryLimit); n > 0 {
		remove = append(remove, succeeded[:n]...)
	}
	if n := len(failed) - int(cj.FailedJobsHistoryLimit); n > 0 {
		remove = append(remove, failed[:n]...)
	}
	if len(remove) == 0 {
		return
	}
	cs := p.cronState(cj)
	p.st.Runs = slices.DeleteFunc(p.st.Runs, func(r Run) bool {
		if r.CronJobUID == cj.UID && slices.Contains(remove, r.JobName) {
			p.drop(r, DropHistory)
			cs.note(p.now, ReasonSuccessfulDelete, "Deleted job "+r.JobName)
			return true
		}
		return false
	})
}

// note records an event once: the same reason and message again (the
// same scheduled time seen at the next tick) is not a new occurrence.
func (cs *CronJobState) note(now time.Time, reason, message string) {
	for _, e := range cs.Events {
		if e.Reason == reason && e.Message == message {
			return
		}
	}
	cs.Events = append(cs.Events, nodeapi.Event{Time: now, Reason: reason, Message: message, Count: 1})
	if len(cs.Events) > maxEvents {
		cs.Events = slices.Delete(cs.Events, 0, len(cs.Events)-maxEvents)
	}
}

// Pods returns the pods the pod runtime is to run: the spec's, less the
// held-back ones, then the held runs' pods the spec does not have.
func (s *State) Pods(spec []nodeapi.PodSpec) []nodeapi.PodSpec {
	held := map[string]bool{}
	for _, uid := range s.HeldBack {
		held[uid] = true
	}
	out := make([]nodeapi.PodSpec, 0, len(spec))
	inSpec := make(map[string]bool, len(spec))
	for i := range spec {
		inSpec[spec[i].UID] = true
		if !held[spec[i].UID] {
			out = append(out, spec[i])
		}
	}
	for i := range s.Runs {
		for j := range s.Runs[i].Pods {
			if pod := &s.Runs[i].Pods[j].Spec; !inSpec[pod.UID] {
				out = append(out, *pod)
			}
		}
	}
	return out
}

// Status is what the node reports about its CronJobs: every CronJob it
// keeps a state for or holds runs of, with its runs and their pods' last
// phases, sorted by namespace/name.
func (s *State) Status(pods map[string]*nodeapi.PodStatus) []nodeapi.CronJobStatus {
	byUID := map[string]*nodeapi.CronJobStatus{}
	get := func(uid, namespace, name string) *nodeapi.CronJobStatus {
		cs := byUID[uid]
		if cs == nil {
			cs = &nodeapi.CronJobStatus{UID: uid, Namespace: namespace, Name: name}
			byUID[uid] = cs
		}
		return cs
	}
	for uid, c := range s.CronJobs {
		cs := get(uid, c.Namespace, c.Name)
		if !c.LastScheduleTime.IsZero() {
			t := c.LastScheduleTime
			cs.LastScheduleTime = &t
		}
		cs.Events = append([]nodeapi.Event(nil), c.Events...)
	}
	for _, r := range s.Runs {
		cs := get(r.CronJobUID, r.Namespace, r.CronJobName)
		rs := nodeapi.CronRunStatus{JobName: r.JobName, JobUID: r.JobUID, ScheduledTime: r.ScheduledTime, StartedAt: r.StartedAt}
		for _, rp := range r.Pods {
			phase := nodeapi.PodPending
			if st := pods[rp.Spec.UID]; st != nil && st.Phase != "" {
				phase = st.Phase
			}
			rs.Pods = append(rs.Pods, nodeapi.CronRunPod{Name: rp.Spec.Name, UID: rp.Spec.UID, CompletionIndex: rp.CompletionIndex, Phase: phase})
		}
		cs.Runs = append(cs.Runs, rs)
	}
	var out []nodeapi.CronJobStatus
	for _, cs := range byUID {
		if cs.LastScheduleTime == nil && len(cs.Runs) == 0 && len(cs.Events) == 0 {
			continue
		}
		out = append(out, *cs)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (s *State) sortRuns() {
	sort.SliceStable(s.Runs, func(i, j int) bool {
		a, b := &s.Runs[i], &s.Runs[j]
		if !a.ScheduledTime.Equal(b.ScheduledTime) {
			return a.ScheduledTime.Before(b.ScheduledTime)
		}
		if a.Namespace != b.Namespace || a.CronJobName != b.CronJobName {
			return a.Namespace+"/"+a.CronJobName < b.Namespace+"/"+b.CronJobName
		}
		return a.JobName < b.JobName
	})
}

// clone returns a deep copy (through JSON: the state is small and plain).
func (s State) clone() State {
	data, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("encode cron state: %v", err)) // plain structs cannot fail
	}
	var out State
	if err := json.Unmarshal(data, &out); err != nil {
		panic(fmt.Sprintf("decode cron state: %v", err))
	}
	return out
}

func (s State) equal(o State) bool {
	a, errA := json.Marshal(s)
	b, errB := json.Marshal(o)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// newRun instantiates the run of cj scheduled at scheduled.
func newRun(cj *nodeapi.CronJobSpec, scheduled, now time.Time) (Run, error) {
	jobName := nodeapi.CronRunName(cj.Name, scheduled)
	jobUID := deriveUID("job", cj.UID, fmt.Sprint(scheduled.Unix()))
	run := Run{CronJobUID: cj.UID, Namespace: cj.Namespace, CronJobName: cj.Name, JobName: jobName, JobUID: jobUID,
		ScheduledTime: scheduled.UTC(), StartedAt: now.UTC()}
	for i := range int(cj.PodsPerRun) {
		index := -1
		if cj.Indexed {
			index = i
		}
		name, uid := podIdentity(jobName, jobUID, i, index)
		spec, err := nodeapi.InstantiateCronPod(cj.Template(i), nodeapi.CronRunPodIdentity{PodName: name, PodUID: uid, JobName: jobName, JobUID: jobUID})
		if err != nil {
			return Run{}, err
		}
		rp := RunPod{Spec: spec}
		if index >= 0 {
			ix := int32(index)
			rp.CompletionIndex = &ix
		}
		run.Pods = append(run.Pods, rp)
	}
	return run, nil
}

// String names a run for logs.
func (r *Run) String() string {
	names := make([]string, 0, len(r.Pods))
	for _, p := range r.Pods {
		names = append(names, p.Spec.Name)
	}
	return fmt.Sprintf("%s/%s (pods %s)", r.Namespace, r.JobName, strings.Join(names, ","))
}
