package manifest

import (
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Field paths: built while walking objects and YAML nodes, rendered as
// spec.containers[0].resources.limits.memory, and mapped back to lines.

type elemKind uint8

const (
	fieldElem elemKind = iota // a struct field: .name
	indexElem                 // a list element: [3]
	keyElem                   // a map key: .key, or [key] when it has dots or other punctuation
)

type pathElem struct {
	kind  elemKind
	name  string // field name or map key
	index int
}

// path is a field path. Its methods never modify the receiver's backing
// array, so paths can be extended freely.
type path []pathElem

func (p path) field(name string) path {
	return append(p[:len(p):len(p)], pathElem{kind: fieldElem, name: name})
}

func (p path) index(i int) path {
	return append(p[:len(p):len(p)], pathElem{kind: indexElem, index: i})
}

func (p path) key(k string) path {
	return append(p[:len(p):len(p)], pathElem{kind: keyElem, name: k})
}

// join returns p followed by q.
func (p path) join(q path) path {
	return append(p[:len(p):len(p)], q...)
}

// isPlainKey reports whether a map key can be shown as .key rather than
// [key]: it has only letters, digits, '-' and '_', and does not start with
// '-'.
func isPlainKey(k string) bool {
	if k == "" || k[0] == '-' {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// hasPrefix reports whether q starts with all of p, taking struct fields and
// map keys of the same name as equal (paths built from YAML nodes cannot tell
// them apart).
func (p path) hasPrefix(q path) bool {
	if len(q) > len(p) {
		return false
	}
	for i, e := range q {
		f := p[i]
		if (e.kind == indexElem) != (f.kind == indexElem) || e.name != f.name || e.index != f.index {
			return false
		}
	}
	return true
}

func (p path) String() string {
	var b strings.Builder
	for i, e := range p {
		switch {
		case e.kind == indexElem:
			b.WriteString("[" + strconv.Itoa(e.index) + "]")
		case e.kind == keyElem && !isPlainKey(e.name):
			b.WriteString("[" + e.name + "]")
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e.name)
		}
	}
	return b.String()
}

// parseFieldPath parses a path as the JSON decoder reports it, e.g.
// spec.containers[0].imagePullPolicyy or spec.containers.ports.containerPort.
func parseFieldPath(s string) path {
	var p path
	for _, part := range strings.Split(s, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			p = p.field(name)
		}
		for rest != "" {
			var inside string
			inside, rest, _ = strings.Cut(rest, "]")
			rest = strings.TrimPrefix(rest, "[")
			if i, err := strconv.Atoi(inside); err == nil {
				p = p.index(i)
			} else {
				p = p.key(inside)
			}
		}
	}
	return p
}

// resolveAlias follows alias nodes and unwraps a document node.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && i < 100; i++ {
		switch n.Kind {
		case yaml.AliasNode:
			n = n.Alias
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		default:
			return n
		}
	}
	return n
}

// isMergeKey reports whether a mapping key is the YAML merge key "<<".
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style == 0 && (k.Tag == "!!merge" || k.Tag == "")
}

// mapEntry finds key name in mapping m, looking into merged mappings ("<<")
// when it is not set directly. It returns the key and value nodes.
func mapEntry(m *yaml.Node, name string) (key, value *yaml.Node) {
	return mapEntryDepth(m, name, 0)
}

func mapEntryDepth(m *yaml.Node, name string, depth int) (key, value *yaml.Node) {
	m = resolveAlias(m)
	if m == nil || m.Kind != yaml.MappingNode || depth > 10 {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == name && !isMergeKey(k) {
			return k, m.Content[i+1]
		}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if !isMergeKey(m.Content[i]) {
			continue
		}
		merged := resolveAlias(m.Content[i+1])
		sources := []*yaml.Node{merged}
		if merged != nil && merged.Kind == yaml.SequenceNode {
			sources = merged.Content
		}
		for _, src := range sources {
			if k, v := mapEntryDepth(src, name, depth+1); k != nil {
				return k, v
			}
		}
	}
	return nil, nil
}

// locate walks root along p and returns the line of the deepest node found
// (for a map entry, the line of its key) and the part of p that was found.
//
// With loose set, it also copes with the paths of JSON type errors, which
// leave out list indices and include the names of embedded Go structs: a
// field name applied to a list picks the first element that has that key,
// and a capitalised name that is not a key is skipped. The returned path then
// has the indices filled in.
func locate(root *yaml.Node, p path, loose bool) (int, path) {
	n := resolveAlias(root)
	if n == nil {
		return 0, nil
	}
	line := n.Line
	var found path
	for _, e := range p {
		n = resolveAlias(n)
		if n == nil {
			break
		}
		switch {
		case e.kind == indexElem:
			if n.Kind != yaml.SequenceNode || e.index < 0 || e.index >= len(n.Content) {
				return line, found
			}
			n = n.Content[e.index]
			line = n.Line
			found = found.index(e.index)
		case n.Kind == yaml.MappingNode:
			k, v := mapEntry(n, e.name)
			if k == nil {
				if loose && startsUpper(e.name) {
					continue
				}
				return line, found
			}
			n, line = v, k.Line
			found = append(found[:len(found):len(found)], e)
		case loose && n.Kind == yaml.SequenceNode:
			i, k, v := firstWithKey(n, e.name)
			if k == nil {
				return line, found
			}
			n, line = v, k.Line
			found = found.index(i)
			found = append(found[:len(found):len(found)], e)
		default:
			return line, found
		}
	}
	return line, found
}

// firstWithKey returns the first element of sequence s that is a mapping
// with key name.
func firstWithKey(s *yaml.Node, name string) (int, *yaml.Node, *yaml.Node) {
	for i, item := range s.Content {
		if k, v := mapEntry(item, name); k != nil {
			return i, k, v
		}
	}
	return 0, nil, nil
}

func startsUpper(s string) bool {
	for _, r := range s {
		return unicode.IsUpper(r)
	}
	return false
}
