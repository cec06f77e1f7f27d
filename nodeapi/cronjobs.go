package nodeapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CronJobs fired by the node: the CLI binds every CronJob to one node and
// lowers it into that node's NodeSpec.CronJobs; the node's agentlet fires
// its runs on time with nobody connected, records them durably
// (CronStatePath) and reports them in NodeStatus.CronJobs. At its next loop
// the CLI adopts each reported run as a Job with its pods (same names and
// UIDs), which then come back in NodeSpec.Pods: a spec pod with the UID of a
// run pod takes it over and agentlet forgets the run.
//
// The pod template is lowered by the CLI once per CronJob with placeholder
// metadata (the Cron*Placeholder constants as pod name, pod UID, Job name and
// Job UID). For each run agentlet derives the real values and substitutes
// them everywhere the metadata can reach in the lowered pod (InstantiateCronPod):
// name, UID, hostname, labels, env values (fieldRef metadata.name/uid and
// $(VAR) expansions of them), command and args, subPaths and the contents
// of downward API files. The result is what plan.LowerPod makes of the pod
// the CLI later stores for the run, so adoption changes nothing on the node.

// Concurrency policies of a CronJob, as Kubernetes names them.
const (
	ConcurrencyAllow   = "Allow"
	ConcurrencyForbid  = "Forbid"
	ConcurrencyReplace = "Replace"
)

// Placeholders in CronJobSpec.Templates, replaced per run by
// InstantiateCronPod. They are valid DNS labels, label values and path
// elements, so the template passes the same validation as a real pod, and
// none is a substring of another.
const (
	CronPodNamePlaceholder = "cc-cron-pod-name-9f4e"
	CronPodUIDPlaceholder  = "cc-cron-pod-uid-9f4e"
	CronJobNamePlaceholder = "cc-cron-job-name-9f4e"
	CronJobUIDPlaceholder  = "cc-cron-job-uid-9f4e"
)

// CronStatePath is agentlet's durable CronJob state: each CronJob's last
// schedule time and the node-fired runs the CLI has not adopted yet
// (0600, written atomically before a run's pods start).
const CronStatePath = StateDir + "/cronjobs.json"

// maxHostname is the longest pod hostname (kubelet cuts longer names).
const maxHostname = 63

// CronJobSpec is one CronJob bound to this node.
type CronJobSpec struct {
	UID       string `json:"uid"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// CreationTimestamp is where the schedule starts when the CronJob has
	// never run.
	CreationTimestamp time.Time `json:"creationTimestamp"`
	// Schedule is spec.schedule (robfig/cron standard syntax, as Kubernetes).
	Schedule string `json:"schedule"`
	// TimeZone is spec.timeZone; nil reads the schedule in UTC.
	TimeZone          *string `json:"timeZone,omitempty"`
	ConcurrencyPolicy string  `json:"concurrencyPolicy"`
	Suspend           bool    `json:"suspend,omitempty"`
	// StartingDeadlineSeconds: a run that cannot start within this many
	// seconds of its scheduled time is missed (nil: no deadline).
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`
	// SuccessfulJobsHistoryLimit and FailedJobsHistoryLimit bound the
	// finished runs agentlet keeps while no CLI collects them.
	SuccessfulJobsHistoryLimit int32 `json:"successfulJobsHistoryLimit"`
	FailedJobsHistoryLimit     int32 `json:"failedJobsHistoryLimit"`
	// LastScheduleTime is status.lastScheduleTime as the CLI knows it;
	// agentlet schedules from the later of it and its own, so a CronJob
	// moved between nodes never fires a time twice.
	LastScheduleTime *time.Time `json:"lastScheduleTime,omitempty"`
	// ActiveJobs are the names of the CronJob's active Jobs as the CLI knows
	// them (status.active). For concurrencyPolicy one counts as running
	// while a pod of it (label batch.kubernetes.io/job-name) in this node's
	// spec has not finished.
	ActiveJobs []string `json:"activeJobs,omitempty"`
	// PodsPerRun is how many pods a run starts: min(parallelism,
	// completions) of the job template (parallelism without completions).
	// The CLI's Job controller does the rest once it adopts the run.
	PodsPerRun int32 `json:"podsPerRun"`
	// Indexed is the job template's completion mode Indexed: run pod i has
	// completion index i and is made from Templates[i]. Otherwise Templates
	// holds one pod every run pod is made from.
	Indexed bool `json:"indexed,omitempty"`
	// Templates are the job template's pod lowered with placeholder
	// metadata (Name CronPodNamePlaceholder, UID CronPodUIDPlaceholder).
	Templates []PodSpec `json:"templates"`
}

// Key is namespace/name.
func (c *CronJobSpec) Key() string { return c.Namespace + "/" + c.Name }

// Template returns the template of a run's pod i.
func (c *CronJobSpec) Template(i int) *PodSpec {
	if c.Indexed {
		return &c.Templates[i]
	}
	return &c.Templates[0]
}

// Validate reports every structural problem of a CronJob spec at once. The
// schedule and time zone are parsed by agentlet, which reports them as
// events (as Kubernetes' controller does) rather than refusing the spec.
func (c *CronJobSpec) Validate() error {
	var errs []error
	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("cronjob %s: "+format, append([]any{c.Key()}, a...)...))
	}
	if c.UID == "" || c.Namespace == "" || c.Name == "" {
		add("uid, namespace and name are required")
	}
	if strings.TrimSpace(c.Schedule) == "" {
		add("schedule: required")
	}
	switch c.ConcurrencyPolicy {
	case ConcurrencyAllow, ConcurrencyForbid, ConcurrencyReplace:
	default:
		add("concurrencyPolicy: unsupported %q", c.ConcurrencyPolicy)
	}
	if d := c.StartingDeadlineSeconds; d != nil && *d < 0 {
		add("startingDeadlineSeconds: must not be negative, got %d", *d)
	}
	if c.SuccessfulJobsHistoryLimit < 0 || c.FailedJobsHistoryLimit < 0 {
		add("history limits must not be negative")
	}
	if c.PodsPerRun < 1 {
		add("podsPerRun: must be at least 1, got %d", c.PodsPerRun)
	}
	want := 1
	if c.Indexed {
		want = int(c.PodsPerRun)
	}
	if len(c.Templates) != want {
		add("templates: want %d, got %d", want, len(c.Templates))
	}
	for i := range c.Templates {
		t := &c.Templates[i]
		if t.Name != CronPodNamePlaceholder || t.UID != CronPodUIDPlaceholder || t.Namespace != c.Namespace {
			add("templates[%d]: must be named %s/%s with uid %s", i, c.Namespace, CronPodNamePlaceholder, CronPodUIDPlaceholder)
		}
		if t.RestartPolicy == RestartAlways {
			add("templates[%d]: restartPolicy must be OnFailure or Never", i)
		}
		if err := t.Validate(); err != nil {
			add("templates[%d]: %w", i, err)
		}
	}
	return errors.Join(errs...)
}

// CronRunName is the name of the Job a CronJob runs for a scheduled time, as
// Kubernetes names it: the CronJob's name and the scheduled time in minutes
// since the Unix epoch. Both the CLI and agentlet derive a run's identity
// from it.
func CronRunName(cronJobName string, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cronJobName, scheduled.Unix()/60)
}

// CronRunPodIdentity is the metadata of one pod of one run.
type CronRunPodIdentity struct {
	PodName, PodUID, JobName, JobUID string
}

// InstantiateCronPod returns the run pod made from a template: every
// placeholder replaced by the run's values, the hostname cut as kubelet
// cuts a long pod name. template is not modified and the result shares no
// memory with it.
func InstantiateCronPod(template *PodSpec, id CronRunPodIdentity) (PodSpec, error) {
	data, err := json.Marshal(template)
	if err != nil {
		return PodSpec{}, fmt.Errorf("instantiate cron pod: %w", err)
	}
	// Placeholders and values are [a-z0-9-]: replacing them in the JSON
	// text cannot break its syntax. File contents are base64 in JSON and
	// are handled below.
	data = replacePlaceholders(data, id)
	var p PodSpec
	if err := json.Unmarshal(data, &p); err != nil {
		return PodSpec{}, fmt.Errorf("instantiate cron pod: %w", err)
	}
	for i := range p.Volumes {
		if f := p.Volumes[i].Files; f != nil {
			for j := range f.Items {
				f.Items[j].Data = replacePlaceholders(f.Items[j].Data, id)
			}
		}
	}
	if len(p.Hostname) > maxHostname {
		p.Hostname = strings.TrimRight(p.Hostname[:maxHostname], "-.")
	}
	return p, nil
}

func replacePlaceholders(data []byte, id CronRunPodIdentity) []byte {
	for _, r := range [][2]string{
		{CronPodNamePlaceholder, id.PodName}, {CronPodUIDPlaceholder, id.PodUID},
		{CronJobNamePlaceholder, id.JobName}, {CronJobUIDPlaceholder, id.JobUID},
	} {
		data = bytes.ReplaceAll(data, []byte(r[0]), []byte(r[1]))
	}
	return data
}

// CronJobStatus is what agentlet reports about one CronJob: the CronJobs of
// its spec, and those that left it while runs of theirs were still held.
type CronJobStatus struct {
	UID       string `json:"uid"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// LastScheduleTime is the scheduled time of the last run this node
	// started (nil: none).
	LastScheduleTime *time.Time `json:"lastScheduleTime,omitempty"`
	// Runs are the node-fired runs not adopted by the CLI yet, oldest
	// first.
	Runs []CronRunStatus `json:"runs,omitempty"`
	// Events are the CronJob's recent node-side events, oldest first, with
	// the CronJob controller's reasons: SuccessfulCreate, SuccessfulDelete
	// (Replace), JobAlreadyActive (Forbid skipped a scheduled time),
	// MissSchedule (startingDeadlineSeconds passed), TooManyMissedTimes,
	// UnparseableSchedule, UnknownTimeZone, InvalidSchedule.
	Events []Event `json:"events,omitempty"`
}

// CronRunStatus is one run agentlet started.
type CronRunStatus struct {
	// JobName is CronRunName(cronjob, ScheduledTime); JobUID the uid the
	// CLI gives the Job it adopts the run as (its pods carry it in their
	// controller-uid labels).
	JobName       string    `json:"jobName"`
	JobUID        string    `json:"jobUID"`
	ScheduledTime time.Time `json:"scheduledTime"`
	// StartedAt is when agentlet fired the run.
	StartedAt time.Time    `json:"startedAt"`
	Pods      []CronRunPod `json:"pods"`
}

// CronRunPod is one pod of a run.
type CronRunPod struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
	// CompletionIndex is the pod's index for an Indexed job template.
	CompletionIndex *int32 `json:"completionIndex,omitempty"`
	// Phase is the pod's phase as agentlet last saw it.
	Phase string `json:"phase"`
}
