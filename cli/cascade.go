package cli

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/reconcile"
)

// Cascade modes of `delete --cascade`, as kubectl's.
const (
	// CascadeBackground deletes the object now; the loop's garbage
	// collector deletes its dependents in the same run.
	CascadeBackground = "background"
	// CascadeForeground deletes the dependents first (every level), then
	// the object, and waits until their pods are gone from their nodes.
	CascadeForeground = "foreground"
	// CascadeOrphan deletes the object and leaves its dependents running,
	// with the owner reference to it removed.
	CascadeOrphan = "orphan"
)

// storedObject is one inventory object with its decoded metadata.
type storedObject struct {
	inv  inventory.Object
	obj  manifest.Object
	meta metav1.Object
}

// storedObjects decodes every object in the inventory.
func storedObjects(inv *inventory.Inventory) ([]storedObject, error) {
	var out []storedObject
	for _, o := range inv.Objects() {
		d, err := manifest.DecodeStored(o.JSON)
		if err != nil {
			return nil, fmt.Errorf("decode stored %s %s/%s: %w", o.Kind, o.Namespace, o.Name, err)
		}
		m, ok := d.Obj.(metav1.Object)
		if !ok {
			continue
		}
		out = append(out, storedObject{inv: o, obj: d, meta: m})
	}
	return out, nil
}

// dependents returns the objects owned, directly or through other
// dependents, by the object with uid, children before their owners'
// siblings (depth first), each once.
func dependents(objs []storedObject, uid types.UID) []storedObject {
	var out []storedObject
	seen := map[types.UID]bool{uid: true}
	var walk func(types.UID)
	walk = func(owner types.UID) {
		for _, o := range objs {
			if seen[o.meta.GetUID()] {
				continue
			}
			if slices.ContainsFunc(o.meta.GetOwnerReferences(), func(r metav1.OwnerReference) bool { return r.UID == owner }) {
				seen[o.meta.GetUID()] = true
				walk(o.meta.GetUID())
				out = append(out, o)
			}
		}
	}
	walk(uid)
	return out
}

// orphanDependents removes the owner reference to uid from the object's
// direct dependents and stores them; it returns how many it changed.
func orphanDependents(inv *inventory.Inventory, objs []storedObject, uid types.UID) (int, error) {
	n := 0
	for _, o := range objs {
		refs := o.meta.GetOwnerReferences()
		kept := slices.DeleteFunc(slices.Clone(refs), func(r metav1.OwnerReference) bool { return r.UID == uid })
		if len(kept) == len(refs) {
			continue
		}
		o.meta.SetOwnerReferences(kept)
		if err := reconcile.Store(inv, o.obj); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
