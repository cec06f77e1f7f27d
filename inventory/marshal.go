package inventory

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// StateComment is the head comment of a state: key that clusterctl adds.
const StateComment = "# managed by clusterctl: do not edit"

// Marshal renders the inventory as YAML, as Save writes it. It is pure.
//
// For a parsed inventory, everything outside state: is written as it was
// parsed, comments and key order included (yaml.v3 normalises indentation to
// two spaces). The state: subtree is regenerated from State, with host keys
// sorted; it is appended at the end when the file had none and State is not
// empty. An inventory built in code is written whole, leaving out fields that
// hold their default.
func (inv *Inventory) Marshal() ([]byte, error) {
	var doc *yaml.Node
	if inv.doc != nil {
		doc = withState(inv.doc, inv.State)
	} else {
		doc = inv.document()
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	return buf.Bytes(), nil
}

// withState returns a shallow copy of doc whose state: value is s. doc itself
// is not modified.
func withState(doc *yaml.Node, s State) *yaml.Node {
	d := *doc
	root := *resolve(d.Content[0])
	root.Content = slices.Clone(root.Content)
	d.Content = []*yaml.Node{&root}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "state" {
			root.Content[i+1] = stateNode(s)
			return &d
		}
	}
	if s.Generation != 0 || len(s.Hosts) > 0 || len(s.Objects) > 0 {
		k := strNode("state")
		k.HeadComment = StateComment
		root.Content = append(root.Content, k, stateNode(s))
	}
	return &d
}

func stateNode(s State) *yaml.Node {
	m := mapNode("generation", intNode(s.Generation))
	if len(s.Hosts) > 0 {
		add(m, "hosts", hostsNode(s.Hosts))
	}
	// PutObject only accepts JSON objects, so encoding cannot fail.
	if objs, err := objectsNode(s.Objects); err == nil && len(s.Objects) > 0 {
		add(m, "objects", objs)
	}
	return m
}

func hostsNode(states map[string]HostState) *yaml.Node {
	hosts := mapNode()
	for _, name := range slices.Sorted(maps.Keys(states)) {
		hs := states[name]
		h := mapNode()
		if hs.PodCIDR.IsValid() {
			add(h, "podCIDR", strNode(hs.PodCIDR.String()))
		}
		if hs.InternalIP.IsValid() {
			add(h, "internalIP", strNode(hs.InternalIP.String()))
		}
		if !hs.JoinedAt.IsZero() {
			add(h, "joinedAt", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp",
				Value: hs.JoinedAt.UTC().Format(time.RFC3339)})
		}
		if hs.AgentletSHA256 != "" {
			add(h, "agentletSHA256", strNode(hs.AgentletSHA256))
		}
		if hs.SpecSHA256 != "" {
			add(h, "specSHA256", strNode(hs.SpecSHA256))
		}
		if hs.Unschedulable {
			add(h, "unschedulable", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		}
		if !hs.NotReadySince.IsZero() {
			add(h, "notReadySince", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp",
				Value: hs.NotReadySince.UTC().Format(time.RFC3339)})
		}
		add(hosts, name, h)
	}
	return hosts
}

// document builds a whole document for an inventory made in code.
func (inv *Inventory) document() *yaml.Node {
	c, s := inv.Cluster, inv.SSH
	cluster := mapNode("name", strNode(c.Name))
	addIf(cluster, "podCIDR", prefixNode(c.PodCIDR), c.PodCIDR.IsValid() && c.PodCIDR.String() != DefaultPodCIDR)
	addIf(cluster, "nodeCIDRMaskSize", intNode(int64(c.NodeCIDRMaskSize)), c.NodeCIDRMaskSize != 0 && c.NodeCIDRMaskSize != DefaultNodeCIDRMaskSize)
	addIf(cluster, "serviceCIDR", prefixNode(c.ServiceCIDR), c.ServiceCIDR.IsValid() && c.ServiceCIDR.String() != DefaultServiceCIDR)
	addIf(cluster, "domain", strNode(c.Domain), c.Domain != "" && c.Domain != DefaultDomain)
	addIf(cluster, "registries", registriesNode(c.Registries), len(c.Registries) > 0)
	addIf(cluster, "podEvictionTimeout", strNode(c.PodEvictionTimeout.String()), c.PodEvictionTimeout != 0 && c.PodEvictionTimeout != DefaultPodEvictionTimeout)

	ssh := mapNode()
	addIf(ssh, "user", strNode(s.User), s.User != "" && s.User != DefaultSSHUser)
	addIf(ssh, "port", intNode(int64(s.Port)), s.Port != 0 && s.Port != DefaultSSHPort)
	addIf(ssh, "identityFile", strNode(s.IdentityFile), s.IdentityFile != "")
	addIf(ssh, "knownHosts", strNode(s.KnownHosts), s.KnownHosts != "" && s.KnownHosts != DefaultKnownHosts)
	addIf(ssh, "useAgent", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"}, !s.UseAgent)
	addIf(ssh, "proxyJump", strNode(s.ProxyJump), s.ProxyJump != "")
	addIf(ssh, "sudo", strNode(string(s.Sudo)), s.Sudo != "" && s.Sudo != SudoAuto)
	addIf(ssh, "connectTimeout", strNode(s.ConnectTimeout.String()), s.ConnectTimeout != 0 && s.ConnectTimeout != DefaultConnectTimeout)
	addIf(ssh, "sshConfig", strNode(s.SSHConfig), s.SSHConfig != "" && s.SSHConfig != DefaultSSHConfig)

	hosts := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, h := range inv.Hosts {
		n := mapNode("name", strNode(h.Name), "address", strNode(h.Address))
		addIf(n, "port", intNode(int64(h.Port)), h.Port != 0)
		addIf(n, "user", strNode(h.User), h.User != "")
		if len(h.Labels) > 0 {
			labels := mapNode()
			labels.Style = yaml.FlowStyle
			for _, k := range slices.Sorted(maps.Keys(h.Labels)) {
				add(labels, k, strNode(h.Labels[k]))
			}
			add(n, "labels", labels)
		}
		if len(h.Taints) > 0 {
			taints := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			for _, t := range h.Taints {
				tn := mapNode("key", strNode(t.Key))
				addIf(tn, "value", strNode(t.Value), t.Value != "")
				add(tn, "effect", strNode(string(t.Effect)))
				tn.Style = yaml.FlowStyle
				taints.Content = append(taints.Content, tn)
			}
			add(n, "taints", taints)
		}
		hosts.Content = append(hosts.Content, n)
	}

	apiVersion, kind := inv.APIVersion, inv.Kind
	if apiVersion == "" {
		apiVersion = APIVersion
	}
	if kind == "" {
		kind = Kind
	}
	root := mapNode("apiVersion", strNode(apiVersion), "kind", strNode(kind), "cluster", cluster)
	addIf(root, "ssh", ssh, len(ssh.Content) > 0)
	add(root, "hosts", hosts)
	if inv.State.Generation != 0 || len(inv.State.Hosts) > 0 {
		k := strNode("state")
		k.HeadComment = StateComment
		root.Content = append(root.Content, k, stateNode(inv.State))
	}
	return &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
}

func strNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func intNode(i int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(i, 10)}
}

func prefixNode(p netip.Prefix) *yaml.Node { return strNode(p.String()) }

// mapNode returns a mapping node holding kv, alternating keys and values.
func mapNode(kv ...any) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(kv); i += 2 {
		add(m, kv[i].(string), kv[i+1].(*yaml.Node))
	}
	return m
}

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, strNode(key), v)
}

func addIf(m *yaml.Node, key string, v *yaml.Node, cond bool) {
	if cond {
		add(m, key, v)
	}
}
