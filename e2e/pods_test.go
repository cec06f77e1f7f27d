package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/images"
	"github.com/clusterctl/clusterctl/inventory"
)

// busyboxRef is the test image side-loaded onto the lab hosts.
const busyboxRef = "localhost/clusterctl/busybox:e2e"

// podLab is a 2-host lab after `up`, with the busybox image side-loaded.
func podLab(t testing.TB, hosts int) *lab {
	t.Helper()
	l := newLab(t, hosts)
	mustOK(t, "up", "-i", l.inv)
	img, err := images.Busybox(runtime.GOARCH, busyboxRef)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if err := images.WriteArchive(archive, busyboxRef, img); err != nil {
		t.Fatal(err)
	}
	mustOK(t, "image", "load", archive, "-i", l.inv)
	return l
}

func writeManifest(t testing.TB, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "IMAGE", busyboxRef)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type podJSON struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		NodeName string `json:"nodeName"`
	} `json:"spec"`
	Status struct {
		Phase             string `json:"phase"`
		PodIP             string `json:"podIP"`
		ContainerStatuses []struct {
			Name         string `json:"name"`
			Image        string `json:"image"`
			Ready        bool   `json:"ready"`
			RestartCount int32  `json:"restartCount"`
			LastState    struct {
				Terminated *struct {
					ExitCode int32 `json:"exitCode"`
				} `json:"terminated"`
			} `json:"lastState"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

func getPod(t *testing.T, inv, name string) podJSON {
	t.Helper()
	r := mustOK(t, "get", "pods", name, "-i", inv, "-o", "json")
	var list struct {
		Items []podJSON `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("get pods %s -o json: %v\n%s", name, err, r)
	}
	return list.Items[0]
}

// eventually polls cond every 500ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s; last state: %s", what, d, state)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

const webPod = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-content
data:
  index.html: hello from a configmap
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  terminationGracePeriodSeconds: 3
  containers:
    - name: server
      image: IMAGE
      imagePullPolicy: IfNotPresent
      command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
      ports: [{containerPort: 8080, name: http}]
      readinessProbe:
        httpGet: {path: /index.html, port: http}
        periodSeconds: 1
      resources:
        limits: {memory: 64Mi, cpu: 200m}
      volumeMounts: [{name: content, mountPath: /www}]
    - name: client
      image: IMAGE
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "while true; do timeout 2 wget -q -O - http://127.0.0.1:8080/index.html; echo; sleep 1; done"]
  volumes:
    - name: content
      configMap: {name: web-content}
`

func TestPods(t *testing.T) {
	l := podLab(t, 2)

	t.Run("typo applies nothing", func(t *testing.T) {
		bad := writeManifest(t, "bad.yaml", strings.Replace(webPod, "imagePullPolicy: IfNotPresent\n      command: [\"httpd\"", "imagePullPolicyy: IfNotPresent\n      command: [\"httpd\"", 1))
		r := clusterctl(t, "apply", "-f", bad, "-i", l.inv)
		if r.code != 2 || !strings.Contains(r.stderr, "bad.yaml:18: spec.containers[0].imagePullPolicyy") {
			t.Errorf("want exit 2 naming bad.yaml:18: %s", r)
		}
		if out := mustOK(t, "get", "pods", "-i", l.inv).stdout; !strings.Contains(out, "No resources found") {
			t.Errorf("a failed apply created pods:\n%s", out)
		}
	})

	t.Run("two containers over localhost with a configmap and a readiness probe", func(t *testing.T) {
		mustOK(t, "apply", "-f", writeManifest(t, "web.yaml", webPod), "-i", l.inv, "--wait", "--timeout", "90s")
		p := getPod(t, l.inv, "web")
		if p.Status.Phase != "Running" || p.Spec.NodeName == "" || p.Status.PodIP == "" {
			t.Fatalf("web: %+v", p)
		}
		eventually(t, 20*time.Second, "client logs show the configmap content", func() (bool, string) {
			out := clusterctl(t, "logs", "web", "-c", "client", "--tail", "3", "-i", l.inv).stdout
			return strings.Contains(out, "hello from a configmap"), out
		})
		r := clusterctl(t, "exec", "web", "-c", "server", "--inventory", l.inv, "--", "sh", "-c", "cat /www/index.html; exit 7")
		if r.code != 7 || !strings.Contains(r.stdout, "hello from a configmap") {
			t.Errorf("exec: want exit 7 and the file: %s", r)
		}
		// The memory limit reached the container's cgroup.
		r = mustOK(t, "exec", "web", "-c", "server", "--inventory", l.inv, "--", "sh", "-c",
			"cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
		if strings.TrimSpace(r.stdout) != "67108864" {
			t.Errorf("memory limit in the cgroup = %q, want 67108864", r.stdout)
		}
		if d := mustOK(t, "describe", "pod", "web", "-i", l.inv).stdout; !strings.Contains(d, "Ready") || !strings.Contains(d, "configMap web-content") {
			t.Errorf("describe pod:\n%s", d)
		}
	})

	t.Run("crashing container restarts with back-off", func(t *testing.T) {
		mustOK(t, "apply", "-i", l.inv, "-f", writeManifest(t, "crash.yaml", `apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  terminationGracePeriodSeconds: 3
  containers:
    - name: c
      image: IMAGE
      imagePullPolicy: Never
      command: ["sh", "-c", "echo boom; exit 1"]
`))
		eventually(t, 60*time.Second, "crash restarted at least twice", func() (bool, string) {
			p := getPod(t, l.inv, "crash")
			if len(p.Status.ContainerStatuses) == 0 {
				return false, "no status"
			}
			c := p.Status.ContainerStatuses[0]
			return c.RestartCount >= 2 && c.LastState.Terminated != nil && c.LastState.Terminated.ExitCode == 1, clusterctl(t, "get", "pods", "crash", "-i", l.inv).stdout
		})
		// Between restarts, the back-off shows (right after a restart the
		// container is briefly Running).
		eventually(t, 30*time.Second, "get pods shows CrashLoopBackOff", func() (bool, string) {
			out := mustOK(t, "get", "pods", "crash", "-i", l.inv).stdout
			return strings.Contains(out, "CrashLoopBackOff"), out
		})
		if prev := mustOK(t, "logs", "crash", "--previous", "-i", l.inv).stdout; !strings.Contains(prev, "boom") {
			t.Errorf("logs --previous: %q", prev)
		}
	})

	t.Run("failing liveness probe restarts the container", func(t *testing.T) {
		mustOK(t, "apply", "-i", l.inv, "-f", writeManifest(t, "live.yaml", `apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 3
  containers:
    - name: c
      image: IMAGE
      imagePullPolicy: Never
      command: ["sh", "-c", "touch /tmp/alive; sleep 3; rm /tmp/alive; sleep 1000"]
      livenessProbe:
        exec: {command: ["test", "-f", "/tmp/alive"]}
        periodSeconds: 1
        failureThreshold: 2
`))
		eventually(t, 60*time.Second, "liveness restart", func() (bool, string) {
			p := getPod(t, l.inv, "live")
			return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount >= 1, clusterctl(t, "describe", "pod", "live", "-i", l.inv).stdout
		})
	})

	t.Run("image pulled from the lab registry with a secret volume", func(t *testing.T) {
		inv, err := inventory.Load(l.inv)
		if err != nil || len(inv.Cluster.Registries) == 0 {
			t.Fatalf("lab inventory has no registry: %v", err)
		}
		ref := inv.Cluster.Registries[0].Host + "/e2e/busybox:pull"
		img, err := images.Busybox(runtime.GOARCH, ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := images.Push(ref, img, true); err != nil {
			t.Fatal(err)
		}
		mustOK(t, "apply", "-i", l.inv, "--wait", "--timeout", "60s", "-f", writeManifest(t, "pulled.yaml", `apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {token: s3cr3t}
---
apiVersion: v1
kind: Pod
metadata: {name: pulled}
spec:
  terminationGracePeriodSeconds: 3
  containers:
    - name: c
      image: `+ref+`
      imagePullPolicy: Always
      command: ["sleep", "1000"]
      volumeMounts: [{name: creds, mountPath: /creds}]
  volumes:
    - name: creds
      secret: {secretName: creds}
`))
		out := mustOK(t, "exec", "pulled", "--inventory", l.inv, "--", "sh", "-c",
			"cat /creds/token; echo; stat -L -c %a /creds/token; grep ' /creds ' /proc/mounts | cut -d' ' -f3").stdout
		if out != "s3cr3t\n600\ntmpfs\n" {
			t.Errorf("secret volume: got %q, want the token, mode 600, on tmpfs", out)
		}
		if d := mustOK(t, "describe", "pod", "pulled", "-i", l.inv).stdout; !strings.Contains(d, "Pulled") {
			t.Errorf("describe should show the pull:\n%s", d)
		}
		// Secret data never reaches the node's published status.
		node := getPod(t, l.inv, "pulled").Spec.NodeName
		if st := l.exec(t, node, "cat /run/agentlet/status.json"); strings.Contains(st, "s3cr3t") {
			t.Error("secret value leaked into agentlet's status")
		}
		mustOK(t, "delete", "pod", "pulled", "-i", l.inv)
	})

	t.Run("namespaces", func(t *testing.T) {
		cm := writeManifest(t, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {a: \"1\"}\n")
		if r := clusterctl(t, "apply", "-f", cm, "-i", l.inv); r.code != 2 || !strings.Contains(r.stderr, `namespace "shop" not found`) {
			t.Errorf("apply into a missing namespace: %s", r)
		}
		ns := writeManifest(t, "ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
		mustOK(t, "apply", "-f", ns, "-f", cm, "-i", l.inv)
		if out := mustOK(t, "get", "configmaps", "-n", "shop", "-i", l.inv).stdout; !strings.Contains(out, "settings") {
			t.Errorf("get configmaps -n shop:\n%s", out)
		}
		mustOK(t, "delete", "namespace", "shop", "-i", l.inv)
		if out := mustOK(t, "get", "configmaps", "-A", "-i", l.inv).stdout; strings.Contains(out, "settings") {
			t.Errorf("deleting the namespace left its configmap:\n%s", out)
		}
	})

	t.Run("cp both ways", func(t *testing.T) {
		dir := t.TempDir()
		mustOK(t, "cp", "web:/www/index.html", filepath.Join(dir, "got.html"), "-c", "server", "-i", l.inv)
		if b, err := os.ReadFile(filepath.Join(dir, "got.html")); err != nil || string(b) != "hello from a configmap" {
			t.Errorf("cp from the pod: %q %v", b, err)
		}
		up := filepath.Join(dir, "up.txt")
		os.WriteFile(up, []byte("uploaded"), 0o644)
		mustOK(t, "cp", up, "default/web:/tmp/up.txt", "-c", "server", "-i", l.inv)
		if out := mustOK(t, "exec", "web", "-c", "server", "--inventory", l.inv, "--", "cat", "/tmp/up.txt").stdout; out != "uploaded" {
			t.Errorf("cp to the pod: %q", out)
		}
	})

	t.Run("dry run prints a diff and changes nothing", func(t *testing.T) {
		changed := strings.Replace(webPod, "hello from a configmap", "changed content", 1)
		before, _ := os.ReadFile(l.inv)
		r := mustOK(t, "apply", "--dry-run", "-i", l.inv, "-f", writeManifest(t, "web.yaml", changed))
		if !strings.Contains(r.stdout, "configmap/web-content configured (dry run)") ||
			!strings.Contains(r.stdout, "-   index.html: hello from a configmap") || !strings.Contains(r.stdout, "+   index.html: changed content") {
			t.Errorf("dry run output:\n%s", r)
		}
		if after, _ := os.ReadFile(l.inv); string(after) != string(before) {
			t.Error("dry run changed the inventory")
		}
	})

	t.Run("killing agentlet keeps pods running", func(t *testing.T) {
		node := getPod(t, l.inv, "web").Spec.NodeName
		before := getPod(t, l.inv, "web")
		l.exec(t, node, "kill -9 $(cat /run/agentlet/agentlet.pid)")
		eventually(t, 30*time.Second, "agentlet back and web still ready", func() (bool, string) {
			p := getPod(t, l.inv, "web")
			ok := p.Status.Phase == "Running" && len(p.Status.ContainerStatuses) == 2 && p.Status.ContainerStatuses[0].Ready
			return ok && p.Status.ContainerStatuses[0].RestartCount == before.Status.ContainerStatuses[0].RestartCount, clusterctl(t, "get", "pods", "web", "-i", l.inv).stdout
		})
	})

	t.Run("delete stops the pods gracefully", func(t *testing.T) {
		mustOK(t, "delete", "pod", "crash", "live", "-i", l.inv, "--wait", "--timeout", "60s")
		mustOK(t, "delete", "-f", writeManifest(t, "web.yaml", webPod), "-i", l.inv, "--wait", "--timeout", "60s")
		if out := mustOK(t, "get", "pods", "-i", l.inv).stdout; !strings.Contains(out, "No resources found") {
			t.Errorf("pods left after delete:\n%s", out)
		}
		for _, h := range []string{"h1", "h2"} {
			if out := l.exec(t, h, "ctr -n k8s.io containers ls -q | wc -l"); strings.TrimSpace(out) != "0" {
				t.Errorf("%s: %s containers left after delete", h, strings.TrimSpace(out))
			}
		}
	})
}
