package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Two CronJobs every minute: "slow" (Forbid) runs 90 s, so every other
// scheduled time finds it running; "quick" (Allow) runs 75 s, so its runs
// overlap. Each pod prints the time it starts and ends.
const nodeCronJobs = `apiVersion: batch/v1
kind: CronJob
metadata: {name: slow}
spec:
  schedule: "*/1 * * * *"
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 10
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: c
            image: IMAGE
            imagePullPolicy: IfNotPresent
            command: [sh, -c, "echo start $(date +%s); sleep 90; echo end $(date +%s)"]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: quick}
spec:
  schedule: "*/1 * * * *"
  successfulJobsHistoryLimit: 10
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: c
            image: IMAGE
            imagePullPolicy: IfNotPresent
            command: [sh, -c, "echo start $(date +%s); sleep 75; echo end $(date +%s)"]
`

type objectMeta struct {
	Name              string            `json:"name"`
	CreationTimestamp time.Time         `json:"creationTimestamp"`
	UID               string            `json:"uid"`
	Labels            map[string]string `json:"labels"`
	Annotations       map[string]string `json:"annotations"`
	OwnerReferences   []struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
		UID  string `json:"uid"`
	} `json:"ownerReferences"`
}

type cronRunPod struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		NodeName string `json:"nodeName"`
	} `json:"spec"`
	Status struct {
		Phase             string `json:"phase"`
		ContainerStatuses []struct {
			State struct {
				Running *struct {
					StartedAt time.Time `json:"startedAt"`
				} `json:"running"`
				Terminated *struct {
					ExitCode   int32     `json:"exitCode"`
					StartedAt  time.Time `json:"startedAt"`
					FinishedAt time.Time `json:"finishedAt"`
				} `json:"terminated"`
			} `json:"state"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

// cronRun is one Job of a CronJob with its pod, as the CLI shows them.
type cronRun struct {
	job       string
	jobUID    string
	scheduled time.Time
	pods      []cronRunPod
	start     time.Time // the container's start
	finish    time.Time // zero while it runs
}

// cronRuns returns the runs of each CronJob, by scheduled time.
func cronRuns(t *testing.T, inv string) map[string][]*cronRun {
	t.Helper()
	var jobs struct {
		Items []struct {
			Metadata objectMeta `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(mustOK(t, "get", "jobs", "-i", inv, "-o", "json").stdout), &jobs); err != nil {
		t.Fatal(err)
	}
	var pods struct {
		Items []cronRunPod `json:"items"`
	}
	if err := json.Unmarshal([]byte(mustOK(t, "get", "pods", "-i", inv, "-o", "json").stdout), &pods); err != nil {
		t.Fatal(err)
	}
	byUID := map[string]*cronRun{}
	out := map[string][]*cronRun{}
	for _, j := range jobs.Items {
		if len(j.Metadata.OwnerReferences) != 1 || j.Metadata.OwnerReferences[0].Kind != "CronJob" {
			continue
		}
		at, err := time.Parse(time.RFC3339, j.Metadata.Annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"])
		if err != nil {
			t.Fatalf("job %s: scheduled timestamp: %v", j.Metadata.Name, err)
		}
		r := &cronRun{job: j.Metadata.Name, jobUID: j.Metadata.UID, scheduled: at}
		byUID[r.jobUID] = r
		cj := j.Metadata.OwnerReferences[0].Name
		out[cj] = append(out[cj], r)
	}
	for _, p := range pods.Items {
		for _, ref := range p.Metadata.OwnerReferences {
			r := byUID[ref.UID]
			if ref.Kind != "Job" || r == nil {
				continue
			}
			r.pods = append(r.pods, p)
			for _, cs := range p.Status.ContainerStatuses {
				switch {
				case cs.State.Terminated != nil:
					r.start, r.finish = cs.State.Terminated.StartedAt, cs.State.Terminated.FinishedAt
				case cs.State.Running != nil:
					r.start = cs.State.Running.StartedAt
				}
			}
		}
	}
	for _, runs := range out {
		sort.Slice(runs, func(i, j int) bool { return runs[i].scheduled.Before(runs[j].scheduled) })
	}
	return out
}

func (r *cronRun) String() string {
	end := "running"
	if !r.finish.IsZero() {
		end = r.finish.Format(time.TimeOnly)
	}
	return fmt.Sprintf("%s (scheduled %s, ran %s–%s)", r.job, r.scheduled.Format(time.TimeOnly), r.start.Format(time.TimeOnly), end)
}

// TestCronJobsFireWithoutCLI: CronJobs are fired by their node's agentlet
// while no clusterctl command runs for more than three minutes; one
// `reconcile` then collects exactly the runs Forbid and Allow allow, and a
// second one duplicates nothing.
func TestCronJobsFireWithoutCLI(t *testing.T) {
	l := podLab(t, 2)
	mustOK(t, "apply", "-f", writeManifest(t, "cron.yaml", nodeCronJobs), "-i", l.inv)

	var cronJobs struct {
		Items []struct {
			Metadata objectMeta `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(mustOK(t, "get", "cronjobs", "-i", l.inv, "-o", "json").stdout), &cronJobs); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{}
	var created time.Time
	for _, cj := range cronJobs.Items {
		nodes[cj.Metadata.Name] = cj.Metadata.Annotations["cronjob.clusterctl.io/node"]
		created = cj.Metadata.CreationTimestamp
	}
	if nodes["slow"] == "" || nodes["quick"] == "" || nodes["slow"] == nodes["quick"] {
		t.Fatalf("bindings %v: want each CronJob on its own node", nodes)
	}

	// No clusterctl command from here on: the nodes fire on their own.
	first := created.Truncate(time.Minute).Add(time.Minute)
	quiet := time.Until(first.Add(3*time.Minute + 20*time.Second))
	t.Logf("no clusterctl command for %s (first run due at %s)", quiet.Round(time.Second), first.Format(time.TimeOnly))
	time.Sleep(quiet)

	collected := time.Now()
	if r := clusterctl(t, "reconcile", "-i", l.inv); r.code != 0 && r.code != 5 {
		t.Fatalf("reconcile: %s", r)
	}
	runs := cronRuns(t, l.inv)
	for _, name := range []string{"slow", "quick"} {
		for _, r := range runs[name] {
			t.Logf("%s: %s", name, r)
		}
	}
	// Runs due within a few seconds of the reconcile may or may not have
	// started yet; only earlier ones are judged.
	settled := collected.Add(-10 * time.Second)

	t.Run("Forbid: no overlap, each run as soon as allowed", func(t *testing.T) {
		slow := runs["slow"]
		if len(slow) < 2 {
			t.Fatalf("slow ran %d times, want at least 2", len(slow))
		}
		if !slow[0].scheduled.Equal(first) {
			t.Errorf("first run scheduled at %s, want %s", slow[0].scheduled, first)
		}
		for i, r := range slow {
			if len(r.pods) != 1 || r.pods[0].Spec.NodeName != nodes["slow"] {
				t.Errorf("%s: %d pods, want 1 on %s", r.job, len(r.pods), nodes["slow"])
				continue
			}
			if r.start.IsZero() || r.start.Before(r.scheduled) {
				t.Errorf("%s started at %s, before its time", r.job, r.start)
			}
			if i == 0 {
				continue
			}
			prev := slow[i-1]
			if prev.finish.IsZero() || r.start.Before(prev.finish) {
				t.Errorf("%s overlaps %s", r, prev)
			}
			// The most recent unmet time, as soon as the previous run
			// finished (Kubernetes' Forbid: the skipped time fires late).
			if want := r.start.Truncate(time.Minute); !r.scheduled.Equal(want) && !r.scheduled.Equal(want.Add(-time.Minute)) {
				t.Errorf("%s is not the most recent time when it started", r)
			}
			if allowed := maxTime(prev.finish, r.scheduled); r.start.Sub(allowed) > 15*time.Second {
				t.Errorf("%s started %s after Forbid allowed it", r, r.start.Sub(allowed))
			}
		}
		last := slow[len(slow)-1]
		if !last.finish.IsZero() && last.finish.Before(settled) && settled.Truncate(time.Minute).After(last.scheduled) {
			t.Errorf("after %s nothing ran although a time was due and Forbid allowed it", last)
		}
	})

	t.Run("Allow: one run per minute, overlapping", func(t *testing.T) {
		quick := runs["quick"]
		var want []time.Time
		for at := first; !at.After(settled); at = at.Add(time.Minute) {
			want = append(want, at)
		}
		if len(quick) < len(want) {
			t.Fatalf("quick ran %d times, want %d (every minute from %s)", len(quick), len(want), first.Format(time.TimeOnly))
		}
		for i, at := range want {
			r := quick[i]
			if !r.scheduled.Equal(at) || len(r.pods) != 1 {
				t.Errorf("run %d: %s with %d pods, want the one scheduled at %s", i, r, len(r.pods), at.Format(time.TimeOnly))
				continue
			}
			if d := r.start.Sub(at); d < 0 || d > 15*time.Second {
				t.Errorf("%s started %s after its time", r, d)
			}
			if i > 0 && !quick[i-1].finish.IsZero() && !r.start.Before(quick[i-1].finish) {
				t.Errorf("%s does not overlap %s: Allow should not wait", r, quick[i-1])
			}
		}
	})

	t.Run("the pods' own clocks agree: no overlap", func(t *testing.T) {
		var prevEnd int64
		for _, r := range runs["slow"] {
			if r.finish.IsZero() {
				continue
			}
			out := mustOK(t, "logs", r.pods[0].Metadata.Name, "-i", l.inv).stdout
			m := regexp.MustCompile(`start (\d+)\s+end (\d+)`).FindStringSubmatch(out)
			if m == nil {
				t.Errorf("%s logs: %q", r.job, out)
				continue
			}
			start, _ := strconv.ParseInt(m[1], 10, 64)
			end, _ := strconv.ParseInt(m[2], 10, 64)
			if start < prevEnd {
				t.Errorf("%s started at %d, before the previous run ended at %d", r.job, start, prevEnd)
			}
			prevEnd = end
		}
	})

	t.Run("get jobs shows them; another reconcile duplicates nothing", func(t *testing.T) {
		out := mustOK(t, "get", "jobs", "-i", l.inv).stdout
		for _, name := range []string{"slow", "quick"} {
			for _, r := range runs[name] {
				status := "Complete"
				if r.finish.IsZero() {
					status = "Running"
				}
				if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(r.job) + `\s+` + status).MatchString(out) {
					t.Errorf("get jobs does not show %s %s:\n%s", r.job, status, out)
				}
			}
		}
		if r := clusterctl(t, "reconcile", "-i", l.inv); r.code != 0 && r.code != 5 {
			t.Fatalf("reconcile: %s", r)
		}
		again := cronRuns(t, l.inv)
		for _, name := range []string{"slow", "quick"} {
			now := map[string]*cronRun{}
			scheduled := map[time.Time]int{}
			for _, r := range again[name] {
				now[r.job] = r
				scheduled[r.scheduled]++
			}
			for at, n := range scheduled {
				if n > 1 {
					t.Errorf("%s: %d runs scheduled at %s", name, n, at)
				}
			}
			for _, r := range runs[name] {
				a := now[r.job]
				if a == nil || a.jobUID != r.jobUID || len(a.pods) != 1 || a.pods[0].Metadata.UID != r.pods[0].Metadata.UID {
					t.Errorf("%s changed after another reconcile: %v → %v", r.job, r, a)
				}
			}
		}
	})
	if t.Failed() {
		t.Log(strings.Join([]string{mustOK(t, "get", "cronjobs", "-i", l.inv).stdout, mustOK(t, "get", "jobs", "-i", l.inv).stdout}, "\n"))
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
