package agentlet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterctl/clusterctl/nodeapi"
)

const meminfoSample = `MemTotal:       24683476 kB
MemFree:        20971520 kB
MemAvailable:   22020096 kB
Buffers:          102400 kB
Cached:          1048576 kB
SwapTotal:             0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
`

func TestParseMeminfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr string
	}{
		{name: "sample", in: meminfoSample, want: 24683476 * 1024},
		{name: "not first line", in: "MemFree: 1 kB\nMemTotal: 2048 kB\n", want: 2 << 20},
		{name: "no unit", in: "MemTotal: 4096\n", want: 4096},
		{name: "missing", in: "MemFree: 1 kB\n", wantErr: "no MemTotal"},
		{name: "garbage", in: "MemTotal: lots kB\n", wantErr: "parse MemTotal"},
		{name: "unknown unit", in: "MemTotal: 1 MB\n", wantErr: "unknown unit"},
		{name: "empty", in: "", wantErr: "no MemTotal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMeminfo([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestParseOSRelease(t *testing.T) {
	tests := []struct{ in, want string }{
		{"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nID=debian\n", "Debian GNU/Linux 12 (bookworm)"},
		{"NAME=Alpine\n# comment\nPRETTY_NAME='Alpine Linux v3.20'\n", "Alpine Linux v3.20"},
		{"NAME=\"Fedora Linux\"\n", "Fedora Linux"},
		{"garbage\n\n", ""},
	}
	for _, tt := range tests {
		if got := parseOSRelease([]byte(tt.in)); got != tt.want {
			t.Errorf("parseOSRelease(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCapacity(t *testing.T) {
	tests := []struct {
		name      string
		facts     HostFacts
		wantCap   nodeapi.Resources
		wantAlloc nodeapi.Resources
	}{
		{
			name:      "2 cpus 24GB",
			facts:     HostFacts{CPUs: 2, MemTotalBytes: 24683476 * 1024},
			wantCap:   nodeapi.Resources{CPUMillis: 2000, MemoryBytes: 25275879424, Pods: 110},
			wantAlloc: nodeapi.Resources{CPUMillis: 1900, MemoryBytes: 25275879424 - 256<<20, Pods: 110},
		},
		{
			name:      "tiny host never goes negative",
			facts:     HostFacts{CPUs: 0, MemTotalBytes: 100 << 20},
			wantCap:   nodeapi.Resources{CPUMillis: 0, MemoryBytes: 100 << 20, Pods: 110},
			wantAlloc: nodeapi.Resources{CPUMillis: 0, MemoryBytes: 0, Pods: 110},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, a := Capacity(tt.facts)
			if c != tt.wantCap || a != tt.wantAlloc {
				t.Errorf("Capacity = %+v, %+v; want %+v, %+v", c, a, tt.wantCap, tt.wantAlloc)
			}
		})
	}
}

func TestReadHostFacts(t *testing.T) {
	dir := t.TempDir()
	proc := filepath.Join(dir, "proc")
	if err := os.MkdirAll(proc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "meminfo"), []byte(meminfoSample), 0o644); err != nil {
		t.Fatal(err)
	}
	osr := filepath.Join(dir, "os-release")
	if err := os.WriteFile(osr, []byte("PRETTY_NAME=\"Test OS 1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := ReadHostFacts(HostPaths{Proc: proc, OSRelease: []string{filepath.Join(dir, "missing"), osr}, CgroupRoot: dir})
	if err != nil {
		t.Fatal(err)
	}
	if f.OS != "Test OS 1" || f.MemTotalBytes != 24683476*1024 || f.CPUs < 1 || f.Kernel == "" || f.Hostname == "" {
		t.Errorf("facts = %+v", f)
	}
	if f.CgroupVersion != 1 { // a plain directory is not a cgroup2 root
		t.Errorf("cgroup version of a plain dir = %d, want 1", f.CgroupVersion)
	}
	if v := cgroupVersion(filepath.Join(dir, "missing")); v != 0 {
		t.Errorf("cgroup version of a missing dir = %d, want 0", v)
	}

	_, err = ReadHostFacts(HostPaths{Proc: filepath.Join(dir, "noproc"), CgroupRoot: dir})
	if err == nil || !strings.Contains(err.Error(), "read memory size") {
		t.Errorf("err = %v, want a memory size error", err)
	}
}
