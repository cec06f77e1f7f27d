// Package netfilter renders and reads iptables rule sets for agentlet. It is
// pure: it turns desired state into `iptables-restore --noflush` payloads and
// `iptables-save` output into data, and never runs anything itself (the
// iptables edge lives in agentlet/iptables).
//
// Ownership: every chain whose name starts with nodeapi.ChainPrefix is ours,
// and so is every rule that jumps (-j) or goes (-g) to one of our chains.
// Nothing else is ever touched.
package netfilter

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Tables.
const (
	TableFilter = "filter"
	TableNAT    = "nat"
)

// ForwardChain accepts forwarded traffic from and to the cluster's pod network,
// so pods work on hosts whose FORWARD policy is DROP.
const ForwardChain = nodeapi.ChainPrefix + "FORWARD"

// JumpComment marks the jumps from built-in chains into ours.
const JumpComment = "clusterctl"

// Jump is a rule in a built-in chain that sends traffic into one of our
// chains. The rules inside our chains are loaded with iptables-restore; jumps
// are ensured one by one with `iptables -C || iptables -I` because a noflush
// restore must not declare built-in chains.
type Jump struct {
	Table string
	Chain string   // built-in chain, e.g. FORWARD
	Rule  []string // rule specification after the chain name
}

// BaseJumps are the jumps the base rules need.
func BaseJumps() []Jump {
	return []Jump{{
		Table: TableFilter,
		Chain: "FORWARD",
		Rule:  []string{"-j", ForwardChain, "-m", "comment", "--comment", JumpComment},
	}}
}

// Base describes the rules every node with a spec holds.
type Base struct {
	// ClusterPodCIDR is the whole cluster pod network (NodeSpec.Cluster.PodCIDR).
	ClusterPodCIDR netip.Prefix
}

// BaseFromSpec derives the base rules from a node spec.
func BaseFromSpec(spec *nodeapi.NodeSpec) (Base, error) {
	p, err := netip.ParsePrefix(spec.Cluster.PodCIDR)
	if err != nil {
		return Base{}, fmt.Errorf("parse cluster pod CIDR: %w", err)
	}
	if !p.Addr().Is4() {
		return Base{}, fmt.Errorf("parse cluster pod CIDR %s: only IPv4 is supported", p)
	}
	return Base{ClusterPodCIDR: p.Masked()}, nil
}

// baseRules are the rules of ForwardChain, as argument lists after "-A CHAIN",
// in the order and spelling iptables-save prints them, so that a saved table
// can be compared with them token by token.
func (b Base) baseRules() [][]string {
	cidr := b.ClusterPodCIDR.Masked().String()
	return [][]string{
		{"-s", cidr, "-m", "comment", "--comment", "clusterctl: from pods", "-j", "ACCEPT"},
		{"-d", cidr, "-m", "comment", "--comment", "clusterctl: to pods", "-j", "ACCEPT"},
	}
}

// RenderBase renders the base rules as one `iptables-restore --noflush`
// payload for the filter table. Declaring the chain flushes it, so loading the
// payload again replaces the rules instead of appending duplicates.
func RenderBase(b Base) []byte {
	var buf bytes.Buffer
	buf.WriteString("*filter\n")
	fmt.Fprintf(&buf, ":%s - [0:0]\n", ForwardChain)
	for _, r := range b.baseRules() {
		fmt.Fprintf(&buf, "-A %s %s\n", ForwardChain, joinArgs(r))
	}
	buf.WriteString("COMMIT\n")
	return buf.Bytes()
}

// BaseInPlace reports whether the filter table in save (iptables-save output)
// holds exactly the base rules in ForwardChain and the base jumps.
func BaseInPlace(save []byte, b Base) (bool, error) {
	tables, err := ParseSave(save)
	if err != nil {
		return false, err
	}
	var filter *Table
	for i := range tables {
		if tables[i].Name == TableFilter {
			filter = &tables[i]
		}
	}
	if filter == nil || !filter.HasChain(ForwardChain) {
		return false, nil
	}
	var got [][]string
	for _, r := range filter.Rules {
		if r.Chain == ForwardChain {
			got = append(got, r.Args)
		}
	}
	want := b.baseRules()
	if len(got) != len(want) {
		return false, nil
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			return false, nil
		}
	}
	for _, j := range BaseJumps() {
		if j.Table == TableFilter && !filter.hasRule(j.Chain, j.Rule) {
			return false, nil
		}
	}
	return true, nil
}

// Table is one table of iptables-save output.
type Table struct {
	Name   string
	Chains []Chain
	Rules  []Rule
}

// Chain is a chain declaration.
type Chain struct {
	Name   string
	Policy string // ACCEPT/DROP for built-in chains, "-" for user chains
}

// Rule is one "-A CHAIN args..." line.
type Rule struct {
	Chain  string
	Args   []string // unquoted arguments after the chain name
	Target string   // argument of -j or -g, "" when none
	Line   string   // the line as saved, to replay it with -D
}

// HasChain reports whether the table declares the chain.
func (t *Table) HasChain(name string) bool {
	for _, c := range t.Chains {
		if c.Name == name {
			return true
		}
	}
	return false
}

// hasRule reports whether chain holds a rule with the same arguments as rule,
// in any order (iptables-save reorders matches and targets).
func (t *Table) hasRule(chain string, rule []string) bool {
	want := slices.Sorted(slices.Values(rule))
	for _, r := range t.Rules {
		if r.Chain == chain && slices.Equal(slices.Sorted(slices.Values(r.Args)), want) {
			return true
		}
	}
	return false
}

// Owned reports whether a chain name is ours.
func Owned(chain string) bool { return strings.HasPrefix(chain, nodeapi.ChainPrefix) }

// ParseSave parses iptables-save output (one or more tables).
func ParseSave(data []byte) ([]Table, error) {
	var tables []Table
	var cur *Table
	for n, line := range strings.Split(string(data), "\n") {
		lineNo := n + 1
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "*"):
			if cur != nil {
				return nil, fmt.Errorf("parse iptables-save line %d: table %s not committed before %s", lineNo, cur.Name, line)
			}
			tables = append(tables, Table{Name: strings.TrimSpace(line[1:])})
			cur = &tables[len(tables)-1]
		case line == "COMMIT":
			if cur == nil {
				return nil, fmt.Errorf("parse iptables-save line %d: COMMIT outside a table", lineNo)
			}
			cur = nil
		case cur == nil:
			return nil, fmt.Errorf("parse iptables-save line %d: %q outside a table", lineNo, line)
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) < 2 {
				return nil, fmt.Errorf("parse iptables-save line %d: bad chain declaration %q", lineNo, line)
			}
			cur.Chains = append(cur.Chains, Chain{Name: f[0], Policy: f[1]})
		case strings.HasPrefix(line, "-A "):
			args, err := splitArgs(line)
			if err != nil {
				return nil, fmt.Errorf("parse iptables-save line %d: %w", lineNo, err)
			}
			if len(args) < 2 {
				return nil, fmt.Errorf("parse iptables-save line %d: rule without chain", lineNo)
			}
			r := Rule{Chain: args[1], Args: args[2:], Line: line}
			for i := 2; i+1 < len(args); i++ {
				if args[i] == "-j" || args[i] == "-g" || args[i] == "--jump" || args[i] == "--goto" {
					r.Target = args[i+1]
				}
			}
			cur.Rules = append(cur.Rules, r)
		default:
			return nil, fmt.Errorf("parse iptables-save line %d: unexpected %q", lineNo, line)
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("parse iptables-save: table %s not committed", cur.Name)
	}
	return tables, nil
}

// Teardown renders one `iptables-restore --noflush` payload that removes every
// chain we own from the given tables, and every rule of other chains that
// jumps or goes to one of ours (jumps from built-in chains, and from foreign
// user chains, which would otherwise keep our chains from being deleted).
// Every other rule and chain is left alone. It returns nil when there is
// nothing to remove.
func Teardown(tables []Table) []byte {
	var buf bytes.Buffer
	for _, t := range tables {
		var owned []string
		for _, c := range t.Chains {
			if Owned(c.Name) {
				owned = append(owned, c.Name)
			}
		}
		var refs []Rule
		for _, r := range t.Rules {
			if !Owned(r.Chain) && Owned(r.Target) {
				refs = append(refs, r)
			}
		}
		if len(owned) == 0 && len(refs) == 0 {
			continue
		}
		fmt.Fprintf(&buf, "*%s\n", t.Name)
		// Declaring a chain in a noflush restore flushes it; that removes
		// the references between our own chains before they are deleted.
		for _, c := range owned {
			fmt.Fprintf(&buf, ":%s - [0:0]\n", c)
		}
		for _, r := range refs {
			fmt.Fprintf(&buf, "-D%s\n", strings.TrimPrefix(r.Line, "-A"))
		}
		for _, c := range owned {
			fmt.Fprintf(&buf, "-X %s\n", c)
		}
		buf.WriteString("COMMIT\n")
	}
	if buf.Len() == 0 {
		return nil
	}
	return buf.Bytes()
}

// splitArgs splits a rule line into arguments the way iptables-restore does:
// on blanks, with double quotes grouping and backslash escaping a quote or a
// backslash inside quotes.
func splitArgs(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inArg, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\'):
			cur.WriteByte(line[i+1])
			i++
		case c == '"':
			quoted = !quoted
			inArg = true
		case !quoted && (c == ' ' || c == '\t'):
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

// joinArgs quotes arguments for an iptables-restore payload like
// iptables-save does: double quotes around arguments with blanks or quotes.
func joinArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"\\'") {
			a = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a) + `"`
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
