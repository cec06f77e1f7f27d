package inventory

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// validate runs the checks that span several fields, after defaults are
// applied. Fields already rejected (p.bad) are left out so that one mistake
// is reported once.
func (p *parser) validate(inv *Inventory) {
	c := &inv.Cluster
	clusterLine := p.line(0, "cluster")
	podOK := func() bool { return !p.bad["cluster.podCIDR"] && c.PodCIDR.IsValid() }
	maskOK := func() bool { return !p.bad["cluster.nodeCIDRMaskSize"] && c.NodeCIDRMaskSize > 0 }
	svcOK := func() bool { return !p.bad["cluster.serviceCIDR"] && c.ServiceCIDR.IsValid() }
	_, maskSet := p.present["cluster.nodeCIDRMaskSize"]

	// Node subnet size against the cluster pod CIDR.
	switch {
	case !maskOK():
	case c.NodeCIDRMaskSize > MaxNodeCIDRMaskSize:
		p.addf(p.line(clusterLine, "cluster.nodeCIDRMaskSize"), "cluster.nodeCIDRMaskSize",
			"must be at most %d (got %d)", MaxNodeCIDRMaskSize, c.NodeCIDRMaskSize)
	case !podOK() || c.NodeCIDRMaskSize > c.PodCIDR.Bits():
	case maskSet:
		p.addf(p.line(clusterLine, "cluster.nodeCIDRMaskSize"), "cluster.nodeCIDRMaskSize",
			"must be greater than the /%d of cluster.podCIDR %s (got %d)", c.PodCIDR.Bits(), c.PodCIDR, c.NodeCIDRMaskSize)
	default:
		p.addf(p.line(clusterLine, "cluster.podCIDR"), "cluster.podCIDR",
			"%s leaves no room for node subnets of the default nodeCIDRMaskSize %d", c.PodCIDR, c.NodeCIDRMaskSize)
	}

	// Pod and service networks must be disjoint.
	if podOK() && svcOK() && c.PodCIDR.Overlaps(c.ServiceCIDR) {
		if _, set := p.present["cluster.serviceCIDR"]; set {
			p.addf(p.line(clusterLine, "cluster.serviceCIDR"), "cluster.serviceCIDR",
				"%s overlaps cluster.podCIDR %s", c.ServiceCIDR, c.PodCIDR)
		} else {
			p.addf(p.line(clusterLine, "cluster.podCIDR"), "cluster.podCIDR",
				"%s overlaps the default cluster.serviceCIDR %s", c.PodCIDR, c.ServiceCIDR)
		}
	}

	names := p.validateHosts(inv, podOK(), svcOK())

	// Every host needs a node subnet.
	if podOK() && maskOK() && c.NodeCIDRMaskSize > c.PodCIDR.Bits() && !p.bad["hosts"] {
		room := 1 << (c.NodeCIDRMaskSize - c.PodCIDR.Bits())
		if len(inv.Hosts) > room {
			p.addf(p.line(0, "hosts"), "hosts", "%d hosts do not fit in cluster.podCIDR %s: it has room for %d node subnets of /%d",
				len(inv.Hosts), c.PodCIDR, room, c.NodeCIDRMaskSize)
		}
	}

	p.validateState(inv, names, podOK() && maskOK() && c.NodeCIDRMaskSize > c.PodCIDR.Bits())
}

// validateHosts checks host names and addresses for duplicates and returns
// the line of every host name.
func (p *parser) validateHosts(inv *Inventory, podOK, svcOK bool) map[string]int {
	c := &inv.Cluster
	if _, set := p.present["hosts"]; set && len(inv.Hosts) == 0 && !p.bad["hosts"] {
		p.addf(p.line(0, "hosts"), "hosts", "at least one host is required")
	}
	names := make(map[string]int)
	type firstAddr struct {
		line int
		host string
	}
	addrs := make(map[string]firstAddr)
	for i, h := range inv.Hosts {
		base := fmt.Sprintf("hosts[%d]", i)
		if h.Name != "" {
			l := p.line(0, base+".name")
			if first, dup := names[h.Name]; dup {
				p.addf(l, base+".name", "duplicate host name %q (first at line %d)", h.Name, first)
			} else {
				names[h.Name] = l
			}
		}
		if h.Address == "" || p.bad[base+".port"] || p.bad["ssh.port"] {
			continue
		}
		l := p.line(0, base+".address")
		port := h.Port
		if port == 0 {
			port = inv.SSH.Port
		}
		id := normalizeAddress(h.Address) + " port " + strconv.Itoa(port)
		if first, dup := addrs[id]; dup {
			p.addf(l, base+".address", "duplicate address %s (first at line %d, host %q)", id, first.line, first.host)
		} else {
			addrs[id] = firstAddr{l, h.Name}
		}
		if a, err := netip.ParseAddr(h.Address); err == nil {
			a = a.WithZone("").Unmap()
			if podOK && c.PodCIDR.Contains(a) {
				p.addf(l, base+".address", "%s is inside cluster.podCIDR %s", a, c.PodCIDR)
			}
			if svcOK && c.ServiceCIDR.Contains(a) {
				p.addf(l, base+".address", "%s is inside cluster.serviceCIDR %s", a, c.ServiceCIDR)
			}
		}
	}
	return names
}

// validateState checks recorded pod CIDRs against the cluster and each other,
// and warns about state kept for hosts that are no longer listed.
func (p *parser) validateState(inv *Inventory, names map[string]int, clusterOK bool) {
	c := &inv.Cluster
	// Walk in file order so that "first at line" names the earlier entry.
	hosts := slices.SortedFunc(maps.Keys(inv.State.Hosts), func(a, b string) int {
		return cmp.Compare(p.line(0, keyPath("state.hosts", a)), p.line(0, keyPath("state.hosts", b)))
	})
	type owner struct {
		host string
		line int
	}
	owners := make(map[netip.Prefix]owner)
	for _, name := range hosts {
		hp := keyPath("state.hosts", name)
		if _, ok := names[name]; !ok {
			p.warnf(p.line(0, hp), hp, "state for a host that is not in hosts: kept, with its pod CIDR reserved, until clusterctl removes it")
		}
		path := hp + ".podCIDR"
		pc := inv.State.Hosts[name].PodCIDR
		if !pc.IsValid() || p.bad[path] || !clusterOK {
			continue
		}
		l := p.line(0, path)
		switch first, dup := owners[pc]; {
		case !c.PodCIDR.Contains(pc.Addr()) || pc.Bits() < c.PodCIDR.Bits():
			p.addf(l, path, "%s is not inside cluster.podCIDR %s", pc, c.PodCIDR)
		case pc.Bits() != c.NodeCIDRMaskSize:
			p.addf(l, path, "%s is a /%d, want a /%d (cluster.nodeCIDRMaskSize)", pc, pc.Bits(), c.NodeCIDRMaskSize)
		case dup:
			p.addf(l, path, "duplicate pod CIDR %s (first at line %d, host %q)", pc, first.line, first.host)
		default:
			owners[pc] = owner{name, l}
		}
	}
}

// normalizeAddress makes equal addresses compare equal.
func normalizeAddress(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String()
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

// parseCIDR parses an IPv4 network prefix in canonical form.
func parseCIDR(s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
	case !pfx.Addr().Is4():
		return netip.Prefix{}, fmt.Errorf("IPv6 CIDR %q is not supported yet", s)
	case pfx != pfx.Masked():
		return netip.Prefix{}, fmt.Errorf("%q is not a network address (did you mean %q?)", s, pfx.Masked().String())
	}
	return pfx, nil
}

func isAlnum(b byte, upper bool) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || upper && b >= 'A' && b <= 'Z'
}

// isDNSLabel reports whether s is an RFC 1123 label: lowercase letters,
// digits and '-', starting and ending with a letter or digit.
func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || !isAlnum(s[0], false) || !isAlnum(s[len(s)-1], false) {
		return false
	}
	for i := range len(s) {
		if !isAlnum(s[i], false) && s[i] != '-' {
			return false
		}
	}
	return true
}

func validateDNSLabel(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > 63:
		return fmt.Errorf("%q is too long: a DNS-1123 label has at most 63 characters (got %d)", s, len(s))
	case !isDNSLabel(s):
		return fmt.Errorf("invalid name %q: a DNS-1123 label consists of lowercase letters, digits and '-', and starts and ends with a letter or digit", s)
	}
	return nil
}

func isDNSSubdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !isDNSLabel(l) {
			return false
		}
	}
	return true
}

func validateDNSSubdomain(s string) error {
	if !isDNSSubdomain(s) {
		return fmt.Errorf("invalid domain %q: want DNS-1123 labels separated by dots, at most 253 characters", s)
	}
	return nil
}

// isLabelName reports whether s matches Kubernetes' name part of a qualified
// name and label values: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most
// 63 characters.
func isLabelName(s string) bool {
	if s == "" || len(s) > 63 || !isAlnum(s[0], true) || !isAlnum(s[len(s)-1], true) {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isAlnum(c, true) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// validateQualifiedName checks a Kubernetes label or taint key: an optional
// DNS subdomain prefix and '/', then a name.
func validateQualifiedName(what, s string) error {
	prefix, name, hasPrefix := strings.Cut(s, "/")
	if !hasPrefix {
		name = prefix
	}
	switch {
	case s == "":
		return fmt.Errorf("%s must not be empty", what)
	case hasPrefix && !isDNSSubdomain(prefix):
		return fmt.Errorf("invalid %s %q: the prefix before '/' must be a DNS subdomain of at most 253 characters", what, s)
	case len(name) > 63:
		return fmt.Errorf("invalid %s %q: the name part must be at most 63 characters (got %d)", what, s, len(name))
	case !isLabelName(name):
		return fmt.Errorf("invalid %s %q: the name part must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit", what, s)
	}
	return nil
}

func validateLabelValue(s string) error {
	switch {
	case s == "":
		return nil
	case len(s) > 63:
		return fmt.Errorf("invalid value %q: at most 63 characters (got %d)", s, len(s))
	case !isLabelName(s):
		return fmt.Errorf("invalid value %q: must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit", s)
	}
	return nil
}

func validateUser(s string) error {
	ok := s != "" && len(s) <= 32 && s[0] != '-' && s[0] != '.'
	for i := 0; ok && i < len(s); i++ {
		ok = isAlnum(s[i], true) || strings.IndexByte("_.-", s[i]) >= 0
	}
	if !ok {
		return fmt.Errorf("invalid user %q: want letters, digits, '_', '.' or '-', at most 32 characters", s)
	}
	return nil
}

// validateAddress checks a host address: an IP address, a DNS name or an
// ssh_config alias. The user and port have their own fields.
func validateAddress(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	switch {
	case s == "":
		return errors.New("must not be empty")
	case strings.HasPrefix(s, "-"):
		return fmt.Errorf("invalid address %q: must not start with '-'", s)
	case strings.Contains(s, "@"):
		return fmt.Errorf("invalid address %q: set the user in user:, not in the address", s)
	case strings.HasPrefix(s, "["):
		return fmt.Errorf("invalid address %q: write IPv6 addresses without brackets and the port in port:", s)
	case strings.Contains(s, ":"):
		return fmt.Errorf("invalid address %q: set the port in port:, not in the address", s)
	case len(s) > 253:
		return fmt.Errorf("invalid address %q: at most 253 characters", s)
	}
	for i := range len(s) {
		if c := s[i]; !isAlnum(c, true) && strings.IndexByte("._-", c) < 0 {
			return fmt.Errorf("invalid address %q: want an IP address, a DNS name or an ssh_config alias", s)
		}
	}
	return nil
}

// validateProxyJump checks a comma-separated list of [user@]host[:port].
func validateProxyJump(s string) error {
	if s == "" {
		return nil
	}
	for _, hop := range strings.Split(s, ",") {
		if err := validateJumpHop(hop); err != nil {
			return fmt.Errorf("invalid jump host %q: %w", hop, err)
		}
	}
	return nil
}

func validateJumpHop(hop string) error {
	if user, rest, ok := strings.Cut(hop, "@"); ok {
		if err := validateUser(user); err != nil {
			return errors.New("want [user@]host[:port] with a valid user")
		}
		hop = rest
	}
	host, port := hop, ""
	if strings.HasPrefix(hop, "[") {
		end := strings.Index(hop, "]")
		if end < 0 {
			return errors.New("missing ']' after IPv6 address")
		}
		host, port = hop[1:end], strings.TrimPrefix(hop[end+1:], ":")
		if _, err := netip.ParseAddr(host); err != nil || (port == "" && end+1 != len(hop)) {
			return errors.New("want [user@]host[:port]")
		}
	} else if strings.Count(hop, ":") == 1 {
		host, port, _ = strings.Cut(hop, ":")
	}
	if host == "" || validateAddress(host) != nil {
		return errors.New("want [user@]host[:port]")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid port %q", port)
		}
	}
	return nil
}

func validatePath(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case strings.ContainsRune(s, 0):
		return errors.New("must not contain NUL")
	case strings.HasPrefix(s, "~") && s != "~" && !strings.HasPrefix(s, "~/"):
		return fmt.Errorf("unsupported path %q: only ~/ expands, not ~user/", s)
	}
	return nil
}

func validateSHA256(s string) error {
	ok := len(s) == 64
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f'
	}
	if !ok {
		return fmt.Errorf("invalid SHA-256 %q: want 64 lowercase hex digits", s)
	}
	return nil
}
