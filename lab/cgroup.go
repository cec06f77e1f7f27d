package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// cgroupMounts returns the mountpoint of every mounted cgroup hierarchy (v1
// controllers, named v1 hierarchies, cgroup2), one per hierarchy, sorted.
func cgroupMounts() ([]string, error) {
	mis, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return cgroupMountsOf(mis), nil
}

func cgroupMountsOf(mis []mountInfo) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range mis {
		if m.FSType != "cgroup" && m.FSType != "cgroup2" {
			continue
		}
		if seen[m.Dev] {
			continue
		}
		seen[m.Dev] = true
		out = append(out, m.MountPoint)
	}
	slices.Sort(out)
	return out
}

// createCgroup makes dir in every hierarchy. cpuset needs cpus and mems
// before it accepts tasks: they are copied from the parent.
func createCgroup(mounts []string, dir string) error {
	for _, m := range mounts {
		p := filepath.Join(m, dir)
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", p, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := os.ReadFile(filepath.Join(p, f))
			if err != nil || strings.TrimSpace(string(cur)) != "" {
				continue
			}
			parent, err := os.ReadFile(filepath.Join(m, f))
			if err != nil {
				continue
			}
			if err := os.WriteFile(filepath.Join(p, f), parent, 0o644); err != nil {
				return fmt.Errorf("copy %s to cgroup %s: %w", f, p, err)
			}
		}
	}
	return nil
}

// cgroupProcs are the cgroup.procs files of dir in every hierarchy.
func cgroupProcs(mounts []string, dir string) []string {
	out := make([]string, 0, len(mounts))
	for _, m := range mounts {
		out = append(out, filepath.Join(m, dir, "cgroup.procs"))
	}
	return out
}

// joinCgroup moves the calling process (all its threads) into dir in every
// hierarchy.
func joinCgroup(mounts []string, dir string) error {
	for _, f := range cgroupProcs(mounts, dir) {
		if err := os.WriteFile(f, []byte("0"), 0o644); err != nil {
			return fmt.Errorf("join cgroup %s: %w", filepath.Dir(f), err)
		}
	}
	return nil
}

// thawCgroup thaws dir if it (or, in v2, it) is frozen: frozen tasks cannot
// die.
func thawCgroup(mounts []string, dir string) {
	for _, m := range mounts {
		p := filepath.Join(m, dir)
		if b, err := os.ReadFile(filepath.Join(p, "freezer.state")); err == nil && strings.TrimSpace(string(b)) != "THAWED" {
			os.WriteFile(filepath.Join(p, "freezer.state"), []byte("THAWED"), 0o644)
		}
		if b, err := os.ReadFile(filepath.Join(p, "cgroup.freeze")); err == nil && strings.TrimSpace(string(b)) != "0" {
			os.WriteFile(filepath.Join(p, "cgroup.freeze"), []byte("0"), 0o644)
		}
	}
}

// removeCgroup removes dir and everything below it (runc's pod cgroups
// survive a host's death) from every hierarchy, deepest first, retrying
// while exiting tasks still hold them.
func removeCgroup(ctx context.Context, mounts []string, dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []string
		for _, m := range mounts {
			root := filepath.Join(m, dir)
			var dirs []string
			filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
			for _, d := range dirs {
				if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
					left = append(left, d)
				}
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove cgroups: still busy: %s", strings.Join(left, ", "))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove cgroups: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cgroupHosts lists the hosts that have a cgroup directory named by n in
// any of mounts (for cleanup without a state file).
func cgroupHosts(mounts []string, n names) []string {
	re := n.hostObjectRE()
	var out []string
	for _, m := range mounts {
		ents, _ := os.ReadDir(m)
		for _, e := range ents {
			if mm := re.FindStringSubmatch(e.Name()); mm != nil && e.IsDir() && !slices.Contains(out, mm[1]) {
				out = append(out, mm[1])
			}
		}
	}
	return out
}
