package jobs

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestJobStatusSummary(t *testing.T) {
	tests := []struct {
		name string
		job  *batchv1.Job
		want JobSummary
	}{
		{"not started", storedJob("j", completions(3), func(j *batchv1.Job) { j.Status.StartTime = nil }),
			JobSummary{Status: "Running", Completions: "0/3", Age: "60m"}},
		{"running", storedJob("j", completions(3), succeededCount(2), startedAt(ago(90*time.Second))),
			JobSummary{Status: "Running", Completions: "2/3", Duration: "90s", Age: "60m"}},
		{"complete", storedJob("j", succeededCount(1), startedAt(ago(10*time.Minute)), completedAt(ago(5*time.Minute))),
			JobSummary{Status: "Complete", Completions: "1/1", Duration: "5m", Age: "60m"}},
		{"failed", storedJob("j", failedCount(7), failedAt(ago(time.Minute))),
			JobSummary{Status: "Failed", Completions: "0/1", Duration: "60m", Age: "60m"}},
		{"suspended", storedJob("j", withCondition(batchv1.JobSuspended, "JobSuspended", ago(time.Minute))),
			JobSummary{Status: "Suspended", Completions: "0/1", Duration: "60m", Age: "60m"}},
		{"failure target", storedJob("j", withCondition(batchv1.JobFailureTarget, "PodFailurePolicy", ago(time.Minute))),
			JobSummary{Status: "FailureTarget", Completions: "0/1", Duration: "60m", Age: "60m"}},
		{"terminating", storedJob("j", func(j *batchv1.Job) { j.DeletionTimestamp = mt(t0) }),
			JobSummary{Status: "Terminating", Completions: "0/1", Duration: "60m", Age: "60m"}},
		{"no completions, parallel", storedJob("j", spec(func(s *batchv1.JobSpec) { s.Completions = nil }), parallelism(4)),
			JobSummary{Status: "Running", Completions: "0/1 of 4", Duration: "60m", Age: "60m"}},
		{"no completions", storedJob("j", spec(func(s *batchv1.JobSpec) { s.Completions = nil })),
			JobSummary{Status: "Running", Completions: "0/1", Duration: "60m", Age: "60m"}},
		{"a false Complete condition is not complete", storedJob("j", func(j *batchv1.Job) {
			j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionFalse}}
		}), JobSummary{Status: "Running", Completions: "0/1", Duration: "60m", Age: "60m"}},
		{"never stored", newJob("j"), JobSummary{Status: "Running", Completions: "0/1", Age: "<unknown>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, JobStatusSummary(tt.job, t0)); diff != "" {
				t.Errorf("JobStatusSummary (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCronJobStatusSummary(t *testing.T) {
	cj := storedCronJob("c", "*/5 * * * *", lastScheduled(ago(3*time.Minute)), cronSpec(func(s *batchv1.CronJobSpec) { s.TimeZone = ptr("Europe/Paris") }))
	cj.Status.Active = []corev1.ObjectReference{{Name: "c-1"}}
	want := CronJobSummary{Schedule: "*/5 * * * *", TimeZone: "Europe/Paris", Suspend: "False", Active: 1, LastSchedule: "3m", Age: "24h"}
	if diff := cmp.Diff(want, CronJobStatusSummary(cj, t0)); diff != "" {
		t.Errorf("CronJobStatusSummary (-want +got):\n%s", diff)
	}
	bare := &batchv1.CronJob{Spec: batchv1.CronJobSpec{Schedule: "@daily", Suspend: ptr(true)}}
	want = CronJobSummary{Schedule: "@daily", TimeZone: "<none>", Suspend: "True", LastSchedule: "<none>", Age: "<unknown>"}
	if diff := cmp.Diff(want, CronJobStatusSummary(bare, t0)); diff != "" {
		t.Errorf("CronJobStatusSummary (-want +got):\n%s", diff)
	}
	bare.Spec.Suspend = nil
	if got := CronJobStatusSummary(bare, t0).Suspend; got != "<unset>" {
		t.Errorf("Suspend = %q, want <unset>", got)
	}
}

func TestNames(t *testing.T) {
	long := strings.Repeat("a", 70)
	tests := []struct {
		job   string
		index int
		want  string
	}{
		{"pi", unknownIndex, "pi-"},
		{"pi", 3, "pi-3-"},
		{long, unknownIndex, long + "-"},
		{long, 12345, strings.Repeat("a", 58-len("-12345-")) + "-12345-"},
	}
	for _, tt := range tests {
		if got := podNamePrefix(tt.job, tt.index); got != tt.want {
			t.Errorf("podNamePrefix(%d chars, %d) = %q, want %q", len(tt.job), tt.index, got, tt.want)
		}
		name := generateName(podNamePrefix(tt.job, tt.index), "seed", "x")
		if len(name) > 63 || !regexp.MustCompile(`^[a-z0-9-]+[bcdfghjklmnpqrstvwxz2456789]{5}$`).MatchString(name) {
			t.Errorf("generateName = %q (%d chars)", name, len(name))
		}
		if tt.index >= 0 && !strings.HasSuffix(name[:len(name)-5], fmt.Sprintf("-%d-", tt.index)) {
			t.Errorf("generateName %q lost the index", name)
		}
	}
	if generateName("p-", "s", "a") == generateName("p-", "s", "b") {
		t.Error("different parts gave the same suffix")
	}
	if deriveUID("s", "a", "bc") == deriveUID("s", "ab", "c") {
		t.Error("parts are not delimited")
	}
}

func TestIndexSet(t *testing.T) {
	tests := []struct {
		in          string
		completions int
		want        string
	}{
		{"", 10, ""},
		{"0", 10, "0"},
		{"0,1", 10, "0,1"},
		{"0-2,4,6,7", 10, "0-2,4,6,7"},
		{"3,1,2", 10, "1-3"},
		{"0-9", 5, "0-4"},
		{"x,2,5-3,-1,4-x,7", 10, "2,7"},
	}
	for _, tt := range tests {
		if got := parseIndexes(tt.in, tt.completions).String(); got != tt.want {
			t.Errorf("parseIndexes(%q, %d) = %q, want %q", tt.in, tt.completions, got, tt.want)
		}
	}
}

// BenchmarkReconcileJobs is one pass over 1000 Jobs of 4 completions and
// parallelism 2, each with a counted success, a fresh success, a running
// pod and a pending pod, plus 20 CronJobs.
func BenchmarkReconcileJobs(b *testing.B) {
	in := JobInput{Now: t0, Seed: "bench"}
	for i := range 1000 {
		j := storedJob(fmt.Sprintf("job-%04d", i), completions(4), parallelism(2), succeededCount(1))
		if i%2 == 1 {
			indexed()(j)
			j.Status.CompletedIndexes = "0"
		}
		in.Jobs = append(in.Jobs, j)
		in.Pods = append(in.Pods,
			podOf(j, "aaaaa", index(0), succeeded(ago(time.Hour)), counted()),
			podOf(j, "bbbbb", index(1), succeeded(ago(time.Second))),
			podOf(j, "ccccc", index(2), running(true)),
			podOf(j, "ddddd", index(3)),
		)
	}
	for i := range 20 {
		in.CronJobs = append(in.CronJobs, storedCronJob(fmt.Sprintf("cron-%02d", i), "*/5 * * * *", lastScheduled(ago(5*time.Minute))))
	}
	b.ReportAllocs()
	for b.Loop() {
		if c := ReconcileJobs(in); len(c.Put) == 0 {
			b.Fatal("no changes")
		}
	}
}
