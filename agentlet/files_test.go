package agentlet

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestPidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "agentlet.pid")
	p, err := acquirePidFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.TrimSpace(string(data)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file = %q", data)
	}
	// A second daemon is refused while the first holds the lock.
	_, err = acquirePidFile(path)
	var ar *AlreadyRunningError
	if !errors.As(err, &ar) || ar.PID != os.Getpid() {
		t.Fatalf("second acquire: %v, want AlreadyRunningError naming our pid", err)
	}
	if got := daemonPid(path, "/proc"); got != os.Getpid() {
		t.Errorf("daemonPid = %d, want %d", got, os.Getpid())
	}
	if err := p.release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("pid file left after release: %v", err)
	}
	if got := daemonPid(path, "/proc"); got != 0 {
		t.Errorf("daemonPid after release = %d", got)
	}

	// A stale file from a crashed daemon (no lock held) does not block a start.
	if err := os.WriteFile(path, []byte("999999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err = acquirePidFile(path)
	if err != nil {
		t.Fatalf("stale pid file blocked the start: %v", err)
	}
	_ = p.release()
}

func TestIsAgentlet(t *testing.T) {
	if !isAgentlet("/proc", os.Getpid()) {
		t.Error("our own process (same executable) not recognised")
	}
	if isAgentlet("/proc", 999999999) {
		t.Error("a missing process recognised")
	}
	// A fake /proc: comm "agentlet" counts, anything else does not.
	proc := t.TempDir()
	for pid, comm := range map[string]string{"10": "agentlet\n", "11": "sshd\n"} {
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(proc, pid, "stat"), []byte(pid+" ("+strings.TrimSpace(comm)+") S 1 1"), 0o644)
		_ = os.WriteFile(filepath.Join(proc, pid, "comm"), []byte(comm), 0o644)
	}
	if !isAgentlet(proc, 10) || isAgentlet(proc, 11) {
		t.Error("comm check wrong")
	}
	// A zombie is dead.
	_ = os.WriteFile(filepath.Join(proc, "10", "stat"), []byte("10 (agentlet) Z 1 1"), 0o644)
	if isAgentlet(proc, 10) {
		t.Error("zombie counted as alive")
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	for _, content := range []string{"one", "two"} {
		if err := writeAtomic(path, []byte(content), 0o600, true); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != content {
			t.Errorf("content = %q, want %q", got, content)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v", fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d entries left in the directory, want 1", len(entries))
	}
	if err := writeAtomic(filepath.Join(dir, "missing", "f"), nil, 0o600, true); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes
	got := clip(long)
	if len(got) > maxMessage+len("…") || !strings.HasSuffix(got, "…") || !utf8Valid(got) {
		t.Errorf("clip: %d bytes, valid %v", len(got), utf8Valid(got))
	}
	if clip(" short ") != "short" {
		t.Error("short message changed")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
