package inventory

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Object is one Kubernetes object stored in the inventory's state.objects,
// kept opaque here: the manifest package decodes and encodes it. Objects are
// written as YAML mappings with sorted keys, ordered by kind, namespace and
// name, so git diffs of the inventory stay small.
type Object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// JSON is the whole object as JSON.
	JSON []byte `json:"-"`
	// Line is where the object starts in the inventory file (0 when it was
	// not read from a file).
	Line int `json:"-"`
}

func (o Object) key() string { return o.Kind + "/" + o.Namespace + "/" + o.Name }

func compareObjects(a, b Object) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// Objects returns the stored objects, sorted by kind, namespace and name.
func (inv *Inventory) Objects() []Object { return inv.State.Objects }

// Object returns the stored object of that kind, namespace and name.
func (inv *Inventory) Object(kind, namespace, name string) (Object, bool) {
	i, ok := slices.BinarySearchFunc(inv.State.Objects, Object{Kind: kind, Namespace: namespace, Name: name}, compareObjects)
	if !ok {
		return Object{}, false
	}
	return inv.State.Objects[i], true
}

// PutObject stores o, replacing an object with the same kind, namespace and
// name. o.JSON must be a JSON object.
func (inv *Inventory) PutObject(o Object) error {
	var m map[string]any
	if err := json.Unmarshal(o.JSON, &m); err != nil {
		return fmt.Errorf("store object %s %s/%s: %w", o.Kind, o.Namespace, o.Name, err)
	}
	i, ok := slices.BinarySearchFunc(inv.State.Objects, o, compareObjects)
	if ok {
		inv.State.Objects[i] = o
		return nil
	}
	inv.State.Objects = slices.Insert(inv.State.Objects, i, o)
	return nil
}

// DeleteObject removes the object and reports whether it was there.
func (inv *Inventory) DeleteObject(kind, namespace, name string) bool {
	i, ok := slices.BinarySearchFunc(inv.State.Objects, Object{Kind: kind, Namespace: namespace, Name: name}, compareObjects)
	if ok {
		inv.State.Objects = slices.Delete(inv.State.Objects, i, i+1)
	}
	return ok
}

// objects parses state.objects: a sequence of mappings with apiVersion, kind
// and metadata.name (metadata.namespace optional). Contents are checked by
// the manifest package when the CLI uses them.
func (p *parser) objects(v value) []Object {
	if !p.kind(v, yaml.SequenceNode) {
		return nil
	}
	var out []Object
	seen := map[string]int{}
	for i, item := range v.n.Content {
		iv := v.child(item, v.at(item.Line), fmt.Sprintf("%s[%d]", v.path, i))
		if !p.kind(iv, yaml.MappingNode) {
			continue
		}
		var raw any
		if err := iv.n.Decode(&raw); err != nil {
			p.addf(iv.line, iv.path, "%v", err)
			continue
		}
		m, _ := raw.(map[string]any)
		meta, _ := m["metadata"].(map[string]any)
		o := Object{Line: iv.line}
		o.APIVersion, _ = m["apiVersion"].(string)
		o.Kind, _ = m["kind"].(string)
		o.Name, _ = meta["name"].(string)
		o.Namespace, _ = meta["namespace"].(string)
		if o.APIVersion == "" || o.Kind == "" || o.Name == "" {
			p.addf(iv.line, iv.path, "an object needs apiVersion, kind and metadata.name")
			continue
		}
		data, err := json.Marshal(raw)
		if err != nil {
			p.addf(iv.line, iv.path, "not representable as JSON: %v", err)
			continue
		}
		o.JSON = data
		if first, dup := seen[o.key()]; dup {
			p.addf(iv.line, iv.path, "duplicate object %s %s/%s (first at line %d)", o.Kind, o.Namespace, o.Name, first)
			continue
		}
		seen[o.key()] = iv.line
		out = append(out, o)
	}
	slices.SortFunc(out, compareObjects)
	return out
}

// objectsNode renders objects as a YAML sequence of mappings (keys sorted).
func objectsNode(objs []Object) (*yaml.Node, error) {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, o := range objs {
		// Numbers stay as written: through float64, integers past 2^53
		// would change (inventory/testdata/fuzz/FuzzParse/object-big-int).
		dec := json.NewDecoder(bytes.NewReader(o.JSON))
		dec.UseNumber()
		var raw any
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("encode object %s %s/%s: %w", o.Kind, o.Namespace, o.Name, err)
		}
		n := &yaml.Node{}
		if err := n.Encode(yamlNumbers(raw)); err != nil {
			return nil, fmt.Errorf("encode object %s %s/%s: %w", o.Kind, o.Namespace, o.Name, err)
		}
		seq.Content = append(seq.Content, n)
	}
	return seq, nil
}

// yamlNumber is a JSON number written to YAML exactly as it is.
type yamlNumber json.Number

// MarshalYAML writes an integer as !!int and anything else (a fraction, an
// exponent, -0, an integer past 64 bits) as !!float, keeping the digits.
func (n yamlNumber) MarshalYAML() (any, error) {
	v := string(n)
	_, errInt := strconv.ParseInt(v, 10, 64)
	_, errUint := strconv.ParseUint(v, 10, 64)
	if (errInt == nil || errUint == nil) && v != "-0" {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: v}, nil
	}
	if !strings.ContainsAny(v, ".eE") {
		v += ".0" // -0 as a YAML int would lose its sign
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: v}, nil
}

// yamlNumbers replaces the json.Numbers in v (decoded with UseNumber) by
// yamlNumbers.
func yamlNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		return yamlNumber(t)
	case map[string]any:
		for k, e := range t {
			t[k] = yamlNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = yamlNumbers(e)
		}
	}
	return v
}
