package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/inventory"
)

// steadyYAML is the workload the restart, reboot and partition faults hit: a
// Deployment with one pod per host and a StatefulSet whose pods append the
// time to a file on their volume every second (proof that they ran).
const steadyYAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: web}}
            topologyKey: kubernetes.io/hostname
      containers:
      - name: web
        image: IMAGE
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "exec sleep 100000"]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: IMAGE
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "while :; do date +%s >> /data/ticks; sleep 1; done"]
        readinessProbe: {exec: {command: [test, -s, /data/ticks]}, periodSeconds: 1}
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`

// churnYAML changes with every round: the ConfigMap's data, the pod
// template's annotation (a new ReplicaSet) and the replicas.
const churnYAML = `apiVersion: v1
kind: ConfigMap
metadata: {name: churn}
data: {round: "ROUND"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: churn}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: churn}}
  template:
    metadata:
      labels: {app: churn}
      annotations: {round: "ROUND"}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: IMAGE
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "exec sleep 100000"]
        volumeMounts: [{name: cfg, mountPath: /cfg}]
      volumes: [{name: cfg, configMap: {name: churn}}]
`

// flipYAML is a pod on h1 reading a ConfigMap whose value flips.
const flipYAML = `apiVersion: v1
kind: ConfigMap
metadata: {name: flip}
data: {v: VALUE}
---
apiVersion: v1
kind: Pod
metadata: {name: flip}
spec:
  nodeName: h1
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: IMAGE
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "exec sleep 100000"]
    volumeMounts: [{name: cfg, mountPath: /cfg}]
  volumes: [{name: cfg, configMap: {name: flip}}]
`

var faultHosts = []string{"h1", "h2", "h3"}

// TestFaults injects faults into a 3-host lab: the CLI killed at random
// moments, containerd and agentlet crashing or restarted, a host rebooted, a
// host partitioned, and the CLI killed between pushing node specs and saving
// the inventory.
func TestFaults(t *testing.T) {
	// Builds with a cluster lease: a lease left by a killed run lapses
	// after its TTL, kept short here so the next run's wait stays short.
	lease := clusterctl(t, "lock", "release", "--help").code == 0
	if lease {
		t.Setenv("CLUSTERCTL_LEASE_TTL", "10s")
	}
	l := podLab(t, 3)
	wait := faultLockWait(t)
	mustOK(t, append([]string{"apply", "-f", writeManifest(t, "steady.yaml", steadyYAML), "-i", l.inv}, wait...)...)
	mustOK(t, "rollout", "status", "deployment/web", "-i", l.inv, "--timeout", "120s")
	mustOK(t, "rollout", "status", "statefulset/db", "-i", l.inv, "--timeout", "120s")

	t.Run("kill-cli-during-applies", func(t *testing.T) { faultKillApplies(t, l, wait, lease) })
	t.Run("killed-cli-lease-lapses", func(t *testing.T) { faultLeaseLapses(t, l, wait, lease) })
	t.Run("restart-containerd-and-agentlet", func(t *testing.T) { faultRestarts(t, l, wait) })
	t.Run("reboot-host", func(t *testing.T) { faultReboot(t, l, wait) })
	t.Run("partition-host", func(t *testing.T) { faultPartition(t, l, wait) })
	// Last: while the bug it finds is open, it leaves nodes holding a newer
	// generation than the inventory, which would fail later subtests.
	t.Run("kill-between-push-and-save", func(t *testing.T) { faultKillAfterPush(t, l, wait) })
}

// faultLockWait is --lock-wait 90s when apply offers it: a run killed while
// holding a lock (the inventory's flock, or a cluster lease with a TTL) must
// not make the next run fail.
func faultLockWait(t *testing.T) []string {
	if strings.Contains(mustOK(t, "apply", "--help").stdout, "--lock-wait") {
		return []string{"--lock-wait", "90s"}
	}
	return nil
}

// faultRun runs clusterctl and fails the test if it does not finish
// within limit (a hang on a lock left by a killed run).
func faultRun(t *testing.T, limit time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "CLUSTERCTL_INVENTORY=", "SSH_AUTH_SOCK=")
	err := cmd.Run()
	r := result{args: args, stdout: out.String(), stderr: errb.String()}
	if ctx.Err() != nil {
		t.Fatalf("clusterctl %s did not finish within %s (hung?)\n%s", strings.Join(args, " "), limit, r)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run clusterctl %v: %v", args, err)
	}
	return r
}

// faultSettle runs reconcile until it reports converged (exit 0), allowing
// "changed" (5) on the way, and fails on anything else.
func faultSettle(t *testing.T, l *lab, wait []string) {
	t.Helper()
	var last result
	for i := 0; i < 6; i++ {
		last = faultRun(t, 2*time.Minute, append([]string{"reconcile", "-i", l.inv}, wait...)...)
		switch last.code {
		case 0:
			return
		case 5:
			continue
		default:
			t.Fatalf("reconcile: want exit 0 (converged) or 5 (changed):\n%s", last)
		}
	}
	t.Fatalf("reconcile still changing things after 6 runs:\n%s", last)
}

// faultPod is what the fault tests read from `get pods -o json`.
type faultPod struct {
	Metadata struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		UID         string            `json:"uid"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		NodeName   string `json:"nodeName"`
		Containers []struct {
			Name string `json:"name"`
		} `json:"containers"`
	} `json:"spec"`
	Status struct {
		Phase             string `json:"phase"`
		ContainerStatuses []struct {
			Name         string `json:"name"`
			Ready        bool   `json:"ready"`
			RestartCount int32  `json:"restartCount"`
			ContainerID  string `json:"containerID"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

// ready reports whether the pod runs with every container ready.
func (p faultPod) ready() bool {
	if p.Status.Phase != "Running" || len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if !c.Ready {
			return false
		}
	}
	return true
}

// containers is the pod's container IDs and restart counts, as one string.
func (p faultPod) containers() string {
	var s []string
	for _, c := range p.Status.ContainerStatuses {
		s = append(s, fmt.Sprintf("%s=%s/%d", c.Name, strings.TrimPrefix(c.ContainerID, "containerd://"), c.RestartCount))
	}
	return strings.Join(s, ",")
}

// faultPods is `get pods -A -o json`: the inventory's pods with the status
// their nodes report.
func faultPods(t *testing.T, l *lab) []faultPod {
	t.Helper()
	r := faultRun(t, time.Minute, "get", "pods", "-A", "-i", l.inv, "-o", "json")
	if r.code != 0 {
		t.Fatalf("get pods: %s", r)
	}
	var list struct {
		Items []faultPod `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("decode get pods -o json: %v\n%s", err, r)
	}
	return list.Items
}

func faultPodsOn(pods []faultPod, host string) map[string]faultPod {
	m := map[string]faultPod{}
	for _, p := range pods {
		if p.Spec.NodeName == host {
			m[p.Metadata.Namespace+"/"+p.Metadata.Name] = p
		}
	}
	return m
}

// faultContainer is one running container as containerd on a host knows
// it, independent of agentlet's report.
type faultContainer struct {
	Host, ID, Namespace, Pod, UID, Container string
}

// faultRunning lists the running containers (not sandboxes) of pods on
// every host, asked of containerd on the host itself.
func faultRunning(t *testing.T, l *lab) []faultContainer {
	t.Helper()
	const script = `for id in $(ctr -n k8s.io tasks ls | awk 'NR > 1 && $3 == "RUNNING" { print $1 }'); do
  ctr -n k8s.io containers info "$id" 2>/dev/null || true
done`
	var all []faultContainer
	for _, h := range faultHosts {
		dec := json.NewDecoder(strings.NewReader(l.exec(t, h, script)))
		for {
			var c struct {
				ID     string            `json:"ID"`
				Labels map[string]string `json:"Labels"`
			}
			if err := dec.Decode(&c); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("decode ctr containers info on %s: %v", h, err)
			}
			if c.Labels["io.cri-containerd.kind"] != "container" {
				continue
			}
			all = append(all, faultContainer{Host: h, ID: c.ID, Namespace: c.Labels["clusterctl.dev/pod-namespace"],
				Pod: c.Labels["clusterctl.dev/pod-name"], UID: c.Labels["clusterctl.dev/pod-uid"], Container: c.Labels["clusterctl.dev/container-name"]})
		}
	}
	return all
}

// faultMismatch compares the pods the inventory wants (with their nodes)
// with what containerd runs on every host: "" when every desired pod runs
// all its containers on its own node only and nothing else runs.
func faultMismatch(pods []faultPod, running []faultContainer) string {
	want := map[string]string{} // uid/container → "ns/name on host"
	for _, p := range pods {
		if p.Spec.NodeName == "" {
			continue
		}
		for _, c := range p.Spec.Containers {
			want[p.Metadata.UID+"/"+c.Name] = p.Metadata.Namespace + "/" + p.Metadata.Name + " on " + p.Spec.NodeName
		}
	}
	var problems []string
	seen := map[string]int{}
	for _, c := range running {
		k := c.UID + "/" + c.Container
		seen[k]++
		w, ok := want[k]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s runs %s/%s container %s (uid %s), which the inventory does not want", c.Host, c.Namespace, c.Pod, c.Container, c.UID))
		case !strings.HasSuffix(w, " on "+c.Host):
			problems = append(problems, fmt.Sprintf("%s runs container %s of %s", c.Host, c.Container, w))
		}
	}
	for k, w := range want {
		switch n := seen[k]; {
		case n == 0:
			problems = append(problems, fmt.Sprintf("container %s of %s is not running", k, w))
		case n > 1:
			problems = append(problems, fmt.Sprintf("container %s of %s runs %d times", k, w, n))
		}
	}
	sort.Strings(problems)
	return strings.Join(problems, "\n")
}

// faultConverged waits until the nodes run exactly the inventory's pods.
func faultConverged(t *testing.T, l *lab) []faultPod {
	t.Helper()
	var pods []faultPod
	eventually(t, 60*time.Second, "the nodes run exactly the inventory's pods", func() (bool, string) {
		pods = faultPods(t, l)
		m := faultMismatch(pods, faultRunning(t, l))
		for _, p := range pods {
			if !p.ready() {
				m += fmt.Sprintf("\n%s on %s: %s, not ready", p.Metadata.Name, p.Spec.NodeName, p.Status.Phase)
			}
		}
		return m == "", m
	})
	return pods
}

// faultStored reads what the inventory holds for the churn objects, and its
// generation.
func faultStored(t *testing.T, path string) (cmRound, depRound string, replicas int, generation int64) {
	t.Helper()
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatalf("load inventory: %v", err)
	}
	cm, ok1 := inv.Object("ConfigMap", "default", "churn")
	dep, ok2 := inv.Object("Deployment", "default", "churn")
	if !ok1 || !ok2 {
		t.Fatalf("churn ConfigMap stored: %v, Deployment stored: %v", ok1, ok2)
	}
	var c struct {
		Data map[string]string `json:"data"`
	}
	var d struct {
		Spec struct {
			Replicas int `json:"replicas"`
			Template struct {
				Metadata struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(cm.JSON, &c); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(dep.JSON, &d); err != nil {
		t.Fatal(err)
	}
	return c.Data["round"], d.Spec.Template.Metadata.Annotations["round"], d.Spec.Replicas, inv.State.Generation
}

// faultStoredGeneration is the generation the inventory records.
func faultStoredGeneration(t *testing.T, path string) int64 {
	t.Helper()
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatalf("load inventory: %v", err)
	}
	return inv.State.Generation
}

// faultSpecSums is, per host, the checksum of the node spec it holds.
func faultSpecSums(t *testing.T, l *lab) []string {
	t.Helper()
	var sums []string
	for _, h := range faultHosts {
		sums = append(sums, strings.TrimSpace(l.exec(t, h, "sha256sum < /var/lib/agentlet/nodespec.json")))
	}
	return sums
}

// faultHeld is the generation of the node spec host holds on its disk.
func faultHeld(t *testing.T, l *lab, host string) int64 {
	t.Helper()
	out := l.exec(t, host, `sed -n 's/^  "generation": \([0-9]*\),$/\1/p' /var/lib/agentlet/nodespec.json | head -n 1`)
	n, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("generation held by %s: %q: %v", host, out, err)
	}
	return n
}

// faultSeed is the random seed of the kill schedule: $CLUSTERCTL_E2E_SEED
// or a fixed one, so a failing schedule can be replayed.
func faultSeed(t *testing.T) uint64 {
	if s := os.Getenv("CLUSTERCTL_E2E_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CLUSTERCTL_E2E_SEED=%q: %v", s, err)
		}
		return n
	}
	return 20261122
}

// faultKillApplies starts 50 applies that each change something and
// SIGKILLs each after a random delay: the inventory must parse after every
// kill, hold either all or none of that apply's objects, leave no lock
// behind, and the next reconciles must converge the cluster to it.
func faultKillApplies(t *testing.T, l *lab, wait []string, lease bool) {
	const rounds = 50
	seed := faultSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	manifest := func(round, replicas int) string {
		body := strings.NewReplacer("ROUND", strconv.Itoa(round), "REPLICAS", strconv.Itoa(replicas)).Replace(churnYAML)
		return writeManifest(t, fmt.Sprintf("churn-%d.yaml", round), body)
	}
	replicasOf := map[int]int{0: 2}

	// Round 0 is not killed: it creates the objects and measures how
	// long an apply takes, so the kills spread over its whole length.
	start := time.Now()
	mustOK(t, append([]string{"apply", "-f", manifest(0, 2), "-i", l.inv}, wait...)...)
	took := time.Since(start)
	window := min(max(took*3/2, 300*time.Millisecond), 1500*time.Millisecond)
	t.Logf("seed %d (set CLUSTERCTL_E2E_SEED to replay); an apply takes %s here: kills spread over 0–%s",
		seed, took.Round(time.Millisecond), window.Round(time.Millisecond))

	// Where each kill landed: before the apply saved its objects; after,
	// before any node took a new spec; after some node took one and before
	// the loop's save; after that save; or the apply had finished.
	var phases [5]int
	lastDone := 0
	specsBefore := faultSpecSums(t, l)
	for round := 1; round <= rounds; round++ {
		replicasOf[round] = 1 + rng.IntN(3)
		delay := time.Duration(rng.Int64N(int64(window)))
		args := append([]string{"apply", "-f", manifest(round, replicasOf[round]), "-i", l.inv}, wait...)
		cmd := exec.Command(bin, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Env = append(os.Environ(), "CLUSTERCTL_INVENTORY=", "SSH_AUTH_SOCK=")
		genBefore := faultStoredGeneration(t, l.inv)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL) // ours; it may have exited already
		err := cmd.Wait()
		var ee *exec.ExitError
		killed := errors.As(err, &ee) && !ee.Exited()
		if err != nil && !killed {
			t.Fatalf("round %d: apply failed by itself before the kill (%v); the rounds before: %s\nstdout:\n%s\nstderr:\n%s",
				round, err, faultPhaseSummary(phases), out.String(), errb.String())
		}

		// The inventory parses and validates.
		if r := faultRun(t, time.Minute, "inventory", "validate", "-i", l.inv); r.code != 0 {
			data, _ := os.ReadFile(l.inv)
			t.Fatalf("round %d (killed after %s): inventory does not validate:\n%s\n--- inventory\n%s", round, delay, r, data)
		}
		// The kernel released the killed run's flock.
		unlock, err := inventory.Lock(context.Background(), l.inv, 0)
		if err != nil {
			t.Fatalf("round %d: inventory still locked after the kill: %v", round, err)
		}
		unlock()
		// One apply's objects are saved together or not at all.
		cmRound, depRound, replicas, gen := faultStored(t, l.inv)
		stored, _ := strconv.Atoi(cmRound)
		switch {
		case cmRound != depRound:
			t.Fatalf("round %d: the inventory mixes two applies: ConfigMap from round %s, Deployment from round %s", round, cmRound, depRound)
		case stored < lastDone || stored > round:
			t.Fatalf("round %d: the inventory holds round %d; the last finished apply was round %d", round, stored, lastDone)
		case replicas != replicasOf[stored]:
			t.Fatalf("round %d: the stored Deployment of round %d has %d replicas, that apply had %d", round, stored, replicas, replicasOf[stored])
		}
		// Reading the cluster works.
		faultPods(t, l)
		// A cluster lease the killed run held is released as the user
		// would (`lock release` frees leases of this user's dead runs),
		// so the next round does not spend its kill waiting for the TTL
		// (killed-cli-lease-lapses covers the wait).
		if lease && killed {
			if r := faultRun(t, time.Minute, "lock", "release", "-i", l.inv); r.code != 0 {
				t.Fatalf("round %d: release the killed run's lease: %s", round, r)
			}
		}

		specs := faultSpecSums(t, l)
		pushed := !slices.Equal(specs, specsBefore)
		specsBefore = specs
		switch {
		case !killed:
			phases[4]++
			lastDone = round
		case stored < round:
			phases[0]++
		case gen > genBefore:
			phases[3]++
		case pushed:
			phases[2]++
		default:
			phases[1]++
		}
	}
	t.Logf("%d rounds: %s", rounds, faultPhaseSummary(phases))
	if killed := rounds - phases[4]; killed < rounds/5 {
		t.Errorf("only %d of %d applies were killed before they finished: the kill schedule tests little", killed, rounds)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(l.inv), ".*")); len(left) > 0 {
		t.Logf("temporary files left next to the inventory by killed saves: %v", left)
	}

	// The next reconciles finish the job: the last saved apply rolls out
	// and the nodes run exactly the inventory's pods.
	mustOK(t, append([]string{"rollout", "status", "deployment/churn", "-i", l.inv, "--timeout", "120s"}, wait...)...)
	faultSettle(t, l, wait)
	if r := faultRun(t, 2*time.Minute, append([]string{"reconcile", "-i", l.inv}, wait...)...); r.code != 0 {
		t.Fatalf("reconcile after convergence: want exit 0:\n%s", r)
	}
	pods := faultConverged(t, l)
	cmRound, _, replicas, _ := faultStored(t, l.inv)
	var churn []string
	for _, p := range pods {
		if p.Metadata.Labels["app"] != "churn" {
			continue
		}
		churn = append(churn, p.Metadata.Name)
		if got := p.Metadata.Annotations["round"]; got != cmRound {
			t.Errorf("%s is of round %s, want the stored round %s", p.Metadata.Name, got, cmRound)
		}
	}
	if len(churn) != replicas {
		t.Errorf("%d churn pods %v, want the stored %d replicas", len(churn), churn, replicas)
	}
	t.Logf("converged to round %s (%d replicas)", cmRound, replicas)
}

// faultPhaseSummary says where the kills of faultKillApplies landed.
func faultPhaseSummary(p [5]int) string {
	return fmt.Sprintf("%d kills before the apply saved its objects, %d before a node took the new specs, %d between a push and the loop's save, %d after that save; %d applies finished first",
		p[0], p[1], p[2], p[3], p[4])
}

// faultLeaseLapses kills a run while it holds the cluster lease (an apply
// waiting for a pod that never becomes ready): the next run waits for the
// lease to lapse (--lock-wait) and then works.
func faultLeaseLapses(t *testing.T, l *lab, wait []string, lease bool) {
	if !lease {
		t.Skip("this build has no cluster lease (no `clusterctl lock release`); the inventory's flock is checked after every kill in kill-cli-during-applies")
	}
	faultSettle(t, l, wait)
	never := writeManifest(t, "never.yaml", `apiVersion: v1
kind: Pod
metadata: {name: never-ready}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: IMAGE
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "exec sleep 100000"]
    readinessProbe: {exec: {command: ["false"]}, periodSeconds: 1}
`)
	cmd := exec.Command(bin, append([]string{"apply", "-f", never, "-i", l.inv, "--wait", "--timeout", "2m"}, wait...)...)
	out, err := os.Create(filepath.Join(t.TempDir(), "apply.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "CLUSTERCTL_INVENTORY=", "SSH_AUTH_SOCK=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Killed while it waits: after its loop saved the inventory (a kill
	// between its push and that save is kill-between-push-and-save's).
	gen := faultStoredGeneration(t, l.inv)
	eventually(t, 60*time.Second, "the waiting apply holds the cluster lease", func() (bool, string) {
		r := clusterctl(t, "lock", "status", "-i", l.inv, "-o", "json")
		var st struct {
			Cluster struct {
				Held bool `json:"held"`
			} `json:"cluster"`
		}
		printed, _ := os.ReadFile(out.Name())
		saved := faultStoredGeneration(t, l.inv) > gen
		return json.Unmarshal([]byte(r.stdout), &st) == nil && st.Cluster.Held && saved, fmt.Sprintf("loop saved: %v; %s\napply printed:\n%s", saved, r, printed)
	})
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	start := time.Now()
	// --wait: the next subtest kills agentlet and containerd, and must not
	// find this pod still being stopped.
	r := faultRun(t, 2*time.Minute, append([]string{"delete", "pod", "never-ready", "-i", l.inv, "--wait", "--timeout", "60s"}, wait...)...)
	if r.code != 0 {
		t.Fatalf("the run after the killed one: %s", r)
	}
	t.Logf("the next run waited %s for the killed run's lease", time.Since(start).Round(100*time.Millisecond))
	faultSettle(t, l, wait)
}

// faultRestarts crashes (SIGKILL) and restarts (labinit's equivalent of
// systemctl restart) containerd and agentlet: the pods keep running, the
// same containers, never restarted.
func faultRestarts(t *testing.T, l *lab, wait []string) {
	faultSettle(t, l, wait)
	for _, tc := range []struct {
		name, host, script string
	}{
		{"SIGKILL containerd and agentlet at once", "h1",
			`kill -9 $(cat /run/labinit/containerd.pid) $(cat /run/labinit/agentlet.pid)`},
		{"restart containerd and agentlet through the init (systemctl restart)", "h2",
			`touch /run/labinit/containerd.restart /run/labinit/agentlet.restart && kill -HUP 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pidsOf := func() string {
				return l.exec(t, tc.host, "cat /run/labinit/containerd.pid /run/labinit/agentlet.pid 2>/dev/null; true")
			}
			before := faultPodsOn(faultPods(t, l), tc.host)
			if len(before) < 2 {
				t.Fatalf("%s runs %d pods; want at least the web and one more", tc.host, len(before))
			}
			oldPIDs := pidsOf()
			l.exec(t, tc.host, tc.script)
			eventually(t, 30*time.Second, "containerd and agentlet restarted by the init", func() (bool, string) {
				now := pidsOf()
				old, f := strings.Fields(oldPIDs), strings.Fields(now)
				return len(old) == 2 && len(f) == 2 && f[0] != old[0] && f[1] != old[1], now
			})
			eventually(t, 60*time.Second, "every pod on "+tc.host+" ready again", func() (bool, string) {
				now := faultPodsOn(faultPods(t, l), tc.host)
				var notReady []string
				for k := range before {
					if p, ok := now[k]; !ok || !p.ready() {
						notReady = append(notReady, k)
					}
				}
				return len(notReady) == 0 && getNodes(t, l.inv)[tc.host].Status == "Ready", fmt.Sprint("not ready: ", notReady)
			})
			after := faultPodsOn(faultPods(t, l), tc.host)
			for k, p := range before {
				if got, want := after[k].containers(), p.containers(); got != want {
					t.Errorf("%s: containers %s, want the same as before the restart: %s", k, got, want)
				}
			}
			if m := faultMismatch(faultPods(t, l), faultRunning(t, l)); m != "" {
				t.Errorf("the nodes do not run the inventory's pods:\n%s", m)
			}
		})
	}
}

// faultTicks is the StatefulSet pod's tick file: the times it appended.
func faultTicks(t *testing.T, l *lab, pod string) []int64 {
	t.Helper()
	var ticks []int64
	for _, f := range strings.Fields(inPod(t, l.inv, "default", pod, "cat /data/ticks")) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("%s: tick %q: %v", pod, f, err)
		}
		ticks = append(ticks, n)
	}
	return ticks
}

// faultDBPodOn names a StatefulSet pod bound to host.
func faultDBPodOn(t *testing.T, pods []faultPod, host string) string {
	t.Helper()
	for _, p := range pods {
		if p.Metadata.Labels["app"] == "db" && p.Spec.NodeName == host {
			return p.Metadata.Name
		}
	}
	t.Fatalf("no db pod on %s", host)
	return ""
}

// faultDBHost is a host running a StatefulSet pod (and, by anti-affinity,
// a web pod).
func faultDBHost(t *testing.T, pods []faultPod) string {
	t.Helper()
	for _, h := range []string{"h3", "h2", "h1"} {
		for _, p := range pods {
			if p.Metadata.Labels["app"] == "db" && p.Spec.NodeName == h {
				return h
			}
		}
	}
	t.Fatal("no host runs a db pod")
	return ""
}

// faultReboot powers a host off and boots it: agentlet brings its pods back
// from the spec on its disk, with nothing but observation from the CLI.
func faultReboot(t *testing.T, l *lab, wait []string) {
	faultSettle(t, l, wait)
	pods := faultConverged(t, l)
	host := faultDBHost(t, pods)
	db := faultDBPodOn(t, pods, host)
	before := faultPodsOn(pods, host)
	ticks := faultTicks(t, l, db)

	mustOK(t, l.labArgs("kill", host)...)
	if n := getNodes(t, l.inv)[host]; n.Status != "Unreachable" {
		t.Errorf("%s after kill: %+v, want Unreachable", host, n)
	}
	mustOK(t, l.labArgs("boot", host)...)
	eventually(t, 120*time.Second, "every pod back on "+host, func() (bool, string) {
		now := faultPodsOn(faultPods(t, l), host)
		var notReady []string
		for k := range before {
			if p, ok := now[k]; !ok || !p.ready() {
				notReady = append(notReady, k)
			}
		}
		return len(notReady) == 0, fmt.Sprint("not ready: ", notReady)
	})
	after := faultPodsOn(faultPods(t, l), host)
	for k, p := range before {
		a := after[k]
		if a.Metadata.UID != p.Metadata.UID {
			t.Errorf("%s: uid %s after the reboot, want the same pod %s", k, a.Metadata.UID, p.Metadata.UID)
		}
		if a.containers() == p.containers() {
			t.Errorf("%s: the same containers %s after a reboot; they cannot have survived it", k, a.containers())
		}
	}
	if m := faultMismatch(faultPods(t, l), faultRunning(t, l)); m != "" {
		t.Errorf("the nodes do not run the inventory's pods after the reboot:\n%s", m)
	}
	// The volume survived: the old ticks are still there, new ones follow.
	now := faultTicks(t, l, db)
	if len(now) <= len(ticks) || !slices.Equal(now[:len(ticks)], ticks) {
		t.Errorf("%s's volume after the reboot: %d ticks, want the %d from before and more", db, len(now), len(ticks))
	}
}

// faultEvictionTimeout sets cluster.podEvictionTimeout in the inventory
// (0 removes it: the default, minutes) under the inventory's lock, and
// reports whether this build accepts it.
func faultEvictionTimeout(t *testing.T, l *lab, d time.Duration) bool {
	t.Helper()
	unlock, err := inventory.Lock(context.Background(), l.inv, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	orig, err := os.ReadFile(l.inv)
	if err != nil {
		t.Fatal(err)
	}
	data := regexp.MustCompile(`(?m)^  podEvictionTimeout: .*\n`).ReplaceAllString(string(orig), "")
	if d > 0 {
		data = strings.Replace(data, "cluster:\n", fmt.Sprintf("cluster:\n  podEvictionTimeout: %s\n", d), 1)
	}
	if err := os.WriteFile(l.inv, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := clusterctl(t, "inventory", "validate", "-i", l.inv); r.code != 0 {
		if err := os.WriteFile(l.inv, orig, 0o600); err != nil {
			t.Fatal(err)
		}
		return false
	}
	return true
}

// faultPartition cuts a host running a StatefulSet pod and a web pod off
// the network: its pods keep running; reconciles during the partition
// report it unreachable and start no second copy of a StatefulSet pod;
// after healing, every ordinal runs exactly once. A partition shorter than
// the pod eviction timeout leaves every pod as it was; a longer one (where
// the build evicts) may replace pods, never duplicate an ordinal.
func faultPartition(t *testing.T, l *lab, wait []string) {
	for _, tc := range []struct {
		name  string
		evict time.Duration // 0: the default timeout, far longer than the partition
	}{
		{"shorter than the eviction timeout", 0},
		{"longer than the eviction timeout", 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			faultSettle(t, l, wait)
			if tc.evict > 0 {
				if !faultEvictionTimeout(t, l, tc.evict) {
					t.Skip("this build has no cluster.podEvictionTimeout")
				}
				defer faultEvictionTimeout(t, l, 0)
			}
			faultPartitionOnce(t, l, wait, tc.evict)
		})
	}
}

func faultPartitionOnce(t *testing.T, l *lab, wait []string, evict time.Duration) {
	pods := faultConverged(t, l)
	host := faultDBHost(t, pods)
	db := faultDBPodOn(t, pods, host)
	before := faultPodsOn(pods, host)
	var ids []string
	for _, c := range faultRunning(t, l) {
		if c.Host == host {
			ids = append(ids, c.ID)
		}
	}
	sort.Strings(ids)

	mustOK(t, l.labArgs("partition", host)...)
	healed := false
	defer func() {
		if !healed {
			clusterctl(t, l.labArgs("heal", host)...)
		}
	}()
	cut := time.Now().Unix()
	reconcileCut := func() {
		r := faultRun(t, 2*time.Minute, append([]string{"reconcile", "-i", l.inv}, wait...)...)
		if r.code != 3 || !regexp.MustCompile(host+`\b.*(?i)unreachable`).MatchString(r.stdout+r.stderr) {
			t.Errorf("reconcile during the partition: want exit 3 naming %s unreachable:\n%s", host, r)
		}
	}
	reconcileCut()
	if evict > 0 {
		time.Sleep(evict + time.Second) // let the eviction timeout pass
		reconcileCut()
	}
	// During the partition: the host still runs the very same containers,
	// and no StatefulSet pod runs on two hosts.
	var still []string
	copies := map[string][]string{}
	for _, c := range faultRunning(t, l) {
		if c.Host == host {
			still = append(still, c.ID)
		}
		if strings.HasPrefix(c.Pod, "db-") {
			copies[c.Pod] = append(copies[c.Pod], c.Host)
		}
	}
	sort.Strings(still)
	if !slices.Equal(still, ids) {
		t.Errorf("%s's containers changed during the partition:\nbefore %v\nduring %v", host, ids, still)
	}
	for pod, hosts := range copies {
		if len(hosts) != 1 {
			t.Errorf("during the partition %s runs on %v, want exactly one host", pod, hosts)
		}
	}
	mend := time.Now().Unix()
	mustOK(t, l.labArgs("heal", host)...)
	healed = true

	mustOK(t, append([]string{"rollout", "status", "statefulset/db", "-i", l.inv, "--timeout", "120s"}, wait...)...)
	mustOK(t, append([]string{"rollout", "status", "deployment/web", "-i", l.inv, "--timeout", "120s"}, wait...)...)
	faultSettle(t, l, wait)
	pods = faultConverged(t, l)
	ordinals := map[string][]string{}
	web := 0
	for _, c := range faultRunning(t, l) {
		switch {
		case strings.HasPrefix(c.Pod, "db-"):
			ordinals[c.Pod] = append(ordinals[c.Pod], c.Host)
		case strings.HasPrefix(c.Pod, "web-"):
			web++
		}
	}
	for _, name := range []string{"db-0", "db-1", "db-2"} {
		if len(ordinals[name]) != 1 {
			t.Errorf("after healing %s runs on %v, want exactly one host", name, ordinals[name])
		}
	}
	if len(ordinals) != 3 || web != 3 {
		t.Errorf("after healing: StatefulSet pods %v and %d web pods, want db-0..2 once each and 3 web pods", ordinals, web)
	}
	var replaced []string
	for k, p := range before {
		if a := faultPodsOn(pods, host)[k]; a.Metadata.UID != p.Metadata.UID {
			replaced = append(replaced, k)
		}
	}
	sort.Strings(replaced)
	t.Logf("pods of %s replaced by name (same name, new uid) after the partition: %v", host, replaced)
	if evict == 0 {
		// Nothing was evicted: every pod of the host is the same pod with
		// the same containers, never restarted.
		after := faultPodsOn(pods, host)
		for k, p := range before {
			if got, want := after[k].Metadata.UID+" "+after[k].containers(), p.Metadata.UID+" "+p.containers(); got != want {
				t.Errorf("%s after the partition: %s, want unchanged %s", k, got, want)
			}
		}
	}
	// The StatefulSet pod appended to its volume while its host was cut off.
	inside := 0
	for _, tick := range faultTicks(t, l, db) {
		if tick > cut && tick < mend {
			inside++
		}
	}
	if inside == 0 {
		t.Errorf("%s appended no tick between the partition (%d) and the heal (%d)", db, cut, mend)
	}
	t.Logf("%s was cut off for %ds; %s ticked %d times meanwhile", host, mend-cut, db, inside)
}

// faultKillAfterPush kills an apply in the middle of its push: h1 holds the
// new generation, h3 does not (its agentlet is kept waiting on its state
// lock). The loop saves the inventory before pushing, so it records the
// new generation; the next run must finish the job, whether it reconciles
// or reverts the change.
func faultKillAfterPush(t *testing.T, l *lab, wait []string) {
	apply := func(value string) result {
		return faultRun(t, 2*time.Minute, append([]string{"apply", "-f",
			writeManifest(t, "flip-"+value+".yaml", strings.ReplaceAll(flipYAML, "VALUE", value)), "-i", l.inv}, wait...)...)
	}
	if r := apply("one"); r.code != 0 {
		t.Fatalf("apply flip: %s", r)
	}
	faultSettle(t, l, wait)

	cur := "one"
	for _, tc := range []struct {
		name string
		// then is the next run after the kill; it returns the value the
		// pod must end up seeing.
		then func(t *testing.T, killed, previous string) string
	}{
		{"then reconcile", func(t *testing.T, killed, _ string) string {
			faultSettle(t, l, wait)
			return killed
		}},
		{"then the change is reverted", func(t *testing.T, _, previous string) string {
			if r := apply(previous); r.code != 0 {
				t.Errorf("reverting apply: want exit 0:\n%s", r)
			}
			faultSettle(t, l, wait)
			return previous
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			faultSettle(t, l, wait)
			next := map[string]string{"one": "two", "two": "one"}[cur]
			gen := faultStoredGeneration(t, l.inv)
			if held := faultHeld(t, l, "h1"); held != gen {
				t.Fatalf("before the kill h1 holds generation %d, the inventory records %d; want them equal", held, gen)
			}
			hold := strings.TrimSpace(l.exec(t, "h3", `setsid flock -o /var/lib/agentlet sleep 60 </dev/null >/dev/null 2>&1 & echo $!`))
			release := func() { l.exec(t, "h3", "kill "+hold+" 2>/dev/null; true") }
			defer release()

			args := append([]string{"apply", "-f", writeManifest(t, "flip-"+next+".yaml", strings.ReplaceAll(flipYAML, "VALUE", next)), "-i", l.inv}, wait...)
			cmd := exec.Command(bin, args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.Env = append(os.Environ(), "CLUSTERCTL_INVENTORY=", "SSH_AUTH_SOCK=")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			deadline := time.Now().Add(30 * time.Second)
			for faultHeld(t, l, "h1") <= gen {
				select {
				case err := <-exited:
					t.Fatalf("apply ended (%v) before h1 held the new spec; the kill cannot land after the push:\n%s", err, out.String())
				default:
				}
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					<-exited
					t.Fatalf("h1 never received generation %d:\n%s", gen+1, out.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			_ = cmd.Process.Signal(syscall.SIGKILL)
			if err := <-exited; err == nil {
				t.Fatalf("apply finished before the kill:\n%s", out.String())
			}
			release()

			if r := faultRun(t, time.Minute, "inventory", "validate", "-i", l.inv); r.code != 0 {
				t.Fatalf("inventory does not validate after the kill:\n%s", r)
			}
			// The loop saves the new generation before it pushes any host.
			if g := faultStoredGeneration(t, l.inv); g != gen+1 {
				t.Fatalf("the inventory records generation %d after a kill mid-push, want %d (saved before the push)", g, gen+1)
			}
			t.Logf("killed after h1 took generation %d, while h3 waited for it", gen+1)

			want := tc.then(t, next, cur)
			eventually(t, 30*time.Second, "the pod sees "+want, func() (bool, string) {
				r := clusterctl(t, "exec", "flip", "--inventory", l.inv, "--", "cat", "/cfg/v")
				return r.code == 0 && r.stdout == want, r.String()
			})
			if m := faultMismatch(faultPods(t, l), faultRunning(t, l)); m != "" {
				t.Errorf("the nodes do not run the inventory's pods:\n%s", m)
			}
			cur = want
		})
	}
}
