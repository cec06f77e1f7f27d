package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Parse parses, validates and defaults an inventory. filename is used only in
// problem locations and to resolve relative paths later; Parse does no I/O.
//
// When the inventory is invalid Parse returns a *ValidationError listing every
// problem found, each located as FILE:LINE: field.path: message.
func Parse(filename string, data []byte) (*Inventory, error) {
	p := &parser{file: filename, present: make(map[string]int), bad: make(map[string]bool)}
	doc := p.document(data)
	if doc == nil {
		return nil, p.result()
	}
	inv := &Inventory{Path: filename, doc: doc}
	p.inventory(doc.Content[0], inv)
	p.stateAliases(resolve(doc.Content[0]))
	inv.applyDefaults(func(path string) bool { _, ok := p.present[path]; return ok })
	p.validate(inv)
	if err := p.result(); err != nil {
		return nil, err
	}
	sortProblems(p.warnings)
	inv.Warnings = p.warnings
	return inv, nil
}

// parser collects problems while walking the YAML node tree.
type parser struct {
	file     string
	problems []Problem
	warnings []Problem
	// present maps the path of every field set in the file (non-null) to the
	// line of its key, for defaults and for locating cross-field problems.
	present map[string]int
	// bad marks paths whose value was rejected, so that cross-field checks do
	// not pile consequential problems on top.
	bad map[string]bool
}

func (p *parser) addf(line int, path, format string, args ...any) {
	p.problems = append(p.problems, Problem{File: p.file, Line: line, Field: path, Message: fmt.Sprintf(format, args...)})
	if path != "" {
		p.bad[path] = true
	}
}

func (p *parser) warnf(line int, path, format string, args ...any) {
	p.warnings = append(p.warnings, Problem{File: p.file, Line: line, Field: path, Message: fmt.Sprintf(format, args...)})
}

func (p *parser) result() error {
	if len(p.problems) == 0 {
		return nil
	}
	sortProblems(p.problems)
	return &ValidationError{Problems: p.problems}
}

// line returns the line of the first of paths that is present in the file,
// or fallback.
func (p *parser) line(fallback int, paths ...string) int {
	for _, path := range paths {
		if l, ok := p.present[path]; ok {
			return l
		}
	}
	return fallback
}

// yamlErrorRE matches yaml.v3 syntax errors.
func yamlErrorRE() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) }

// document decodes data into exactly one YAML document whose content is a
// mapping, or reports why it cannot.
func (p *parser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.addf(0, "", "empty inventory: expected a mapping with apiVersion, kind, cluster and hosts")
		} else {
			p.syntaxError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		p.addf(extra.Line, "", "multiple YAML documents: an inventory is a single document")
	case !errors.Is(err, io.EOF):
		p.syntaxError(err)
	}
	root := resolve(doc.Content[0])
	switch {
	case isNull(root):
		p.addf(0, "", "empty inventory: expected a mapping with apiVersion, kind, cluster and hosts")
		return nil
	case root.Kind != yaml.MappingNode:
		p.addf(root.Line, "", "expected a mapping at the top level, got %s", describe(root))
		return nil
	}
	return &doc
}

func (p *parser) syntaxError(err error) {
	if m := yamlErrorRE().FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.addf(line, "", "invalid YAML: %s", m[2])
		return
	}
	p.addf(0, "", "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// value is a node to decode, with where to report problems about it.
type value struct {
	n    *yaml.Node // resolved: never an alias
	line int        // the key's line for mapping values, the item's line for sequence items
	path string
	// alias is the line of the alias this value was reached through, if
	// any: problems inside reused content are reported where it is reused.
	alias int
}

// child returns the value for node n below v, following an alias.
func (v value) child(n *yaml.Node, line int, path string) value {
	c := value{n: resolve(n), line: line, path: path, alias: v.alias}
	if n.Kind == yaml.AliasNode && c.alias == 0 {
		c.alias = n.Line
	}
	c.line = c.at(line)
	return c
}

// at returns the line to report a problem found at line below v.
func (v value) at(line int) int {
	if v.alias != 0 {
		return v.alias
	}
	return line
}

// field is one known key of a mapping.
type field struct {
	name     string
	required bool
	decode   func(v value) // called only for non-null values
}

// entries calls fn, in file order, for every key of the mapping v with its
// path (built by pathOf), line and value, after reporting duplicate keys and
// skipping invalid ones. It returns the line of every key seen.
func (p *parser) entries(v value, pathOf func(parent, key string) string, fn func(name, path string, line int, val value)) map[string]int {
	seen := make(map[string]int)
	for i := 0; i+1 < len(v.n.Content); i += 2 {
		k, kl := resolve(v.n.Content[i]), v.at(v.n.Content[i].Line)
		name, ok := p.key(k, kl, v.path)
		if !ok {
			continue
		}
		path := pathOf(v.path, name)
		if first, dup := seen[name]; dup {
			p.addf(kl, path, "duplicate key (first at line %d)", first)
			continue
		}
		seen[name] = kl
		fn(name, path, kl, v.child(v.n.Content[i+1], kl, path))
	}
	return seen
}

// mapping walks a mapping: it reports duplicate and unknown keys (suggesting
// the closest known one), missing or empty required fields, and hands every
// other value to its field's decoder.
func (p *parser) mapping(v value, fields []field) {
	if !p.kind(v, yaml.MappingNode) {
		return
	}
	seen := p.entries(v, join, func(name, path string, kl int, val value) {
		f, known := lookupField(fields, name)
		if !known {
			p.addf(kl, path, "unknown field%s", suggest(name, fields))
			return
		}
		if isNull(val.n) {
			if f.required {
				p.addf(kl, path, "required field is empty")
			}
			return
		}
		p.present[path] = kl
		f.decode(val)
	})
	for _, f := range fields {
		if _, ok := seen[f.name]; f.required && !ok {
			p.addf(v.line, join(v.path, f.name), "missing required field")
		}
	}
}

// key returns a mapping key as a string.
func (p *parser) key(k *yaml.Node, line int, path string) (string, bool) {
	switch {
	case k.Kind != yaml.ScalarNode:
		p.addf(line, path, "expected a string key, got %s", describe(k))
		return "", false
	case k.ShortTag() == "!!merge":
		p.addf(line, path, "merge keys (<<) are not supported")
		return "", false
	}
	return k.Value, true
}

// sequence walks a sequence, handing each item to item.
func (p *parser) sequence(v value, item func(i int, v value)) {
	if !p.kind(v, yaml.SequenceNode) {
		return
	}
	for i, c := range v.n.Content {
		item(i, v.child(c, c.Line, fmt.Sprintf("%s[%d]", v.path, i)))
	}
}

func (p *parser) kind(v value, want yaml.Kind) bool {
	if v.n.Kind == want {
		return true
	}
	p.addf(v.line, v.path, "expected %s, got %s", describe(&yaml.Node{Kind: want}), describe(v.n))
	return false
}

func (p *parser) scalar(v value, tag, what string) bool {
	if v.n.Kind == yaml.ScalarNode && v.n.ShortTag() == tag {
		return true
	}
	p.addf(v.line, v.path, "expected %s, got %s", what, describe(v.n))
	return false
}

// str decodes a string; other scalars (numbers, booleans) must be quoted.
func (p *parser) str(v value) (string, bool) {
	if !p.scalar(v, "!!str", "a string") {
		return "", false
	}
	return v.n.Value, true
}

// integer decodes an integer within [lo, hi].
func (p *parser) integer(v value, lo, hi int64) (int64, bool) {
	if !p.scalar(v, "!!int", "an integer") {
		return 0, false
	}
	var i int64
	if err := v.n.Decode(&i); err != nil {
		p.addf(v.line, v.path, "integer %s is out of range", v.n.Value)
		return 0, false
	}
	if i < lo || i > hi {
		if hi == math.MaxInt64 {
			p.addf(v.line, v.path, "must be at least %d (got %d)", lo, i)
		} else {
			p.addf(v.line, v.path, "must be between %d and %d (got %d)", lo, hi, i)
		}
		return 0, false
	}
	return i, true
}

func (p *parser) boolean(v value) (bool, bool) {
	if !p.scalar(v, "!!bool", "a boolean (true or false)") {
		return false, false
	}
	var b bool
	if err := v.n.Decode(&b); err != nil {
		p.addf(v.line, v.path, "invalid boolean %q", v.n.Value)
		return false, false
	}
	return b, true
}

// check reports err, if any, as a problem with v.
func (p *parser) check(v value, err error) bool {
	if err != nil {
		p.addf(v.line, v.path, "%s", err.Error())
		return false
	}
	return true
}

// cidr decodes an IPv4 network prefix.
func (p *parser) cidr(v value) (netip.Prefix, bool) {
	s, ok := p.str(v)
	if !ok {
		return netip.Prefix{}, false
	}
	pfx, err := parseCIDR(s)
	if !p.check(v, err) {
		return netip.Prefix{}, false
	}
	return pfx, true
}

// port decodes a TCP port.
func (p *parser) port(v value) int {
	i, _ := p.integer(v, 1, 65535)
	return int(i)
}

// filePath decodes a file path as written in the inventory.
func (p *parser) filePath(v value) string {
	s, ok := p.str(v)
	if ok && p.check(v, validatePath(s)) {
		return s
	}
	return ""
}

func (p *parser) inventory(root *yaml.Node, inv *Inventory) {
	p.mapping(value{n: root, line: root.Line}, []field{
		{name: "apiVersion", required: true, decode: func(v value) {
			if s, ok := p.str(v); ok {
				inv.APIVersion = s
				if s != APIVersion {
					p.addf(v.line, v.path, "unsupported apiVersion %q (want %q)", s, APIVersion)
				}
			}
		}},
		{name: "kind", required: true, decode: func(v value) {
			if s, ok := p.str(v); ok {
				inv.Kind = s
				if s != Kind {
					p.addf(v.line, v.path, "unsupported kind %q (want %q)", s, Kind)
				}
			}
		}},
		{name: "cluster", required: true, decode: func(v value) { p.cluster(v, &inv.Cluster) }},
		{name: "ssh", decode: func(v value) { p.ssh(v, &inv.SSH) }},
		{name: "hosts", required: true, decode: func(v value) { inv.Hosts = p.hosts(v) }},
		{name: "state", decode: func(v value) { p.state(v, &inv.State) }},
	})
}

func (p *parser) cluster(v value, c *Cluster) {
	p.mapping(v, []field{
		{name: "name", required: true, decode: func(v value) {
			if s, ok := p.str(v); ok && p.check(v, validateDNSLabel(s)) {
				c.Name = s
			}
		}},
		{name: "podCIDR", decode: func(v value) { c.PodCIDR, _ = p.cidr(v) }},
		{name: "nodeCIDRMaskSize", decode: func(v value) {
			// The range against podCIDR is checked once both are known.
			if i, ok := p.integer(v, 1, 32); ok {
				c.NodeCIDRMaskSize = int(i)
			}
		}},
		{name: "serviceCIDR", decode: func(v value) { c.ServiceCIDR, _ = p.cidr(v) }},
		{name: "domain", decode: func(v value) {
			if s, ok := p.str(v); ok && p.check(v, validateDNSSubdomain(s)) {
				c.Domain = s
			}
		}},
		{name: "registries", decode: func(v value) { c.Registries = p.registries(v) }},
		{name: "podEvictionTimeout", decode: func(v value) {
			if d, ok := p.positiveDuration(v); ok {
				c.PodEvictionTimeout = d
			}
		}},
	})
}

func (p *parser) ssh(v value, s *SSH) {
	p.mapping(v, []field{
		{name: "user", decode: func(v value) {
			if u, ok := p.str(v); ok && p.check(v, validateUser(u)) {
				s.User = u
			}
		}},
		{name: "port", decode: func(v value) { s.Port = p.port(v) }},
		{name: "identityFile", decode: func(v value) { s.IdentityFile = p.filePath(v) }},
		{name: "knownHosts", decode: func(v value) { s.KnownHosts = p.filePath(v) }},
		{name: "useAgent", decode: func(v value) { s.UseAgent, _ = p.boolean(v) }},
		{name: "proxyJump", decode: func(v value) {
			if j, ok := p.str(v); ok && p.check(v, validateProxyJump(j)) {
				s.ProxyJump = j
			}
		}},
		{name: "sudo", decode: func(v value) {
			if m, ok := p.str(v); ok {
				switch SudoMode(m) {
				case SudoAuto, SudoAlways, SudoNever:
					s.Sudo = SudoMode(m)
				default:
					p.addf(v.line, v.path, "invalid value %q: must be one of auto, always, never", m)
				}
			}
		}},
		{name: "connectTimeout", decode: func(v value) {
			if d, ok := p.positiveDuration(v); ok {
				s.ConnectTimeout = d
			}
		}},
		{name: "sshConfig", decode: func(v value) { s.SSHConfig = p.filePath(v) }},
	})
}

// positiveDuration decodes a duration with a unit, like 10s.
func (p *parser) positiveDuration(v value) (time.Duration, bool) {
	if v.n.Kind == yaml.ScalarNode && v.n.ShortTag() == "!!int" {
		p.addf(v.line, v.path, "expected a duration with a unit like 10s, got an integer")
		return 0, false
	}
	s, ok := p.str(v)
	if !ok {
		return 0, false
	}
	return p.duration(v, s)
}

func (p *parser) duration(v value, s string) (time.Duration, bool) {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.addf(v.line, v.path, "invalid duration %q: want a number with a unit like 10s or 1m30s", s)
		return 0, false
	case d <= 0:
		p.addf(v.line, v.path, "must be positive (got %s)", s)
		return 0, false
	}
	return d, true
}

func (p *parser) hosts(v value) []Host {
	var hosts []Host
	p.sequence(v, func(_ int, v value) {
		var h Host
		p.host(v, &h)
		hosts = append(hosts, h)
	})
	return hosts
}

func (p *parser) host(v value, h *Host) {
	p.mapping(v, []field{
		{name: "name", required: true, decode: func(v value) {
			if s, ok := p.str(v); ok && p.check(v, validateDNSLabel(s)) {
				h.Name = s
			}
		}},
		{name: "address", required: true, decode: func(v value) {
			if s, ok := p.str(v); ok && p.check(v, validateAddress(s)) {
				h.Address = s
			}
		}},
		{name: "port", decode: func(v value) { h.Port = p.port(v) }},
		{name: "user", decode: func(v value) {
			if u, ok := p.str(v); ok && p.check(v, validateUser(u)) {
				h.User = u
			}
		}},
		{name: "labels", decode: func(v value) { h.Labels = p.labels(v) }},
		{name: "taints", decode: func(v value) { h.Taints = p.taints(v) }},
	})
}

func (p *parser) labels(v value) map[string]string {
	if !p.kind(v, yaml.MappingNode) {
		return nil
	}
	labels := make(map[string]string)
	p.entries(v, keyPath, func(name, _ string, _ int, lv value) {
		keyOK := p.check(lv, validateQualifiedName("label key", name))
		s, ok := p.str(lv)
		if ok && p.check(lv, validateLabelValue(s)) && keyOK {
			labels[name] = s
		}
	})
	return labels
}

func (p *parser) taints(v value) []Taint {
	var taints []Taint
	first := make(map[string]int) // key:effect → line
	p.sequence(v, func(_ int, v value) {
		var t Taint
		p.mapping(v, []field{
			{name: "key", required: true, decode: func(v value) {
				if s, ok := p.str(v); ok && p.check(v, validateQualifiedName("taint key", s)) {
					t.Key = s
				}
			}},
			{name: "value", decode: func(v value) {
				if s, ok := p.str(v); ok && p.check(v, validateLabelValue(s)) {
					t.Value = s
				}
			}},
			{name: "effect", required: true, decode: func(v value) {
				if s, ok := p.str(v); ok {
					switch e := TaintEffect(s); e {
					case TaintNoSchedule, TaintPreferNoSchedule, TaintNoExecute:
						t.Effect = e
					default:
						p.addf(v.line, v.path, "invalid value %q: must be one of NoSchedule, PreferNoSchedule, NoExecute", s)
					}
				}
			}},
		})
		if t.Key != "" && t.Effect != "" {
			id := t.Key + ":" + string(t.Effect)
			if l, dup := first[id]; dup {
				p.addf(v.line, v.path, "duplicate taint %q (first at line %d)", id, l)
			} else {
				first[id] = v.line
			}
		}
		taints = append(taints, t)
	})
	return taints
}

func (p *parser) state(v value, s *State) {
	p.mapping(v, []field{
		{name: "generation", decode: func(v value) { s.Generation, _ = p.integer(v, 0, math.MaxInt64) }},
		{name: "hosts", decode: func(v value) { s.Hosts = p.stateHosts(v) }},
		{name: "objects", decode: func(v value) { s.Objects = p.objects(v) }},
	})
}

func (p *parser) stateHosts(v value) map[string]HostState {
	if !p.kind(v, yaml.MappingNode) {
		return nil
	}
	hosts := make(map[string]HostState)
	p.entries(v, keyPath, func(name, path string, kl int, hv value) {
		if !p.check(hv, validateDNSLabel(name)) {
			return
		}
		p.present[path] = kl
		var hs HostState
		if !isNull(hv.n) {
			p.mapping(hv, []field{
				{name: "podCIDR", decode: func(v value) { hs.PodCIDR, _ = p.cidr(v) }},
				{name: "internalIP", decode: func(v value) {
					if s, ok := p.str(v); ok {
						a, err := netip.ParseAddr(s)
						if err != nil || !a.Is4() {
							p.addf(v.line, v.path, "invalid IPv4 address %q", s)
							return
						}
						hs.InternalIP = a
					}
				}},
				{name: "joinedAt", decode: func(v value) { hs.JoinedAt, _ = p.timestamp(v) }},
				{name: "notReadySince", decode: func(v value) { hs.NotReadySince, _ = p.timestamp(v) }},
				{name: "agentletSHA256", decode: func(v value) {
					if s, ok := p.str(v); ok && p.check(v, validateSHA256(s)) {
						hs.AgentletSHA256 = s
					}
				}},
				{name: "specSHA256", decode: func(v value) {
					if s, ok := p.str(v); ok && p.check(v, validateSHA256(s)) {
						hs.SpecSHA256 = s
					}
				}},
				{name: "unschedulable", decode: func(v value) {
					if b, ok := p.boolean(v); ok {
						hs.Unschedulable = b
					}
				}},
			})
		}
		hosts[name] = hs
	})
	return hosts
}

// timestamp decodes an RFC3339 time, quoted or not (unquoted ones are YAML
// timestamps).
func (p *parser) timestamp(v value) (time.Time, bool) {
	if v.n.Kind == yaml.ScalarNode && v.n.ShortTag() == "!!timestamp" {
		v.n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v.n.Value}
	}
	s, ok := p.str(v)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		p.addf(v.line, v.path, "invalid time %q: want RFC3339 like 2026-11-21T22:00:00Z", s)
		return time.Time{}, false
	}
	return t.UTC(), true
}

// stateAliases reports aliases outside state: to anchors inside it:
// Marshal regenerates state: without them, so the written file would not
// parse (inventory/testdata/fuzz/FuzzParse/state-anchor-aliased-outside).
func (p *parser) stateAliases(root *yaml.Node) {
	var state *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "state" {
			state = root.Content[i+1]
		}
	}
	if state == nil {
		return
	}
	anchors := map[*yaml.Node]bool{}
	var mark func(n *yaml.Node)
	mark = func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode {
			return
		}
		if n.Anchor != "" {
			anchors[n] = true
		}
		for _, c := range n.Content {
			mark(c)
		}
	}
	mark(state)
	if len(anchors) == 0 {
		return
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch {
		case n == state:
		case n.Kind == yaml.AliasNode && anchors[n.Alias]:
			p.addf(n.Line, "", "alias *%s refers to an anchor inside state:, which clusterctl rewrites: write the value out", n.Value)
		case n.Kind != yaml.AliasNode:
			for _, c := range n.Content {
				walk(c)
			}
		}
	}
	walk(root)
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the type of a node for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	switch tag := n.ShortTag(); tag {
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	case "!!timestamp":
		return "a timestamp"
	case "!!binary":
		return "binary data"
	default:
		return "a value tagged " + tag
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// keyPath is the path of a user-chosen key (a label or state host name):
// path.key when the key is a plain word, path["key"] otherwise.
func keyPath(path, key string) string {
	plain := key != "" && isAlnum(key[0], true)
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			plain = false
			break
		}
	}
	if plain {
		return path + "." + key
	}
	return fmt.Sprintf("%s[%q]", path, key)
}

func lookupField(fields []field, name string) (field, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

// suggest returns ` (did you mean "x"?)` for the known field closest to
// name, or "" when none is close.
func suggest(name string, fields []field) string {
	best, bestDist := "", -1
	for _, f := range fields {
		d := editDistance(strings.ToLower(name), strings.ToLower(f.name))
		if d <= max(2, len(f.name)/3) && (bestDist < 0 || d < bestDist) {
			best, bestDist = f.name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
