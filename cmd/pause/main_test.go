package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/version"
)

// buildPause builds the real static binary once per test.
func buildPause(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pause: %v\n%s", err, out)
	}
	return bin
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(buildPause(t), "-v").Output()
	if err != nil || string(out) != "pause "+version.PauseImage+"\n" {
		t.Errorf("pause -v = %q, %v", out, err)
	}
}

func TestExitsZeroOnSignal(t *testing.T) {
	bin := buildPause(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				t.Fatalf("pause exited on its own: %v", err)
			case <-time.After(300 * time.Millisecond): // it blocks
			}
			// SIGCHLD alone must not end it.
			_ = cmd.Process.Signal(syscall.SIGCHLD)
			time.Sleep(50 * time.Millisecond)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("exit after %s: %v, want status 0", sig, err)
				}
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("pause ignored %s", sig)
			}
		})
	}
}

// TestReapsOrphans runs pause as PID 1 of a new PID namespace, orphans a
// child inside it and checks pause reaps it (no zombie left).
func TestReapsOrphans(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs pause as PID 1 of a new PID namespace (unshare -p)")
	}
	for _, tool := range []string{"unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	bin := buildPause(t)
	ns := exec.Command("unshare", "--pid", "--fork", "--kill-child", "--", bin)
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	var pausePid int
	t.Cleanup(func() {
		// unshare ignores SIGTERM while it waits; ending pause (PID 1 of
		// the namespace) ends it. SIGKILL to unshare is the fallback:
		// --kill-child then takes pause down.
		if pausePid != 0 {
			_ = syscall.Kill(pausePid, syscall.SIGTERM)
		}
		done := make(chan struct{})
		go func() { _ = ns.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = ns.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for pausePid == 0 && time.Now().Before(deadline) {
		pausePid = childOf(t, ns.Process.Pid, "pause")
		time.Sleep(20 * time.Millisecond)
	}
	if pausePid == 0 {
		t.Fatal("pause did not start in the new PID namespace")
	}

	// sh starts sleep in the background and exits: sleep is orphaned and
	// re-parented to PID 1 of the namespace, i.e. pause. (sleep must not
	// hold our output pipe, or CombinedOutput would wait for it.)
	orphan := exec.Command("nsenter", "-t", strconv.Itoa(pausePid), "-p", "--", "sh", "-c",
		"sleep 1.5 </dev/null >/dev/null 2>&1 & exit 0")
	if out, err := orphan.CombinedOutput(); err != nil {
		t.Fatalf("start orphan: %v\n%s", err, out)
	}
	var sleepPid int
	deadline = time.Now().Add(1200 * time.Millisecond)
	for sleepPid == 0 && time.Now().Before(deadline) {
		sleepPid = childOf(t, pausePid, "sleep")
		time.Sleep(10 * time.Millisecond)
	}
	if sleepPid == 0 {
		t.Fatal("the orphan was not re-parented to pause")
	}
	// Once sleep exits, pause must wait() for it: the zombie disappears.
	deadline = time.Now().Add(6 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(sleepPid))); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d left as %s (not reaped)", sleepPid, procState(sleepPid))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(pausePid, 0); err != nil {
		t.Errorf("pause died while reaping: %v", err)
	}
}

// childOf finds a child of ppid whose comm is name (root PID namespace view).
func childOf(t *testing.T, ppid int, name string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		comm := string(stat[bytes.IndexByte(stat, '(')+1 : i])
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || comm != name || f[1] != strconv.Itoa(ppid) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		return pid
	}
	return 0
}

func procState(pid int) string {
	stat, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return "state " + string(stat[i+2])
	}
	return "unknown"
}
