package agentlet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Node resources held back from pods for the OS, containerd and agentlet
// (kubelet's system-reserved + kube-reserved, folded into one fixed amount),
// and the pod limit per node (kubelet's default max-pods).
const (
	ReservedCPUMillis   = 100
	ReservedMemoryBytes = 256 << 20
	MaxPods             = 110
)

// HostFacts are the facts about the host agentlet reports.
type HostFacts struct {
	Hostname      string
	Kernel        string // uname release
	OS            string // PRETTY_NAME from os-release
	CgroupVersion int    // 1 or 2; 0 when unknown
	CPUs          int    // CPUs this process may run on
	MemTotalBytes int64  // MemTotal from /proc/meminfo
}

// HostPaths are where host facts are read from; empty fields mean the usual
// places, so tests can point them at fixtures.
type HostPaths struct {
	Proc       string   // /proc
	OSRelease  []string // /etc/os-release, /usr/lib/os-release
	CgroupRoot string   // /sys/fs/cgroup
}

// ReadHostFacts reads the host's facts. It returns what it could read along
// with an error naming everything it could not.
func ReadHostFacts(p HostPaths) (HostFacts, error) {
	if p.Proc == "" {
		p.Proc = "/proc"
	}
	if len(p.OSRelease) == 0 {
		p.OSRelease = []string{"/etc/os-release", "/usr/lib/os-release"}
	}
	if p.CgroupRoot == "" {
		p.CgroupRoot = "/sys/fs/cgroup"
	}
	var f HostFacts
	var errs []error
	var err error
	if f.Hostname, err = os.Hostname(); err != nil {
		errs = append(errs, fmt.Errorf("read hostname: %w", err))
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		errs = append(errs, fmt.Errorf("read kernel release: %w", err))
	} else {
		f.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	for _, path := range p.OSRelease {
		data, err := os.ReadFile(path)
		if err == nil {
			f.OS = parseOSRelease(data)
			break
		}
	}
	f.CgroupVersion = cgroupVersion(p.CgroupRoot)
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil || set.Count() == 0 {
		f.CPUs = runtime.NumCPU()
	} else {
		f.CPUs = set.Count()
	}
	data, err := os.ReadFile(filepath.Join(p.Proc, "meminfo"))
	if err == nil {
		f.MemTotalBytes, err = parseMeminfo(data)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("read memory size: %w", err))
	}
	return f, errors.Join(errs...)
}

// parseMeminfo returns MemTotal in bytes from /proc/meminfo.
func parseMeminfo(data []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || key != "MemTotal" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("parse MemTotal %q", strings.TrimSpace(rest))
		}
		unit := int64(1)
		if len(f) > 1 {
			switch strings.ToLower(f[1]) {
			case "kb":
				unit = 1024
			default:
				return 0, fmt.Errorf("parse MemTotal %q: unknown unit", strings.TrimSpace(rest))
			}
		}
		return n * unit, nil
	}
	return 0, errors.New("parse meminfo: no MemTotal line")
}

// parseOSRelease returns PRETTY_NAME (or NAME) from an os-release file.
func parseOSRelease(data []byte) string {
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
		}
		vals[k] = v
	}
	if v := vals["PRETTY_NAME"]; v != "" {
		return v
	}
	return vals["NAME"]
}

// cgroupVersion is 2 when root is a cgroup2 file system (unified
// hierarchy), 1 when it is anything else that exists (v1 or hybrid), 0 when
// it cannot be read.
func cgroupVersion(root string) int {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return 0
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return 2
	}
	return 1
}

// Capacity computes the node's capacity and allocatable resources.
func Capacity(f HostFacts) (capacity, allocatable nodeapi.Resources) {
	capacity = nodeapi.Resources{
		CPUMillis:   int64(f.CPUs) * 1000,
		MemoryBytes: f.MemTotalBytes,
		Pods:        MaxPods,
	}
	allocatable = nodeapi.Resources{
		CPUMillis:   max(capacity.CPUMillis-ReservedCPUMillis, 0),
		MemoryBytes: max(capacity.MemoryBytes-ReservedMemoryBytes, 0),
		Pods:        capacity.Pods,
	}
	return capacity, allocatable
}
