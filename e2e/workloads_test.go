package e2e

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/images"
)

const workloadsYAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: IMAGE
        imagePullPolicy: IfNotPresent
        command: ["httpd", "-f", "-p", "8080", "-h", "/"]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: a, image: IMAGE, imagePullPolicy: IfNotPresent, command: [sleep, "100000"]}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: IMAGE
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "hostname >> /data/boots; exec sleep 100000"]
        readinessProbe: {exec: {command: [test, -f, /data/boots]}, periodSeconds: 1}
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: IMAGE, imagePullPolicy: IfNotPresent, command: [sh, -c, "echo done"]}]
`

// until runs `clusterctl reconcile` until cond holds.
func until(t *testing.T, inv string, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	eventually(t, d, what, func() (bool, string) {
		if r := clusterctl(t, "reconcile", "-i", inv); r.code != 0 && r.code != 5 {
			return false, r.String()
		}
		return cond()
	})
}

func podsOf(t *testing.T, inv, prefix string) []podJSON {
	t.Helper()
	r := mustOK(t, "get", "pods", "-i", inv, "-o", "json")
	var list struct {
		Items []podJSON `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatal(err)
	}
	var out []podJSON
	for _, p := range list.Items {
		if strings.HasPrefix(p.Metadata.Name, prefix) {
			out = append(out, p)
		}
	}
	return out
}

func TestWorkloads(t *testing.T) {
	l := podLab(t, 3)
	// A second tag of the test image, for rolling updates.
	v2 := strings.TrimSuffix(busyboxRef, ":e2e") + ":e2e-v2"
	img, err := images.Busybox(runtime.GOARCH, v2)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "v2.tar")
	if err := images.WriteArchive(archive, v2, img); err != nil {
		t.Fatal(err)
	}
	mustOK(t, "image", "load", archive, "-i", l.inv)
	mustOK(t, "apply", "-f", writeManifest(t, "w.yaml", workloadsYAML), "-i", l.inv)

	t.Run("Deployment rolls out, updates, rolls back and scales", func(t *testing.T) {
		r := mustOK(t, "rollout", "status", "deployment/web", "-i", l.inv, "--timeout", "90s")
		if !strings.Contains(r.stdout, `deployment "web" successfully rolled out`) {
			t.Fatalf("rollout status: %s", r)
		}
		mustOK(t, "set", "image", "deployment/web", "web="+v2, "-i", l.inv)
		r = mustOK(t, "rollout", "status", "deployment/web", "-i", l.inv, "--timeout", "90s")
		if !strings.Contains(r.stdout, "new replicas have been updated") || !strings.Contains(r.stdout, "successfully rolled out") {
			t.Errorf("rollout status did not show progress: %s", r)
		}
		out := mustOK(t, "get", "rs", "-i", l.inv).stdout
		if n := len(regexp.MustCompile(`(?m)^web-\S+\s+3\s+3\s+3`).FindAllString(out, -1)); n != 1 {
			t.Errorf("want one ReplicaSet with 3/3/3 after the update:\n%s", out)
		}
		hist := mustOK(t, "rollout", "history", "deployment/web", "-i", l.inv).stdout
		if !regexp.MustCompile(`(?m)^1\s`).MatchString(hist) || !regexp.MustCompile(`(?m)^2\s`).MatchString(hist) {
			t.Errorf("history: %s", hist)
		}
		mustOK(t, "rollout", "undo", "deployment/web", "-i", l.inv)
		mustOK(t, "rollout", "status", "deployment/web", "-i", l.inv, "--timeout", "90s")
		for _, p := range podsOf(t, l.inv, "web-") {
			for _, c := range p.Status.ContainerStatuses {
				if !strings.HasSuffix(c.Image, ":e2e") && c.Image != "" {
					t.Errorf("after undo %s runs %s, want the first image", p.Metadata.Name, c.Image)
				}
			}
		}
		mustOK(t, "scale", "deployment/web", "--replicas", "5", "-i", l.inv)
		until(t, l.inv, 60*time.Second, "5 ready replicas", func() (bool, string) {
			out := mustOK(t, "get", "deployments", "web", "-i", l.inv).stdout
			return strings.Contains(out, "5/5"), out
		})
	})

	t.Run("DaemonSet runs one pod per node", func(t *testing.T) {
		until(t, l.inv, 60*time.Second, "3 agent pods ready", func() (bool, string) {
			out := mustOK(t, "get", "ds", "-i", l.inv).stdout
			return regexp.MustCompile(`agent\s+3\s+3\s+3\s+3\s+3`).MatchString(out), out
		})
		nodes := map[string]bool{}
		for _, p := range podsOf(t, l.inv, "agent-") {
			nodes[p.Spec.NodeName] = true
		}
		if len(nodes) != 3 {
			t.Errorf("agent pods on %v, want one on each of 3 nodes", nodes)
		}
	})

	t.Run("StatefulSet: ordered, stable names, data survives re-creation", func(t *testing.T) {
		until(t, l.inv, 90*time.Second, "db ready", func() (bool, string) {
			out := mustOK(t, "get", "sts", "-i", l.inv).stdout
			return strings.Contains(out, "2/2"), out
		})
		pvc := mustOK(t, "get", "pvc", "-i", l.inv).stdout
		if !regexp.MustCompile(`data-db-0\s+Bound`).MatchString(pvc) || !regexp.MustCompile(`data-db-1\s+Bound`).MatchString(pvc) {
			t.Fatalf("claims: %s", pvc)
		}
		node := getPod(t, l.inv, "db-0").Spec.NodeName
		mustOK(t, "delete", "pod", "db-0", "-i", l.inv, "--wait", "--timeout", "60s")
		until(t, l.inv, 60*time.Second, "db-0 back", func() (bool, string) {
			out := mustOK(t, "get", "sts", "-i", l.inv).stdout
			return strings.Contains(out, "2/2"), out
		})
		if again := getPod(t, l.inv, "db-0").Spec.NodeName; again != node {
			t.Errorf("db-0 moved from %s to %s; its claim pins it", node, again)
		}
		out := inPod(t, l.inv, "default", "db-0", "cat /data/boots")
		if strings.Count(out, "db-0") != 2 {
			t.Errorf("db-0's volume after re-creation: %q, want two boots", out)
		}
	})

	t.Run("Job completes", func(t *testing.T) {
		until(t, l.inv, 60*time.Second, "job once complete", func() (bool, string) {
			out := mustOK(t, "get", "jobs", "-i", l.inv).stdout
			return regexp.MustCompile(`once\s+Complete\s+3/3`).MatchString(out), out
		})
	})

	t.Run("deleting a Deployment removes its ReplicaSets and pods", func(t *testing.T) {
		mustOK(t, "delete", "deployment", "web", "-i", l.inv)
		until(t, l.inv, 60*time.Second, "web's pods gone", func() (bool, string) {
			out := mustOK(t, "get", "rs", "-i", l.inv).stdout
			return len(podsOf(t, l.inv, "web-")) == 0 && !strings.Contains(out, "web-"), out
		})
	})

	t.Run("HorizontalPodAutoscaler scales a busy Deployment up from measured CPU", func(t *testing.T) {
		mustOK(t, "apply", "-f", writeManifest(t, "hpa.yaml", busyHPA), "-i", l.inv)
		until(t, l.inv, 120*time.Second, "busy scaled to more than 1 replica", func() (bool, string) {
			out := mustOK(t, "get", "hpa", "-i", l.inv).stdout
			dep := mustOK(t, "get", "deployments", "busy", "-i", l.inv).stdout
			return !regexp.MustCompile(`busy\s+\d+/1\s`).MatchString(dep), out + dep
		})
		if out := mustOK(t, "top", "pods", "-i", l.inv).stdout; !regexp.MustCompile(`busy-\S+\s+[1-9]\d*m`).MatchString(out) {
			t.Errorf("top pods shows no CPU for busy pods:\n%s", out)
		}
	})

	t.Run("CronJob fires on its schedule", func(t *testing.T) {
		mustOK(t, "apply", "-f", writeManifest(t, "cj.yaml", tickCronJob), "-i", l.inv)
		until(t, l.inv, 90*time.Second, "a tick Job completed", func() (bool, string) {
			out := mustOK(t, "get", "jobs", "-i", l.inv).stdout
			return regexp.MustCompile(`tick-\d+\s+Complete\s+1/1`).MatchString(out), out
		})
		out := mustOK(t, "get", "cronjobs", "-i", l.inv).stdout
		if !regexp.MustCompile(`tick\s+\*/1 \* \* \* \*\s+<none>\s+false\s+\d+\s+\S+ ago`).MatchString(out) {
			t.Errorf("get cronjobs: %s", out)
		}
	})
}

const busyHPA = `apiVersion: apps/v1
kind: Deployment
metadata: {name: busy}
spec:
  replicas: 1
  selector: {matchLabels: {app: busy}}
  template:
    metadata: {labels: {app: busy}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: spin
        image: IMAGE
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "while :; do :; done"]
        resources: {requests: {cpu: 100m}, limits: {cpu: 300m}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: busy}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: busy}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
`

const tickCronJob = `apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "*/1 * * * *"
  successfulJobsHistoryLimit: 2
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers: [{name: c, image: IMAGE, imagePullPolicy: IfNotPresent, command: [date]}]
`
