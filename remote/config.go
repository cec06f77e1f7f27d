package remote

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sshconfig "github.com/kevinburke/ssh_config"
)

// Defaults applied by Dial to zero Config and Target fields.
const (
	DefaultUser           = "root"
	DefaultPort           = 22
	DefaultConnectTimeout = 10 * time.Second
)

// SudoMode says when commands are wrapped in sudo.
type SudoMode int

// Sudo modes.
const (
	SudoAuto   SudoMode = iota // sudo when the login user is not root
	SudoAlways                 // always sudo, even as root
	SudoNever                  // never sudo: commands run as the login user
)

func (m SudoMode) String() string {
	switch m {
	case SudoAuto:
		return "auto"
	case SudoAlways:
		return "always"
	case SudoNever:
		return "never"
	}
	return "SudoMode(" + strconv.Itoa(int(m)) + ")"
}

// ParseSudoMode parses "auto", "always" or "never" ("" is auto).
func ParseSudoMode(s string) (SudoMode, error) {
	switch s {
	case "", "auto":
		return SudoAuto, nil
	case "always":
		return SudoAlways, nil
	case "never":
		return SudoNever, nil
	}
	return SudoAuto, fmt.Errorf("parse sudo mode %q: want auto, always or never", s)
}

// Config is how to reach hosts. It is shared by all hosts of an inventory; the
// zero value of every field means "not set" (see the package doc for how set
// values, ssh_config and defaults combine).
type Config struct {
	User              string   // login user; default "root"
	Port              int      // default 22
	IdentityFiles     []string // private key files; encrypted keys must be loaded into ssh-agent instead
	UseAgent          bool     // use the agent at $SSH_AUTH_SOCK, if set
	KnownHostsFile    string   // required; host keys are always verified
	AcceptNewHostKeys bool     // trust on first use: append unknown keys to KnownHostsFile; a changed key is still an error
	ProxyJump         string   // "[user@]host[:port][,...]": jump hosts, each verified against known_hosts too
	SSHConfigFile     string   // ssh_config file to read; "" reads none
	Sudo              SudoMode // when to wrap commands in sudo

	// SudoPassword returns the sudo password for an inventory host. It is
	// called at most once per Client, and only when sudo asks for a password.
	// Nil means passwordless sudo is required.
	SudoPassword func(host string) (string, error)

	ConnectTimeout time.Duration       // TCP connect + SSH handshake, per hop; default 10s
	KeepAlive      time.Duration       // interval of keepalive@openssh.com requests; 0 = none
	Getenv         func(string) string // reads SSH_AUTH_SOCK and HOME; nil = os.Getenv
}

// Target is one host to dial.
type Target struct {
	Name    string // inventory name, used in errors
	Address string // IP, DNS name or ssh_config Host alias
	Port    int    // 0 = not set
	User    string // "" = not set
}

func (c Config) getenv(key string) string {
	if c.Getenv != nil {
		return c.Getenv(key)
	}
	return os.Getenv(key)
}

func (c Config) connectTimeout() time.Duration {
	if c.ConnectTimeout > 0 {
		return c.ConnectTimeout
	}
	return DefaultConnectTimeout
}

// hop is one resolved SSH endpoint: a jump host or the target.
type hop struct {
	name            string   // as written in the inventory or ProxyJump entry
	host            string   // after ssh_config HostName
	port            int      //
	user            string   //
	identityFiles   []string // from ssh_config, expanded; may not exist
	knownHostsFiles []string // from ssh_config UserKnownHostsFile, expanded
	proxyJump       string   // from ssh_config, "" when unset
	proxyCommand    string   // from ssh_config, "" when unset
}

func (h hop) addr() string { return net.JoinHostPort(h.host, strconv.Itoa(h.port)) }

// sshConfig is a parsed ssh_config file; a nil *sshConfig answers nothing.
type sshConfig struct {
	file string
	cfg  *sshconfig.Config
}

// loadSSHConfig reads path; "" yields a nil config.
func loadSSHConfig(path string) (*sshConfig, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ssh config: %w", err)
	}
	cfg, err := sshconfig.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse ssh config %s: %w", path, err)
	}
	return &sshConfig{file: path, cfg: cfg}, nil
}

func (s *sshConfig) get(alias, key string) (string, error) {
	if s == nil {
		return "", nil
	}
	v, err := s.cfg.Get(alias, key)
	if err != nil {
		return "", fmt.Errorf("read %s for %s from %s: %w", key, alias, s.file, err)
	}
	return strings.TrimSpace(v), nil
}

func (s *sshConfig) getAll(alias, key string) ([]string, error) {
	if s == nil {
		return nil, nil
	}
	v, err := s.cfg.GetAll(alias, key)
	if err != nil {
		return nil, fmt.Errorf("read %s for %s from %s: %w", key, alias, s.file, err)
	}
	return v, nil
}

// hopSpec is what the caller says explicitly about a hop.
type hopSpec struct {
	name string
	port int    // 0 = not set
	user string // "" = not set
}

// resolveHop applies ssh_config and defaults to an explicit spec:
// spec > cfg fallbacks (explicitUser/explicitPort, for the target only) >
// ssh_config > fallbackUser / DefaultPort.
func resolveHop(sc *sshConfig, spec hopSpec, explicitUser string, explicitPort int, fallbackUser, home string) (hop, error) {
	h := hop{name: spec.name}
	alias := spec.name

	hostName, err := sc.get(alias, "HostName")
	if err != nil {
		return hop{}, err
	}
	if hostName == "" {
		h.host = alias
	} else {
		h.host = strings.NewReplacer("%h", alias, "%%", "%").Replace(hostName)
	}
	// A bracketed IPv6 literal is accepted for convenience.
	h.host = strings.TrimSuffix(strings.TrimPrefix(h.host, "["), "]")

	cfgUser, err := sc.get(alias, "User")
	if err != nil {
		return hop{}, err
	}
	h.user = firstNonEmpty(spec.user, explicitUser, cfgUser, fallbackUser, DefaultUser)

	h.port = firstNonZero(spec.port, explicitPort)
	if h.port == 0 {
		p, err := sc.get(alias, "Port")
		if err != nil {
			return hop{}, err
		}
		if p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return hop{}, fmt.Errorf("read Port for %s from %s: invalid port %q", alias, sc.file, p)
			}
			h.port = n
		}
	}
	if h.port == 0 {
		h.port = DefaultPort
	}
	if h.port < 1 || h.port > 65535 {
		return hop{}, fmt.Errorf("resolve %s: invalid port %d", alias, h.port)
	}

	ids, err := sc.getAll(alias, "IdentityFile")
	if err != nil {
		return hop{}, err
	}
	for _, id := range ids {
		if strings.EqualFold(id, "none") {
			continue
		}
		h.identityFiles = append(h.identityFiles, expandPath(unquote(id), home, alias, h.host, h.user))
	}

	khf, err := sc.get(alias, "UserKnownHostsFile")
	if err != nil {
		return hop{}, err
	}
	for _, f := range strings.Fields(khf) {
		if strings.EqualFold(f, "none") {
			continue
		}
		h.knownHostsFiles = append(h.knownHostsFiles, expandPath(unquote(f), home, alias, h.host, h.user))
	}

	if h.proxyJump, err = sc.get(alias, "ProxyJump"); err != nil {
		return hop{}, err
	}
	if h.proxyCommand, err = sc.get(alias, "ProxyCommand"); err != nil {
		return hop{}, err
	}
	if strings.EqualFold(h.proxyCommand, "none") {
		h.proxyCommand = ""
	}
	return h, nil
}

// expandHome expands a leading ~ to home.
func expandHome(p, home string) string {
	if home != "" && (p == "~" || strings.HasPrefix(p, "~/")) {
		return filepath.Join(home, p[1:])
	}
	return p
}

// expandPath expands a leading ~ and the ssh_config tokens %d (home), %h
// (host name), %n (name as given), %r (remote user) and %%.
func expandPath(p, home, name, host, user string) string {
	p = expandHome(p, home)
	if !strings.Contains(p, "%") {
		return p
	}
	return strings.NewReplacer("%d", home, "%h", host, "%n", name, "%r", user, "%%", "%").Replace(p)
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func firstNonZero(ns ...int) int {
	for _, n := range ns {
		if n != 0 {
			return n
		}
	}
	return 0
}

// route resolves the target and its jump hosts, in dialing order (jumps first,
// target last).
func route(sc *sshConfig, t Target, cfg Config) ([]hop, error) {
	home := cfg.getenv("HOME")
	if t.Address == "" {
		return nil, fmt.Errorf("resolve %s: empty address", t.Name)
	}
	target, err := resolveHop(sc, hopSpec{name: t.Address, port: t.Port, user: t.User}, cfg.User, cfg.Port, "", home)
	if err != nil {
		return nil, err
	}
	jumpSpec := cfg.ProxyJump
	if jumpSpec == "" {
		jumpSpec = target.proxyJump
		if jumpSpec == "" && target.proxyCommand != "" {
			return nil, fmt.Errorf("resolve %s: ssh config %s sets ProxyCommand, which is not supported: use ProxyJump", t.Address, sc.file)
		}
	}
	jumps, err := ParseProxyJump(jumpSpec)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", t.Address, err)
	}
	hops := make([]hop, 0, len(jumps)+1)
	for _, j := range jumps {
		h, err := resolveHop(sc, hopSpec{name: j.Host, port: j.Port, user: j.User}, "", 0, cfg.User, home)
		if err != nil {
			return nil, err
		}
		hops = append(hops, h)
	}
	return append(hops, target), nil
}
