package nodeapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func cronTemplate() PodSpec {
	return PodSpec{UID: CronPodUIDPlaceholder, Namespace: "default", Name: CronPodNamePlaceholder, RestartPolicy: RestartNever,
		Containers: []ContainerSpec{{Name: "c", Image: "busybox"}}}
}

func validCronJob() CronJobSpec {
	return CronJobSpec{UID: "u1", Namespace: "default", Name: "tick", Schedule: "*/1 * * * *", ConcurrencyPolicy: ConcurrencyForbid,
		PodsPerRun: 1, Templates: []PodSpec{cronTemplate()}}
}

func TestCronJobSpecValidate(t *testing.T) {
	if err := (&CronJobSpec{}).Validate(); err == nil {
		t.Error("the empty CronJob validates")
	}
	valid := validCronJob()
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid CronJob: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*CronJobSpec)
		want   []string
	}{
		{"identity and schedule", func(c *CronJobSpec) { c.UID, c.Schedule = "", " " },
			[]string{"uid, namespace and name are required", "schedule: required"}},
		{"policy and limits", func(c *CronJobSpec) {
			d := int64(-1)
			c.ConcurrencyPolicy, c.StartingDeadlineSeconds, c.FailedJobsHistoryLimit = "Sometimes", &d, -1
		}, []string{`concurrencyPolicy: unsupported "Sometimes"`, "startingDeadlineSeconds: must not be negative", "history limits"}},
		{"no pods", func(c *CronJobSpec) { c.PodsPerRun = 0 }, []string{"podsPerRun: must be at least 1"}},
		{"one template per index", func(c *CronJobSpec) { c.Indexed, c.PodsPerRun = true, 2 }, []string{"templates: want 2, got 1"}},
		{"template without placeholders", func(c *CronJobSpec) { c.Templates[0].Name = "real" },
			[]string{"templates[0]: must be named default/" + CronPodNamePlaceholder}},
		{"template restarting always", func(c *CronJobSpec) { c.Templates[0].RestartPolicy = RestartAlways },
			[]string{"restartPolicy must be OnFailure or Never"}},
		{"invalid template", func(c *CronJobSpec) { c.Templates[0].Containers = nil },
			[]string{"containers: at least one is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validCronJob()
			c.Templates = []PodSpec{cronTemplate()}
			tc.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNodeSpecCronJobs(t *testing.T) {
	var s NodeSpec
	if err := json.Unmarshal([]byte(validSpec), &s); err != nil {
		t.Fatal(err)
	}
	s.CronJobs = []CronJobSpec{validCronJob(), validCronJob()}
	s.CronJobs[1].Templates = []PodSpec{cronTemplate()}
	err := s.Validate()
	if err == nil || !strings.Contains(err.Error(), "cronjob default/tick: listed twice") {
		t.Errorf("Validate = %v, want a duplicate", err)
	}
	s.CronJobs = s.CronJobs[:1]
	s.CronJobs[0].PodsPerRun = 0
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "podsPerRun") {
		t.Errorf("Validate = %v, want the CronJob's problem", err)
	}
}

func TestCronRunName(t *testing.T) {
	at := time.Date(2024, 3, 1, 10, 1, 59, 0, time.FixedZone("x", 3600))
	// Kubernetes: the scheduled time in minutes since the epoch, any zone.
	if got := CronRunName("tick", at); got != "tick-28488061" {
		t.Errorf("CronRunName = %q", got)
	}
}

func TestInstantiateCronPod(t *testing.T) {
	tmpl := PodSpec{
		UID: CronPodUIDPlaceholder, Namespace: "default", Name: CronPodNamePlaceholder, Hostname: CronPodNamePlaceholder,
		Labels:        map[string]string{"job-name": CronJobNamePlaceholder, "controller-uid": CronJobUIDPlaceholder, "app": "x"},
		RestartPolicy: RestartOnFailure,
		Containers: []ContainerSpec{{Name: "c", Image: "busybox",
			Args:         []string{"--me=" + CronPodNamePlaceholder},
			Env:          []EnvVar{{Name: "POD", Value: CronPodNamePlaceholder}, {Name: "ADDR", Value: "http://" + CronPodNamePlaceholder + ":80"}, {Name: "IP", FieldPath: FieldPodIP}},
			VolumeMounts: []VolumeMount{{Name: "v", MountPath: "/d", SubPath: CronPodNamePlaceholder}}}},
		Volumes: []VolumeSpec{{Name: "v", Files: &FilesVolume{Items: []FileItem{
			{Path: "name", Data: []byte(CronPodNamePlaceholder), Mode: 0o644},
			{Path: "labels", Data: []byte("controller-uid=\"" + CronJobUIDPlaceholder + "\"\njob-name=\"" + CronJobNamePlaceholder + "\""), Mode: 0o644},
		}}}},
	}
	orig, _ := json.Marshal(tmpl)
	id := CronRunPodIdentity{PodName: "tick-28488061-bcdfg", PodUID: "pod-uid-1", JobName: "tick-28488061", JobUID: "job-uid-1"}
	got, err := InstantiateCronPod(&tmpl, id)
	if err != nil {
		t.Fatal(err)
	}
	want := PodSpec{
		UID: "pod-uid-1", Namespace: "default", Name: "tick-28488061-bcdfg", Hostname: "tick-28488061-bcdfg",
		Labels:        map[string]string{"job-name": "tick-28488061", "controller-uid": "job-uid-1", "app": "x"},
		RestartPolicy: RestartOnFailure,
		Containers: []ContainerSpec{{Name: "c", Image: "busybox",
			Args:         []string{"--me=tick-28488061-bcdfg"},
			Env:          []EnvVar{{Name: "POD", Value: "tick-28488061-bcdfg"}, {Name: "ADDR", Value: "http://tick-28488061-bcdfg:80"}, {Name: "IP", FieldPath: FieldPodIP}},
			VolumeMounts: []VolumeMount{{Name: "v", MountPath: "/d", SubPath: "tick-28488061-bcdfg"}}}},
		Volumes: []VolumeSpec{{Name: "v", Files: &FilesVolume{Items: []FileItem{
			{Path: "name", Data: []byte("tick-28488061-bcdfg"), Mode: 0o644},
			{Path: "labels", Data: []byte("controller-uid=\"job-uid-1\"\njob-name=\"tick-28488061\""), Mode: 0o644},
		}}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("instantiated pod (-want +got):\n%s", diff)
	}
	if after, _ := json.Marshal(tmpl); string(after) != string(orig) {
		t.Error("InstantiateCronPod modified its template")
	}

	// A name longer than a hostname allows is cut as kubelet cuts it.
	long := CronRunPodIdentity{PodName: strings.Repeat("a", 61) + "-.bcdef", PodUID: "u", JobName: "j", JobUID: "ju"}
	got, err = InstantiateCronPod(&tmpl, long)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hostname != strings.Repeat("a", 61) {
		t.Errorf("hostname = %q, want the name cut to 63 without a trailing -.", got.Hostname)
	}
}
