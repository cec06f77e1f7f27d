package inventory

import (
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The apiVersion and kind every inventory declares.
const (
	APIVersion = "clusterctl.dev/v1alpha1"
	Kind       = "Inventory"
)

// Defaults applied by Parse to fields the file leaves out.
const (
	DefaultPodCIDR          = "10.244.0.0/16"
	DefaultNodeCIDRMaskSize = 24
	DefaultServiceCIDR      = "10.96.0.0/12"
	DefaultDomain           = "cluster.local"
	DefaultSSHUser          = "root"
	DefaultSSHPort          = 22
	DefaultKnownHosts       = "~/.ssh/known_hosts"
	DefaultSSHConfig        = "~/.ssh/config"
	DefaultConnectTimeout   = 10 * time.Second
	// DefaultPodEvictionTimeout is how long a node may be unreachable or not
	// Ready before its pods are evicted and replaced elsewhere, as
	// Kubernetes' default tolerationSeconds for the node lifecycle taints.
	DefaultPodEvictionTimeout = 5 * time.Minute

	// SSHConfigNone as ssh.sshConfig disables reading an ssh_config file.
	SSHConfigNone = "none"
	// MaxNodeCIDRMaskSize is the longest node pod CIDR prefix: a /30 leaves
	// two usable addresses, the bridge and one pod.
	MaxNodeCIDRMaskSize = 30
)

// Inventory is a parsed, validated and defaulted inventory file.
//
// Everything but State belongs to the user: Save writes only State back,
// so changes made in code to the other fields of a loaded inventory are not
// persisted. An inventory built in code (see New) has no parsed document and
// is written whole.
type Inventory struct {
	// Path is the file the inventory was parsed from or is saved to. Relative
	// ssh paths resolve against its directory.
	Path string `json:"path"`
	// HomeDir expands "~" in ssh paths. Load sets it from the environment;
	// Parse, being pure, leaves it empty, and "~" paths then stay unexpanded.
	HomeDir string `json:"-"`

	APIVersion string  `json:"apiVersion"`
	Kind       string  `json:"kind"`
	Cluster    Cluster `json:"cluster"`
	SSH        SSH     `json:"ssh"`
	Hosts      []Host  `json:"hosts"`
	State      State   `json:"state"`

	// Warnings are things worth telling the user that do not make the file
	// invalid, such as state kept for a host no longer listed in hosts.
	Warnings []Problem `json:"warnings,omitempty"`

	doc *yaml.Node // the parsed document, so that Marshal keeps comments and order
	sum [32]byte   // sha256 of the bytes last read from or written to Path
	// onDisk is true when sum describes the file at Path, so that Save can
	// refuse to overwrite a file changed by someone else since.
	onDisk bool
}

// Cluster holds cluster-wide settings.
type Cluster struct {
	Name             string       `json:"name"`
	PodCIDR          netip.Prefix `json:"podCIDR"`
	NodeCIDRMaskSize int          `json:"nodeCIDRMaskSize"`
	ServiceCIDR      netip.Prefix `json:"serviceCIDR"`
	Domain           string       `json:"domain"`
	// Registries are the container registries hosts pull from, and what
	// they mirror (see Registry).
	Registries []Registry `json:"registries,omitempty"`
	// PodEvictionTimeout is how long a host may stay unreachable or not Ready
	// before the reconcile loop evicts its pods (those of Deployments,
	// ReplicaSets and Jobs are then replaced on other hosts; DaemonSet pods
	// stay). A pod's own tolerations for the node.kubernetes.io/unreachable
	// and not-ready taints take precedence.
	PodEvictionTimeout time.Duration `json:"podEvictionTimeout"`
}

// SudoMode says when remote commands run through sudo.
type SudoMode string

// Sudo modes.
const (
	SudoAuto   SudoMode = "auto"   // sudo when the ssh user is not root
	SudoAlways SudoMode = "always" // always sudo
	SudoNever  SudoMode = "never"  // never sudo
)

// SSH holds the settings used to reach every host. Paths are kept as
// written; HostSSH resolves them.
type SSH struct {
	User           string        `json:"user"`
	Port           int           `json:"port"`
	IdentityFile   string        `json:"identityFile,omitempty"`
	KnownHosts     string        `json:"knownHosts"`
	UseAgent       bool          `json:"useAgent"`
	ProxyJump      string        `json:"proxyJump,omitempty"` // [user@]host[:port][,more]
	Sudo           SudoMode      `json:"sudo"`
	ConnectTimeout time.Duration `json:"connectTimeout"`
	SSHConfig      string        `json:"sshConfig"` // SSHConfigNone disables it

	// userSet and portSet record whether the file set user and port, so that
	// an ssh_config file may supply them when it did not.
	userSet, portSet bool
}

// Host is one machine of the cluster.
type Host struct {
	Name    string            `json:"name"`
	Address string            `json:"address"`        // IP, DNS name or ssh_config alias
	Port    int               `json:"port,omitempty"` // 0: use SSH.Port
	User    string            `json:"user,omitempty"` // "": use SSH.User
	Labels  map[string]string `json:"labels,omitempty"`
	Taints  []Taint           `json:"taints,omitempty"`
}

// TaintEffect is what a taint does to pods that do not tolerate it.
type TaintEffect string

// Taint effects, as in Kubernetes.
const (
	TaintNoSchedule       TaintEffect = "NoSchedule"
	TaintPreferNoSchedule TaintEffect = "PreferNoSchedule"
	TaintNoExecute        TaintEffect = "NoExecute"
)

// Taint keeps pods that do not tolerate it off a host.
type Taint struct {
	Key    string      `json:"key"`
	Value  string      `json:"value,omitempty"`
	Effect TaintEffect `json:"effect"`
}

// State is what clusterctl records about the cluster. Users should not edit
// it.
type State struct {
	// Generation is bumped by every mutating run and fences node specs.
	Generation int64 `json:"generation"`
	// Hosts is keyed by host name. It may hold hosts that are no longer in
	// Inventory.Hosts until clusterctl removes them.
	Hosts map[string]HostState `json:"hosts,omitempty"`
	// Objects are the Kubernetes objects applied to the cluster.
	Objects []Object `json:"objects,omitempty"`
}

// HostState is what clusterctl records about one host.
type HostState struct {
	PodCIDR netip.Prefix `json:"podCIDR,omitzero"`
	// InternalIP is the host's cluster-facing IPv4 address (what peers
	// route pod traffic to, and where its cluster DNS listens): the
	// inventory address when it is an IP, else the host's first global
	// address, as `up` found it.
	InternalIP netip.Addr `json:"internalIP,omitzero"`
	JoinedAt   time.Time  `json:"joinedAt,omitzero"` // first successful `up`
	// Unschedulable is a cordoned host: no new pods are placed on it.
	Unschedulable  bool   `json:"unschedulable,omitempty"`
	AgentletSHA256 string `json:"agentletSHA256,omitempty"`
	// SpecSHA256 is the checksum of the content of the last NodeSpec the host
	// accepted (without generation, writer and time): a different desired
	// spec bumps the cluster generation.
	SpecSHA256 string `json:"specSHA256,omitempty"`
	// NotReadySince is when the reconcile loop first found the host
	// unreachable or not Ready since it was last Ready; zero while Ready.
	NotReadySince time.Time `json:"notReadySince,omitzero"`
}

// IsZero reports whether nothing is recorded.
func (s HostState) IsZero() bool {
	return !s.PodCIDR.IsValid() && !s.InternalIP.IsValid() && !s.Unschedulable && s.JoinedAt.IsZero() && s.AgentletSHA256 == "" && s.SpecSHA256 == "" && s.NotReadySince.IsZero()
}

func (s HostState) equal(o HostState) bool {
	return s.PodCIDR == o.PodCIDR && s.InternalIP == o.InternalIP && s.Unschedulable == o.Unschedulable && s.JoinedAt.Equal(o.JoinedAt) && s.AgentletSHA256 == o.AgentletSHA256 && s.SpecSHA256 == o.SpecSHA256 && s.NotReadySince.Equal(o.NotReadySince)
}

func (s State) clone() State {
	return State{Generation: s.Generation, Hosts: maps.Clone(s.Hosts)}
}

func (s State) equal(o State) bool {
	return s.Generation == o.Generation && maps.EqualFunc(s.Hosts, o.Hosts, HostState.equal)
}

// New returns an inventory for a cluster named name with every default
// applied and no hosts, to be filled in code and written with Save. Path is
// where Save writes it.
func New(path, name string) *Inventory {
	inv := &Inventory{Path: path, APIVersion: APIVersion, Kind: Kind, Cluster: Cluster{Name: name}}
	inv.applyDefaults(nil)
	return inv
}

// applyDefaults fills the fields that were not set. set reports whether the
// field at a path was present in the file; nil means nothing was.
func (inv *Inventory) applyDefaults(set func(path string) bool) {
	if set == nil {
		set = func(string) bool { return false }
	}
	c, s := &inv.Cluster, &inv.SSH
	if !set("cluster.podCIDR") {
		c.PodCIDR = netip.MustParsePrefix(DefaultPodCIDR)
	}
	if !set("cluster.nodeCIDRMaskSize") {
		c.NodeCIDRMaskSize = DefaultNodeCIDRMaskSize
	}
	if !set("cluster.serviceCIDR") {
		c.ServiceCIDR = netip.MustParsePrefix(DefaultServiceCIDR)
	}
	if !set("cluster.domain") {
		c.Domain = DefaultDomain
	}
	if !set("cluster.podEvictionTimeout") {
		c.PodEvictionTimeout = DefaultPodEvictionTimeout
	}
	s.userSet, s.portSet = set("ssh.user"), set("ssh.port")
	if !s.userSet {
		s.User = DefaultSSHUser
	}
	if !set("ssh.port") {
		s.Port = DefaultSSHPort
	}
	if !set("ssh.knownHosts") {
		s.KnownHosts = DefaultKnownHosts
	}
	if !set("ssh.useAgent") {
		s.UseAgent = true
	}
	if !set("ssh.sudo") {
		s.Sudo = SudoAuto
	}
	if !set("ssh.connectTimeout") {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	if !set("ssh.sshConfig") {
		s.SSHConfig = DefaultSSHConfig
	}
}

// Host returns the host called name.
func (inv *Inventory) Host(name string) (Host, bool) {
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// HostNames returns the names of the hosts, in file order.
func (inv *Inventory) HostNames() []string {
	names := make([]string, len(inv.Hosts))
	for i, h := range inv.Hosts {
		names[i] = h.Name
	}
	return names
}

// HostState returns what is recorded about the host called name (the zero
// HostState if nothing is).
func (inv *Inventory) HostState(name string) HostState {
	return inv.State.Hosts[name]
}

// SetHostState records s for the host called name. JoinedAt is stored in UTC
// to the second, as it is written to the file.
func (inv *Inventory) SetHostState(name string, s HostState) {
	if inv.State.Hosts == nil {
		inv.State.Hosts = make(map[string]HostState)
	}
	if !s.JoinedAt.IsZero() {
		s.JoinedAt = s.JoinedAt.UTC().Truncate(time.Second)
	}
	inv.State.Hosts[name] = s
}

// DeleteHostState forgets the host called name, releasing its pod CIDR.
func (inv *Inventory) DeleteHostState(name string) {
	delete(inv.State.Hosts, name)
}

// BumpGeneration increments the cluster generation and returns the new one.
func (inv *Inventory) BumpGeneration() int64 {
	inv.State.Generation++
	return inv.State.Generation
}

// PodCIDRs returns the recorded pod CIDR of every host in State that has one.
func (inv *Inventory) PodCIDRs() map[string]netip.Prefix {
	out := make(map[string]netip.Prefix, len(inv.State.Hosts))
	for _, name := range slices.Sorted(maps.Keys(inv.State.Hosts)) {
		if p := inv.State.Hosts[name].PodCIDR; p.IsValid() {
			out[name] = p
		}
	}
	return out
}

// HostSSH is the effective SSH configuration for one host: per-host
// overrides applied and paths resolved.
type HostSSH struct {
	Host    string // host name
	Address string
	User    string
	Port    int
	// IdentityFile, KnownHosts and SSHConfig are resolved: "~" expanded with
	// Inventory.HomeDir, relative paths joined to the inventory's directory.
	IdentityFile   string // "" when none is configured
	KnownHosts     string
	SSHConfig      string // "" when disabled with "none"
	UseAgent       bool
	ProxyJump      string
	Sudo           bool // run remote commands through sudo (with SudoAuto: User is not root)
	SudoMode       SudoMode
	ConnectTimeout time.Duration
	// UserSet and PortSet are false when neither the host entry nor the ssh
	// section set them: User and Port then hold the defaults, and an ssh_config
	// entry for the address should win over them.
	UserSet, PortSet bool
}

// HostSSH returns the effective SSH settings for h.
func (inv *Inventory) HostSSH(h Host) HostSSH {
	s := inv.SSH
	out := HostSSH{
		Host:           h.Name,
		Address:        h.Address,
		User:           s.User,
		Port:           s.Port,
		IdentityFile:   inv.ResolvePath(s.IdentityFile),
		KnownHosts:     inv.ResolvePath(s.KnownHosts),
		UseAgent:       s.UseAgent,
		ProxyJump:      s.ProxyJump,
		ConnectTimeout: s.ConnectTimeout,
		SudoMode:       s.Sudo,
		UserSet:        s.userSet || h.User != "",
		PortSet:        s.portSet || h.Port != 0,
	}
	if h.User != "" {
		out.User = h.User
	}
	if h.Port != 0 {
		out.Port = h.Port
	}
	if s.SSHConfig != SSHConfigNone {
		out.SSHConfig = inv.ResolvePath(s.SSHConfig)
	}
	switch s.Sudo {
	case SudoAlways:
		out.Sudo = true
	case SudoNever:
		out.Sudo = false
	default:
		out.Sudo = out.User != "root"
	}
	return out
}

// ResolvePath resolves a path written in the inventory: "~" and "~/..."
// expand to HomeDir (when it is known), relative paths are joined to the
// directory of Path. The empty path stays empty.
func (inv *Inventory) ResolvePath(p string) string {
	switch {
	case p == "":
		return ""
	case p == "~" || strings.HasPrefix(p, "~/"):
		if inv.HomeDir == "" {
			return p
		}
		return filepath.Join(inv.HomeDir, p[1:])
	case filepath.IsAbs(p):
		return filepath.Clean(p)
	default:
		return filepath.Join(filepath.Dir(inv.Path), p)
	}
}
