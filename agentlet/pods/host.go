package pods

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// HostMounter mounts with mount(2) and finds mounts in /proc/self/mountinfo.
type HostMounter struct{}

// MountTmpfs implements Mounter.
func (HostMounter) MountTmpfs(dir string, sizeBytes int64) error {
	if mounted, err := isMountPoint(dir); err != nil || mounted {
		return err
	}
	opts := "mode=0755"
	if sizeBytes > 0 {
		opts += ",size=" + strconv.FormatInt(sizeBytes, 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// UnmountAll implements Mounter.
func (HostMounter) UnmountAll(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	points := mountsBelow(data, filepath.Clean(dir))
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// mountsBelow lists the mount points in a mountinfo at or below dir,
// deepest first.
func mountsBelow(mountinfo []byte, dir string) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		p := unescapeMount(f[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a blank).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isMountPoint reports whether dir is the root of a mount (its device
// differs from its parent's).
func isMountPoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		return false, fmt.Errorf("stat %s: %w", filepath.Dir(dir), err)
	}
	return st.Dev != parent.Dev, nil
}

// Statfs returns the capacity and available bytes of the file system at p.
func Statfs(p string) (capacity, available uint64, err error) {
	var s unix.Statfs_t
	if err := unix.Statfs(p, &s); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", p, err)
	}
	return s.Blocks * uint64(s.Bsize), s.Bavail * uint64(s.Bsize), nil
}

// Cgroup drivers.
const (
	DriverCgroupfs = "cgroupfs"
	DriverSystemd  = "systemd"
)

// Cgroups decides where pods' cgroups go. It must match the runtime's
// cgroup driver (containerd's SystemdCgroup).
type Cgroups struct {
	Driver string // DriverCgroupfs or DriverSystemd
	// Root is, for cgroupfs, the cgroup pods go under (kubepods/pod<uid>
	// below it): by default the one agentlet itself runs in, so on a lab
	// host pods are accounted, frozen and killed with the host.
	Root string
}

// PodParent is the cgroup_parent of a pod's sandbox.
func (c Cgroups) PodParent(uid string) string {
	if c.Driver == DriverSystemd {
		return "kubepods-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice"
	}
	return path.Join("/", c.Root, "kubepods", "pod"+uid)
}

// DetectDriver picks the cgroup driver: systemd when systemd runs the host
// (runSystemd, usually /run/systemd/system, exists), cgroupfs otherwise.
func DetectDriver(runSystemd string) string {
	if fi, err := os.Stat(runSystemd); err == nil && fi.IsDir() {
		return DriverSystemd
	}
	return DriverCgroupfs
}

// SelfCgroup extracts the cgroup a process runs in from /proc/self/cgroup:
// the memory controller's path on cgroup v1 (or hybrid), else cpu's, else
// the unified (v2) path; "/" when nothing is found.
func SelfCgroup(procSelfCgroup []byte) string {
	byCtrl := map[string]string{}
	unified := ""
	for _, line := range strings.Split(string(procSelfCgroup), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			byCtrl[ctrl] = parts[2]
		}
	}
	for _, ctrl := range []string{"memory", "cpu", "pids"} {
		if p, ok := byCtrl[ctrl]; ok {
			return path.Clean("/" + p)
		}
	}
	if unified != "" {
		return path.Clean("/" + unified)
	}
	return "/"
}

// RemoveCgroup removes a pod's cgroup directory (cgroupfs driver) in every
// hierarchy under cgroupRoot (/sys/fs/cgroup): the v2 tree and each v1
// controller. Directories are removed deepest first (hard kills can leave
// container cgroups behind); busy ones are retried until ctx is done.
func RemoveCgroup(ctx context.Context, cgroupRoot, cgroup string) error {
	rel := strings.TrimPrefix(path.Clean("/"+cgroup), "/")
	if rel == "" || strings.HasSuffix(cgroup, ".slice") {
		return nil
	}
	candidates := []string{filepath.Join(cgroupRoot, rel)}
	if more, err := filepath.Glob(filepath.Join(cgroupRoot, "*", rel)); err == nil {
		candidates = append(candidates, more...)
	}
	for {
		var left []string
		for _, c := range candidates {
			var dirs []string
			_ = filepath.WalkDir(c, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
					left = append(left, dirs[i])
				}
			}
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove pod cgroup: still busy: %s", strings.Join(left, ", "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
