package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// mountInfo is one line of /proc/PID/mountinfo.
type mountInfo struct {
	Dev        string // major:minor
	Root       string
	MountPoint string
	FSType     string
	Source     string
	SuperOpts  string
}

func readMountinfo(path string) ([]mountInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return parseMountinfo(data), nil
}

func parseMountinfo(data []byte) []mountInfo {
	var out []mountInfo
	for line := range strings.SplitSeq(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 5 || len(g) < 2 {
			continue
		}
		m := mountInfo{Dev: f[2], Root: unescapeMount(f[3]), MountPoint: unescapeMount(f[4]), FSType: g[0], Source: unescapeMount(g[1])}
		if len(g) > 2 {
			m.SuperOpts = g[2]
		}
		out = append(out, m)
	}
	return out
}

// unescapeMount undoes the kernel's octal escaping (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// under reports whether path is dir or below it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// procStat is what identifies a process beyond its (recyclable) PID.
type procStat struct {
	Comm      string
	State     byte
	StartTime uint64 // clock ticks after boot
}

func readProcStat(pid int) (procStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	open := bytes.IndexByte(data, '(')
	end := bytes.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(data[end+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return procStat{Comm: string(data[open+1 : end]), State: f[0][0], StartTime: st}, nil
}

// nsInode is the inode of one of pid's namespaces ("self" for the caller).
func nsInode(pid, ns string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join("/proc", pid, "ns", ns), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

func fileInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// pid1Record identifies a host's PID 1; HostInit writes it before it
// remounts /proc.
type pid1Record struct {
	PID       int    `json:"pid"` // in the root PID namespace
	StartTime uint64 `json:"startTime"`
	Comm      string `json:"comm"`
	PIDNS     uint64 `json:"pidNS"`
	NetNS     uint64 `json:"netNS"`
}

func readPid1(path string) (pid1Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return pid1Record{}, err
	}
	var r pid1Record
	if err := json.Unmarshal(data, &r); err != nil {
		return pid1Record{}, fmt.Errorf("parse %s: %w", path, err)
	}
	if r.PID <= 1 {
		return pid1Record{}, fmt.Errorf("parse %s: bad pid %d", path, r.PID)
	}
	return r, nil
}

// alive reports whether the record still describes a live process: same PID,
// start time, name and PID namespace. PIDs wrap within minutes on busy boxes.
func (r pid1Record) alive() bool {
	st, err := readProcStat(r.PID)
	if err != nil || st.State == 'Z' || st.State == 'X' || st.StartTime != r.StartTime || st.Comm != r.Comm {
		return false
	}
	ino, err := nsInode(strconv.Itoa(r.PID), "pid")
	return err == nil && ino == r.PIDNS
}

// killVerified sends SIGKILL to pid only if check still holds after a pidfd
// pins the process, and waits (up to timeout) until it has exited. It
// reports whether it signalled.
func killVerified(pid int, check func() bool, timeout time.Duration) (bool, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return false, nil
		}
		return false, fmt.Errorf("open pidfd %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if !check() {
		return false, nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return false, nil
		}
		return false, fmt.Errorf("kill %d: %w", pid, err)
	}
	ms := int(timeout / time.Millisecond)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return true, fmt.Errorf("wait for %d: %w", pid, err)
		}
		if n == 0 {
			return true, fmt.Errorf("wait for %d: still alive after %s", pid, timeout)
		}
		return true, nil
	}
}

// pidsInNetns lists the processes whose network namespace has inode ino.
func pidsInNetns(ino uint64) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if i, err := nsInode(e.Name(), "net"); err == nil && i == ino {
			out = append(out, pid)
		}
	}
	return out
}

// run runs a command and returns its stdout; a failure carries stderr.
func run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=" + servicePath, "LC_ALL=C"}
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		return out.String(), fmt.Errorf("run %s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return out.String(), nil
}

// tail is the last n lines of a file, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// closeOnExecAbove marks every open file descriptor above fd close-on-exec,
// so that descriptors this process inherited without the flag (from a shell,
// a test harness) do not leak into hosts and their services. Descriptors
// handed to a child explicitly (exec.Cmd.ExtraFiles) are unaffected.
func closeOnExecAbove(fd int) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > fd {
			unix.CloseOnExec(n)
		}
	}
}
