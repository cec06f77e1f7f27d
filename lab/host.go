package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

const (
	bootTimeout = 60 * time.Second
	killTimeout = 10 * time.Second
)

// bootHost starts host h (its disk, network and cgroups are created where
// missing) and waits until labinit, sshd and containerd are up.
func bootHost(ctx context.Context, c *config, st *labState, h hostState, exe string, authorized []byte) error {
	if err := prepareHostDisk(c.l, h, authorized); err != nil {
		return fmt.Errorf("boot %s: %w", h.Name, err)
	}
	if err := ensureHostNet(ctx, c.n, st.prefix(), h); err != nil {
		return fmt.Errorf("boot %s: %w", h.Name, err)
	}
	if err := setPort(ctx, c.n, h.Index, true); err != nil {
		return fmt.Errorf("boot %s: %w", h.Name, err)
	}
	if err := createCgroup(st.Cgroups, c.n.cgroup(h.Name)); err != nil {
		return fmt.Errorf("boot %s: %w", h.Name, err)
	}
	if err := os.Remove(c.l.pid1(h.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("boot %s: %w", h.Name, err)
	}
	logf, err := os.OpenFile(c.l.initLog(h.Name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("boot %s: %w", h.Name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- boot %s at %s\n", h.Name, time.Now().Format(time.RFC3339Nano))
	// setsid -f double-forks: unshare (the host's PID 1's parent) is
	// reparented to the machine's init, which reaps it when the host dies.
	cmd := exec.CommandContext(ctx, "setsid", "-f",
		"nsenter", "--net="+c.n.nsPath(c.n.hostNS(h.Name)), "--",
		"unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child", "--propagation", "private",
		exe, "lab", "__init", "--name", c.name, "--host", h.Name, "--state-dir", c.stateDir)
	cmd.Env = []string{"PATH=" + servicePath}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf // *os.File: inherited, no copying goroutine
	// The write end of this pipe (fd 3) stays open in unshare and init for
	// the host's life: EOF on the read end means init died while booting.
	alive, hostEnd, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("boot %s: %w", h.Name, err)
	}
	defer alive.Close()
	cmd.ExtraFiles = []*os.File{hostEnd}
	closeOnExecAbove(2)
	err = cmd.Run()
	hostEnd.Close()
	if err != nil {
		return fmt.Errorf("boot %s: start init: %w", h.Name, err)
	}
	return waitHostReady(ctx, c, h, alive)
}

// waitHostReady waits until host h's PID 1 recorded itself and labinit,
// sshd (listening) and containerd (answering on its socket) are up.
func waitHostReady(ctx context.Context, c *config, h hostState, alive *os.File) error {
	start := time.Now()
	waiting := "init"
	var buf [1]byte
	for {
		alive.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := alive.Read(buf[:]); errors.Is(err, io.EOF) {
			return fmt.Errorf("boot %s: init exited; %s:\n%s", h.Name, c.l.initLog(h.Name), tail(c.l.initLog(h.Name), 15))
		}
		if rec, err := readPid1(c.l.pid1(h.Name)); err == nil {
			if !rec.alive() {
				return fmt.Errorf("boot %s: init exited; %s:\n%s", h.Name, c.l.initLog(h.Name), tail(c.l.initLog(h.Name), 15))
			}
			if waiting = hostNotReady(rec); waiting == "" {
				return nil
			}
		}
		if time.Since(start) > bootTimeout {
			return fmt.Errorf("boot %s: %s not ready after %s; %s:\n%s", h.Name, waiting, bootTimeout, c.l.initLog(h.Name), tail(c.l.initLog(h.Name), 15))
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("boot %s: %w", h.Name, err)
		}
	}
}

// hostNotReady names the first component of a booting host that is not up
// yet, or returns "".
func hostNotReady(rec pid1Record) string {
	root := fmt.Sprintf("/proc/%d/root", rec.PID)
	if !exists(root + "/run/labinit/" + labinitPIDKey) {
		return "labinit"
	}
	if !tcpListening(rec.PID, 22) {
		return "sshd"
	}
	conn, err := net.DialTimeout("unix", root+"/run/containerd/containerd.sock", 500*time.Millisecond)
	if err != nil {
		return "containerd"
	}
	conn.Close()
	return ""
}

// tcpListening reports whether a socket listens on port in pid's netns,
// without connecting to it (no log noise in sshd).
func tcpListening(pid, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"tcp", "tcp6"} {
		fh, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) > 3 && strings.HasSuffix(fs[1], want) && fs[3] == "0A" {
				fh.Close()
				return true
			}
		}
		fh.Close()
	}
	return false
}

// hostRunning returns host h's PID 1 record if that process still lives.
func hostRunning(c *config, h string) (pid1Record, bool) {
	rec, err := readPid1(c.l.pid1(h))
	if err != nil || !rec.alive() {
		return pid1Record{}, false
	}
	return rec, true
}

// killHost powers host h off: its PID 1 gets SIGKILL (the kernel then kills
// every process of its PID namespace), after a check that the recorded PID
// still is that process; processes left in its netns get the same. Frozen
// hosts are thawed first: frozen tasks cannot die. It reports whether
// anything was killed.
func killHost(c *config, cgMounts []string, h string) (bool, error) {
	thawCgroup(cgMounts, c.n.cgroup(h))
	killed := false
	var errs []error
	if rec, ok := hostRunning(c, h); ok {
		k, err := killVerified(rec.PID, rec.alive, killTimeout)
		killed = killed || k
		errs = append(errs, err)
	}
	ino, err := fileInode(c.n.nsPath(c.n.hostNS(h)))
	if err == nil {
		for _, pid := range pidsInNetns(ino) {
			check := func() bool {
				i, err := nsInode(strconv.Itoa(pid), "net")
				return err == nil && i == ino
			}
			k, err := killVerified(pid, check, killTimeout)
			killed = killed || k
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return killed, fmt.Errorf("kill %s: %w", h, err)
	}
	return killed, nil
}
