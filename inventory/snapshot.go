package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// SnapshotKind is the kind of an inventory snapshot (its apiVersion is
// APIVersion).
const SnapshotKind = "InventorySnapshot"

// Snapshot is the part of an inventory that clusterctl writes: everything
// under state: (the generation; each host's pod CIDR, internal IP, checksums
// and cordon; every stored object, which carries the allocated cluster IPs
// and node ports, the pods' bindings, the controllers' revisions and
// statuses), plus the cluster settings and hosts it was written against, so
// that Restore can report where the receiving inventory differs.
//
// Hosts keep a copy of the latest snapshot, so that a lost or stale
// inventory can be rebuilt from them (`clusterctl recover`). It holds the
// cluster's Secrets.
type Snapshot struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Cluster    SnapshotCluster `json:"cluster"`
	// Hosts are the inventory's hosts when the snapshot was taken.
	Hosts []SnapshotHost `json:"hosts,omitempty"`
	State SnapshotState  `json:"state"`
}

// SnapshotCluster is the cluster settings the snapshot's allocations were
// made in.
type SnapshotCluster struct {
	Name             string       `json:"name"`
	PodCIDR          netip.Prefix `json:"podCIDR"`
	NodeCIDRMaskSize int          `json:"nodeCIDRMaskSize"`
	ServiceCIDR      netip.Prefix `json:"serviceCIDR"`
	Domain           string       `json:"domain"`
}

// SnapshotHost is one host of the inventory the snapshot was taken from.
type SnapshotHost struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// SnapshotState is the inventory's state: section.
type SnapshotState struct {
	Generation int64                `json:"generation"`
	Hosts      map[string]HostState `json:"hosts,omitempty"`
	// Objects are the stored objects as JSON, sorted by kind, namespace and
	// name.
	Objects []json.RawMessage `json:"objects,omitempty"`
}

// Snapshot returns the inventory's managed parts. It shares the objects'
// JSON with inv; neither side modifies it.
func (inv *Inventory) Snapshot() *Snapshot {
	c := inv.Cluster
	s := &Snapshot{
		APIVersion: APIVersion,
		Kind:       SnapshotKind,
		Cluster:    SnapshotCluster{Name: c.Name, PodCIDR: c.PodCIDR, NodeCIDRMaskSize: c.NodeCIDRMaskSize, ServiceCIDR: c.ServiceCIDR, Domain: c.Domain},
		State:      SnapshotState{Generation: inv.State.Generation, Hosts: maps.Clone(inv.State.Hosts)},
	}
	for _, h := range inv.Hosts {
		s.Hosts = append(s.Hosts, SnapshotHost{Name: h.Name, Address: h.Address})
	}
	for _, o := range inv.State.Objects {
		s.State.Objects = append(s.State.Objects, json.RawMessage(o.JSON))
	}
	return s
}

// Marshal encodes the snapshot as compact JSON. Equal snapshots encode to
// equal bytes.
func (s *Snapshot) Marshal() ([]byte, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode inventory snapshot: %w", err)
	}
	return data, nil
}

// ParseSnapshot decodes a snapshot written by Marshal. It checks the
// envelope and that every object is a JSON object naming its apiVersion,
// kind and metadata.name; Restore checks the rest as Parse would.
func ParseSnapshot(data []byte) (*Snapshot, error) {
	var s Snapshot
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode inventory snapshot: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode inventory snapshot: data after the snapshot")
	}
	var errs []error
	if s.APIVersion != APIVersion || s.Kind != SnapshotKind {
		errs = append(errs, fmt.Errorf("unsupported apiVersion %q and kind %q (want %q, %q)", s.APIVersion, s.Kind, APIVersion, SnapshotKind))
	}
	if s.State.Generation < 0 {
		errs = append(errs, fmt.Errorf("state.generation: must not be negative (got %d)", s.State.Generation))
	}
	for i, raw := range s.State.Objects {
		if _, err := snapshotObject(raw); err != nil {
			errs = append(errs, fmt.Errorf("state.objects[%d]: %w", i, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid inventory snapshot:\n%w", err)
	}
	return &s, nil
}

// snapshotObject turns one snapshot object into an Object.
func snapshotObject(raw json.RawMessage) (Object, error) {
	// Numbers stay as written (float64 would round integers past 2^53).
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return Object{}, errors.New("not a JSON object")
	}
	meta, _ := m["metadata"].(map[string]any)
	o := Object{}
	o.APIVersion, _ = m["apiVersion"].(string)
	o.Kind, _ = m["kind"].(string)
	o.Name, _ = meta["name"].(string)
	o.Namespace, _ = meta["namespace"].(string)
	if o.APIVersion == "" || o.Kind == "" || o.Name == "" {
		return Object{}, errors.New("an object needs apiVersion, kind and metadata.name")
	}
	data, err := json.Marshal(m)
	if err != nil {
		return Object{}, fmt.Errorf("encode object: %w", err)
	}
	o.JSON = data
	return o, nil
}

// Restore replaces the inventory's State with the snapshot's, leaving
// everything the user wrote (and its comments) as it is; Save then writes
// it. The result must be a valid inventory: the state is checked exactly as
// Parse checks a file (pod CIDRs inside the cluster's, no duplicate objects,
// ...), and on error nothing changes.
//
// It returns the differences between the snapshot's view of the cluster
// and this inventory that are worth telling the user: hosts recorded in the
// snapshot but missing from hosts:, hosts with no recorded state, cluster
// settings that differ from those the allocations were made in.
func (inv *Inventory) Restore(s *Snapshot) ([]string, error) {
	state := State{Generation: s.State.Generation, Hosts: maps.Clone(s.State.Hosts)}
	for i, raw := range s.State.Objects {
		o, err := snapshotObject(raw)
		if err != nil {
			return nil, fmt.Errorf("restore snapshot: state.objects[%d]: %w", i, err)
		}
		state.Objects = append(state.Objects, o)
	}
	slices.SortFunc(state.Objects, compareObjects)
	for i := 1; i < len(state.Objects); i++ {
		if o := state.Objects[i]; compareObjects(state.Objects[i-1], o) == 0 {
			return nil, fmt.Errorf("restore snapshot: duplicate object %s %s/%s", o.Kind, o.Namespace, o.Name)
		}
	}

	// Render the inventory as Save would and parse it back: the state gets
	// every check a file gets, and the objects their line numbers.
	candidate := *inv
	candidate.State = state
	data, err := candidate.Marshal()
	if err != nil {
		return nil, fmt.Errorf("restore snapshot: %w", err)
	}
	parsed, err := Parse(inv.Path, data)
	if err != nil {
		return nil, fmt.Errorf("restore snapshot: the result would not be a valid inventory:\n%w", err)
	}
	if got := parsed.State; got.Generation != state.Generation || len(got.Hosts) != len(state.Hosts) || len(got.Objects) != len(state.Objects) {
		return nil, fmt.Errorf("restore snapshot: the written state would lose data (generation %d, %d hosts, %d objects written as %d, %d, %d)",
			state.Generation, len(state.Hosts), len(state.Objects), got.Generation, len(got.Hosts), len(got.Objects))
	}
	inv.State, inv.Warnings = parsed.State, parsed.Warnings
	return s.differences(inv), nil
}

// differences compares the snapshot's view of the cluster with inv.
func (s *Snapshot) differences(inv *Inventory) []string {
	var out []string
	c, sc := inv.Cluster, s.Cluster
	field := func(name string, was, is any) {
		if fmt.Sprint(was) != fmt.Sprint(is) {
			out = append(out, fmt.Sprintf("cluster.%s is %v here but %v in the snapshot", name, is, was))
		}
	}
	field("name", sc.Name, c.Name)
	field("podCIDR", sc.PodCIDR, c.PodCIDR)
	field("nodeCIDRMaskSize", sc.NodeCIDRMaskSize, c.NodeCIDRMaskSize)
	field("serviceCIDR", sc.ServiceCIDR, c.ServiceCIDR)
	field("domain", sc.Domain, c.Domain)

	listed := map[string]SnapshotHost{}
	for _, h := range s.Hosts {
		listed[h.Name] = h
	}
	missing := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(s.State.Hosts)) {
		if _, ok := inv.Host(name); !ok {
			missing[name] = true
		}
	}
	for _, h := range s.Hosts {
		if _, ok := inv.Host(h.Name); !ok {
			missing[h.Name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(missing)) {
		where := ""
		if h, ok := listed[name]; ok && h.Address != "" {
			where = " (" + h.Address + ")"
		}
		out = append(out, fmt.Sprintf("host %s%s is in the snapshot but not in hosts: its state is kept and its pods stay bound to it; add it back or remove its workloads", name, where))
	}
	for _, h := range inv.Hosts {
		if _, ok := s.State.Hosts[h.Name]; !ok {
			out = append(out, fmt.Sprintf("host %s has no recorded state in the snapshot: run clusterctl up for it", h.Name))
			continue
		}
		if was, ok := listed[h.Name]; ok && was.Address != "" && normalizeAddress(was.Address) != normalizeAddress(h.Address) {
			out = append(out, fmt.Sprintf("host %s has address %s here but %s in the snapshot", h.Name, h.Address, was.Address))
		}
	}
	return out
}

// ObjectCounts counts the snapshot's objects by kind, for summaries.
func (s *Snapshot) ObjectCounts() map[string]int {
	out := map[string]int{}
	for _, raw := range s.State.Objects {
		var head struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(raw, &head) == nil {
			out[head.Kind]++
		}
	}
	return out
}
