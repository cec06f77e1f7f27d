package lab

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// HostInit is `clusterctl lab __init`: PID 1 of a lab host. It is started by
// Up and Boot inside the host's fresh mount, UTS, IPC and PID namespaces and
// its network namespace. It records its identity, joins the host's cgroups,
// builds the host's file system view, sets the hostname and then runs
// labinit until the host is killed. args are --name, --host, --state-dir;
// with --registry instead of --host it is PID 1 of the lab's registry.
func HostInit(args []string) error {
	fset := flag.NewFlagSet("lab __init", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	name := fset.String("name", DefaultName, "lab name")
	host := fset.String("host", "", "host name (h1, h2, ...)")
	stateDir := fset.String("state-dir", "", "lab state directory")
	registry := fset.Bool("registry", false, "be PID 1 of the lab's registry, not of a host")
	if err := fset.Parse(args); err != nil {
		return fmt.Errorf("parse lab __init flags: %w", err)
	}
	if os.Getpid() != 1 {
		return errors.New("run lab __init: must be PID 1 of a new PID namespace; lab up and lab boot start it")
	}
	if !*registry {
		if _, err := hostIndex(*host); err != nil {
			return err
		}
	}
	c, err := resolve(Options{Name: *name, StateDir: *stateDir})
	if err != nil {
		return err
	}
	st, err := loadState(c.l)
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("boot %s: find lab %s in %s: %w", *host, c.name, c.stateDir, ErrNoLab)
	}
	if *registry {
		return registryInit(c)
	}
	logger := log.New(os.Stderr, *host+" ", log.LstdFlags|log.Lmicroseconds)
	if err := recordPid1(c.l.pid1(*host)); err != nil {
		return err
	}
	// fd 3 tells the booting `lab up` that this host lives (it sees EOF when
	// init dies); services must not inherit it.
	closeOnExecAbove(2)
	if err := joinCgroup(st.Cgroups, c.n.cgroup(*host)); err != nil {
		return err
	}
	if err := mountHost(c, *host); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(*host)); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return fmt.Errorf("change to /: %w", err)
	}
	unix.Umask(0o022)
	logger.Printf("host %s of lab %s booted", *host, c.name)
	return runLabinit(hostLabinitConfig(logger))
}

// recordPid1 writes this process's identity as the root PID namespace sees
// it. It must run before /proc is replaced by the host's own.
func recordPid1(path string) error {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return fmt.Errorf("read own status: %w", err)
	}
	defer f.Close()
	pid := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "NSpid:"); ok {
			if fs := strings.Fields(v); len(fs) > 0 {
				pid, _ = strconv.Atoi(fs[0])
			}
		}
	}
	if pid <= 1 {
		return errors.New("record pid 1: no root-namespace pid in /proc/self/status (is /proc the root's?)")
	}
	ps, err := readProcStat(pid)
	if err != nil {
		return fmt.Errorf("record pid 1: %w", err)
	}
	pidns, err := nsInode("self", "pid")
	if err != nil {
		return fmt.Errorf("record pid 1: %w", err)
	}
	netns, err := nsInode("self", "net")
	if err != nil {
		return fmt.Errorf("record pid 1: %w", err)
	}
	data, _ := json.Marshal(pid1Record{PID: pid, StartTime: ps.StartTime, Comm: ps.Comm, PIDNS: pidns, NetNS: netns})
	return writeFileAtomic(path, append(data, '\n'), 0o644)
}

// mountHost builds the host's file system view (see the package
// documentation). Every mount lives in the host's private mount namespace.
func mountHost(c *config, host string) error {
	mount := func(src, target, fstype string, flags uintptr, data string) error {
		if err := unix.Mount(src, target, fstype, flags, data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", fstype+src, target, err)
		}
		return nil
	}
	if err := mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	if err := mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	mis, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		return err
	}

	// A sysfs of the host's netns (/sys/class/net shows its links), keeping
	// the cgroup tree: set it aside, replace /sys, move it back.
	keep := c.l.cgkeep(host)
	hasCgroups := slices.ContainsFunc(mis, func(m mountInfo) bool { return under(m.MountPoint, "/sys/fs/cgroup") })
	if hasCgroups {
		if err := os.MkdirAll(keep, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", keep, err)
		}
		if err := mount("/sys/fs/cgroup", keep, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
	}
	if err := unix.Unmount("/sys", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount /sys: %w", err)
	}
	if err := mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	if hasCgroups {
		if err := mount(keep, "/sys/fs/cgroup", "", unix.MS_MOVE, ""); err != nil {
			return err
		}
	}

	// Copies of the root's /run/netns/* would pin other labs' namespaces.
	for i := len(mis) - 1; i >= 0; i-- {
		if under(mis[i].MountPoint, "/run/netns") {
			if err := unix.Unmount(mis[i].MountPoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("unmount %s: %w", mis[i].MountPoint, err)
			}
		}
	}
	if err := mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return err
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{"/run/lock", os.ModeSticky | 0o777}, {"/run/sshd", 0o755}, {"/run/labinit", 0o755}} {
		if err := os.Mkdir(d.path, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d.path, err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("create %s: %w", d.path, err)
		}
	}
	if err := mount("shm", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return err
	}

	hd := c.l.host(host)
	for _, m := range hostMounts() {
		src := filepath.Join(hd, m.dir)
		if m.overlay {
			opts := "lowerdir=" + m.target + ",upperdir=" + filepath.Join(src, "upper") + ",workdir=" + filepath.Join(src, "work")
			if err := mount(c.n.cgroup(host), m.target, "overlay", 0, opts); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return fmt.Errorf("create mountpoint %s: %w", m.target, err)
		}
		if err := mount(src, m.target, "", unix.MS_BIND, ""); err != nil {
			return err
		}
	}
	// Hide the lab's state (the workstation key, other hosts' disks) if the
	// binds above did not already.
	if st, err := os.Stat(c.stateDir); err == nil && st.IsDir() {
		if err := mount("tmpfs", c.stateDir, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700,size=4k"); err != nil {
			return err
		}
	}
	return nil
}
