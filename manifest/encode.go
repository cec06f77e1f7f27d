package manifest

import (
	"encoding/json"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Encode returns the canonical JSON of a typed object of a supported kind,
// with apiVersion and kind set, for storage: encoding/json's output, which
// has a fixed field order and sorted map keys, so equal objects encode to
// equal bytes. obj is not modified.
func Encode(obj runtime.Object) ([]byte, error) {
	if obj == nil {
		return nil, errors.New("encode object: nil object")
	}
	gvks, _, err := newDecoder().scheme.ObjectKinds(obj)
	if err != nil {
		return nil, fmt.Errorf("encode object: %w", err)
	}
	gvk := gvks[0]
	if !isSupported(gvk.GroupVersion().String(), gvk.Kind) {
		return nil, fmt.Errorf("encode object: %s %s is not supported", gvk.GroupVersion(), gvk.Kind)
	}
	c := obj.DeepCopyObject()
	c.GetObjectKind().SetGroupVersionKind(gvk)
	data, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", gvk.Kind, err)
	}
	return data, nil
}

// DecodeStored decodes one object written by Encode, strictly, defaulting
// and validating it like Decode does (both are idempotent on stored
// objects) but keeping the fields that Decode clears from manifests, such as
// metadata.uid and a Pod's status. Problems come back as a *ValidationError
// whose problems have no file name. The returned Object has Line 1 and an
// empty File.
//
// Times (metav1.Time) have one-second precision in JSON, so a stored time
// with a fraction of a second does not survive Encode.
func DecodeStored(data []byte) (Object, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(data, &tm); err == nil && tm.Kind == "List" {
		return Object{}, errors.New("decode stored object: got a List, want a single object")
	}
	d := newDecoder()
	d.stored = true
	objs, problems := d.decodeFile("", data)
	out, err := finish(objs, problems)
	if err != nil {
		return Object{}, err
	}
	if len(out) != 1 {
		return Object{}, fmt.Errorf("decode stored object: got %d objects, want 1", len(out))
	}
	return out[0], nil
}
