package lab

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// labinitUnderTest is labinit running in a child process (the test binary
// in helper mode) on temporary directories: no root, no namespaces.
type labinitUnderTest struct {
	dir string
	pid int
}

// lockedBuffer is a bytes.Buffer safe for the exec package's copying
// goroutine and the test reading it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startLabinit(t *testing.T, units map[string]string) *labinitUnderTest {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("labinit needs Linux")
	}
	l := &labinitUnderTest{dir: t.TempDir()}
	for _, d := range []string{"units", "log"} {
		if err := os.Mkdir(filepath.Join(l.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range units {
		l.writeUnit(t, name, content)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), labinitHelperEnv+"="+l.dir)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start labinit: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("labinit exited with %v after SIGTERM", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("labinit did not stop within 10s of SIGTERM")
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("labinit log:\n%s", stderr.String())
		}
	})
	waitFor(t, "labinit pid file", func() bool { return exists(filepath.Join(l.dir, "run", "pid")) })
	if b, _ := os.ReadFile(filepath.Join(l.dir, "run", "pid")); strings.TrimSpace(string(b)) != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("run/pid = %q, want %d", b, cmd.Process.Pid)
	}
	l.pid = cmd.Process.Pid
	return l
}

func (l *labinitUnderTest) writeUnit(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(l.dir, "units", name+".service"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (l *labinitUnderTest) removeUnit(t *testing.T, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(l.dir, "units", name+".service")); err != nil {
		t.Fatal(err)
	}
}

func (l *labinitUnderTest) hup(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(l.pid, syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP labinit: %v", err)
	}
}

func (l *labinitUnderTest) status(name string) (serviceStatus, bool) {
	var s serviceStatus
	b, err := os.ReadFile(filepath.Join(l.dir, "run", name+".status"))
	if err != nil || json.Unmarshal(b, &s) != nil {
		return s, false
	}
	return s, true
}

// waitStatus polls NAME.status until cond holds (10s at most).
func (l *labinitUnderTest) waitStatus(t *testing.T, name, what string, cond func(serviceStatus) bool) serviceStatus {
	t.Helper()
	var s serviceStatus
	waitFor(t, name+" "+what, func() bool {
		var ok bool
		s, ok = l.status(name)
		return ok && cond(s)
	})
	return s
}

func (l *labinitUnderTest) pidFile(name string) int {
	b, err := os.ReadFile(filepath.Join(l.dir, "run", name+".pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone reports whether pid no longer exists (or is another process now).
func gone(pid int, startTime uint64) bool {
	st, err := readProcStat(pid)
	return err != nil || st.StartTime != startTime
}

func running(s serviceStatus) bool { return s.State == stateRunning && s.PID > 0 }

func TestLabinitRestartsSignalledService(t *testing.T) {
	t.Parallel()
	l := startLabinit(t, map[string]string{
		"sleeper": "[Service]\nExecStart=/bin/sleep 1000\nRestart=always\nRestartSec=100ms\n",
	})
	s := l.waitStatus(t, "sleeper", "running", running)
	if got := l.pidFile("sleeper"); got != s.PID {
		t.Errorf("sleeper.pid = %d, status pid = %d", got, s.PID)
	}
	old, _ := readProcStat(s.PID)

	// A restart request: someone else's SIGTERM. Restart is immediate.
	t0 := time.Now()
	syscall.Kill(s.PID, syscall.SIGTERM)
	s2 := l.waitStatus(t, "sleeper", "restarted after SIGTERM", func(x serviceStatus) bool { return running(x) && x.PID != s.PID })
	dt := time.Since(t0)
	t.Logf("SIGTERM → new main process in %s", dt.Round(time.Microsecond))
	if s2.Restarts != 1 || s2.LastExit != "signal: terminated" {
		t.Errorf("status after SIGTERM = %+v", s2)
	}
	if !gone(s.PID, old.StartTime) {
		t.Errorf("old main process %d not reaped", s.PID)
	}

	// A second quick exit backs off RestartSec.
	t0 = time.Now()
	syscall.Kill(s2.PID, syscall.SIGKILL)
	s3 := l.waitStatus(t, "sleeper", "restarted after SIGKILL", func(x serviceStatus) bool { return running(x) && x.PID != s2.PID })
	dt = time.Since(t0)
	t.Logf("SIGKILL within 10s of the last start → new main process in %s (RestartSec=100ms)", dt.Round(time.Microsecond))
	if dt < 90*time.Millisecond {
		t.Errorf("second quick restart after %s: want back-off of RestartSec", dt)
	}
	if s3.Restarts != 2 || s3.LastExit != "signal: killed" {
		t.Errorf("status after SIGKILL = %+v", s3)
	}
}

// TestLabinitRestartRequest: RUNDIR/NAME.restart + SIGHUP restarts a service
// at once, even inside a crash streak whose next back-off is RestartSec=30s
// (waitStatus gives up after 10s, so a back-off would fail the test).
func TestLabinitRestartRequest(t *testing.T) {
	t.Parallel()
	l := startLabinit(t, map[string]string{
		"svc": "[Service]\nExecStart=/bin/sleep 1000\nRestart=always\nRestartSec=30s\n",
	})
	s := l.waitStatus(t, "svc", "running", running)
	syscall.Kill(s.PID, syscall.SIGKILL) // a crash: first restart of the streak is immediate
	prev := l.waitStatus(t, "svc", "restarted after a crash", func(x serviceStatus) bool { return running(x) && x.PID != s.PID })
	request := filepath.Join(l.dir, "run", "svc.restart")
	for i := 0; i < 2; i++ {
		if err := os.WriteFile(request, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		l.hup(t)
		next := l.waitStatus(t, "svc", "restarted on request", func(x serviceStatus) bool { return running(x) && x.PID != prev.PID })
		if next.Restarts != prev.Restarts+1 {
			t.Errorf("restarts = %d after request %d, want %d", next.Restarts, i+1, prev.Restarts+1)
		}
		if _, err := os.Stat(request); err == nil {
			t.Errorf("restart request %d not consumed", i+1)
		}
		prev = next
	}
}

func TestLabinitRestartPolicies(t *testing.T) {
	t.Parallel()
	l := startLabinit(t, map[string]string{
		"crash": "[Service]\nExecStart=/bin/sh -c 'exit 3'\nRestart=on-failure\nRestartSec=20ms\n",
		"done":  "[Service]\nExecStart=/bin/true\nRestart=on-failure\n",
		"once":  "[Service]\nExecStart=/bin/sh -c 'echo run >> $TESTDIR/once.runs; exit 1'\n",
		"term":  "[Service]\nExecStart=/bin/sh -c 'kill -TERM $$$$'\nRestart=on-failure\n",
	})
	l.waitStatus(t, "crash", "restarted twice", func(s serviceStatus) bool {
		return s.Restarts >= 2 && s.LastExit == "exit status 3" && (s.State == stateBackoff || s.State == stateRunning)
	})
	if s := l.waitStatus(t, "done", "stopped", func(s serviceStatus) bool { return s.State == stateStopped }); s.Restarts != 0 || s.LastExit != "exit status 0" {
		t.Errorf("done: %+v", s)
	}
	if s := l.waitStatus(t, "once", "failed", func(s serviceStatus) bool { return s.State == stateFailed }); s.LastExit != "exit status 1" {
		t.Errorf("once: %+v", s)
	}
	if s := l.waitStatus(t, "term", "stopped", func(s serviceStatus) bool { return s.State == stateStopped }); s.Restarts != 0 || s.LastExit != "signal: terminated" {
		t.Errorf("term (on-failure, clean SIGTERM): %+v", s)
	}
	// SIGHUP starts services that are not running.
	l.hup(t)
	waitFor(t, "once to run again", func() bool {
		b, _ := os.ReadFile(filepath.Join(l.dir, "once.runs"))
		return strings.Count(string(b), "run") == 2
	})
}

func TestLabinitPreEnvironmentAndLogs(t *testing.T) {
	t.Parallel()
	l := startLabinit(t, map[string]string{
		"app": `[Service]
Environment=GREETING=hello "OTHER=a b"
ExecStartPre=/bin/sh -c 'echo pre > $TESTDIR/pre'
ExecStartPre=-/bin/false
ExecStart=/bin/sh -c 'echo "$GREETING ${OTHER}"; echo oops >&2; exec sleep 1000'
`,
		"dollar":  "[Service]\nEnvironment=X=5\nExecStart=/bin/echo costs $$$X\n",
		"badpre":  "[Service]\nExecStartPre=/bin/false\nExecStart=/bin/sleep 1000\n",
		"missing": "[Service]\nExecStart=/nonexistent/daemon\n",
		"invalid": "[Service]\nRestart=always\n",
	})
	l.waitStatus(t, "app", "running", running)
	if b, err := os.ReadFile(filepath.Join(l.dir, "pre")); err != nil || string(b) != "pre\n" {
		t.Errorf("ExecStartPre output = %q, %v", b, err)
	}
	waitFor(t, "app log", func() bool {
		b, _ := os.ReadFile(filepath.Join(l.dir, "log", "app.log"))
		return strings.Contains(string(b), "hello a b\n") && strings.Contains(string(b), "oops\n")
	})
	waitFor(t, "dollar log", func() bool {
		b, _ := os.ReadFile(filepath.Join(l.dir, "log", "dollar.log"))
		return string(b) == "costs $5\n"
	})
	if s := l.waitStatus(t, "badpre", "failed", func(s serviceStatus) bool { return s.State == stateFailed }); s.LastExit != "ExecStartPre exit status 1" || s.PID != 0 {
		t.Errorf("badpre: %+v", s)
	}
	if l.pidFile("badpre") != 0 {
		t.Errorf("badpre has a pid file")
	}
	if s := l.waitStatus(t, "missing", "failed", func(s serviceStatus) bool { return s.State == stateFailed }); !strings.HasPrefix(s.LastExit, "start: ") {
		t.Errorf("missing: %+v", s)
	}
	if s := l.waitStatus(t, "invalid", "failed", func(s serviceStatus) bool { return s.State == stateFailed }); !strings.Contains(s.LastExit, "invalid unit: no ExecStart=") {
		t.Errorf("invalid: %+v", s)
	}
}

func TestLabinitRescan(t *testing.T) {
	t.Parallel()
	l := startLabinit(t, map[string]string{
		"a": "[Service]\nExecStart=/bin/sleep 1000\nRestart=always\n",
		"b": "[Service]\nExecStart=/bin/sleep 1000\nRestart=always\n",
	})
	a := l.waitStatus(t, "a", "running", running)
	b := l.waitStatus(t, "b", "running", running)
	aStat, _ := readProcStat(a.PID)

	l.removeUnit(t, "a")
	l.writeUnit(t, "b", "[Service]\nExecStart=/bin/sleep 2000\nRestart=always\n")
	l.writeUnit(t, "c", "[Service]\nExecStart=/bin/sleep 1000\n")
	l.hup(t)

	waitFor(t, "a's pid and status files to go", func() bool {
		_, ok := l.status("a")
		return !ok && l.pidFile("a") == 0
	})
	waitFor(t, "a's process to go", func() bool { return gone(a.PID, aStat.StartTime) })
	b2 := l.waitStatus(t, "b", "restarted with the new unit", func(s serviceStatus) bool { return running(s) && s.PID != b.PID })
	if cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(b2.PID) + "/cmdline"); !bytes.Contains(cmdline, []byte("2000")) {
		t.Errorf("b runs %q, want the new ExecStart", cmdline)
	}
	l.waitStatus(t, "c", "running", running)
}

func TestLabinitStopEscalatesToSIGKILL(t *testing.T) {
	t.Parallel()
	l := startLabinit(t, map[string]string{
		"stubborn": "[Service]\nExecStart=/bin/sh -c 'trap \"\" TERM; exec sleep 1000'\n",
	})
	s := l.waitStatus(t, "stubborn", "running", running)
	st, _ := readProcStat(s.PID)
	// "running" is reported once the process is started, which can be before
	// the shell has installed its trap: wait until SIGTERM is really ignored.
	waitFor(t, "stubborn to ignore SIGTERM", func() bool { return ignoresSIGTERM(s.PID) })
	l.removeUnit(t, "stubborn")
	t0 := time.Now()
	l.hup(t)
	waitFor(t, "stubborn to be killed", func() bool { return gone(s.PID, st.StartTime) })
	if dt := time.Since(t0); dt < 400*time.Millisecond {
		t.Errorf("stubborn gone after %s: it ignores SIGTERM, want SIGKILL after the 500ms stop timeout", dt)
	}
}

// ignoresSIGTERM reports whether the process ignores SIGTERM (SigIgn bit 15
// in /proc/PID/status).
func ignoresSIGTERM(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && mask&(1<<(15-1)) != 0
		}
	}
	return false
}
