package workloads

import (
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// dumpForHash returns what k8s.io/utils/dump.ForHash returns for v: the
// output of github.com/davecgh/go-spew's Sprintf("%#v", v) with the
// configuration Kubernetes hashes objects with (SortKeys, SpewKeys and
// DisableMethods on; pointer addresses and capacities off). Kubernetes
// derives pod-template-hash and a DaemonSet's controller-revision-hash from
// the fnv32a sum of this text, so it is reproduced here byte for byte: the
// module cannot import go-spew (it is not a requirement of go.mod) and the
// purity rules keep the dependency surface small anyway.
//
// The code follows spew's formatState (format.go) closely, including its
// quirks, such as a nil pointer inside a slice leaving the "ignore next
// type" flag set so that the next field is printed without its type.
func dumpForHash(v any) string {
	f := &spewState{pointers: map[uintptr]int{}}
	if v == nil {
		return "(interface {})<nil>"
	}
	f.format(reflect.ValueOf(v))
	return f.buf.String()
}

type spewState struct {
	buf            strings.Builder
	depth          int
	pointers       map[uintptr]int
	ignoreNextType bool
}

func (f *spewState) unpackValue(v reflect.Value) reflect.Value {
	if v.Kind() == reflect.Interface {
		f.ignoreNextType = false
		if !v.IsNil() {
			v = v.Elem()
		}
	}
	return v
}

func (f *spewState) formatPtr(v reflect.Value) {
	if v.IsNil() && f.ignoreNextType {
		f.buf.WriteString("<nil>")
		return
	}
	for k, depth := range f.pointers {
		if depth >= f.depth {
			delete(f.pointers, k)
		}
	}
	nilFound, cycleFound := false, false
	indirects := 0
	ve := v
	for ve.Kind() == reflect.Pointer {
		if ve.IsNil() {
			nilFound = true
			break
		}
		indirects++
		addr := ve.Pointer()
		if pd, ok := f.pointers[addr]; ok && pd < f.depth {
			cycleFound = true
			indirects--
			break
		}
		f.pointers[addr] = f.depth
		ve = ve.Elem()
		if ve.Kind() == reflect.Interface {
			if ve.IsNil() {
				nilFound = true
				break
			}
			ve = ve.Elem()
		}
	}
	if !f.ignoreNextType {
		f.buf.WriteByte('(')
		f.buf.WriteString(strings.Repeat("*", indirects))
		f.buf.WriteString(ve.Type().String())
		f.buf.WriteByte(')')
	} else {
		if nilFound || cycleFound {
			indirects += strings.Count(ve.Type().String(), "*")
		}
		f.buf.WriteByte('<')
		f.buf.WriteString(strings.Repeat("*", indirects))
		f.buf.WriteByte('>')
	}
	switch {
	case nilFound:
		f.buf.WriteString("<nil>")
	case cycleFound:
		f.buf.WriteString("<shown>")
	default:
		f.ignoreNextType = true
		f.format(ve)
	}
}

func (f *spewState) format(v reflect.Value) {
	kind := v.Kind()
	if kind == reflect.Invalid {
		f.buf.WriteString("<invalid>")
		return
	}
	if kind == reflect.Pointer {
		f.formatPtr(v)
		return
	}
	if !f.ignoreNextType {
		f.buf.WriteByte('(')
		f.buf.WriteString(v.Type().String())
		f.buf.WriteByte(')')
	}
	f.ignoreNextType = false

	switch kind {
	case reflect.Bool:
		f.buf.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		f.buf.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		f.buf.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32:
		f.buf.WriteString(strconv.FormatFloat(v.Float(), 'g', -1, 32))
	case reflect.Float64:
		f.buf.WriteString(strconv.FormatFloat(v.Float(), 'g', -1, 64))
	case reflect.Complex64, reflect.Complex128:
		bits := 64
		if kind == reflect.Complex64 {
			bits = 32
		}
		c := v.Complex()
		f.buf.WriteByte('(')
		f.buf.WriteString(strconv.FormatFloat(real(c), 'g', -1, bits))
		if imag(c) >= 0 {
			f.buf.WriteByte('+')
		}
		f.buf.WriteString(strconv.FormatFloat(imag(c), 'g', -1, bits))
		f.buf.WriteString("i)")
	case reflect.Slice, reflect.Array:
		if kind == reflect.Slice && v.IsNil() {
			f.buf.WriteString("<nil>")
			break
		}
		f.buf.WriteByte('[')
		f.depth++
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				f.buf.WriteByte(' ')
			}
			f.ignoreNextType = true
			f.format(f.unpackValue(v.Index(i)))
		}
		f.depth--
		f.buf.WriteByte(']')
	case reflect.String:
		f.buf.WriteString(v.String())
	case reflect.Interface:
		if v.IsNil() {
			f.buf.WriteString("<nil>")
		}
	case reflect.Map:
		if v.IsNil() {
			f.buf.WriteString("<nil>")
			break
		}
		f.buf.WriteString("map[")
		f.depth++
		keys := v.MapKeys()
		sortKeys(keys)
		for i, key := range keys {
			if i > 0 {
				f.buf.WriteByte(' ')
			}
			f.ignoreNextType = true
			f.format(f.unpackValue(key))
			f.buf.WriteByte(':')
			f.ignoreNextType = true
			f.format(f.unpackValue(v.MapIndex(key)))
		}
		f.depth--
		f.buf.WriteByte(']')
	case reflect.Struct:
		f.buf.WriteByte('{')
		f.depth++
		vt := v.Type()
		for i := 0; i < v.NumField(); i++ {
			if i > 0 {
				f.buf.WriteByte(' ')
			}
			f.buf.WriteString(vt.Field(i).Name)
			f.buf.WriteByte(':')
			f.format(f.unpackValue(v.Field(i)))
		}
		f.depth--
		f.buf.WriteByte('}')
	case reflect.Uintptr:
		writeHexPtr(&f.buf, uintptr(v.Uint()))
	case reflect.UnsafePointer, reflect.Chan, reflect.Func:
		writeHexPtr(&f.buf, v.Pointer())
	}
}

func writeHexPtr(b *strings.Builder, p uintptr) {
	if p == 0 {
		b.WriteString("<nil>")
		return
	}
	b.WriteString("0x")
	b.WriteString(strconv.FormatUint(uint64(p), 16))
}

// sortKeys orders map keys as spew does with SortKeys: natively for the
// kinds it can compare directly, and by their own dump otherwise (spew uses
// its default configuration there; no Kubernetes pod template has such keys).
func sortKeys(keys []reflect.Value) {
	if len(keys) == 0 {
		return
	}
	switch keys[0].Kind() {
	case reflect.Bool, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int,
		reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String, reflect.Array:
		sort.Slice(keys, func(i, j int) bool { return valueLess(keys[i], keys[j]) })
	default:
		strs := make([]string, len(keys))
		for i := range keys {
			strs[i] = dumpForHash(keys[i].Interface())
		}
		idx := make([]int, len(keys))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return strs[idx[a]] < strs[idx[b]] })
		sorted := make([]reflect.Value, len(keys))
		for i, k := range idx {
			sorted[i] = keys[k]
		}
		copy(keys, sorted)
	}
}

func valueLess(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Bool:
		return !a.Bool() && b.Bool()
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		return a.Int() < b.Int()
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint, reflect.Uintptr:
		return a.Uint() < b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() < b.Float()
	case reflect.String:
		return a.String() < b.String()
	case reflect.Array:
		for i := 0; i < a.Len(); i++ {
			av, bv := a.Index(i), b.Index(i)
			if av.Interface() == bv.Interface() {
				continue
			}
			return valueLess(av, bv)
		}
	}
	return a.String() < b.String()
}
