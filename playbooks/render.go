package playbooks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// Files clusterctl manages on a host.
const (
	ContainerdConfigPath   = "/etc/containerd/config.toml"
	ContainerdConfigBackup = "/etc/containerd/config.toml.clusterctl-orig"
	ContainerdSocket       = "/run/containerd/containerd.sock"
	CNIConfDir             = "/etc/cni/net.d"
	CNIConfPath            = CNIConfDir + "/10-clusterctl.conflist"
	SysctlPath             = "/etc/sysctl.d/90-clusterctl.conf"
	SystemdUnitPath        = "/etc/systemd/system/agentlet.service"
	LabinitUnitPath        = "/etc/labinit/agentlet.service"
	// ManagedMarker starts every file clusterctl writes that allows comments.
	ManagedMarker = "# managed by clusterctl: changes are overwritten by `clusterctl up`"
)

// ContainerdParams are the host facts that shape containerd's config.
type ContainerdParams struct {
	SandboxImage string
	// SystemdCgroup selects the systemd cgroup driver; it must match the host's
	// init (systemd) or containerd cannot create pod cgroups.
	SystemdCgroup bool
	// RestrictOOMScoreAdj is needed where the runtime lacks CAP_SYS_RESOURCE
	// (containers, some CI sandboxes): otherwise the pause container fails.
	RestrictOOMScoreAdj bool
	CNIBinDir           string
	CNIConfDir          string
}

// RenderContainerdConfig renders containerd's config.toml (version 2, CRI enabled).
func RenderContainerdConfig(p ContainerdParams) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `%s
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = %t
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = %t
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, ManagedMarker, ContainerdSocket, p.SandboxImage, p.RestrictOOMScoreAdj, p.SystemdCgroup, p.CNIBinDir, p.CNIConfDir, RegistryHostsDir)
	return []byte(b.String())
}

// RenderCNIConflist renders the node's CNI network: a bridge with host-local
// IPAM over the node's pod CIDR, plus portmap for hostPorts. No masquerading
// here: pod-to-pod traffic keeps its source IP (agentlet owns NAT rules).
func RenderCNIConflist(podCIDR netip.Prefix) ([]byte, error) {
	if !podCIDR.Addr().Is4() || podCIDR.Bits() > 30 {
		return nil, fmt.Errorf("render cni conflist: pod CIDR %s must be an IPv4 prefix of /30 or larger", podCIDR)
	}
	gw := podCIDR.Masked().Addr().Next()
	type rng struct {
		Subnet  string `json:"subnet"`
		Gateway string `json:"gateway"`
	}
	type route struct {
		Dst string `json:"dst"`
	}
	type ipam struct {
		Type   string  `json:"type"`
		Ranges [][]rng `json:"ranges"`
		Routes []route `json:"routes"`
	}
	type plugin struct {
		Type         string          `json:"type"`
		Bridge       string          `json:"bridge,omitempty"`
		IsGateway    bool            `json:"isGateway,omitempty"`
		IPMasq       *bool           `json:"ipMasq,omitempty"`
		HairpinMode  bool            `json:"hairpinMode,omitempty"`
		IPAM         *ipam           `json:"ipam,omitempty"`
		Capabilities map[string]bool `json:"capabilities,omitempty"`
	}
	masq := false
	conf := struct {
		CNIVersion string   `json:"cniVersion"`
		Name       string   `json:"name"`
		Plugins    []plugin `json:"plugins"`
	}{
		CNIVersion: "1.0.0",
		Name:       "clusterctl",
		Plugins: []plugin{
			{Type: "bridge", Bridge: "cni0", IsGateway: true, IPMasq: &masq, HairpinMode: true,
				IPAM: &ipam{Type: "host-local",
					Ranges: [][]rng{{{Subnet: podCIDR.Masked().String(), Gateway: gw.String()}}},
					Routes: []route{{Dst: "0.0.0.0/0"}}}},
			{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}},
		},
	}
	out, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render cni conflist: %w", err)
	}
	return append(out, '\n'), nil
}

// sysctls are the kernel settings a node needs, in the order they are applied.
func sysctls() [][2]string {
	return [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.bridge.bridge-nf-call-iptables", "1"},
		{"net.bridge.bridge-nf-call-ip6tables", "1"},
	}
}

// RenderSysctl renders /etc/sysctl.d/90-clusterctl.conf.
func RenderSysctl() []byte {
	var b strings.Builder
	b.WriteString(ManagedMarker + "\n")
	for _, kv := range sysctls() {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
	}
	return []byte(b.String())
}

// RenderAgentletUnit renders the service definition for agentlet. The same
// systemd unit syntax serves systemd hosts and the lab's labinit adapter.
func RenderAgentletUnit(binary string) []byte {
	return []byte(ManagedMarker + `
[Unit]
Description=clusterctl node agent (agentlet)
Documentation=https://github.com/clusterctl/clusterctl
After=network-online.target containerd.service
Wants=containerd.service

[Service]
ExecStart=` + binary + ` daemon
Restart=always
RestartSec=2
# Only the agent is stopped: pods belong to containerd's shims and keep running.
KillMode=process

[Install]
WantedBy=multi-user.target
`)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
