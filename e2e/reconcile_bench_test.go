package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/cli"
	"github.com/clusterctl/clusterctl/inventory"
)

// BenchmarkReconcileNoop measures a no-op `clusterctl reconcile` (a
// converged cluster: exit 0, nothing pushed) on 10, 25 and 50 lab hosts,
// beside two references measured in the same run on the same hosts:
//
//   - floor: tools/sshfloor, a plain Go program that dials every host in
//     parallel with clusterctl's SSH settings, runs `true` and closes;
//   - ansible: `ansible all -m ping` from Debian's ansible package, forks = N,
//     host keys checked against the lab's known_hosts (skipped, with the
//     reason, when ansible is not installed: apt-get install -y ansible).
//
// Each is a process run, timed from exec to exit (ns/op). The lab and the
// first `clusterctl up` are outside the timer. reconcile reports its ratio to
// floor runs made right after each timed run (x-floor; goal ≤ 1.5), ansible
// its ratio to reconcile runs made likewise (x-reconcile; goal ≥ 5).
func BenchmarkReconcileNoop(b *testing.B) {
	floorBin := buildSSHFloor(b)
	for _, n := range []int{10, 25, 50} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			l := newLab(b, n)
			mustOK(b, "up", "-i", l.inv)
			if _, r := timeReconcile(b, l.inv); r.code != 0 {
				b.Fatalf("reconcile after up is not a no-op: %s", r)
			}
			b.Run("floor", func(b *testing.B) {
				for range b.N {
					runFloor(b, floorBin, l.inv)
				}
			})
			b.Run("reconcile", func(b *testing.B) {
				var rec, floor time.Duration
				for range b.N {
					d, r := timeReconcile(b, l.inv)
					if r.code != 0 {
						b.Fatalf("reconcile is not a no-op: %s", r)
					}
					rec += d
					b.StopTimer()
					floor += runFloor(b, floorBin, l.inv)
					b.StartTimer()
				}
				b.ReportMetric(float64(floor.Milliseconds())/float64(b.N), "floor-ms")
				b.ReportMetric(float64(rec)/float64(floor), "x-floor")
			})
			b.Run("ansible", func(b *testing.B) {
				a := newAnsible(b, l.inv, n)
				b.ResetTimer()
				var ans, rec time.Duration
				for range b.N {
					ans += a.ping(b)
					b.StopTimer()
					a.closeMasters(b)
					d, r := timeReconcile(b, l.inv)
					if r.code != 0 {
						b.Fatalf("reconcile is not a no-op: %s", r)
					}
					rec += d
					b.StartTimer()
				}
				b.ReportMetric(float64(rec.Milliseconds())/float64(b.N), "reconcile-ms")
				b.ReportMetric(float64(ans)/float64(rec), "x-reconcile")
			})
		})
	}
}

// timeReconcile runs `clusterctl reconcile` once and times it.
func timeReconcile(tb testing.TB, inv string) (time.Duration, result) {
	tb.Helper()
	start := time.Now()
	r := clusterctl(tb, "reconcile", "-i", inv)
	return time.Since(start), r
}

// buildSSHFloor builds tools/sshfloor into a temp dir.
func buildSSHFloor(tb testing.TB) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "sshfloor")
	cmd := exec.Command("go", "build", "-o", out, "../tools/sshfloor")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build sshfloor: %v\n%s", err, msg)
	}
	return out
}

// runFloor runs the floor program once (one cold round) and times it.
func runFloor(tb testing.TB, bin, inv string, args ...string) time.Duration {
	tb.Helper()
	cmd := exec.Command(bin, append([]string{"-i", inv}, args...)...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		tb.Fatalf("sshfloor: %v\n%s", err, out)
	}
	return d
}

// ansible runs `ansible all -m ping` against a lab.
type ansible struct {
	dir   string
	n     int
	runs  int
	ctl   string // the current run's ControlPath directory
	hosts []string
}

// newAnsible writes an Ansible inventory and configuration for the lab
// behind inv: every host with its address, root, the lab's key, host key
// checking on against the lab's known_hosts only, forks = n, python3 named
// (no interpreter discovery round trip). Everything else is Debian's
// default, including ssh_args (-C -o ControlMaster=auto -o
// ControlPersist=60s), so the commands of one run share a connection per
// host; every run gets a fresh ControlPath directory so no run reuses the
// connections of the one before.
func newAnsible(b *testing.B, invPath string, n int) *ansible {
	b.Helper()
	if _, err := exec.LookPath("ansible"); err != nil {
		b.Skip("skipping the Ansible comparison: ansible not installed (apt-get install -y ansible)")
	}
	inv, err := inventory.Load(invPath)
	if err != nil {
		b.Fatal(err)
	}
	a := &ansible{dir: b.TempDir(), n: n}
	var ini strings.Builder
	ini.WriteString("[lab]\n")
	var ssh inventory.HostSSH
	for _, h := range inv.Hosts {
		ssh = inv.HostSSH(h)
		fmt.Fprintf(&ini, "%s ansible_host=%s ansible_port=%d\n", h.Name, ssh.Address, ssh.Port)
		a.hosts = append(a.hosts, h.Name)
	}
	fmt.Fprintf(&ini, "[lab:vars]\nansible_user=%s\nansible_ssh_private_key_file=%s\nansible_python_interpreter=/usr/bin/python3\n", ssh.User, ssh.IdentityFile)
	// -F /dev/null: neither the machine's nor root's ssh_config applies.
	fmt.Fprintf(&ini, "ansible_ssh_common_args='-F /dev/null -o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes'\n", ssh.KnownHosts)
	cfg := fmt.Sprintf("[defaults]\ninventory = %s\nhost_key_checking = True\nforks = %d\n", filepath.Join(a.dir, "hosts.ini"), n)
	for name, data := range map[string]string{"hosts.ini": ini.String(), "ansible.cfg": cfg} {
		if err := os.WriteFile(filepath.Join(a.dir, name), []byte(data), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() { a.closeMasters(b) })
	return a
}

// ping runs `ansible all -m ping` once, checks that every host answered
// pong, and returns its wall time.
func (a *ansible) ping(b *testing.B) time.Duration {
	b.Helper()
	a.runs++
	a.ctl = filepath.Join(a.dir, "cp"+strconv.Itoa(a.runs))
	cmd := exec.Command("ansible", "all", "-m", "ping", "-o")
	cmd.Dir = a.dir
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=", "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_CONFIG="+filepath.Join(a.dir, "ansible.cfg"),
		"ANSIBLE_HOME="+filepath.Join(a.dir, "home"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(a.dir, "tmp"),
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+a.ctl)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("ansible all -m ping: %v\n%s", err, out.String())
	}
	for _, h := range a.hosts {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(h) + ` \| SUCCESS => .*"ping": "pong"`).Match(out.Bytes()) {
			b.Fatalf("ansible: no pong from %s:\n%s", h, out.String())
		}
	}
	return d
}

// closeMasters ends the SSH connection masters the last run left behind
// (ControlPersist), through their control sockets.
func (a *ansible) closeMasters(tb testing.TB) {
	if a.ctl == "" {
		return
	}
	socks, _ := filepath.Glob(filepath.Join(a.ctl, "*"))
	for _, s := range socks {
		if out, err := exec.Command("ssh", "-F", "/dev/null", "-S", s, "-O", "exit", "lab").CombinedOutput(); err != nil {
			tb.Logf("close ssh master %s: %v: %s", s, err, out)
		}
	}
	a.ctl = ""
}

// watchTicks is how many ticks BenchmarkWatchTick runs; watchStall is how
// long it waits for the next one before failing.
const (
	watchTicks = 1000
	watchStall = 2 * time.Minute
)

// BenchmarkWatchTick measures `clusterctl watch --interval 0s` over held
// connections on 50 lab hosts: the time of one tick (observe every host,
// controllers, scheduler, no push: the cluster is converged; the inventory
// lock, load and reload included), and the memory of the watching process
// after tick 100 and after tick 1,000.
//
// watch runs in-process (cli.Run, exactly what the binary runs) so its heap
// can be read; it prints one line per tick, and a tick's time is the time
// between two such lines. Tick 1 pays the first session on each fresh
// connection and is reported apart (first-tick-ms); ns/op, p50-ms and p99-ms
// are over ticks 2..1,000. After ticks 100, 550 and 1,000 the benchmark
// runs runtime.GC and reads runtime.MemStats.HeapInuse (heap-MiB-t100,
// heap-MiB-t1000, and the growth over each half, heap-growth-KiB-t100-550
// and -t550-1000: a leak grows in both), the goroutine count and the open
// file descriptors; that pause is not counted in any tick. watch is stopped as a
// user would, with SIGINT, after tick 1,000.
//
// One session of 1,000 ticks is the measurement whatever b.N is: the first
// call runs it, later calls (the framework's b.N rounds) report the same
// numbers, with ns/op overridden to the mean tick time. warm-floor-ms is
// tools/sshfloor -warm over the same hosts: `true` on every held connection
// in parallel, the floor of a tick.
func BenchmarkWatchTick(b *testing.B) {
	const hosts = 50
	l := newLab(b, hosts)
	mustOK(b, "up", "-i", l.inv)
	if _, r := timeReconcile(b, l.inv); r.code != 0 {
		b.Fatalf("reconcile after up is not a no-op: %s", r)
	}
	floorBin := buildSSHFloor(b)
	var once sync.Once
	var s *watchStats
	b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) {
		once.Do(func() {
			s = runWatch(b, l.inv, hosts, watchTicks)
			s.warmFloor = warmFloor(b, floorBin, l.inv, 100)
		})
		ticks := s.ticks[1:]
		mean := float64(sum(ticks)) / float64(len(ticks))
		b.ReportMetric(mean, "ns/op")
		b.ReportMetric(ms(s.ticks[0]), "first-tick-ms")
		b.ReportMetric(ms(percentile(ticks, 50)), "p50-ms")
		b.ReportMetric(ms(percentile(ticks, 99)), "p99-ms")
		b.ReportMetric(ms(s.warmFloor), "warm-floor-ms")
		b.ReportMetric(mean/float64(s.warmFloor), "x-warm-floor")
		b.ReportMetric(float64(s.heap[0])/(1<<20), "heap-MiB-t100")
		b.ReportMetric(float64(s.heap[2])/(1<<20), "heap-MiB-t1000")
		// Two halves: a leak grows in both, a one-off allocation in one.
		b.ReportMetric((float64(s.heap[1])-float64(s.heap[0]))/(1<<10), "heap-growth-KiB-t100-550")
		b.ReportMetric((float64(s.heap[2])-float64(s.heap[1]))/(1<<10), "heap-growth-KiB-t550-1000")
		b.ReportMetric(float64(s.goroutines[2]-s.goroutines[0]), "goroutine-growth")
		b.ReportMetric(float64(s.fds[2]-s.fds[0]), "fd-growth")
	})
}

// watchStats is what one watch session measured.
type watchStats struct {
	ticks []time.Duration // tick i+1 took ticks[i]
	// Heap in use, goroutines and open files after ticks 100, 550 and
	// 1,000.
	heap       [3]uint64
	goroutines [3]int
	fds        [3]int
	warmFloor  time.Duration // median round of sshfloor -warm

	firstErr, lastLine, errorLines string
}

// runWatch runs `clusterctl watch --interval 0s` in this process until it
// printed tick `ticks`, checking that every tick converged with all hosts
// reachable.
func runWatch(b *testing.B, inv string, hosts, ticks int) *watchStats {
	b.Helper()
	s := &watchStats{}
	samples := []int{100, (100 + ticks) / 2, ticks}
	tickRE := regexp.MustCompile(`^\S+ tick (\d+): (.*)$`)
	ok := fmt.Sprintf("converged at generation %%d; %d/%d hosts reachable; 0 pods pending", hosts, hosts)
	start := time.Now()
	last := start
	stopped := false
	out := &lineWriter{line: func(line string) {
		if stopped {
			return
		}
		now := time.Now()
		m := tickRE.FindStringSubmatch(line)
		if m == nil {
			if s.firstErr == "" {
				s.firstErr = "unexpected output: " + line
			}
			return
		}
		n, _ := strconv.Atoi(m[1])
		var gen int
		if _, err := fmt.Sscanf(m[2], ok, &gen); err != nil && s.firstErr == "" {
			s.firstErr = "tick not converged or hosts unreachable: " + line
		}
		if n != len(s.ticks)+1 && s.firstErr == "" {
			s.firstErr = fmt.Sprintf("tick %d after %d ticks", n, len(s.ticks))
		}
		s.ticks = append(s.ticks, now.Sub(last))
		s.lastLine = line
		if i := slices.Index(samples, n); i >= 0 {
			s.heap[i], s.goroutines[i], s.fds[i] = heapInuse(), runtime.NumGoroutine(), openFDs(b)
		}
		if n >= ticks || s.firstErr != "" {
			stopped = true
			// Like Ctrl-C: watch stops after this tick.
			syscall.Kill(os.Getpid(), syscall.SIGINT)
		}
		last = time.Now() // the measurements above are not the next tick's
	}}
	// A watch that stops ticking (a host hanging, a lease never granted)
	// fails the benchmark instead of running into the test timeout.
	var stalled atomic.Bool
	progress, done := make(chan struct{}, 1), make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-progress:
			case <-done:
				return
			case <-time.After(watchStall):
				stalled.Store(true)
				syscall.Kill(os.Getpid(), syscall.SIGINT)
				return
			}
		}
	}()
	out.progress = progress
	errw := &lineWriter{line: func(line string) { s.errorLines += line + "\n" }}
	env := &cli.Env{In: strings.NewReader(""), Out: out, Err: errw, Getenv: func(k string) string {
		switch k {
		case inventory.EnvInventory, "SSH_AUTH_SOCK":
			return ""
		}
		return os.Getenv(k)
	}}
	code := cli.Run(env, []string{"clusterctl", "watch", "-i", inv, "--interval", "0s"})
	switch {
	case stalled.Load():
		b.Fatalf("watch printed nothing for %s after %d ticks (stopped with SIGINT, exit %d); stderr:\n%s", watchStall, len(s.ticks), code, s.errorLines)
	case code != 0:
		b.Fatalf("watch exited %d after %d ticks; stderr:\n%s", code, len(s.ticks), s.errorLines)
	case s.firstErr != "":
		b.Fatalf("watch: %s\nstderr:\n%s", s.firstErr, s.errorLines)
	case len(s.ticks) < ticks:
		b.Fatalf("watch stopped after %d ticks, want %d; last line %q; stderr:\n%s", len(s.ticks), ticks, s.lastLine, s.errorLines)
	}
	return s
}

// warmFloor runs `sshfloor -warm -n rounds` and returns its median round.
func warmFloor(b *testing.B, bin, inv string, rounds int) time.Duration {
	b.Helper()
	cmd := exec.Command(bin, "-i", inv, "-warm", "-n", strconv.Itoa(rounds))
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("sshfloor -warm: %v\n%s", err, out)
	}
	var ds []time.Duration
	for _, m := range regexp.MustCompile(`over held connections in (\S+)`).FindAllSubmatch(out, -1) {
		d, err := time.ParseDuration(string(m[1]))
		if err != nil {
			b.Fatalf("sshfloor -warm: %v", err)
		}
		ds = append(ds, d)
	}
	if len(ds) != rounds {
		b.Fatalf("sshfloor -warm: %d rounds in its output, want %d:\n%s", len(ds), rounds, out)
	}
	return percentile(ds, 50)
}

// lineWriter calls line for every complete line written to it, and
// signals progress (if set) on every write.
type lineWriter struct {
	buf      []byte
	line     func(string)
	progress chan<- struct{}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if w.progress != nil {
		select {
		case w.progress <- struct{}{}:
		default:
		}
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func openFDs(tb testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	return len(ents)
}

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}
