package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// leasePod is a pod named NAME with a ConfigMap of its own: an apply that
// changes two objects.
const leasePod = `apiVersion: v1
kind: ConfigMap
metadata: {name: NAME-cfg}
data: {who: NAME}
---
apiVersion: v1
kind: Pod
metadata: {name: NAME}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: IMAGE
      imagePullPolicy: IfNotPresent
      command: [sleep, "100000"]
      envFrom: [{configMapRef: {name: NAME-cfg}}]
`

// neverReadyPod never passes its readiness probe: `apply --wait` on it
// runs (and holds the cluster lease) until its timeout.
const neverReadyPod = `apiVersion: v1
kind: Pod
metadata: {name: never-ready}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: IMAGE
      imagePullPolicy: IfNotPresent
      command: [sleep, "100000"]
      readinessProbe: {exec: {command: ["false"]}, periodSeconds: 1}
`

// copyInventory copies an inventory next to it (the lab's key and
// known_hosts paths are absolute), as a second workstation would hold it.
func copyInventory(t *testing.T, from, name string) string {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(filepath.Dir(from), name+".yaml")
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return to
}

// heldSpecs reads the NodeSpec every host holds, from the host's disk.
func heldSpecs(t *testing.T, l *lab, hosts []string) map[string]nodeapi.NodeSpec {
	t.Helper()
	out := map[string]nodeapi.NodeSpec{}
	for _, h := range hosts {
		var s nodeapi.NodeSpec
		if err := json.Unmarshal([]byte(l.exec(t, h, "cat "+nodeapi.SpecPath)), &s); err != nil {
			t.Fatalf("%s: decode held spec: %v", h, err)
		}
		out[h] = s
	}
	return out
}

// clusterPods is every pod the hosts' held specs run, sorted, and the
// generations they hold.
func clusterPods(t *testing.T, l *lab, hosts []string) ([]string, map[int64]bool) {
	t.Helper()
	var pods []string
	gens := map[int64]bool{}
	for _, s := range heldSpecs(t, l, hosts) {
		gens[s.Generation] = true
		for _, p := range s.Pods {
			pods = append(pods, p.Name)
		}
	}
	sort.Strings(pods)
	return pods, gens
}

var generationRE = regexp.MustCompile(`(?m)^\s*generation:\s*(\d+)`)

func inventoryGeneration(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := generationRE.FindSubmatch(data)
	if m == nil {
		t.Fatalf("no generation in %s", path)
	}
	var g int64
	fmt.Sscan(string(m[1]), &g)
	return g
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// conflictRE is what a refused run says: the lease is another's, or the
// hosts hold newer state than its inventory.
var conflictRE = regexp.MustCompile(`cluster lease held by \S+@\S+ \(pid \d+, run [0-9a-f]+\) since|refuse to change the cluster: h\d holds generation \d+, written by \S+`)

func TestClusterLease(t *testing.T) {
	l := podLab(t, 3)
	hosts := []string{"h1", "h2", "h3"}
	cur := l.inv // the inventory that knows the newest state

	// Two copies of one inventory, two different manifests, at once:
	// exactly one apply wins; the other changes nothing, here or in its
	// copy. Raced twice: waiting for the lease (the default --lock-wait,
	// then fenced), and not waiting (--lock-wait 0).
	for round, wait := range []string{"10s", "0"} {
		t.Run("concurrent applies from two copies with lock-wait "+wait, func(t *testing.T) {
			names := []string{fmt.Sprintf("alpha%d", round), fmt.Sprintf("beta%d", round)}
			copies := []string{copyInventory(t, cur, names[0]), copyInventory(t, cur, names[1])}
			before := mustReadFile(t, copies[0])
			podsBefore, _ := clusterPods(t, l, hosts)
			var wg sync.WaitGroup
			res := make([]result, 2)
			for i := range 2 {
				m := writeManifest(t, names[i]+".yaml", strings.ReplaceAll(leasePod, "NAME", names[i]))
				wg.Add(1)
				go func() {
					defer wg.Done()
					res[i] = clusterctl(t, "apply", "-f", m, "-i", copies[i], "--lock-wait", wait)
				}()
			}
			wg.Wait()
			win, lose := 0, 1
			if res[0].code != 0 {
				win, lose = 1, 0
			}
			if res[win].code != 0 || res[lose].code != 6 {
				t.Fatalf("want one apply to exit 0 and the other 6:\n%s\n%s", res[0], res[1])
			}
			if !conflictRE.MatchString(res[lose].stderr) {
				t.Errorf("the refused apply should name the lease holder or the newer writer:\n%s", res[lose])
			}
			t.Logf("refused: %s", strings.TrimSpace(res[lose].stderr))
			// The loser's copy is untouched: nothing half-applied there.
			if got := mustReadFile(t, copies[lose]); !bytes.Equal(got, before) {
				t.Errorf("the refused apply changed its inventory copy")
			}
			// The hosts run exactly the winner's objects, at its generation.
			pods, gens := clusterPods(t, l, hosts)
			want := append(append([]string(nil), podsBefore...), names[win])
			sort.Strings(want)
			if strings.Join(pods, ",") != strings.Join(want, ",") {
				t.Errorf("hosts run %v, want %v (the winner's pod %s and none of the loser's)", pods, want, names[win])
			}
			if g := inventoryGeneration(t, copies[win]); len(gens) != 1 || !gens[g] {
				t.Errorf("hosts hold generations %v, want only the winner's %d", gens, g)
			}
			eventually(t, 60*time.Second, names[win]+" running", func() (bool, string) {
				p := getPod(t, copies[win], names[win])
				return p.Status.Phase == "Running", p.Status.Phase
			})
			cur = copies[win]
		})
	}

	t.Run("a stale copy is refused and changes nothing", func(t *testing.T) {
		stale := copyInventory(t, cur, "stale")
		fresh := copyInventory(t, cur, "fresh")
		mustOK(t, "apply", "-f", writeManifest(t, "gamma.yaml", strings.ReplaceAll(leasePod, "NAME", "gamma")), "-i", fresh)
		cur = fresh
		gen := inventoryGeneration(t, fresh)
		staleGen := inventoryGeneration(t, stale)
		before := mustReadFile(t, stale)
		podsBefore, _ := clusterPods(t, l, hosts)
		for _, args := range [][]string{
			{"apply", "-f", writeManifest(t, "delta.yaml", strings.ReplaceAll(leasePod, "NAME", "delta")), "-i", stale},
			{"reconcile", "-i", stale},
			{"reconcile", "--dry-run", "-i", stale},
		} {
			r := clusterctl(t, args...)
			// Taking the lease reads when the spec was written; a dry run
			// (no lease) knows the generation and the writer.
			want := fmt.Sprintf(`refuse to change the cluster: h\d holds generation %d, written by \S+@\S+( at [^,]+)?, newer than generation %d in %s.*Nothing was changed.*clusterctl recover --from h\d`,
				gen, staleGen, regexp.QuoteMeta(stale))
			if r.code != 6 || !regexp.MustCompile(want).MatchString(r.stderr) {
				t.Errorf("want exit 6 and a refusal matching %q:\n%s", want, r)
			}
		}
		if got := mustReadFile(t, stale); !bytes.Equal(got, before) {
			t.Error("the stale copy was changed")
		}
		pods, gens := clusterPods(t, l, hosts)
		if strings.Join(pods, ",") != strings.Join(podsBefore, ",") || len(gens) != 1 || !gens[gen] {
			t.Errorf("after the refusals hosts run %v at generations %v, want %v at %d", pods, gens, podsBefore, gen)
		}
	})

	t.Run("watch takes the lease only to change something; apply runs beside it", func(t *testing.T) {
		cmd := exec.Command(bin, "watch", "-i", cur, "--interval", "300ms")
		cmd.Env = append(os.Environ(), "CLUSTERCTL_INVENTORY=", "SSH_AUTH_SOCK=")
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		ticks := func() int { return strings.Count(out.String(), ": converged at generation") }
		eventually(t, 60*time.Second, "watch converged ticks", func() (bool, string) { return ticks() >= 2, out.String() })
		mustOK(t, "apply", "-f", writeManifest(t, "epsilon.yaml", strings.ReplaceAll(leasePod, "NAME", "epsilon")), "-i", cur)
		n := ticks()
		eventually(t, 60*time.Second, "watch ticks after the apply", func() (bool, string) { return ticks() >= n+2, out.String() })
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("watch still running 30s after SIGINT:\n%s", out.String())
		}
		if waitErr != nil || !strings.Contains(out.String(), "interrupted: stopping") || strings.Contains(out.String(), "refuse") {
			t.Errorf("watch: %v\n%s", waitErr, out.String())
		}
		if st := mustOK(t, "lock", "status", "-i", cur).stdout; !strings.Contains(st, "cluster lease:  free") {
			t.Errorf("lease after watch:\n%s", st)
		}
	})

	t.Run("lock status shows the holder; lock release --force breaks it", func(t *testing.T) {
		m := writeManifest(t, "never-ready.yaml", neverReadyPod)
		cmd := exec.Command(bin, "apply", "-f", m, "-i", cur, "--wait", "--timeout", "5m")
		// Renewals every 2s, so the break is noticed within seconds.
		cmd.Env = append(os.Environ(), "CLUSTERCTL_INVENTORY=", "SSH_AUTH_SOCK=", "CLUSTERCTL_LEASE_TTL=6s")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		holder := fmt.Sprintf("(pid %d, run ", cmd.Process.Pid)
		type status struct {
			Inventory struct {
				Held   bool `json:"held"`
				Holder *struct {
					PID int `json:"pid"`
				} `json:"holder"`
			} `json:"inventory"`
			Cluster struct {
				Held   bool   `json:"held"`
				Holder string `json:"holder"`
				Hosts  int    `json:"hosts"`
			} `json:"cluster"`
			Hosts []struct {
				Host, State, Holder string
				ExpiresInSeconds    *int64
			} `json:"hosts"`
		}
		lockStatus := func() (status, result) {
			r := mustOK(t, "lock", "status", "-i", cur, "-o", "json")
			var st status
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
				t.Fatalf("decode lock status: %v\n%s", err, r)
			}
			return st, r
		}
		eventually(t, 60*time.Second, "lock status names the running apply", func() (bool, string) {
			st, r := lockStatus()
			return st.Cluster.Held && strings.Contains(st.Cluster.Holder, holder) && st.Cluster.Hosts == 3, r.stdout + stderr.String()
		})
		st, r := lockStatus()
		if !st.Inventory.Held || st.Inventory.Holder == nil || st.Inventory.Holder.PID != cmd.Process.Pid {
			t.Errorf("lock status should show the inventory lock held by the apply:\n%s", r.stdout)
		}
		for _, h := range st.Hosts {
			if h.State != "held" || h.ExpiresInSeconds == nil || *h.ExpiresInSeconds <= 0 || *h.ExpiresInSeconds > 6 {
				t.Errorf("%s: %+v, want held, expiring within the 6s TTL", h.Host, h)
			}
		}
		text := mustOK(t, "lock", "status", "-i", cur).stdout
		if !strings.Contains(text, "cluster lease:  held by ") || !strings.Contains(text, holder) {
			t.Errorf("lock status text:\n%s", text)
		}
		// Another change, from another copy (the same file would stop at
		// the inventory lock), is refused at once, naming the holder; a
		// reconcile with nothing to change needs no lease and passes.
		other := copyInventory(t, cur, "other")
		r = clusterctl(t, "apply", "-f", writeManifest(t, "zeta.yaml", strings.ReplaceAll(leasePod, "NAME", "zeta")), "-i", other, "--lock-wait", "0")
		if r.code != 6 || !strings.Contains(r.stderr, "cluster lease held by") || !strings.Contains(r.stderr, holder) ||
			!strings.Contains(r.stderr, "clusterctl lock release --force") {
			t.Errorf("apply while the lease is held: %s", r)
		}
		if r := clusterctl(t, "reconcile", "-i", other, "--lock-wait", "0"); r.code != 0 {
			t.Errorf("a converged reconcile while the lease is held: %s", r)
		}
		// Without --force only a dead holder of ours is released: this one runs.
		r = clusterctl(t, "lock", "release", "-i", cur)
		if r.code != 6 || !strings.Contains(r.stderr, "still running here") {
			t.Errorf("lock release of a running holder: %s", r)
		}
		r = mustOK(t, "lock", "release", "--force", "-i", cur)
		if strings.Count(r.stdout, "lease released") != 3 {
			t.Errorf("lock release --force:\n%s", r)
		}
		// The apply notices at its next renewal and stops.
		select {
		case <-exited:
			if waitErr == nil || !strings.Contains(stderr.String(), "cluster lease lost") {
				t.Errorf("apply after its lease was broken: %v\n%s", waitErr, stderr.String())
			}
			t.Logf("the apply whose lease was broken: %v\n%s", waitErr, stderr.String())
		case <-time.After(60 * time.Second):
			t.Fatalf("apply still running 60s after its lease was broken:\n%s", stderr.String())
		}
		if st, r := lockStatus(); st.Cluster.Holder != "" {
			t.Errorf("lease still held after the break:\n%s", r.stdout)
		}
		// Ctrl-C: the run stops and gives the lease back at once (not
		// after its TTL).
		ctrlC := exec.Command(bin, "apply", "-f", m, "-i", cur, "--wait", "--timeout", "5m")
		ctrlC.Env = append(os.Environ(), "CLUSTERCTL_INVENTORY=", "SSH_AUTH_SOCK=")
		var ctrlCErr syncBuffer
		ctrlC.Stderr = &ctrlCErr
		if err := ctrlC.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { ctrlC.Wait(); close(done) }()
		t.Cleanup(func() {
			ctrlC.Process.Kill()
			<-done
		})
		eventually(t, 60*time.Second, "the second apply holds the lease", func() (bool, string) {
			st, r := lockStatus()
			return st.Cluster.Held && strings.Contains(st.Cluster.Holder, fmt.Sprintf("(pid %d, ", ctrlC.Process.Pid)), r.stdout
		})
		ctrlC.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("apply still running 30s after Ctrl-C:\n%s", ctrlCErr.String())
		}
		if st, r := lockStatus(); st.Cluster.Holder != "" || !strings.Contains(ctrlCErr.String(), "interrupted") {
			t.Errorf("after Ctrl-C the lease should be free:\n%s\n%s", r.stdout, ctrlCErr.String())
		}
		// The cluster is usable again.
		if r := clusterctl(t, "reconcile", "-i", cur); r.code != 0 && r.code != 5 {
			t.Errorf("reconcile after the break: %s", r)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
