package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	sigsyaml "sigs.k8s.io/yaml"
)

// Object is one decoded, defaulted and validated Kubernetes object.
type Object struct {
	File       string // as given ("-" for stdin)
	Line       int    // line where the document (or List item) starts
	APIVersion string
	Kind       string
	Namespace  string // as written; "" when unset (the caller applies -n / "default"); always "" for a Namespace
	Name       string
	// Obj is the typed, defaulted object with apiVersion and kind set:
	// *corev1.Pod, *corev1.ConfigMap, *corev1.Secret or *corev1.Namespace.
	Obj runtime.Object
}

// Decode decodes, defaults and validates the manifests in data, which came
// from filename (used only in messages and Object.File). It returns the
// objects in the order they appear, or a *ValidationError listing every
// problem and no objects. Empty documents are skipped, so a file of
// comments decodes to no objects and no error.
//
// Decode is pure: it reads no files and never looks at the clock.
func Decode(filename string, data []byte) ([]Object, error) {
	d := newDecoder()
	objs, problems := d.decodeFile(filename, data)
	problems = append(problems, duplicates(objs)...)
	return finish(objs, problems)
}

// finish returns the objects, or the problems as a *ValidationError.
func finish(objs []decoded, problems []Problem) ([]Object, error) {
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: sortProblems(problems)}
	}
	out := make([]Object, len(objs))
	for i, o := range objs {
		out[i] = o.Object
	}
	return out, nil
}

// decoder holds what decoding needs; one per Decode, Read or DecodeStored
// call, so nothing is shared between calls.
type decoder struct {
	scheme       *runtime.Scheme
	deserializer runtime.Decoder
	types        typeCache
	stored       bool // decoding objects the CLI stored: keep system fields
}

func newDecoder() *decoder {
	scheme, deserializer := sharedScheme()
	return &decoder{scheme: scheme, deserializer: deserializer, types: make(typeCache)}
}

// sharedScheme is the scheme and strict deserializer every decoder uses,
// built once: building them per object was most of the cost of loading a
// large inventory. Both are safe for concurrent use once built.
var sharedScheme = sync.OnceValues(func() (*runtime.Scheme, runtime.Decoder) {
	scheme := newScheme()
	return scheme, serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
})

// decoded is an Object plus what duplicate detection needs to point at it.
type decoded struct {
	Object
	nameLine  int    // line of metadata.name (or of the object)
	nameField string // path of metadata.name, e.g. items[2].metadata.name
}

// decodeFile decodes every document of one file. It returns the objects that
// decoded cleanly and every problem found; the caller rejects the whole input
// if there are problems.
func (d *decoder) decodeFile(file string, data []byte) ([]decoded, []Problem) {
	chunks, problems := splitDocuments(file, data)
	var objs []decoded
	for _, c := range chunks {
		o, ps := d.decodeChunk(file, c)
		objs = append(objs, o...)
		problems = append(problems, ps...)
	}
	return objs, problems
}

// decodeChunk decodes one document.
func (d *decoder) decodeChunk(file string, c chunk) ([]decoded, []Problem) {
	var doc yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(c.data)).Decode(&doc)
	if errors.Is(err, io.EOF) {
		return nil, nil // empty document
	}
	if err != nil && c.json {
		// Valid JSON that yaml.v3 cannot read (rare): decode it all the
		// same, locating every problem at the document's first line.
		doc, err = jsonNode(c.data)
	}
	if err != nil {
		return nil, []Problem{yamlSyntaxProblem(file, c, err)}
	}
	root := resolveAlias(&doc)
	if root == nil || root.Kind == yaml.ScalarNode && resolveScalar(root, c.json).kind == nullScalar {
		return nil, nil // empty document
	}
	off := c.line - 1
	if root.Kind != yaml.MappingNode {
		return nil, []Problem{{File: file, Line: root.Line + off,
			Message: "expected a Kubernetes object (a map with apiVersion, kind and metadata), got " + describe(root, resolveScalar(root, c.json))}}
	}
	in := objectInput{file: file, root: root, off: off, raw: c.data, json: c.json, rawOff: off}
	if !c.json && bytes.HasPrefix(bytes.TrimLeft(c.data, " \t\r\n"), []byte("{")) {
		// Flow-style YAML such as {apiVersion: v1, ...}, which the
		// deserializer would take for JSON: hand it JSON.
		raw, err := sigsyaml.YAMLToJSON(c.data)
		if err != nil {
			return nil, []Problem{{File: file, Line: c.line, Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
		}
		in.raw, in.rawOff = raw, -1
	}
	return d.decodeObject(in, nil, false)
}

// objectInput is one object to decode: a document's root or a List item.
type objectInput struct {
	file   string
	root   *yaml.Node // the object's mapping node
	off    int        // added to node lines to get file lines
	raw    []byte     // what the deserializer decodes
	json   bool       // the document is JSON
	rawOff int        // added to lines in deserializer errors; -1 when raw is not the file's text
}

// sink collects the problems of one object, locating field paths with the
// object's nodes.
type sink struct {
	in       *objectInput
	prefix   path // where the object is in its document: nil, or items[i]
	problems []Problem
	// suppress holds the paths of values that had the wrong type and were
	// set to null to decode the rest; problems at or below them would only
	// repeat the type problem ("required").
	suppress []path
	// stored is set when decoding what the CLI stored: fields the CLI
	// generated itself (a Job's selector) are fine there.
	stored bool
}

// objectLine is the file line where the object starts.
func (s *sink) objectLine() int { return s.in.root.Line + s.in.off }

// line returns the file line of path p (or of its deepest part that is
// written in the document).
func (s *sink) line(p path) int {
	l, _ := locate(s.in.root, p, false)
	return l + s.in.off
}

// scalarAt returns the text of the scalar at path p as written, or "".
func (s *sink) scalarAt(p path) string {
	n := resolveAlias(s.in.root)
	for _, e := range p {
		if n == nil {
			return ""
		}
		switch {
		case e.kind == indexElem && n.Kind == yaml.SequenceNode && e.index < len(n.Content):
			n = resolveAlias(n.Content[e.index])
		case e.kind != indexElem && n.Kind == yaml.MappingNode:
			_, v := mapEntry(n, e.name)
			n = resolveAlias(v)
		default:
			return ""
		}
	}
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// at reports a problem at path p.
func (s *sink) at(p path, format string, a ...any) {
	s.atLine(s.line(p), p, format, a...)
}

// suppressed reports whether problems at p are suppressed.
func (s *sink) suppressed(p path) bool {
	for _, q := range s.suppress {
		if p.hasPrefix(q) {
			return true
		}
	}
	return false
}

// atLine reports a problem at path p on the given file line.
func (s *sink) atLine(line int, p path, format string, a ...any) {
	if s.suppressed(p) {
		return
	}
	s.problems = append(s.problems, Problem{
		File:    s.in.file,
		Line:    line,
		Field:   s.prefix.join(p).String(),
		Message: fmt.Sprintf(format, a...),
	})
}

func (d *decoder) decodeObject(in objectInput, prefix path, inList bool) ([]decoded, []Problem) {
	s := &sink{in: &in, prefix: prefix, stored: d.stored}
	hadDups := s.duplicateKeys()
	apiVersion, kind, ok := s.typeMeta()
	if !ok {
		return nil, s.problems
	}
	if apiVersion == "v1" && kind == "List" {
		if inList {
			s.atLine(s.objectLine(), path{}.field("kind"), "a List inside a List is not supported")
			return nil, s.problems
		}
		return d.decodeList(s, hadDups)
	}
	if !isSupported(apiVersion, kind) {
		s.atLine(s.objectLine(), path{}.field("kind"), "%s", unsupportedMessage(apiVersion, kind))
		return nil, s.problems
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		panic(fmt.Sprintf("parse %s: %v", apiVersion, err)) // cannot happen: apiVersion is supported
	}
	gvk := gv.WithKind(kind)
	typed, err := d.scheme.New(gvk)
	if err != nil {
		panic(fmt.Sprintf("create %s: %v", kind, err)) // cannot happen: kind is registered
	}
	t := reflect.TypeOf(typed).Elem()
	obj, got, err := d.deserializer.Decode(in.raw, nil, nil)
	switch {
	case err == nil:
	case runtime.IsStrictDecodingError(err) && obj != nil:
		d.strictProblems(s, err, t, hadDups)
	default:
		if obj, got = d.decodeProblems(s, err, t, hadDups); obj == nil {
			return nil, s.problems
		}
	}
	if got == nil || *got != gvk {
		if !hadDups { // with two kinds, yaml.v3 reads the first, the deserializer the last
			s.atLine(s.objectLine(), path{}.field("kind"), "decoded as %s %s", got.GroupVersion(), got.Kind)
		}
		return nil, s.problems
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	o := Object{File: in.file, Line: s.objectLine(), APIVersion: apiVersion, Kind: kind, Obj: obj}
	if !d.stored {
		clearSystemFields(obj)
	}
	s.defaultAndValidate(obj)
	if meta, ok := obj.(interface {
		GetName() string
		GetNamespace() string
	}); ok {
		o.Name, o.Namespace = meta.GetName(), meta.GetNamespace()
	}
	nameField := path{}.field("metadata").field("name")
	return []decoded{{Object: o, nameLine: s.line(nameField), nameField: prefix.join(nameField).String()}}, s.problems
}

// decodeList decodes a v1 List and then each of its items, as objects of
// their own with their own lines.
func (d *decoder) decodeList(s *sink, hadDups bool) ([]decoded, []Problem) {
	in := s.in
	t := reflect.TypeFor[corev1.List]()
	obj, _, err := d.deserializer.Decode(in.raw, nil, nil)
	list, _ := obj.(*corev1.List)
	switch {
	case err == nil:
	case runtime.IsStrictDecodingError(err) && list != nil:
		d.strictProblems(s, err, t, hadDups)
	default:
		d.decodeProblems(s, err, t, hadDups)
		list = nil // the items are decoded from their nodes
	}
	_, items := mapEntry(in.root, "items")
	items = resolveAlias(items)
	if items == nil || items.Kind != yaml.SequenceNode {
		return nil, s.problems // an empty list, or a shape problem reported above
	}
	var objs []decoded
	for i, item := range items.Content {
		rel := path{}.field("items").index(i)
		item = resolveAlias(item)
		if item == nil {
			continue
		}
		if item.Kind != yaml.MappingNode {
			s.atLine(item.Line+in.off, rel, "expected a Kubernetes object (a map with apiVersion, kind and metadata), got %s",
				describe(item, resolveScalar(item, in.json)))
			continue
		}
		var raw []byte
		if list != nil && len(list.Items) == len(items.Content) {
			raw = list.Items[i].Raw
		} else if raw, err = yaml.Marshal(item); err != nil {
			s.atLine(item.Line+in.off, rel, "re-encode list item: %v", err)
			continue
		}
		o, ps := d.decodeObject(objectInput{file: in.file, root: item, off: in.off, raw: raw, json: in.json, rawOff: -1},
			s.prefix.join(rel), true)
		objs = append(objs, o...)
		s.problems = append(s.problems, ps...)
	}
	return objs, s.problems
}

// typeMeta reads apiVersion and kind from the object's nodes.
func (s *sink) typeMeta() (apiVersion, kind string, ok bool) {
	get := func(name, example string) (string, bool) {
		k, v := mapEntry(s.in.root, name)
		if k == nil {
			s.atLine(s.objectLine(), path{}.field(name), "required (e.g. %s: %s)", name, example)
			return "", false
		}
		v = resolveAlias(v)
		if v == nil || v.Kind != yaml.ScalarNode || resolveScalar(v, s.in.json).kind != stringScalar {
			got := "null"
			if v != nil {
				got = describe(v, resolveScalar(v, s.in.json))
			}
			s.atLine(k.Line+s.in.off, path{}.field(name), "expected string, got %s", got)
			return "", false
		}
		if v.Value == "" {
			s.atLine(k.Line+s.in.off, path{}.field(name), "required (e.g. %s: %s)", name, example)
			return "", false
		}
		return v.Value, true
	}
	apiVersion, ok1 := get("apiVersion", "v1")
	kind, ok2 := get("kind", "Pod")
	return apiVersion, kind, ok1 && ok2
}

// unsupportedMessage explains that apiVersion/kind is not supported, with a
// suggestion when it looks like a typo of a supported one.
func unsupportedMessage(apiVersion, kind string) string {
	supported := supportedKinds()
	names := make([]string, len(supported))
	kinds := make([]string, len(supported))
	for i, k := range supported {
		names[i] = k.apiVersion + " " + k.kind
		kinds[i] = k.kind
	}
	msg := fmt.Sprintf("%s %s is not supported yet (supported: %s)", apiVersion, kind, strings.Join(names, ", "))
	switch best := closest(kind, kinds); {
	case apiVersionOf(kind) != "":
		msg += fmt.Sprintf("; %s is in apiVersion %s", kind, apiVersionOf(kind))
	case best != "":
		msg += fmt.Sprintf("; did you mean %s?", best)
	}
	return msg
}

// duplicateKeys reports keys set twice in one mapping, which the
// deserializer rejects with a line relative to the document. It reports
// whether there were any.
func (s *sink) duplicateKeys() bool {
	found := false
	budget := shapeBudget
	var walk func(n *yaml.Node, p path)
	walk = func(n *yaml.Node, p path) {
		if budget--; n == nil || budget < 0 {
			return
		}
		switch n.Kind {
		case yaml.MappingNode:
			first := make(map[string]int)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				if k.Kind == yaml.ScalarNode && !isMergeKey(k) {
					if line, dup := first[k.Value]; dup {
						found = true
						s.atLine(k.Line+s.in.off, p.key(k.Value), "duplicate key (first set on line %d)", line+s.in.off)
					} else {
						first[k.Value] = k.Line
					}
				}
				walk(n.Content[i+1], p.key(k.Value))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, p.index(i))
			}
		}
	}
	walk(s.in.root, nil)
	return found
}

// strictProblems reports the errors of a strict decoding error: unknown and
// duplicate fields. The object itself decoded.
func (d *decoder) strictProblems(s *sink, err error, t reflect.Type, hadDups bool) {
	se, _ := runtime.AsStrictDecodingError(err)
	for _, e := range se.Errors() {
		msg := e.Error()
		if rest, ok := strings.CutPrefix(msg, "unknown field "); ok {
			if name, err := strconv.Unquote(rest); err == nil {
				p := parseFieldPath(name)
				s.at(p, "unknown field%s", d.types.suggestField(t, p))
				continue
			}
		}
		if strings.HasPrefix(msg, "duplicate field ") || strings.Contains(msg, "already set in map") {
			// Duplicates are reported with both lines by duplicateKeys.
			// yaml.v2 also calls a key that overrides one merged in with
			// "<<" a duplicate, which it is not.
			if hadDups || hasMergeKeys(s.in.root) {
				continue
			}
		}
		s.atLine(s.objectLine(), nil, "%s", msg)
	}
}

// hasMergeKeys reports whether the document uses YAML merge keys ("<<").
func hasMergeKeys(n *yaml.Node) bool {
	budget := shapeBudget
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		if budget--; n == nil || budget < 0 {
			return false
		}
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 && isMergeKey(c) || walk(c) {
				return true
			}
		}
		return false
	}
	return walk(n)
}

// decodeProblems reports why the deserializer rejected an object. The
// deserializer stops at the first type error and loses its list indices and
// line, so the shape checker looks for every such problem first; the
// deserializer's own error is the fallback.
//
// To report the object's other problems too, the values of the wrong type
// are then set to null and the object decoded once more; that object (only
// used for validation, since the input is rejected anyway) is returned, or
// nil.
func (d *decoder) decodeProblems(s *sink, err error, t reflect.Type, hadDups bool) (runtime.Object, *schema.GroupVersionKind) {
	shape := checkShape(d.types, s.in.root, t, s.in.json)
	for _, sp := range shape {
		s.atLine(sp.line+s.in.off, sp.path, "%s", sp.message)
	}
	msg := err.Error()
	if len(shape) > 0 {
		return d.retryWithoutBadValues(s, shape)
	}
	if (hadDups || hasMergeKeys(s.in.root)) && strings.Contains(msg, "already set in map") {
		return nil, nil
	}
	if i := strings.Index(msg, "json: cannot unmarshal "); i >= 0 {
		if p, m, ok := typeErrorProblem(msg[i:]); ok {
			line, found := locate(s.in.root, p, true)
			if len(found) == len(p) {
				p = found
			}
			s.atLine(line+s.in.off, p, "%s", m)
			return nil, nil
		}
	}
	if i := strings.Index(msg, "yaml: line "); i >= 0 && s.in.rawOff >= 0 {
		c := chunk{line: s.in.rawOff + 1, data: s.in.raw}
		pr := yamlSyntaxProblem(s.in.file, c, errors.New(msg[i:]))
		s.atLine(pr.Line, nil, "%s", pr.Message)
		return nil, nil
	}
	if strings.Contains(msg, "quantities must match") {
		s.atLine(s.objectLine(), nil, "invalid quantity: use a number with an optional suffix such as 500m, 128Mi or 2Gi")
		return nil, nil
	}
	s.atLine(s.objectLine(), nil, "%s", msg)
	return nil, nil
}

// retryWithoutBadValues sets the values the shape checker rejected to null
// (which leaves a field unset and keeps list indices) and decodes the object
// again, ignoring strict errors, which the shape checker has reported.
func (d *decoder) retryWithoutBadValues(s *sink, shape []shapeProblem) (runtime.Object, *schema.GroupVersionKind) {
	for _, sp := range shape {
		if sp.node == nil {
			continue
		}
		line := sp.node.Line
		*sp.node = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null", Line: line, Column: sp.node.Column}
		s.suppress = append(s.suppress, sp.path)
	}
	raw, err := yaml.Marshal(s.in.root)
	if err != nil {
		return nil, nil
	}
	obj, got, err := d.deserializer.Decode(raw, nil, nil)
	if err != nil && !runtime.IsStrictDecodingError(err) || obj == nil {
		return nil, nil
	}
	return obj, got
}

// typeErrorProblem parses "json: cannot unmarshal string into Go struct
// field ContainerPort.spec.containers.ports.containerPort of type int32"
// into a path (with the Go struct names dropped) and a message.
func typeErrorProblem(msg string) (path, string, bool) {
	rest := strings.TrimPrefix(msg, "json: cannot unmarshal ")
	got, rest, ok := strings.Cut(rest, " into Go struct field ")
	if !ok {
		return nil, "", false
	}
	field, goType, ok := strings.Cut(rest, " of type ")
	if !ok {
		return nil, "", false
	}
	_, fieldPath, _ := strings.Cut(field, ".")
	var p path
	for _, e := range parseFieldPath(fieldPath) {
		if e.kind == indexElem || !startsUpper(e.name) {
			p = append(p, e)
		}
	}
	kind, value, _ := strings.Cut(got, " ")
	switch kind {
	case "object":
		kind = "map"
	case "array":
		kind = "list"
	case "bool":
		kind = "boolean"
	}
	if value != "" {
		kind += " " + value
	}
	return p, fmt.Sprintf("expected %s, got %s", friendlyGoType(goType), kind), true
}

func friendlyGoType(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "list"
	case strings.HasPrefix(t, "map["):
		return "map"
	case t == "bool":
		return "boolean"
	case strings.Contains(t, "."):
		return "map"
	}
	return t
}

// duplicates reports objects defined more than once (same kind, namespace as
// written, and name), pointing at every later definition and naming the
// first.
func duplicates(objs []decoded) []Problem {
	type key struct{ kind, namespace, name string }
	first := make(map[key]decoded)
	var problems []Problem
	for _, o := range objs {
		k := key{o.Kind, o.Namespace, o.Name}
		f, seen := first[k]
		if !seen {
			first[k] = o
			continue
		}
		name := o.Name
		if o.Namespace != "" {
			name = o.Namespace + "/" + o.Name
		}
		problems = append(problems, Problem{File: o.File, Line: o.nameLine, Field: o.nameField,
			Message: fmt.Sprintf("duplicate %s %q: first defined at %s:%d", o.Kind, name, displayFile(f.File), f.nameLine)})
	}
	return problems
}

func displayFile(file string) string {
	if file == "-" {
		return "<stdin>"
	}
	return file
}
