package netfilter

// Service rules, kube-proxy style (iptables mode), in our own chains only.
//
// nat:
//
//	PREROUTING, OUTPUT -> CLUSTERCTL-SERVICES: one rule per ClusterIP:port/proto
//	    with ready endpoints -> CLUSTERCTL-SVC-<hash>; last rule: dst-type LOCAL
//	    -> CLUSTERCTL-NODEPORTS
//	CLUSTERCTL-NODEPORTS: per nodePort: MARK-MASQ + SVC (policy Cluster) or
//	    CLUSTERCTL-XLB-<hash> (policy Local)
//	CLUSTERCTL-SVC-<hash>: MARK-MASQ for sources outside the cluster pod CIDR,
//	    affinity checks, then statistic-random jumps to CLUSTERCTL-SEP-<hash>
//	CLUSTERCTL-SEP-<hash>: hairpin MARK-MASQ, DNAT to ip:targetPort
//	POSTROUTING -> CLUSTERCTL-POSTROUTING: MASQUERADE marked traffic and pod
//	    traffic leaving the cluster network
//
// filter:
//
//	FORWARD, OUTPUT -> CLUSTERCTL-SERVICES: REJECT ClusterIPs without endpoints
//	INPUT, FORWARD -> CLUSTERCTL-EXTERNAL-SERVICES: REJECT NodePorts without
//	    endpoints, DROP Local-policy NodePorts without local endpoints
//
// Pod-to-pod traffic through a Service keeps its source IP: only hairpin
// traffic and traffic from outside the cluster pod CIDR is masqueraded.

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Service chains. Chain names are at most 28 characters.
const (
	ServicesChain         = nodeapi.ChainPrefix + "SERVICES"          // nat and filter
	NodePortsChain        = nodeapi.ChainPrefix + "NODEPORTS"         // nat
	ExternalServicesChain = nodeapi.ChainPrefix + "EXTERNAL-SERVICES" // filter
	PostroutingChain      = nodeapi.ChainPrefix + "POSTROUTING"       // nat
	MarkMasqChain         = nodeapi.ChainPrefix + "MARK-MASQ"         // nat

	svcPrefix = nodeapi.ChainPrefix + "SVC-"
	sepPrefix = nodeapi.ChainPrefix + "SEP-"
	xlbPrefix = nodeapi.ChainPrefix + "XLB-"

	// MasqMark marks packets that CLUSTERCTL-POSTROUTING masquerades.
	MasqMark = "0x4000/0x4000"
)

// ServiceInput is everything the service rules depend on.
type ServiceInput struct {
	NodeName       string
	ClusterPodCIDR netip.Prefix // whole cluster pod network
	NodePodCIDR    netip.Prefix // this node's pod CIDR
	ServiceCIDR    netip.Prefix
	Services       []nodeapi.ServiceSpec
	// Unready holds UIDs of pods on this node that agentlet sees unready:
	// their endpoints are dropped at once, before the CLI's next spec.
	Unready map[string]bool
	// Current is the parsed iptables-save output (nat and filter) the full
	// payload is loaded over: service chains found there but no longer
	// rendered are deleted. Nil means none.
	Current []Table

	terse bool // set by buildServices: large cluster, no per-Service comments
}

// LargeClusterEndpoints is the endpoint count above which the per-Service
// comments are left out, as kube-proxy does, to keep payloads small.
const LargeClusterEndpoints = 1000

// ServiceInputFromSpec derives the input from a node spec.
func ServiceInputFromSpec(spec *nodeapi.NodeSpec, unready map[string]bool) (ServiceInput, error) {
	in := ServiceInput{NodeName: spec.NodeName, Services: spec.Services, Unready: unready}
	var err error
	if in.ClusterPodCIDR, err = parse4(spec.Cluster.PodCIDR); err != nil {
		return in, fmt.Errorf("parse cluster pod CIDR: %w", err)
	}
	if in.NodePodCIDR, err = parse4(spec.PodCIDR); err != nil {
		return in, fmt.Errorf("parse node pod CIDR: %w", err)
	}
	if in.ServiceCIDR, err = parse4(spec.Cluster.ServiceCIDR); err != nil {
		return in, fmt.Errorf("parse service CIDR: %w", err)
	}
	return in, nil
}

func parse4(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, err
	}
	if !p.Addr().Is4() {
		return p, fmt.Errorf("%s: only IPv4 is supported", p)
	}
	return p.Masked(), nil
}

// ServiceJumps are the jumps from built-in chains into the service chains,
// ensured one by one like BaseJumps.
func ServiceJumps() []Jump {
	c := []string{"-m", "comment", "--comment", JumpComment}
	newConn := []string{"-m", "conntrack", "--ctstate", "NEW"}
	j := func(table, chain string, pre []string, target string) Jump {
		r := append(slices.Clone(pre), "-j", target)
		return Jump{Table: table, Chain: chain, Rule: append(r, c...)}
	}
	return []Jump{
		j(TableNAT, "PREROUTING", nil, ServicesChain),
		j(TableNAT, "OUTPUT", nil, ServicesChain),
		j(TableNAT, "POSTROUTING", nil, PostroutingChain),
		j(TableFilter, "INPUT", newConn, ExternalServicesChain),
		j(TableFilter, "FORWARD", newConn, ServicesChain),
		j(TableFilter, "FORWARD", newConn, ExternalServicesChain),
		j(TableFilter, "OUTPUT", newConn, ServicesChain),
	}
}

// ServiceRules are rendered service chains, per table in payload order.
// Compare two with Diff to get an incremental payload.
type ServiceRules struct {
	NAT    []RenderedChain
	Filter []RenderedChain
	// pieces are the rules per Service (namespace/name), which lets Diff
	// skip Services rendered from the same cache entry.
	pieces   map[string]*servicePiece
	order    []string // keys of pieces, sorted
	fixedNAT int      // NAT[:fixedNAT] are the fixed chains
}

// RenderedChain is one chain and its rules, "-A NAME ...\n" lines.
type RenderedChain struct {
	Name  string
	Rules string
}

// alwaysRewritten are the dispatch chains every incremental payload rewrites
// (they list every Service).
func alwaysRewritten(name string) bool {
	return name == ServicesChain || name == NodePortsChain || name == ExternalServicesChain
}

// serviceChain reports whether a chain belongs to the service rules (and may
// be deleted as stale); other owned chains such as ForwardChain are not.
func serviceChain(name string) bool {
	switch name {
	case ServicesChain, NodePortsChain, ExternalServicesChain, PostroutingChain, MarkMasqChain:
		return true
	}
	return strings.HasPrefix(name, svcPrefix) || strings.HasPrefix(name, sepPrefix) || strings.HasPrefix(name, xlbPrefix)
}

// hashName is a deterministic chain name: prefix plus 13 base32 characters of
// the SHA-256 of the parts (28 characters in all, the iptables maximum).
func hashName(prefix string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return prefix + base32.StdEncoding.EncodeToString(sum[:])[:28-len(prefix)]
}

// probability is kube-proxy's spelling of 1/n.
func probability(n int) string { return fmt.Sprintf("%0.10f", 1.0/float64(n)) }

// chainBuf collects the rules of one chain.
type chainBuf struct {
	name string
	b    strings.Builder
}

func (c *chainBuf) add(args ...string) {
	c.b.WriteString("-A ")
	c.b.WriteString(c.name)
	c.b.WriteByte(' ')
	c.b.WriteString(joinArgs(args))
	c.b.WriteByte('\n')
}

type tableBuf struct{ chains []*chainBuf }

func (t *tableBuf) chain(name string) *chainBuf {
	c := &chainBuf{name: name}
	t.chains = append(t.chains, c)
	return c
}

func (t *tableBuf) rendered() []RenderedChain {
	out := make([]RenderedChain, len(t.chains))
	for i, c := range t.chains {
		out[i] = RenderedChain{Name: c.name, Rules: c.b.String()}
	}
	return out
}

type endpointPort struct {
	ep   *nodeapi.Endpoint
	port int32
}

// BuildServices renders the service chains of in. It is pure.
func BuildServices(in ServiceInput) *ServiceRules { return buildServices(in, nil) }

func buildServices(in ServiceInput, cache *ServiceCache) *ServiceRules {
	in.terse = largeCluster(in.Services)
	if cache != nil {
		cache.reset(in)
	}
	var nat, filter tableBuf
	services := nat.chain(ServicesChain)
	nodePorts := nat.chain(NodePortsChain)
	post := nat.chain(PostroutingChain)
	markMasq := nat.chain(MarkMasqChain)
	fServices := filter.chain(ServicesChain)
	fExternal := filter.chain(ExternalServicesChain)

	cluster := in.ClusterPodCIDR.String()
	post.add("-m", "mark", "--mark", MasqMark, "-m", "comment", "--comment", "clusterctl: service traffic requiring SNAT", "-j", "MASQUERADE")
	if in.NodePodCIDR.IsValid() {
		node := in.NodePodCIDR.String()
		if in.ServiceCIDR.IsValid() {
			post.add("-s", node, "-d", in.ServiceCIDR.String(), "-j", "RETURN")
		}
		post.add("-s", node, "!", "-d", cluster, "-m", "comment", "--comment", "clusterctl: pod egress", "-j", "MASQUERADE")
	}
	markMasq.add("-j", "MARK", "--or-mark", "0x4000")

	svcs := make([]*nodeapi.ServiceSpec, len(in.Services))
	for i := range in.Services {
		svcs[i] = &in.Services[i]
	}
	slices.SortFunc(svcs, func(a, b *nodeapi.ServiceSpec) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	r := &ServiceRules{pieces: make(map[string]*servicePiece, len(svcs)), order: make([]string, 0, len(svcs))}
	var natChains, filterChains []RenderedChain
	var sb, nb, fsb, feb strings.Builder
	for _, s := range svcs {
		if s.ClusterIP == "" || s.ClusterIP == "None" {
			continue // headless: DNS only
		}
		key := s.Key()
		pc := cache.piece(&in, key, s)
		r.pieces[key] = pc
		r.order = append(r.order, key)
		sb.WriteString(pc.services)
		nb.WriteString(pc.nodePorts)
		fsb.WriteString(pc.fServices)
		feb.WriteString(pc.fExternal)
		natChains = append(natChains, pc.chains...)
	}
	services.b.WriteString(sb.String())
	nodePorts.b.WriteString(nb.String())
	fServices.b.WriteString(fsb.String())
	fExternal.b.WriteString(feb.String())
	services.add("-m", "addrtype", "--dst-type", "LOCAL", "-m", "comment", "--comment", "clusterctl: node ports; must be last", "-j", NodePortsChain)
	r.NAT = append(nat.rendered(), natChains...)
	r.fixedNAT = len(nat.chains)
	r.Filter = append(filter.rendered(), filterChains...)
	return r
}

// servicePiece is the rendered rules of one Service: its lines in the
// dispatch chains and its own chains.
type servicePiece struct {
	services, nodePorts, fServices, fExternal string
	chains                                    []RenderedChain
}

func pieceEqual(a, b *servicePiece) bool {
	return a.services == b.services && a.nodePorts == b.nodePorts && a.fServices == b.fServices &&
		a.fExternal == b.fExternal && slices.Equal(a.chains, b.chains)
}

// renderService renders one Service with a ClusterIP.
func renderService(in *ServiceInput, s *nodeapi.ServiceSpec) *servicePiece {
	services := &chainBuf{name: ServicesChain}
	nodePorts := &chainBuf{name: NodePortsChain}
	fServices := &chainBuf{name: ServicesChain}
	fExternal := &chainBuf{name: ExternalServicesChain}
	var nat tableBuf
	cluster := in.ClusterPodCIDR.String()
	for _, p := range s.Ports {
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		portStr := strconv.Itoa(int(p.Port))
		name := s.Key() + ":" + p.Name
		if p.Name == "" {
			name = s.Key() + ":" + portStr
		}
		comment := []string{"-m", "comment", "--comment", name}
		if in.terse {
			comment = nil
		}
		var ready, local []endpointPort
		for ei := range s.Endpoints {
			ep := &s.Endpoints[ei]
			tp, ok := ep.Ports[p.Name]
			if !ok || !ep.Ready || (ep.NodeName == in.NodeName && in.Unready[ep.PodUID]) {
				continue
			}
			ready = append(ready, endpointPort{ep, tp})
			if ep.NodeName == in.NodeName {
				local = append(local, endpointPort{ep, tp})
			}
		}
		dst := []string{"-d", s.ClusterIP + "/32", "-p", proto, "-m", proto, "--dport", portStr}
		np := []string{"-m", "addrtype", "--dst-type", "LOCAL", "-p", proto, "-m", proto, "--dport", strconv.Itoa(int(p.NodePort))}
		hasNP := s.Type == nodeapi.ServiceNodePort && p.NodePort > 0
		if len(ready) == 0 {
			fServices.add(cat(dst, []string{"-m", "comment", "--comment", name + " has no endpoints", "-j", "REJECT", "--reject-with", "icmp-port-unreachable"})...)
			if hasNP {
				fExternal.add(cat(np, []string{"-m", "comment", "--comment", name + " has no endpoints", "-j", "REJECT", "--reject-with", "icmp-port-unreachable"})...)
			}
			continue
		}
		key := []string{s.Namespace, s.Name, p.Name, proto, portStr}
		svcName := hashName(svcPrefix, key...)
		services.add(cat(dst, comment, []string{"-j", svcName})...)
		svc := nat.chain(svcName)
		svc.add(cat([]string{"!", "-s", cluster}, dst, comment, []string{"-j", MarkMasqChain})...)
		seps := make([]string, len(ready))
		for i, e := range ready {
			seps[i] = hashName(sepPrefix, append(slices.Clone(key), e.ep.IP, strconv.Itoa(int(e.port)))...)
		}
		affinity := s.SessionAffinityTimeout > 0
		recent := func(sep string) []string {
			return []string{"-m", "recent", "--name", sep, "--mask", "255.255.255.255", "--rsource"}
		}
		balance := func(c *chainBuf, eps []endpointPort, names []string) {
			if affinity {
				for _, sep := range names {
					c.add(cat(comment, recent(sep), []string{"--rcheck", "--seconds", strconv.Itoa(int(s.SessionAffinityTimeout)), "--reap", "-j", sep})...)
				}
			}
			for i, sep := range names {
				if i < len(names)-1 {
					c.add(cat(comment, []string{"-m", "statistic", "--mode", "random", "--probability", probability(len(names) - i), "-j", sep})...)
				} else {
					c.add(cat(comment, []string{"-j", sep})...)
				}
			}
		}
		balance(svc, ready, seps)
		for i, e := range ready {
			sep := nat.chain(seps[i])
			sep.add(cat([]string{"-s", e.ep.IP + "/32"}, comment, []string{"-j", MarkMasqChain})...)
			dnat := cat([]string{"-p", proto}, comment)
			if affinity {
				dnat = cat(dnat, recent(seps[i]), []string{"--set"})
			}
			sep.add(cat(dnat, []string{"-j", "DNAT", "--to-destination", e.ep.IP + ":" + strconv.Itoa(int(e.port))})...)
		}
		if !hasNP {
			continue
		}
		npOnly := np[4:] // nodePorts is entered for dst-type LOCAL only
		if !s.ExternalTrafficPolicyLocal {
			nodePorts.add(cat(npOnly, comment, []string{"-j", MarkMasqChain})...)
			nodePorts.add(cat(npOnly, comment, []string{"-j", svcName})...)
			continue
		}
		xlbName := hashName(xlbPrefix, key...)
		nodePorts.add(cat(npOnly, comment, []string{"-j", xlbName})...)
		xlb := nat.chain(xlbName)
		xlb.add(cat([]string{"-s", cluster}, []string{"-m", "comment", "--comment", name + " pods go cluster-wide", "-j", svcName})...)
		xlb.add(cat(comment, []string{"-m", "addrtype", "--src-type", "LOCAL", "-j", MarkMasqChain})...)
		xlb.add(cat(comment, []string{"-m", "addrtype", "--src-type", "LOCAL", "-j", svcName})...)
		if len(local) == 0 {
			fExternal.add(cat(np, []string{"-m", "comment", "--comment", name + " has no local endpoints", "-j", "DROP"})...)
			continue
		}
		var localSeps []string
		for i, e := range ready {
			if e.ep.NodeName == in.NodeName {
				localSeps = append(localSeps, seps[i])
			}
		}
		balance(xlb, local, localSeps)
	}
	return &servicePiece{
		services:  services.b.String(),
		nodePorts: nodePorts.b.String(),
		fServices: fServices.b.String(),
		fExternal: fExternal.b.String(),
		chains:    nat.rendered(),
	}
}

func largeCluster(svcs []nodeapi.ServiceSpec) bool {
	n := 0
	for i := range svcs {
		n += len(svcs[i].Endpoints)
	}
	return n > LargeClusterEndpoints
}

func cat(parts ...[]string) []string {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]string, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// RenderServices renders the service rules of in as one full
// `iptables-restore --noflush` payload (nat and filter tables). Service
// chains present in in.Current but no longer rendered are flushed and
// deleted in the same payload.
func RenderServices(in ServiceInput) []byte {
	return FullPayload(BuildServices(in), in.Current)
}

// FullPayload renders every chain of r, and deletes the service chains of
// current (parsed iptables-save output) that r does not have.
func FullPayload(r *ServiceRules, current []Table) []byte {
	stale := staleChains(r, current)
	var buf bytes.Buffer
	writeTable(&buf, TableNAT, r.NAT, stale[TableNAT])
	writeTable(&buf, TableFilter, r.Filter, stale[TableFilter])
	return buf.Bytes()
}

// staleChains are the service chains of current that r does not have, by table.
func staleChains(r *ServiceRules, current []Table) map[string][]string {
	stale := map[string][]string{}
	for _, t := range current {
		var rendered []RenderedChain
		switch t.Name {
		case TableNAT:
			rendered = r.NAT
		case TableFilter:
			rendered = r.Filter
		default:
			continue
		}
		have := make(map[string]bool, len(rendered))
		for _, c := range rendered {
			have[c.Name] = true
		}
		for _, c := range t.Chains {
			if serviceChain(c.Name) && !have[c.Name] {
				stale[t.Name] = append(stale[t.Name], c.Name)
			}
		}
	}
	return stale
}

// FullChunk is the number of chains FullPayloads puts in one payload: the
// nft-backed iptables-restore slows down more than linearly with the size
// of one transaction (measured: 10k Services x 5 endpoints, 60k chains,
// ~650 s in one payload, ~12 s in chunks of 6,000 chains).
const FullChunk = 6000

// FullPayloads is FullPayload split into payloads of about chunk chains
// (FullChunk when chunk <= 0), to be loaded in order: first the chains the
// Service chains jump to, then the Service chains, last the dispatch and
// filter chains and the deletion of stale chains. Rules built without
// per-Service pieces come as one payload. Every payload leaves a
// consistent state: no chain is deleted while a loaded rule refers to it.
func FullPayloads(r *ServiceRules, current []Table, chunk int) [][]byte {
	if r.pieces == nil {
		return [][]byte{FullPayload(r, current)}
	}
	if chunk <= 0 {
		chunk = FullChunk
	}
	var out [][]byte
	write := func(nat, filter []RenderedChain) {
		var buf bytes.Buffer
		writeTable(&buf, TableNAT, nat, nil)
		writeTable(&buf, TableFilter, filter, nil)
		out = append(out, buf.Bytes())
	}
	var dispatch, targets []RenderedChain
	for _, c := range r.NAT[:r.fixedNAT] {
		if alwaysRewritten(c.Name) {
			dispatch = append(dispatch, c)
		} else {
			targets = append(targets, c)
		}
	}
	write(targets, nil)
	var batch []RenderedChain
	for _, k := range r.order {
		batch = append(batch, r.pieces[k].chains...)
		if len(batch) >= chunk {
			write(batch, nil)
			batch = nil
		}
	}
	if len(batch) > 0 {
		write(batch, nil)
	}
	var buf bytes.Buffer
	stale := staleChains(r, current)
	writeTable(&buf, TableNAT, dispatch, stale[TableNAT])
	writeTable(&buf, TableFilter, r.Filter, stale[TableFilter])
	return append(out, buf.Bytes())
}

// Changed reports whether next differs from prev in any chain. It is cheap
// for rules built by the same ServiceCache.
func Changed(prev, next *ServiceRules) bool {
	if prev == nil || next == nil {
		return prev != next
	}
	if len(prev.NAT) != len(next.NAT) || len(prev.Filter) != len(next.Filter) || len(prev.order) != len(next.order) {
		return true
	}
	if prev.pieces == nil || next.pieces == nil {
		return !slices.Equal(prev.NAT, next.NAT) || !slices.Equal(prev.Filter, next.Filter)
	}
	for k, p := range next.pieces {
		if pp := prev.pieces[k]; pp != p && (pp == nil || !pieceEqual(pp, p)) {
			return true
		}
	}
	return !slices.Equal(prev.NAT[:prev.fixedNAT], next.NAT[:next.fixedNAT]) || !slices.Equal(prev.Filter, next.Filter)
}

// Diff renders an `iptables-restore --noflush` payload that turns the rules
// of prev into those of next: chains that are new or whose rules changed,
// the dispatch chains (always), and deletion of chains next no longer has.
// A nil prev renders every chain of next. When both come from the same
// ServiceCache, Services whose rules were reused are skipped without
// comparing their chains.
func Diff(prev, next *ServiceRules) []byte {
	if prev == nil {
		prev = &ServiceRules{}
	}
	if prev.pieces != nil && next.pieces != nil {
		return diffPieces(prev, next)
	}
	var buf bytes.Buffer
	for _, t := range []struct {
		name       string
		prev, next []RenderedChain
	}{{TableNAT, prev.NAT, next.NAT}, {TableFilter, prev.Filter, next.Filter}} {
		old := make(map[string]string, len(t.prev))
		for _, c := range t.prev {
			old[c.Name] = c.Rules
		}
		var changed []RenderedChain
		for _, c := range t.next {
			rules, ok := old[c.Name]
			delete(old, c.Name)
			if ok && rules == c.Rules && !alwaysRewritten(c.Name) {
				continue
			}
			changed = append(changed, c)
		}
		var stale []string
		for _, c := range t.prev { // prev order keeps the payload deterministic
			if _, ok := old[c.Name]; ok {
				stale = append(stale, c.Name)
			}
		}
		writeTable(&buf, t.name, changed, stale)
	}
	return buf.Bytes()
}

// diffPieces is Diff for rules built per Service: the fixed chains are
// compared, and only the chains of Services whose piece differs.
func diffPieces(prev, next *ServiceRules) []byte {
	var natChanged, filterChanged []RenderedChain
	var natStale, filterStale []string
	fixed := func(prevT, nextT []RenderedChain, nPrev, nNext int, changed *[]RenderedChain, stale *[]string) {
		old := make(map[string]string, nPrev)
		for _, c := range prevT[:nPrev] {
			old[c.Name] = c.Rules
		}
		for _, c := range nextT[:nNext] {
			rules, ok := old[c.Name]
			delete(old, c.Name)
			if !ok || rules != c.Rules || alwaysRewritten(c.Name) {
				*changed = append(*changed, c)
			}
		}
		for _, c := range prevT[:nPrev] {
			if _, ok := old[c.Name]; ok {
				*stale = append(*stale, c.Name)
			}
		}
	}
	fixed(prev.NAT, next.NAT, prev.fixedNAT, next.fixedNAT, &natChanged, &natStale)
	fixed(prev.Filter, next.Filter, len(prev.Filter), len(next.Filter), &filterChanged, &filterStale)
	for _, k := range next.order {
		np, pp := next.pieces[k], prev.pieces[k]
		if np == pp {
			continue
		}
		old := map[string]string{}
		if pp != nil {
			for _, c := range pp.chains {
				old[c.Name] = c.Rules
			}
		}
		for _, c := range np.chains {
			rules, ok := old[c.Name]
			delete(old, c.Name)
			if !ok || rules != c.Rules {
				natChanged = append(natChanged, c)
			}
		}
		if pp != nil {
			for _, c := range pp.chains {
				if _, ok := old[c.Name]; ok {
					natStale = append(natStale, c.Name)
				}
			}
		}
	}
	for _, k := range prev.order {
		if _, ok := next.pieces[k]; !ok {
			for _, c := range prev.pieces[k].chains {
				natStale = append(natStale, c.Name)
			}
		}
	}
	var buf bytes.Buffer
	writeTable(&buf, TableNAT, natChanged, natStale)
	writeTable(&buf, TableFilter, filterChanged, filterStale)
	return buf.Bytes()
}

// writeTable writes one table: declarations (which flush), rules, then the
// stale chains flushed and deleted after nothing of ours refers to them.
func writeTable(buf *bytes.Buffer, table string, chains []RenderedChain, stale []string) {
	if len(chains) == 0 && len(stale) == 0 {
		return
	}
	fmt.Fprintf(buf, "*%s\n", table)
	for _, c := range chains {
		fmt.Fprintf(buf, ":%s - [0:0]\n", c.Name)
	}
	for _, c := range stale {
		fmt.Fprintf(buf, ":%s - [0:0]\n", c)
	}
	for _, c := range chains {
		buf.WriteString(c.Rules)
	}
	for _, c := range stale {
		fmt.Fprintf(buf, "-X %s\n", c)
	}
	buf.WriteString("COMMIT\n")
}
