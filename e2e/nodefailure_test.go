package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/images"
)

const rollYAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: roll}
spec:
  replicas: 6
  strategy:
    rollingUpdate: {maxSurge: 2, maxUnavailable: 0}
  selector: {matchLabels: {app: roll}}
  template:
    metadata: {labels: {app: roll}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: IMAGE
        imagePullPolicy: IfNotPresent
        command: ["httpd", "-f", "-p", "8080", "-h", "/"]
        resources: {requests: {cpu: 10m, memory: 8Mi}}
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
`

const rollPDB = `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: roll}
spec:
  minAvailable: 5
  selector: {matchLabels: {app: roll}}
`

// readyPods counts the pods with the label app=app whose containers are
// all ready, as `get pods` (which asks the nodes) reports them.
func readyPods(t *testing.T, inv, app string) (int, []podJSON) {
	t.Helper()
	r := clusterctl(t, "get", "pods", "-l", "app="+app, "-i", inv, "-o", "json")
	if r.code != 0 {
		return -1, nil
	}
	var list struct {
		Items []podJSON `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Errorf("decode get pods: %v", err)
		return -1, nil
	}
	n := 0
	for _, p := range list.Items {
		ready := len(p.Status.ContainerStatuses) > 0
		for _, c := range p.Status.ContainerStatuses {
			ready = ready && c.Ready
		}
		if ready {
			n++
		}
	}
	return n, list.Items
}

// agentletPods lists the pods a host's agentlet runs, asked on the host.
func agentletPods(t *testing.T, l *lab, host string) []string {
	t.Helper()
	var st struct {
		Pods []struct {
			Name  string `json:"name"`
			Phase string `json:"phase"`
		} `json:"pods"`
	}
	out := l.exec(t, host, "agentlet status")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("agentlet status on %s: %v\n%s", host, err, out)
	}
	var names []string
	for _, p := range st.Pods {
		names = append(names, p.Name)
	}
	return names
}

func TestNodeFailureAndRollouts(t *testing.T) {
	l := podLab(t, 3)
	// Lost hosts' pods are evicted after 20 s here instead of 5 min.
	data, err := os.ReadFile(l.inv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.inv, []byte(strings.Replace(string(data), "cluster:\n", "cluster:\n  podEvictionTimeout: 20s\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	mustOK(t, "inventory", "validate", "-i", l.inv)
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
	mustOK(t, "apply", "-f", writeManifest(t, "roll.yaml", rollYAML), "-i", l.inv)
	mustOK(t, "rollout", "status", "deployment/roll", "-i", l.inv, "--timeout", "120s")

	t.Run("a rolling update with maxUnavailable=0 never has fewer than 6 ready pods", func(t *testing.T) {
		if n, _ := readyPods(t, l.inv, "roll"); n != 6 {
			t.Fatalf("%d ready before the update, want 6", n)
		}
		var (
			mu     sync.Mutex
			polls  int
			lowest = 1 << 30
			worst  string
		)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				n, pods := readyPods(t, l.inv, "roll")
				if n < 0 {
					continue
				}
				mu.Lock()
				polls++
				if n < lowest {
					lowest = n
					worst = fmt.Sprint(len(pods), " pods listed")
				}
				mu.Unlock()
			}
		}()
		mustOK(t, "set", "image", "deployment/roll", "web="+v2, "-i", l.inv)
		mustOK(t, "rollout", "status", "deployment/roll", "-i", l.inv, "--timeout", "180s")
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		if polls < 5 {
			t.Fatalf("only %d polls during the rollout; the check means nothing", polls)
		}
		if lowest < 6 {
			t.Errorf("ready pods dropped to %d (%s) during the rollout, want never below 6", lowest, worst)
		}
		t.Logf("%d polls, lowest ready count %d", polls, lowest)
		_, pods := readyPods(t, l.inv, "roll")
		for _, p := range pods {
			for _, c := range p.Status.ContainerStatuses {
				if c.Image != v2 {
					t.Errorf("%s runs %s after the rollout, want %s", p.Metadata.Name, c.Image, v2)
				}
			}
		}
	})

	t.Run("a DaemonSet lands on a host added later", func(t *testing.T) {
		mustOK(t, l.labArgs("up", "--hosts", "4", "--inventory", l.inv)...)
		mustOK(t, "up", "-i", l.inv)
		mustOK(t, "image", "load", filepath.Join(filepath.Dir(archive), "v2.tar"), "-i", l.inv)
		until(t, l.inv, 90*time.Second, "an agent pod ready on h4", func() (bool, string) {
			_, pods := readyPods(t, l.inv, "agent")
			on := map[string]bool{}
			for _, p := range pods {
				on[p.Spec.NodeName] = true
			}
			return on["h4"] && len(pods) == 4, fmt.Sprint(on)
		})
	})

	t.Run("drain moves pods within a PodDisruptionBudget", func(t *testing.T) {
		mustOK(t, "apply", "-f", writeManifest(t, "pdb.yaml", rollPDB), "-i", l.inv)
		_, pods := readyPods(t, l.inv, "roll")
		count := map[string]int{}
		for _, p := range pods {
			count[p.Spec.NodeName]++
		}
		node := ""
		for _, h := range []string{"h1", "h2", "h3", "h4"} {
			if node == "" || count[h] > count[node] {
				node = h
			}
		}
		if count[node] < 2 {
			t.Fatalf("pods spread as %v; the test wants a node with two roll pods", count)
		}
		var (
			mu     sync.Mutex
			lowest = 1 << 30
		)
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if n, _ := readyPods(t, l.inv, "roll"); n >= 0 {
					mu.Lock()
					lowest = min(lowest, n)
					mu.Unlock()
				}
			}
		}()
		r := mustOK(t, "drain", node, "-i", l.inv, "--timeout", "3m")
		close(stop)
		<-done
		if !strings.Contains(r.stdout, "node/"+node+" drained") || strings.Count(r.stdout, "evicting pod default/roll-") != count[node] {
			t.Errorf("drain output: %s", r)
		}
		if !strings.Contains(r.stderr, "Cannot evict pod as it would violate the pod's disruption budget") {
			t.Errorf("the budget (minAvailable 5 of 6) never held an eviction back while %d pods left %s: %s", count[node], node, r)
		}
		if !strings.Contains(r.stderr, "ignoring DaemonSet-managed pods") {
			t.Errorf("drain did not say it left the DaemonSet pod: %s", r)
		}
		mu.Lock()
		if lowest < 5 {
			t.Errorf("ready roll pods dropped to %d during the drain, below the budget's 5", lowest)
		}
		mu.Unlock()
		n, pods := readyPods(t, l.inv, "roll")
		for _, p := range pods {
			if p.Spec.NodeName == node {
				t.Errorf("%s still on the drained %s", p.Metadata.Name, node)
			}
		}
		if n != 6 {
			t.Errorf("%d ready roll pods after the drain, want 6", n)
		}
		if nodes := mustOK(t, "get", "nodes", "-i", l.inv).stdout; !strings.Contains(nodes, "SchedulingDisabled") {
			t.Errorf("drained node not cordoned:\n%s", nodes)
		}
		mustOK(t, "uncordon", node, "-i", l.inv)
		mustOK(t, "delete", "pdb", "roll", "-i", l.inv)
	})

	t.Run("a killed host's Deployment pods come back elsewhere and are stopped on it when it returns", func(t *testing.T) {
		_, pods := readyPods(t, l.inv, "roll")
		victim := ""
		count := map[string]int{}
		for _, p := range pods {
			count[p.Spec.NodeName]++
		}
		for _, h := range []string{"h1", "h2", "h3", "h4"} {
			if count[h] > 0 && (victim == "" || count[h] > count[victim]) {
				victim = h
			}
		}
		var lost []string
		for _, p := range pods {
			if p.Spec.NodeName == victim {
				lost = append(lost, p.Metadata.Name)
			}
		}
		mustOK(t, l.labArgs("kill", victim)...)
		t.Logf("killed %s, which ran %v", victim, lost)
		// Within the timeout the pods stay where they are.
		r := clusterctl(t, "reconcile", "-i", l.inv)
		if r.code != 3 {
			t.Errorf("reconcile with %s down: exit %d, want 3 (hosts unreachable)\n%s", victim, r.code, r)
		}
		// Hosts down make reconcile exit 3; that is expected here.
		eventually(t, 120*time.Second, "6 ready roll pods off "+victim, func() (bool, string) {
			if r := clusterctl(t, "reconcile", "-i", l.inv); r.code != 0 && r.code != 3 && r.code != 5 {
				return false, r.String()
			}
			n, pods := readyPods(t, l.inv, "roll")
			off := 0
			for _, p := range pods {
				if p.Spec.NodeName != victim {
					off++
				}
			}
			return n >= 6 && off >= 6, fmt.Sprintf("%d ready, %d off %s", n, off, victim)
		})
		// The DaemonSet pod on the lost host is not replaced anywhere.
		_, agents := readyPods(t, l.inv, "agent")
		if len(agents) != 4 {
			t.Errorf("%d agent pods, want 4 (the lost host's kept, none added)", len(agents))
		}

		mustOK(t, l.labArgs("boot", victim)...)
		until(t, l.inv, 120*time.Second, victim+" stops the replaced pods", func() (bool, string) {
			left := []string{}
			for _, name := range agentletPods(t, l, victim) {
				for _, gone := range lost {
					if name == gone {
						left = append(left, name)
					}
				}
			}
			return len(left) == 0, fmt.Sprintf("%s still runs %v", victim, left)
		})
		r = mustOK(t, "get", "pods", "-i", l.inv)
		for _, name := range lost {
			if strings.Contains(r.stdout, name) {
				t.Errorf("%s is still in the cluster after %s returned:\n%s", name, victim, r.stdout)
			}
		}
		// Statuses settle (the returned host's DaemonSet pod becomes ready
		// again), then the loop has nothing left to do.
		eventually(t, 30*time.Second, "reconcile converged after the host returned", func() (bool, string) {
			r := clusterctl(t, "reconcile", "-i", l.inv)
			return r.code == 0, r.String()
		})
	})
}
