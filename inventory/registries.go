package inventory

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Registry is a container registry the hosts pull from (cluster.registries).
// `clusterctl up` writes containerd's hosts.toml for it and for every host it
// mirrors; its credentials never reach containerd's configuration (agentlet
// passes them with each pull).
type Registry struct {
	// Host is host[:port], as it appears in image references.
	Host string `json:"host"`
	// Insecure registries are spoken to over plain HTTP (the TLS certificate
	// question does not arise).
	Insecure bool `json:"insecure,omitempty"`
	// Mirrors are the registry hosts (docker.io, registry.k8s.io, ...) this
	// registry serves as a pull-through mirror for; they are tried before
	// the mirrored host itself.
	Mirrors []string `json:"mirrors,omitempty"`
	// Username, with exactly one of Password, PasswordEnv and PasswordFile,
	// authenticates pulls.
	Username string `json:"username,omitempty"`
	// Password inline in the inventory works but is discouraged (inventories
	// end up in git): Parse warns about it. It is never printed.
	Password string `json:"-"`
	// PasswordEnv names an environment variable of the workstation.
	PasswordEnv string `json:"passwordEnv,omitempty"`
	// PasswordFile is a file on the workstation (relative to the inventory,
	// "~" expanded); a trailing newline is dropped.
	PasswordFile string `json:"passwordFile,omitempty"`
}

// HasAuth reports whether the registry has credentials configured.
func (r Registry) HasAuth() bool { return r.Username != "" }

// registries decodes cluster.registries and checks them against each
// other: hosts are unique, and no registry mirrors another one's host
// (both would own the same hosts.toml).
func (p *parser) registries(v value) []Registry {
	var regs []Registry
	var mirrorLines [][]int
	lines := map[string]int{} // normalized host → line of its host field
	p.sequence(v, func(i int, v value) {
		r, ml := p.registry(v)
		regs = append(regs, r)
		mirrorLines = append(mirrorLines, ml)
		if r.Host == "" {
			return
		}
		key := strings.ToLower(r.Host)
		hl := p.line(v.line, v.path+".host")
		if first, dup := lines[key]; dup {
			p.addf(hl, v.path+".host", "duplicate registry host %q (first at line %d)", r.Host, first)
			return
		}
		lines[key] = hl
	})
	for i, r := range regs {
		for j, m := range r.Mirrors {
			path := fmt.Sprintf("%s[%d].mirrors[%d]", v.path, i, j)
			if first, ok := lines[strings.ToLower(m)]; ok && !strings.EqualFold(m, r.Host) {
				p.addf(mirrorLines[i][j], path, "%q is itself a registry here (line %d): a registry cannot also be mirrored", m, first)
			}
		}
	}
	return regs
}

// registry decodes one registry; it also returns the line of each mirror.
func (p *parser) registry(v value) (Registry, []int) {
	var r Registry
	var mirrorLines []int
	secretLines := map[string]int{} // password source field → line
	p.mapping(v, []field{
		{name: "host", required: true, decode: func(v value) {
			if s, ok := p.str(v); ok && p.check(v, validateRegistryHost(s)) {
				r.Host = s
			}
		}},
		{name: "insecure", decode: func(v value) { r.Insecure, _ = p.boolean(v) }},
		{name: "mirrors", decode: func(v value) {
			seen := map[string]int{}
			p.sequence(v, func(_ int, v value) {
				s, ok := p.str(v)
				if !ok || !p.check(v, validateRegistryHost(s)) {
					return
				}
				if first, dup := seen[strings.ToLower(s)]; dup {
					p.addf(v.line, v.path, "duplicate mirror %q (first at line %d)", s, first)
					return
				}
				seen[strings.ToLower(s)] = v.line
				r.Mirrors = append(r.Mirrors, s)
				mirrorLines = append(mirrorLines, v.line)
			})
		}},
		{name: "username", decode: func(v value) {
			if s, ok := p.str(v); ok && p.check(v, validateRegistryUser(s)) {
				r.Username = s
			}
		}},
		{name: "password", decode: func(v value) {
			if s, ok := p.str(v); ok {
				if s == "" {
					p.addf(v.line, v.path, "must not be empty")
					return
				}
				r.Password = s
				secretLines["password"] = v.line
				p.warnf(v.line, v.path, "password written in the inventory: prefer passwordEnv or passwordFile (inventories end up in git)")
			}
		}},
		{name: "passwordEnv", decode: func(v value) {
			if s, ok := p.str(v); ok && p.check(v, validateEnvName(s)) {
				r.PasswordEnv = s
				secretLines["passwordEnv"] = v.line
			}
		}},
		{name: "passwordFile", decode: func(v value) {
			if s := p.filePath(v); s != "" {
				r.PasswordFile = s
				secretLines["passwordFile"] = v.line
			}
		}},
	})
	if r.Host != "" {
		for i, m := range r.Mirrors {
			if strings.EqualFold(m, r.Host) {
				p.addf(mirrorLines[i], fmt.Sprintf("%s.mirrors[%d]", v.path, i), "%q is the registry's own host: a registry cannot mirror itself", m)
			}
		}
	}
	// Credentials: a username and exactly one password source, or neither.
	var sources []string
	for _, f := range []string{"password", "passwordEnv", "passwordFile"} {
		if _, ok := secretLines[f]; ok {
			sources = append(sources, f)
		}
	}
	_, userSet := p.present[v.path+".username"]
	switch {
	case p.bad[v.path+".username"]:
	case len(sources) > 1:
		p.addf(secretLines[sources[1]], v.path+"."+sources[1], "set only one of password, passwordEnv and passwordFile (%s is set too)", sources[0])
	case len(sources) == 1 && !userSet:
		p.addf(secretLines[sources[0]], v.path+"."+sources[0], "needs a username")
	case len(sources) == 0 && userSet && r.Username != "":
		p.addf(p.line(v.line, v.path+".username"), v.path+".username", "needs a password: set passwordEnv or passwordFile")
	}
	return r, mirrorLines
}

// validateRegistryHost checks host[:port] as it appears in image
// references: a DNS name or IP address (IPv6 in brackets), no scheme, no
// path.
func validateRegistryHost(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if i := strings.Index(s, "://"); i >= 0 {
		return fmt.Errorf("invalid registry host %q: write host[:port] without a scheme (insecure: true selects plain HTTP)", s)
	}
	if strings.ContainsAny(s, "/@ \t") {
		return fmt.Errorf("invalid registry host %q: want host[:port], without a path or user", s)
	}
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return fmt.Errorf("invalid registry host %q: missing ']' after IPv6 address", s)
		}
		host, port = s[1:end], s[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return fmt.Errorf("invalid registry host %q: want [IPv6]:port", s)
		}
		port = strings.TrimPrefix(port, ":")
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return fmt.Errorf("invalid registry host %q: %q is not an IPv6 address", s, host)
		}
	case strings.Count(s, ":") > 1:
		return fmt.Errorf("invalid registry host %q: write IPv6 addresses in brackets, like [2001:db8::1]:5000", s)
	case strings.Contains(s, ":"):
		host, port, _ = strings.Cut(s, ":")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid registry host %q: port %q is not between 1 and 65535", s, port)
		}
	}
	if strings.HasPrefix(s, "[") {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !isDNSSubdomain(strings.ToLower(host)) {
		return fmt.Errorf("invalid registry host %q: %q is neither an IP address nor a DNS name", s, host)
	}
	return nil
}

func validateRegistryUser(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case strings.ContainsAny(s, ":\n\r"):
		return fmt.Errorf("invalid username %q: must not contain ':' or line breaks", s)
	}
	return nil
}

func validateEnvName(s string) error {
	ok := s != "" && !(s[0] >= '0' && s[0] <= '9')
	for i := 0; ok && i < len(s); i++ {
		ok = isAlnum(s[i], true) || s[i] == '_'
	}
	if !ok {
		return fmt.Errorf("invalid environment variable name %q: want letters, digits and '_', not starting with a digit", s)
	}
	return nil
}

// registriesNode renders cluster.registries for an inventory built in code.
func registriesNode(regs []Registry) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, r := range regs {
		n := mapNode("host", strNode(r.Host))
		addIf(n, "insecure", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"}, r.Insecure)
		if len(r.Mirrors) > 0 {
			m := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
			for _, h := range r.Mirrors {
				m.Content = append(m.Content, strNode(h))
			}
			add(n, "mirrors", m)
		}
		addIf(n, "username", strNode(r.Username), r.Username != "")
		addIf(n, "password", strNode(r.Password), r.Password != "")
		addIf(n, "passwordEnv", strNode(r.PasswordEnv), r.PasswordEnv != "")
		addIf(n, "passwordFile", strNode(r.PasswordFile), r.PasswordFile != "")
		seq.Content = append(seq.Content, n)
	}
	return seq
}
