package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
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
//
// The lab hosts share this machine's cores with the workstation and with
// whatever else runs on it, so wall times swing with the machine's load.
// CPU time does not: cpu-ms/op is the workstation process's (user + system),
// host-cpu-ms/op what the hosts spent meanwhile (sshd and its sessions,
// agentlet, from the hosts' cgroups) less what they spend idle in the same
// time, and x-floor-cpu compares the sums.
func BenchmarkReconcileNoop(b *testing.B) {
	floorBin := buildSSHFloor(b)
	for _, n := range []int{10, 25, 50} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			l := newLab(b, n)
			mustOK(b, "up", "-i", l.inv)
			if _, r := reconcileOnce(b, l.inv); r.code != 0 {
				b.Fatalf("reconcile after up is not a no-op: %s", r)
			}
			m := newHostMeter(b, l.name)
			reconcile := func(b *testing.B) cost {
				c, r := reconcileOnce(b, l.inv)
				if r.code != 0 {
					b.Fatalf("reconcile is not a no-op: %s", r)
				}
				return c
			}
			b.Run("floor", func(b *testing.B) {
				var floor cost
				for range b.N {
					floor.add(m.measure(func() cost { return runFloor(b, floorBin, l.inv) }))
				}
				floor.report(b, "")
			})
			b.Run("reconcile", func(b *testing.B) {
				var rec, floor cost
				for range b.N {
					rec.add(m.measure(func() cost { return reconcile(b) }))
					b.StopTimer()
					floor.add(m.measure(func() cost { return runFloor(b, floorBin, l.inv) }))
					b.StartTimer()
				}
				rec.report(b, "")
				b.ReportMetric(ms(floor.wall)/float64(b.N), "floor-ms")
				b.ReportMetric(float64(rec.wall)/float64(floor.wall), "x-floor")
				if m.ok {
					b.ReportMetric(float64(rec.cpu+rec.host)/float64(floor.cpu+floor.host), "x-floor-cpu")
				}
			})
			b.Run("ansible", func(b *testing.B) {
				a := newAnsible(b, l.inv, n)
				b.ResetTimer()
				var ans, rec cost
				for range b.N {
					ans.add(m.measure(func() cost { return cost{wall: a.ping(b)} }))
					b.StopTimer()
					a.closeMasters(b)
					rec.add(reconcile(b))
					b.StartTimer()
				}
				// ansible's own CPU is not reported: most of it is spent
				// in the SSH connection masters it leaves running.
				if m.ok {
					b.ReportMetric(ms(ans.host)/float64(b.N), "host-cpu-ms/op")
				}
				b.ReportMetric(ms(rec.wall)/float64(b.N), "reconcile-ms")
				b.ReportMetric(float64(ans.wall)/float64(rec.wall), "x-reconcile")
			})
		})
	}
}

// cost is what running something took: wall time, the CPU time of the
// workstation process, and the lab hosts' CPU time beyond their idle use.
type cost struct{ wall, cpu, host time.Duration }

func (c *cost) add(o cost) {
	c.wall += o.wall
	c.cpu += o.cpu
	c.host += o.host
}

// report reports the CPU times per op (wall is ns/op).
func (c cost) report(b *testing.B, prefix string) {
	b.ReportMetric(ms(c.cpu)/float64(b.N), prefix+"cpu-ms/op")
	b.ReportMetric(ms(c.host)/float64(b.N), prefix+"host-cpu-ms/op")
}

// hostMeter reads the CPU time used by a lab's hosts from their cgroups
// (ccl-NAME-hI at the root of the cpuacct hierarchy, or of cgroup2).
type hostMeter struct {
	files []string
	v2    bool
	idle  float64 // CPU seconds per wall second while nothing is asked of the hosts
	ok    bool
}

// newHostMeter finds the lab's cgroups and measures the hosts' idle CPU
// use (agentlet's and containerd's timers) over a few seconds. Without
// readable cgroups it measures nothing (ok false).
func newHostMeter(tb testing.TB, lab string) *hostMeter {
	tb.Helper()
	m := &hostMeter{}
	for _, pat := range []string{"/sys/fs/cgroup/cpuacct/ccl-%s-h*/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/ccl-%s-h*/cpuacct.usage",
		"/sys/fs/cgroup/ccl-%s-h*/cpu.stat", "/sys/fs/cgroup/unified/ccl-%s-h*/cpu.stat"} {
		if files, _ := filepath.Glob(fmt.Sprintf(pat, lab)); len(files) > 0 {
			m.files, m.v2 = files, strings.HasSuffix(pat, "cpu.stat")
			break
		}
	}
	if _, ok := m.read(); !ok {
		tb.Logf("no cgroup CPU accounting for lab %s: host CPU not measured", lab)
		return m
	}
	const window = 5 * time.Second
	before, _ := m.read()
	start := time.Now()
	time.Sleep(window)
	after, _ := m.read()
	m.idle = float64(after-before) / float64(time.Since(start))
	m.ok = true
	return m
}

// read sums the hosts' CPU time so far.
func (m *hostMeter) read() (time.Duration, bool) {
	if len(m.files) == 0 {
		return 0, false
	}
	var sum time.Duration
	for _, f := range m.files {
		data, err := os.ReadFile(f)
		if err != nil {
			return 0, false
		}
		if !m.v2 {
			ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			if err != nil {
				return 0, false
			}
			sum += time.Duration(ns)
			continue
		}
		var us int64 = -1
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				us, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		if us < 0 {
			return 0, false
		}
		sum += time.Duration(us) * time.Microsecond
	}
	return sum, true
}

// measure runs f and adds to its cost the hosts' CPU time beyond their idle
// use during f's wall time.
func (m *hostMeter) measure(f func() cost) cost {
	before, _ := m.read()
	start := time.Now()
	c := f()
	if !m.ok {
		return c
	}
	after, _ := m.read()
	c.host = after - before - time.Duration(m.idle*float64(time.Since(start)))
	return c
}

// reconcileOnce runs `clusterctl reconcile` once and times it.
func reconcileOnce(tb testing.TB, inv string) (cost, result) {
	tb.Helper()
	args := []string{"reconcile", "-i", inv}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "CLUSTERCTL_INVENTORY=", "SSH_AUTH_SOCK=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	c, err := runTimed(cmd)
	r := result{args: args, stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		tb.Fatalf("run clusterctl %v: %v", args, err)
	}
	return c, r
}

// runTimed runs cmd and returns its wall and CPU time.
func runTimed(cmd *exec.Cmd) (cost, error) {
	start := time.Now()
	err := cmd.Run()
	c := cost{wall: time.Since(start)}
	if cmd.ProcessState != nil {
		c.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return c, err
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

// runFloor runs the floor program once (one cold round).
func runFloor(tb testing.TB, bin, inv string) cost {
	tb.Helper()
	cmd := exec.Command(bin, "-i", inv)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	c, err := runTimed(cmd)
	if err != nil {
		tb.Fatalf("sshfloor: %v\n%s", err, out.String())
	}
	return c
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
// numbers, with ns/op overridden to the mean tick time. cpu-ms/tick is the
// CPU time of this process per tick, host-cpu-ms/tick the hosts' beyond
// their idle use (as in BenchmarkReconcileNoop). warm-floor-ms is
// tools/sshfloor -warm over the same hosts: `true` on every held connection
// in parallel, the floor of a tick.
func BenchmarkWatchTick(b *testing.B) {
	const hosts = 50
	l := newLab(b, hosts)
	mustOK(b, "up", "-i", l.inv)
	if _, r := reconcileOnce(b, l.inv); r.code != 0 {
		b.Fatalf("reconcile after up is not a no-op: %s", r)
	}
	floorBin := buildSSHFloor(b)
	m := newHostMeter(b, l.name)
	var once sync.Once
	var s *watchStats
	b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) {
		once.Do(func() {
			s = runWatch(b, m, l.inv, hosts, watchTicks)
			s.warmFloor = warmFloor(b, floorBin, l.inv, 100)
		})
		ticks := s.ticks[1:]
		mean := float64(sum(ticks)) / float64(len(ticks))
		b.ReportMetric(mean, "ns/op")
		b.ReportMetric(ms(s.ticks[0]), "first-tick-ms")
		b.ReportMetric(ms(percentile(ticks, 50)), "p50-ms")
		b.ReportMetric(ms(percentile(ticks, 99)), "p99-ms")
		b.ReportMetric(ms(s.cpu)/float64(len(ticks)), "cpu-ms/tick")
		if m.ok {
			b.ReportMetric(ms(s.host)/float64(len(ticks)), "host-cpu-ms/tick")
		}
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
	// CPU time over ticks 2..N: this process's, and the hosts' beyond idle.
	cpu, host time.Duration

	firstErr, lastLine, errorLines string
}

// runWatch runs `clusterctl watch --interval 0s` in this process until it
// printed tick `ticks`, checking that every tick converged with all hosts
// reachable.
func runWatch(b *testing.B, m *hostMeter, inv string, hosts, ticks int) *watchStats {
	b.Helper()
	s := &watchStats{}
	samples := []int{100, (100 + ticks) / 2, ticks}
	tickRE := regexp.MustCompile(`^\S+ tick (\d+): (.*)$`)
	ok := fmt.Sprintf("converged at generation %%d; %d/%d hosts reachable; 0 pods pending", hosts, hosts)
	start := time.Now()
	last := start
	stopped := false
	var warm time.Time // end of tick 1
	var cpu0, host0 time.Duration
	out := &lineWriter{line: func(line string) {
		if stopped {
			return
		}
		now := time.Now()
		match := tickRE.FindStringSubmatch(line)
		if match == nil {
			if s.firstErr == "" {
				s.firstErr = "unexpected output: " + line
			}
			return
		}
		n, _ := strconv.Atoi(match[1])
		var gen int
		if _, err := fmt.Sscanf(match[2], ok, &gen); err != nil && s.firstErr == "" {
			s.firstErr = "tick not converged or hosts unreachable: " + line
		}
		if n != len(s.ticks)+1 && s.firstErr == "" {
			s.firstErr = fmt.Sprintf("tick %d after %d ticks", n, len(s.ticks))
		}
		s.ticks = append(s.ticks, now.Sub(last))
		s.lastLine = line
		switch n {
		case 1:
			warm, cpu0 = now, selfCPU()
			host0, _ = m.read()
		case ticks:
			s.cpu = selfCPU() - cpu0
			if h, ok := m.read(); ok && m.ok {
				s.host = h - host0 - time.Duration(m.idle*float64(now.Sub(warm)))
			}
		}
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
	// SIGINT stops watch like Ctrl-C; this channel keeps one arriving
	// after watch stopped listening from killing the benchmark.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	// A watch that stops ticking (a host hanging, a lease never granted)
	// fails the benchmark instead of running into the test timeout.
	var stalled atomic.Bool
	var watchdog sync.WaitGroup
	progress, done := make(chan struct{}, 1), make(chan struct{})
	defer watchdog.Wait()
	defer close(done)
	watchdog.Go(func() {
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
	})
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

// selfCPU is this process's CPU time so far (user + system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
