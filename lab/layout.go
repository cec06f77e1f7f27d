package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Defaults and fixed facts of the lab.
const (
	// DefaultName is the lab name used when none is given.
	DefaultName = "lab"
	// DefaultStateRoot holds one state directory per lab.
	DefaultStateRoot = "/var/tmp/clusterctl-lab"
	// DefaultInventory is where `lab up` writes the inventory unless told otherwise.
	DefaultInventory = "cluster.yaml"
	// ServiceCIDR is routed on-link in every host so that kube-proxy-style
	// DNAT in the OUTPUT chain has a route to match.
	ServiceCIDR = "10.96.0.0/12"
	// HostPrefix is the first label of every host name: hosts are h1, h2, ...
	HostPrefix = "h"

	namePrefix   = "ccl-"
	bridgeName   = "br0"
	uplinkName   = "up0"
	hostIfName   = "eth0"
	hostOffset   = 10 // host hI gets subnet address .10+I
	maxNameLen   = 32
	servicePath  = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	workstation  = "workstation"
	stateVersion = 1

	// RegistryPort is the lab registry's TCP port (plain HTTP).
	RegistryPort   = 5000
	registryOffset = 2 // the registry gets subnet address .2
	registryPort   = "preg"
	// RegistryBinary is Debian's docker-registry (the distribution v2 server).
	RegistryBinary = "/usr/bin/docker-registry"
)

// DefaultSubnet is the lab subnet used when none is given.
func DefaultSubnet() netip.Prefix { return netip.MustParsePrefix("10.250.0.0/24") }

// DefaultStateDir is the state directory of the lab called name.
func DefaultStateDir(name string) string { return filepath.Join(DefaultStateRoot, name) }

// Options selects a lab and says where it talks to.
type Options struct {
	// Name identifies the lab; it is part of every namespace, link and cgroup
	// name. Default DefaultName.
	Name string
	// StateDir holds the lab's state. Default DefaultStateDir(Name).
	StateDir string
	// Subnet is the lab's L2 network. Zero: the recorded one, or DefaultSubnet.
	Subnet netip.Prefix
	// Inventory is the inventory file `lab up` writes. Empty: the recorded
	// one, or DefaultInventory in the current directory.
	Inventory string
	// Exe is the clusterctl binary run as each host's PID 1 (`lab __init`).
	// Default os.Executable().
	Exe string
	// Registry says whether `lab up` gives the lab a registry; the default
	// (RegistryAuto) does when docker-registry is installed.
	Registry RegistryMode
	// In, Out and Err are the streams: progress goes to Out, Exec uses all
	// three. Nil means /dev/null.
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

var labNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// config is Options resolved and validated.
type config struct {
	name     string
	stateDir string
	subnet   netip.Prefix // may be zero: take the recorded one
	inv      string       // may be empty: take the recorded one
	exe      string
	registry RegistryMode
	in       io.Reader
	out      io.Writer
	errw     io.Writer
	n        names
	l        layout
}

func resolve(opts Options) (*config, error) {
	c := &config{name: opts.Name, stateDir: opts.StateDir, subnet: opts.Subnet, inv: opts.Inventory,
		exe: opts.Exe, registry: opts.Registry, in: opts.In, out: opts.Out, errw: opts.Err}
	if c.name == "" {
		c.name = DefaultName
	}
	if err := validateName(c.name); err != nil {
		return nil, err
	}
	if c.stateDir == "" {
		c.stateDir = DefaultStateDir(c.name)
	}
	sd, err := validateStateDir(c.stateDir)
	if err != nil {
		return nil, err
	}
	c.stateDir = sd
	switch c.registry {
	case RegistryAuto, RegistryOn, RegistryOff:
	default:
		return nil, fmt.Errorf("invalid registry mode %q: want %q, %q or %q", c.registry, RegistryAuto, RegistryOn, RegistryOff)
	}
	if c.subnet.IsValid() {
		if err := validateSubnet(c.subnet); err != nil {
			return nil, err
		}
		c.subnet = c.subnet.Masked()
	}
	if c.inv != "" {
		abs, err := filepath.Abs(c.inv)
		if err != nil {
			return nil, fmt.Errorf("resolve inventory path: %w", err)
		}
		c.inv = abs
	}
	if c.out == nil {
		c.out = io.Discard
	}
	if c.errw == nil {
		c.errw = io.Discard
	}
	c.n = names{lab: c.name}
	c.l = layout{dir: c.stateDir}
	return c, nil
}

func (c *config) executable() (string, error) {
	if c.exe != "" {
		return filepath.Abs(c.exe)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find clusterctl executable: %w", err)
	}
	return exe, nil
}

func validateName(name string) error {
	if len(name) > maxNameLen || !labNameRE.MatchString(name) {
		return fmt.Errorf("invalid lab name %q: want 1-%d lowercase letters, digits and inner dashes", name, maxNameLen)
	}
	return nil
}

// hiddenRoots are overlaid, bind-mounted or replaced inside every host: a
// state directory below one of them would be invisible or shadowed there.
func hiddenRoots() []string {
	return []string{"/etc", "/opt", "/var/lib", "/tmp", "/run", "/var/run", "/var/log", "/root",
		"/usr/local/bin", "/proc", "/sys", "/dev"}
}

func validateStateDir(dir string) (string, error) {
	if !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("resolve state dir: %w", err)
		}
		dir = abs
	}
	dir = filepath.Clean(dir)
	if strings.Count(dir, "/") < 2 {
		return "", fmt.Errorf("invalid state dir %s: must be at least two levels below /", dir)
	}
	for _, r := range hiddenRoots() {
		if dir == r || strings.HasPrefix(dir, r+"/") {
			return "", fmt.Errorf("invalid state dir %s: %s is overlaid or mounted inside lab hosts; use e.g. %s", dir, r, DefaultStateRoot)
		}
	}
	if strings.ContainsAny(dir, ",:\n\\") {
		return "", fmt.Errorf("invalid state dir %s: must not contain ',', ':', '\\' or newlines (overlayfs options)", dir)
	}
	return dir, nil
}

func validateSubnet(p netip.Prefix) error {
	if !p.Addr().Is4() {
		return fmt.Errorf("invalid subnet %s: want an IPv4 prefix", p)
	}
	if p.Bits() < 8 || p.Bits() > 27 {
		return fmt.Errorf("invalid subnet %s: want a prefix length between /8 and /27", p)
	}
	return nil
}

// maxHosts is how many hosts fit in p: .0 network, .1 workstation, .2 the
// registry, .3-.10 reserved, hosts from .11, broadcast last.
func maxHosts(p netip.Prefix) int {
	size := 1 << (32 - p.Bits())
	return min(size-hostOffset-2, 9999)
}

// addrAt is the address off places after p's network address.
func addrAt(p netip.Prefix, off int) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(off)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func workstationAddr(p netip.Prefix) netip.Addr { return addrAt(p, 1) }

func registryAddr(p netip.Prefix) netip.Addr { return addrAt(p, registryOffset) }

func hostAddr(p netip.Prefix, index int) netip.Addr { return addrAt(p, hostOffset+index) }

func hostName(index int) string { return HostPrefix + strconv.Itoa(index) }

// hostIndex parses "h3" into 3.
func hostIndex(h string) (int, error) {
	s, ok := strings.CutPrefix(h, HostPrefix)
	if !ok || s == "" || s[0] == '0' {
		return 0, fmt.Errorf("invalid host name %q: want %s1, %s2, ...", h, HostPrefix, HostPrefix)
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 1 {
		return 0, fmt.Errorf("invalid host name %q: want %s1, %s2, ...", h, HostPrefix, HostPrefix)
	}
	return i, nil
}

// names derives every kernel object name of a lab from its name. Netns and
// cgroup names are unambiguous across labs: ccl-NAME-sw and ccl-NAME-h<digits>.
type names struct{ lab string }

func (n names) switchNS() string          { return namePrefix + n.lab + "-sw" }
func (n names) hostNS(h string) string    { return namePrefix + n.lab + "-" + h }
func (n names) cgroup(h string) string    { return namePrefix + n.lab + "-" + h }
func (n names) nsPath(ns string) string   { return filepath.Join("/run/netns", ns) }
func (n names) partTable(h string) string { return "ccl_part_" + h }
func (n names) registryNS() string        { return namePrefix + n.lab + "-reg" }

// objectRE matches the netns and cgroup names of this lab's hosts.
func (n names) hostObjectRE() *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(namePrefix+n.lab+"-") + `(` + HostPrefix + `[1-9][0-9]*)$`)
}

// rootLink is the workstation's veth in the root netns (IFNAMSIZ: 15 chars).
func (n names) rootLink() string {
	if s := namePrefix + n.lab; len(s) <= 15 {
		return s
	}
	sum := sha256.Sum256([]byte(n.lab))
	return "cclh" + hex.EncodeToString(sum[:])[:11]
}

func portName(index int) string { return "p" + strconv.Itoa(index) }

// layout is the state directory's structure.
type layout struct{ dir string }

func (l layout) stateFile() string        { return filepath.Join(l.dir, "lab.json") }
func (l layout) key() string              { return filepath.Join(l.dir, "id_ed25519") }
func (l layout) knownHosts() string       { return filepath.Join(l.dir, "known_hosts") }
func (l layout) hostsDir() string         { return filepath.Join(l.dir, "hosts") }
func (l layout) host(h string) string     { return filepath.Join(l.dir, "hosts", h) }
func (l layout) pid1(h string) string     { return filepath.Join(l.host(h), "pid1.json") }
func (l layout) initLog(h string) string  { return filepath.Join(l.host(h), "init.log") }
func (l layout) hostKey(h string) string  { return filepath.Join(l.host(h), "ssh_host_ed25519_key.pub") }
func (l layout) cgkeep(h string) string   { return filepath.Join(l.host(h), "cgkeep") }
func (l layout) upperEtc(h string) string { return filepath.Join(l.host(h), "ovl", "etc", "upper") }

// The registry's directory: its "disk", seen as registryMount inside its
// mount namespace.
func (l layout) registry() string        { return filepath.Join(l.dir, "registry") }
func (l layout) registryPid1() string    { return filepath.Join(l.registry(), "pid1.json") }
func (l layout) registryInitLog() string { return filepath.Join(l.registry(), "init.log") }

// entries are the names the lab creates directly in its state directory;
// down removes exactly these, then the directory if it is empty.
func (l layout) entries() []string {
	return []string{"lab.json", "id_ed25519", "id_ed25519.pub", "known_hosts", "hosts", "registry"}
}

// hostMount is one piece of a host's file system view backed by its disk.
type hostMount struct {
	target  string      // path inside the host
	dir     string      // below the host's state dir
	mode    fs.FileMode // of dir (binds only)
	overlay bool        // overlayfs with lower = target, upper/work below dir
}

// hostMounts are mounted in this order by HostInit; /tmp and /var/tmp come
// last because they hide the paths of the lab's own files.
func hostMounts() []hostMount {
	return []hostMount{
		{target: "/etc", dir: "ovl/etc", overlay: true},
		{target: "/opt", dir: "ovl/opt", overlay: true},
		{target: "/var/lib", dir: "ovl/varlib", overlay: true},
		{target: "/var/lib/containerd", dir: "var-lib-containerd", mode: 0o711},
		{target: "/usr/local/bin", dir: "usr-local-bin", mode: 0o755},
		{target: "/var/log", dir: "var-log", mode: 0o755},
		{target: "/root", dir: "root", mode: 0o700},
		{target: "/tmp", dir: "tmp", mode: fs.ModeSticky | 0o777},
		{target: "/var/tmp", dir: "var-tmp", mode: fs.ModeSticky | 0o777},
	}
}

// ErrNoLab is returned (wrapped) by commands that need an existing lab.
var ErrNoLab = errors.New("no such lab")
