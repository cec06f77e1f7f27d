package agentlet

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// writeAtomic replaces path with data: temp file in the same directory,
// fsync, rename, and (when syncDir) fsync of the directory so the rename
// survives a crash.
func writeAtomic(path string, data []byte, perm os.FileMode, syncDir bool) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	if syncDir {
		d, err := os.Open(dir)
		if err != nil {
			return fmt.Errorf("open %s: %w", dir, err)
		}
		defer d.Close()
		if err := d.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", dir, err)
		}
	}
	return nil
}

// loadSpec reads the held NodeSpec. It returns (nil, nil, nil) when none is
// held, and the raw bytes for byte-identity checks.
func loadSpec(path string) (*nodeapi.NodeSpec, []byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read held node spec: %w", err)
	}
	spec, err := nodeapi.DecodeNodeSpec(bytes.NewReader(data))
	if err != nil {
		return nil, data, fmt.Errorf("load held node spec %s: %w", path, err)
	}
	return spec, data, nil
}

// AlreadyRunningError is returned when another live daemon holds the pid file.
type AlreadyRunningError struct {
	PID  int
	Path string
}

func (e *AlreadyRunningError) Error() string {
	return fmt.Sprintf("start daemon: another agentlet daemon (pid %d) holds %s", e.PID, e.Path)
}

// pidFile is the daemon's pid file, held with an exclusive flock for the
// daemon's lifetime. The lock, not the PID, decides whether a daemon runs, so
// a stale file left by a crash (or a reused PID) never blocks a restart.
type pidFile struct {
	path string
	f    *os.File
}

// acquirePidFile creates the run directory and takes the pid file.
func acquirePidFile(path string) (*pidFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	for attempt := 0; attempt < 10; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open pid file: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				pid, _ := readPid(path)
				return nil, &AlreadyRunningError{PID: pid, Path: path}
			}
			return nil, fmt.Errorf("lock pid file: %w", err)
		}
		// The previous holder may have removed the file between our open
		// and our lock; then we hold a lock on an unlinked inode: retry.
		if !sameFile(f, path) {
			f.Close()
			continue
		}
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, fmt.Errorf("truncate pid file: %w", err)
		}
		if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
			f.Close()
			return nil, fmt.Errorf("write pid file: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("fsync pid file: %w", err)
		}
		return &pidFile{path: path, f: f}, nil
	}
	return nil, fmt.Errorf("lock pid file %s: it keeps being replaced", path)
}

func sameFile(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// release removes the pid file (while still holding the lock) and unlocks.
func (p *pidFile) release() error {
	var err error
	if sameFile(p.f, p.path) {
		if rerr := os.Remove(p.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("remove pid file: %w", rerr)
		}
	}
	if cerr := p.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close pid file: %w", cerr)
	}
	return err
}

// readPid reads a pid file; 0 when absent or unreadable.
func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("parse pid file %s: %q is not a pid", path, strings.TrimSpace(string(data)))
	}
	return pid, nil
}

// daemonPid returns the PID of the live agentlet daemon recorded in the pid
// file, or 0 when there is none: the file is missing, its process is gone
// (or a zombie), or the PID now belongs to some other program.
func daemonPid(pidPath, procRoot string) int {
	pid, err := readPid(pidPath)
	if err != nil {
		return 0
	}
	if !isAgentlet(procRoot, pid) {
		return 0
	}
	return pid
}

// isAgentlet reports whether pid is a live agentlet process: /proc/PID/comm
// is "agentlet", or /proc/PID/exe is the same executable as ours.
func isAgentlet(procRoot string, pid int) bool {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return false
	}
	// Field 3 (after "pid (comm)") is the state; Z and X are dead.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		if s := stat[i+2]; s == 'Z' || s == 'X' {
			return false
		}
	}
	comm, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err == nil && strings.TrimSpace(string(comm)) == "agentlet" {
		return true
	}
	exe, err1 := os.Stat(filepath.Join(dir, "exe"))
	self, err2 := os.Stat(filepath.Join(procRoot, "self", "exe"))
	return err1 == nil && err2 == nil && os.SameFile(exe, self)
}

// signalDaemon sends sig to the live daemon; it returns the PID signalled, or
// 0 when no daemon runs.
func signalDaemon(pidPath, procRoot string, sig syscall.Signal) (int, error) {
	pid := daemonPid(pidPath, procRoot)
	if pid == 0 {
		return 0, nil
	}
	if err := syscall.Kill(pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return 0, nil
		}
		return 0, fmt.Errorf("signal daemon pid %d: %w", pid, err)
	}
	return pid, nil
}

// lockDir takes an exclusive flock on dir, waiting up to timeout, and returns
// the unlock function. It serialises concurrent `agentlet apply` runs.
func lockDir(dir string, timeout time.Duration) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { d.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			d.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
