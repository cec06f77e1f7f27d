package manifest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The shape checker walks a document's YAML nodes against the Go type it
// decodes into and reports unknown fields, wrong types and malformed
// quantities, base64 data and times, each with its exact path and line.
//
// The strict deserializer stays the authority on what is accepted: it stops
// at its first type error and loses the list indices and the line, so the
// shape checker only runs after the deserializer has rejected a document, to
// report everything that is wrong with it. It therefore mirrors how the
// deserializer sees YAML: sigs.k8s.io/yaml reads scalars with YAML 1.1 rules
// (yes, on and y are booleans; 0644 is octal), turns them into JSON, and the
// JSON decoder is case-sensitive.

// shapeBudget bounds the nodes one check visits, so that documents with
// exponentially many aliases cannot make it run away.
const shapeBudget = 1 << 20

// structInfo is what the shape checker needs to know about a struct type.
type structInfo struct {
	fields map[string]reflect.Type // JSON name → field type
	names  []string                // JSON names in declaration order
}

// typeCache holds the struct layouts seen so far; one per decoder.
type typeCache map[reflect.Type]*structInfo

// structFields returns the JSON fields of struct type t the way
// encoding/json sees them: embedded structs without a name are inlined.
func (c typeCache) structFields(t reflect.Type) *structInfo {
	if si, ok := c[t]; ok {
		return si
	}
	si := &structInfo{fields: make(map[string]reflect.Type)}
	c[t] = si
	c.collect(si, t, 0)
	return si
}

func (c typeCache) collect(si *structInfo, t reflect.Type, depth int) {
	if depth > 5 {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				c.collect(si, ft, depth+1)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := si.fields[name]; !dup {
			si.fields[name] = f.Type
			si.names = append(si.names, name)
		}
	}
}

// fieldType returns the type of the field or element that path p leads to
// from type t, or nil when p leaves the type.
func (c typeCache) fieldType(t reflect.Type, p path) reflect.Type {
	for _, e := range p {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case e.kind == indexElem && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
			t = t.Elem()
		case e.kind == keyElem && t.Kind() == reflect.Map:
			t = t.Elem()
		case e.kind != indexElem && t.Kind() == reflect.Struct:
			ft, ok := c.structFields(t).fields[e.name]
			if !ok {
				return nil
			}
			t = ft
		default:
			return nil
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// suggestField returns ` (did you mean "x"?)` when the unknown last element
// of p is close to a field that exists, and "" otherwise.
func (c typeCache) suggestField(t reflect.Type, p path) string {
	if len(p) == 0 {
		return ""
	}
	parent := c.fieldType(t, p[:len(p)-1])
	if parent == nil || parent.Kind() != reflect.Struct {
		return ""
	}
	if best := closest(p[len(p)-1].name, c.structFields(parent).names); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// closest returns the candidate nearest to s when it is near enough to be a
// likely typo: equal ignoring case, or at most two edits away (one for short
// names).
func closest(s string, candidates []string) string {
	best, bestDist := "", 3
	if len(s) <= 4 {
		bestDist = 2
	}
	for _, c := range candidates {
		if c == s {
			continue
		}
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// shapeProblem is a problem found by the shape checker, before it is given
// a file and an absolute line.
type shapeProblem struct {
	line    int // as in the node, relative to the document
	path    path
	message string
	node    *yaml.Node // the value of the wrong type; nil for unknown fields
}

type shapeWalk struct {
	types    typeCache
	json     bool // the document is JSON: numbers are taken literally
	secret   bool // the document is a Secret: hint at stringData for bad base64
	budget   int
	node     *yaml.Node // the node being checked, for add
	problems []shapeProblem
}

// checkShape checks node n against type t and returns the problems found.
func checkShape(types typeCache, n *yaml.Node, t reflect.Type, isJSON bool) []shapeProblem {
	w := &shapeWalk{types: types, json: isJSON, secret: t == reflect.TypeFor[corev1.Secret](), budget: shapeBudget}
	n = resolveAlias(n)
	if n != nil {
		w.check(n, t, nil, n.Line)
	}
	return w.problems
}

// add reports a problem with the value being checked.
func (w *shapeWalk) add(line int, p path, format string, a ...any) {
	w.problems = append(w.problems, shapeProblem{line: line, path: p, message: fmt.Sprintf(format, a...), node: w.node})
}

func (w *shapeWalk) check(n *yaml.Node, t reflect.Type, p path, line int) {
	if w.budget--; w.budget < 0 {
		return
	}
	n = resolveAlias(n)
	if n == nil {
		return
	}
	w.node = n
	sc := scalar{}
	if n.Kind == yaml.ScalarNode {
		sc = resolveScalar(n, w.json)
		if sc.kind == nullScalar {
			return // null leaves any field unset
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[resource.Quantity]():
		w.checkQuantity(n, sc, p, line)
		return
	case reflect.TypeFor[intstr.IntOrString]():
		if n.Kind != yaml.ScalarNode || sc.kind == boolScalar || sc.kind == floatScalar && !sc.integral(w.json) {
			w.add(line, p, "expected integer or string, got %s", describe(n, sc))
		} else if sc.kind != stringScalar && !sc.fits(math.MinInt32, math.MaxInt32, w.json) {
			w.add(line, p, "expected int32, got %s (out of range)", describe(n, sc))
		}
		return
	case reflect.TypeFor[metav1.Time](), reflect.TypeFor[metav1.MicroTime]():
		if n.Kind != yaml.ScalarNode || sc.kind != stringScalar {
			w.add(line, p, "expected a time like 2006-01-02T15:04:05Z, got %s", describe(n, sc))
		} else if _, err := time.Parse(time.RFC3339, n.Value); err != nil && !sc.timestamp {
			w.add(line, p, "invalid time %q: expected RFC 3339, like 2006-01-02T15:04:05Z", n.Value)
		}
		return
	case reflect.TypeFor[runtime.RawExtension]():
		return
	}
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
		if n.Kind != yaml.ScalarNode || sc.kind != stringScalar {
			w.add(line, p, "expected base64-encoded string, got %s", describe(n, sc))
		} else if _, err := base64.StdEncoding.DecodeString(n.Value); err != nil {
			msg := "invalid base64 data"
			var ce base64.CorruptInputError
			if errors.As(err, &ce) {
				msg += fmt.Sprintf(" (at byte %d)", int64(ce))
			}
			if w.secret && len(p) > 0 && p[0].name == "data" {
				msg += "; put plain text under stringData instead"
			}
			w.add(line, p, "%s", msg)
		}
		return
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return // decodes itself; the deserializer reports its errors
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.add(line, p, "expected map, got %s", describe(n, sc))
			return
		}
		si := w.types.structFields(t)
		w.eachEntry(n, 0, func(k, v *yaml.Node) {
			ft, ok := si.fields[k.Value]
			if !ok {
				msg := "unknown field"
				if best := closest(k.Value, si.names); best != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", best)
				}
				w.problems = append(w.problems, shapeProblem{line: k.Line, path: p.field(k.Value), message: msg})
				return
			}
			w.check(v, ft, p.field(k.Value), k.Line)
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.add(line, p, "expected map, got %s", describe(n, sc))
			return
		}
		w.eachEntry(n, 0, func(k, v *yaml.Node) {
			w.check(v, t.Elem(), p.key(k.Value), k.Line)
		})
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			w.add(line, p, "expected list, got %s", describe(n, sc))
			return
		}
		for i, item := range n.Content {
			w.check(item, t.Elem(), p.index(i), item.Line)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode || sc.kind != stringScalar {
			msg := "expected string, got " + describe(n, sc)
			if n.Kind == yaml.ScalarNode {
				msg += fmt.Sprintf(`; quote it to make it a string: "%s"`, n.Value)
			}
			w.add(line, p, "%s", msg)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || sc.kind != boolScalar {
			w.add(line, p, "expected boolean (true or false), got %s", describe(n, sc))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		lo, hi := intRange(t)
		switch {
		case n.Kind != yaml.ScalarNode || sc.kind == stringScalar || sc.kind == boolScalar ||
			sc.kind == floatScalar && !sc.integral(w.json):
			w.add(line, p, "expected %s, got %s", t.Kind(), describe(n, sc))
		case !sc.fits(lo, hi, w.json):
			w.add(line, p, "expected %s, got %s (out of range)", t.Kind(), describe(n, sc))
		}
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || sc.kind != intScalar && sc.kind != floatScalar ||
			math.IsInf(sc.float, 0) || math.IsNaN(sc.float) {
			w.add(line, p, "expected number, got %s", describe(n, sc))
		}
	}
}

// eachEntry calls f for every key and value of mapping m, including the
// entries merged in with "<<" that m does not override.
func (w *shapeWalk) eachEntry(m *yaml.Node, depth int, f func(k, v *yaml.Node)) {
	if depth > 10 {
		return
	}
	direct := make(map[string]bool)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; !isMergeKey(k) {
			direct[k.Value] = true
			f(k, m.Content[i+1])
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
			if src = resolveAlias(src); src == nil || src.Kind != yaml.MappingNode {
				continue
			}
			w.eachEntry(src, depth+1, func(k, v *yaml.Node) {
				if !direct[k.Value] {
					f(k, v)
				}
			})
		}
	}
}

func (w *shapeWalk) checkQuantity(n *yaml.Node, sc scalar, p path, line int) {
	switch {
	case n.Kind != yaml.ScalarNode || sc.kind == boolScalar ||
		sc.kind == floatScalar && (math.IsInf(sc.float, 0) || math.IsNaN(sc.float)):
		w.add(line, p, "expected a quantity like 500m, 128Mi or 2, got %s", describe(n, sc))
	case sc.kind == stringScalar:
		if _, err := resource.ParseQuantity(strings.TrimSpace(n.Value)); err != nil {
			w.add(line, p, "%s", quantityMessage(n.Value))
		}
	}
}

// quantityMessage explains a quantity that does not parse.
func quantityMessage(s string) string {
	return fmt.Sprintf("invalid quantity %q: use a number with an optional suffix: m (milli) for cpu; Ki, Mi, Gi, Ti or k, M, G, T for bytes (e.g. 500m, 128Mi, 2Gi)", s)
}

func intRange(t reflect.Type) (lo, hi float64) {
	switch t.Kind() {
	case reflect.Int8:
		return math.MinInt8, math.MaxInt8
	case reflect.Int16:
		return math.MinInt16, math.MaxInt16
	case reflect.Int32:
		return math.MinInt32, math.MaxInt32
	case reflect.Uint8:
		return 0, math.MaxUint8
	case reflect.Uint16:
		return 0, math.MaxUint16
	case reflect.Uint32:
		return 0, math.MaxUint32
	case reflect.Uint, reflect.Uint64:
		return 0, math.MaxUint64
	default:
		return math.MinInt64, math.MaxInt64
	}
}

type scalarKind uint8

const (
	stringScalar scalarKind = iota
	nullScalar
	boolScalar
	intScalar
	floatScalar
)

// scalar is a YAML scalar as the deserializer sees it.
type scalar struct {
	kind      scalarKind
	float     float64 // the numeric value of ints and floats (approximate for huge ints)
	literal   bool    // JSON: the number is an integer literal (no '.' or exponent)
	timestamp bool    // YAML: an unquoted date or time, which becomes an RFC 3339 string
}

// integral reports whether a number decodes into an integer field: in JSON
// only integer literals do; from YAML, floats with integral values do too,
// because they are written out as integers on the way to JSON.
func (s scalar) integral(isJSON bool) bool {
	if isJSON {
		return s.literal
	}
	return s.float == math.Trunc(s.float) && math.Abs(s.float) < 1e21
}

// fits reports whether the number is within [lo, hi].
func (s scalar) fits(lo, hi float64, isJSON bool) bool {
	return s.integral(isJSON) && s.float >= lo && s.float <= hi
}

// resolveScalar says what a scalar becomes on its way to JSON. For YAML
// documents it follows the YAML 1.1 rules of go.yaml.in/yaml/v2, which
// sigs.k8s.io/yaml uses; for JSON documents, JSON's own.
func resolveScalar(n *yaml.Node, isJSON bool) scalar {
	v := n.Value
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return scalar{kind: stringScalar}
	}
	if isJSON {
		switch v {
		case "null":
			return scalar{kind: nullScalar}
		case "true", "false":
			return scalar{kind: boolScalar}
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return scalar{kind: stringScalar}
		}
		literal := !strings.ContainsAny(v, ".eE")
		if literal {
			return scalar{kind: intScalar, float: f, literal: true}
		}
		return scalar{kind: floatScalar, float: f}
	}
	if n.Style&yaml.TaggedStyle != 0 {
		switch n.Tag {
		case "!!null":
			return scalar{kind: nullScalar}
		case "!!bool":
			return scalar{kind: boolScalar}
		case "!!int", "!!float":
			s := resolvePlain(v)
			if s.kind == intScalar || s.kind == floatScalar {
				return s
			}
		}
		return scalar{kind: stringScalar}
	}
	return resolvePlain(v)
}

// resolvePlain resolves an untagged plain scalar like yaml.v2 does.
func resolvePlain(v string) scalar {
	switch v {
	case "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
		"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF":
		return scalar{kind: boolScalar}
	case "", "~", "null", "Null", "NULL":
		return scalar{kind: nullScalar}
	case ".nan", ".NaN", ".NAN":
		return scalar{kind: floatScalar, float: math.NaN()}
	case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF":
		return scalar{kind: floatScalar, float: math.Inf(1)}
	case "-.inf", "-.Inf", "-.INF":
		return scalar{kind: floatScalar, float: math.Inf(-1)}
	}
	switch c := v[0]; {
	case c == '.':
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return scalar{kind: floatScalar, float: f}
		}
	case c == '+' || c == '-' || c >= '0' && c <= '9':
		if isYAMLTimestamp(v) {
			return scalar{kind: stringScalar, timestamp: true}
		}
		plain := strings.ReplaceAll(v, "_", "")
		if i, err := strconv.ParseInt(plain, 0, 64); err == nil {
			return scalar{kind: intScalar, float: float64(i), literal: true}
		}
		if u, err := strconv.ParseUint(plain, 0, 64); err == nil {
			return scalar{kind: intScalar, float: float64(u), literal: true}
		}
		if isYAMLFloat(plain) {
			if f, err := strconv.ParseFloat(plain, 64); err == nil {
				return scalar{kind: floatScalar, float: f}
			}
		}
		if rest, ok := strings.CutPrefix(plain, "-0b"); ok {
			if i, err := strconv.ParseInt(rest, 2, 64); err == nil {
				return scalar{kind: intScalar, float: -float64(i), literal: true}
			}
		}
	}
	return scalar{kind: stringScalar}
}

// isYAMLFloat matches ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$.
func isYAMLFloat(s string) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	} else {
		if digits() == 0 {
			return false
		}
		if i < len(s) && s[i] == '.' {
			i++
			digits()
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// isYAMLTimestamp reports whether yaml.v2 reads an unquoted scalar as a
// timestamp (which then becomes an RFC 3339 string).
func isYAMLTimestamp(s string) bool {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i != 4 || i == len(s) || s[i] != '-' {
		return false
	}
	for _, layout := range []string{
		"2006-1-2T15:4:5.999999999Z07:00",
		"2006-1-2t15:4:5.999999999Z07:00",
		"2006-1-2 15:4:5.999999999",
		"2006-1-2",
	} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node, sc scalar) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "map"
	case yaml.SequenceNode:
		return "list"
	}
	v := n.Value
	if r := []rune(v); len(r) > 40 {
		v = string(r[:37]) + "..."
	}
	switch sc.kind {
	case nullScalar:
		return "null"
	case boolScalar:
		return "boolean " + v
	case intScalar:
		return "integer " + v
	case floatScalar:
		return "number " + v
	}
	return fmt.Sprintf("string %q", v)
}
