package playbooks

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Facts is what one round trip learns about a host before any change.
type Facts struct {
	Kernel, Machine, OS, OSID, OSLike string
	Init                              string            // systemd | labinit | none
	CgroupVersion                     int               // 1, 2, or 0 when /sys/fs/cgroup is missing
	Overlay                           bool              // overlayfs in /proc/filesystems
	BridgeNetfilter                   bool              // /proc/sys/net/bridge exists (br_netfilter)
	Binaries                          map[string]string // name → path ("" when missing)
	CNIBinDir                         string            // directory holding the CNI plugins we need
	CapSysResource                    bool
	PackageManager                    string
	Sums                              map[string]string // managed file path → sha256 ("" when absent)
	ContainerdBackup                  bool              // the original containerd config was saved
	ContainerdManaged                 bool              // the current containerd config is ours
	ContainerdUp                      bool              // containerd answers on its socket
	AgentletRunning                   bool              // the agentlet service is running
	Sysctl                            map[string]string // current values
	OtherCNIConfs                     []string          // conflists that are not ours
	// RegistryHosts maps each hosts.toml clusterctl wrote below
	// RegistryHostsDir to its sha256; ForeignRegistryHosts are the others.
	RegistryHosts        map[string]string
	ForeignRegistryHosts []string
	// AgentletStatus is what an installed agentlet reports (nil when it is
	// not installed or its status cannot be read).
	AgentletStatus *nodeapi.NodeStatus
	// Addresses are the host's global IPv4 addresses with their prefixes
	// (the connected subnets), by interface.
	Addresses []InterfaceAddress
}

// InterfaceAddress is one IPv4 address of a host.
type InterfaceAddress struct {
	Interface string
	Prefix    netip.Prefix
}

// agentletSumCache caches the installed agentlet's checksum (see factsScript).
const agentletSumCache = nodeapi.StateDir + "/binary.sha256"

// requiredBinaries are checked by preflight, with the package that provides
// them on Debian-like systems.
func requiredBinaries() []string {
	return []string{"containerd", "ctr", "runc", "iptables", "iptables-restore", "iptables-save", "ip", "sha256sum", "install", "base64"}
}

// cniPlugins are the CNI plugins the conflist and containerd need.
func cniPlugins() []string { return []string{"bridge", "host-local", "portmap", "loopback"} }

// managedFiles are the files whose checksums facts report.
func managedFiles() []string {
	return []string{"/usr/local/bin/agentlet", ContainerdConfigPath, CNIConfPath, SysctlPath, SystemdUnitPath, LabinitUnitPath}
}

// factsScript is run with `sh -s` as root; it prints key=value lines.
func factsScript() string {
	var b strings.Builder
	b.WriteString(`export LC_ALL=C
echo "kernel=$(uname -r)"
echo "machine=$(uname -m)"
if [ -r /etc/os-release ]; then . /etc/os-release; fi
echo "os=${PRETTY_NAME:-unknown}"
echo "os_id=${ID:-}"
echo "os_like=${ID_LIKE:-}"
if [ -d /run/systemd/system ]; then echo init=systemd; elif [ -f /run/labinit/pid ]; then echo init=labinit; else echo init=none; fi
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then echo cgroup=2; elif [ -d /sys/fs/cgroup ] && [ -n "$(ls /sys/fs/cgroup 2>/dev/null)" ]; then echo cgroup=1; else echo cgroup=0; fi
if grep -qw overlay /proc/filesystems; then echo overlay=1; else echo overlay=0; fi
if [ -d /proc/sys/net/bridge ]; then echo br_netfilter=1; else echo br_netfilter=0; fi
echo "capeff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)"
for pm in apt-get dnf yum apk zypper; do if command -v $pm >/dev/null 2>&1; then echo "pkg=$pm"; break; fi; done
`)
	b.WriteString("for b in " + strings.Join(requiredBinaries(), " ") + "; do echo \"bin_$b=$(command -v $b 2>/dev/null)\"; done\n")
	b.WriteString("for d in /usr/lib/cni /opt/cni/bin /usr/libexec/cni; do ok=1; for p in " + strings.Join(cniPlugins(), " ") +
		"; do [ -x $d/$p ] || ok=0; done; if [ $ok = 1 ]; then echo \"cni_bin_dir=$d\"; break; fi; done\n")
	for _, f := range managedFiles() {
		if f == nodeapi.BinaryPath {
			continue
		}
		fmt.Fprintf(&b, "if [ -f %[1]s ]; then echo \"sum:%[1]s=$(sha256sum %[1]s | cut -d' ' -f1)\"; else echo \"sum:%[1]s=\"; fi\n", f)
	}
	// The agentlet binary is large: its checksum is cached beside agentlet's
	// state, keyed by size, mtime and inode, so any replacement recomputes it.
	fmt.Fprintf(&b, `f=%[1]s; c=%[2]s
if [ -f "$f" ]; then
  id=$(stat -c '%%s %%Y %%i' "$f"); sum=""
  if [ -f "$c" ] && [ "$(sed -n 1p "$c")" = "$id" ]; then sum=$(sed -n 2p "$c"); fi
  if [ -z "$sum" ]; then sum=$(sha256sum "$f" | cut -d' ' -f1); [ -d %[3]s ] && printf '%%s\n%%s\n' "$id" "$sum" > "$c"; fi
  echo "sum:$f=$sum"
else echo "sum:$f="; fi
`, nodeapi.BinaryPath, agentletSumCache, nodeapi.StateDir)
	fmt.Fprintf(&b, "if [ -f %s ]; then echo containerd_backup=1; else echo containerd_backup=0; fi\n", ContainerdConfigBackup)
	fmt.Fprintf(&b, "if grep -qF 'managed by clusterctl' %s 2>/dev/null; then echo containerd_managed=1; else echo containerd_managed=0; fi\n", ContainerdConfigPath)
	fmt.Fprintf(&b, "if timeout 3 ctr --address %s version >/dev/null 2>&1; then echo containerd_up=1; else echo containerd_up=0; fi\n", ContainerdSocket)
	fmt.Fprintf(&b, "if (%s) >/dev/null 2>&1; then echo agentlet_running=1; else echo agentlet_running=0; fi\n", serviceRunningCmd(""))
	for _, kv := range sysctls() {
		fmt.Fprintf(&b, "echo \"sysctl:%s=$(cat /proc/sys/%s 2>/dev/null)\"\n", kv[0], strings.ReplaceAll(kv[0], ".", "/"))
	}
	fmt.Fprintf(&b, "for f in %s/*; do [ -e \"$f\" ] && [ \"$f\" != %s ] && echo \"othercni=$f\"; done\n", CNIConfDir, CNIConfPath)
	b.WriteString(registryHostsFacts())
	// What agentlet reports now (for endpoints when up computes node
	// specs), and the host's addresses (for the host-gw L2 check).
	fmt.Fprintf(&b, "if [ -x %[1]s ]; then echo \"agentlet_status=$(%[1]s status 2>/dev/null | base64 -w0)\"; fi\n", nodeapi.BinaryPath)
	b.WriteString("ip -o -4 addr show scope global 2>/dev/null | while read -r _ dev _ cidr _; do echo \"addr=$dev $cidr\"; done\n")
	b.WriteString("exit 0\n")
	return b.String()
}

// ParseFacts parses the output of factsScript.
func ParseFacts(out []byte) (*Facts, error) {
	f := &Facts{Binaries: map[string]string{}, Sums: map[string]string{}, Sysctl: map[string]string{}, RegistryHosts: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, len(out)+1) // agentlet's status is one long line
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch {
		case k == "kernel":
			f.Kernel = v
		case k == "machine":
			f.Machine = v
		case k == "os":
			f.OS = v
		case k == "os_id":
			f.OSID = v
		case k == "os_like":
			f.OSLike = v
		case k == "init":
			f.Init = v
		case k == "cgroup":
			f.CgroupVersion, _ = strconv.Atoi(v)
		case k == "overlay":
			f.Overlay = v == "1"
		case k == "br_netfilter":
			f.BridgeNetfilter = v == "1"
		case k == "capeff":
			caps, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				return nil, fmt.Errorf("parse facts: CapEff %q: %w", v, err)
			}
			f.CapSysResource = caps&(1<<24) != 0
		case k == "pkg":
			f.PackageManager = v
		case strings.HasPrefix(k, "bin_"):
			f.Binaries[strings.TrimPrefix(k, "bin_")] = v
		case k == "cni_bin_dir":
			f.CNIBinDir = v
		case strings.HasPrefix(k, "sum:"):
			f.Sums[strings.TrimPrefix(k, "sum:")] = v
		case k == "containerd_backup":
			f.ContainerdBackup = v == "1"
		case k == "containerd_managed":
			f.ContainerdManaged = v == "1"
		case k == "containerd_up":
			f.ContainerdUp = v == "1"
		case k == "agentlet_running":
			f.AgentletRunning = v == "1"
		case strings.HasPrefix(k, "sysctl:"):
			f.Sysctl[strings.TrimPrefix(k, "sysctl:")] = v
		case k == "othercni":
			f.OtherCNIConfs = append(f.OtherCNIConfs, v)
		case strings.HasPrefix(k, "regsum:"):
			f.RegistryHosts[strings.TrimPrefix(k, "regsum:")] = v
		case k == "regforeign":
			f.ForeignRegistryHosts = append(f.ForeignRegistryHosts, v)
		case k == "agentlet_status":
			// An unreadable status is no status: up then treats the
			// node's pods as not observed.
			if data, err := base64.StdEncoding.DecodeString(v); err == nil && len(data) > 0 {
				f.AgentletStatus, _ = nodeapi.DecodeNodeStatus(data)
			}
		case k == "addr":
			dev, cidr, _ := strings.Cut(v, " ")
			if p, err := netip.ParsePrefix(cidr); err == nil {
				f.Addresses = append(f.Addresses, InterfaceAddress{Interface: dev, Prefix: p})
			}
		}
	}
	if f.Kernel == "" || f.Init == "" {
		return nil, fmt.Errorf("parse facts: incomplete output (%d bytes)", len(out))
	}
	sort.Strings(f.OtherCNIConfs)
	sort.Strings(f.ForeignRegistryHosts)
	return f, nil
}

// Arch maps the kernel machine name to a Go architecture.
func (f *Facts) Arch() (string, error) {
	switch f.Machine {
	case "x86_64", "amd64":
		return "amd64", nil
	case "aarch64", "arm64":
		return "arm64", nil
	}
	return "", fmt.Errorf("unsupported machine architecture %q (clusterctl ships agentlet for amd64 and arm64)", f.Machine)
}
