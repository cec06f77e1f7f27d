package cli

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/reconcile"
)

// cascadeInventory holds deploy/web → rs/web-1 → pods web-1-a, web-1-b,
// plus an unrelated pod and a ConfigMap owned by the deployment too.
func cascadeInventory(t *testing.T) *inventory.Inventory {
	t.Helper()
	inv := inventory.New("c.yaml", "t")
	put := func(kind, name, uid, ownerKind, ownerUID string) {
		meta := metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(uid)}
		if ownerUID != "" {
			yes := true
			meta.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: ownerKind, Name: "owner", UID: types.UID(ownerUID), Controller: &yes}}
		}
		var obj manifest.Object
		switch kind {
		case "Pod":
			obj = manifest.Object{APIVersion: "v1", Kind: kind, Obj: &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: kind}, ObjectMeta: meta,
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1"}}}}}
		default: // ConfigMaps stand in for the owner kinds: only metadata matters here
			obj = manifest.Object{APIVersion: "v1", Kind: "ConfigMap", Obj: &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: meta}}
		}
		obj.Namespace, obj.Name = "default", name
		if err := reconcile.Store(inv, obj); err != nil {
			t.Fatal(err)
		}
	}
	put("Deployment", "web", "u-deploy", "", "")
	put("ReplicaSet", "web-1", "u-rs", "Deployment", "u-deploy")
	put("Pod", "web-1-a", "u-pa", "ReplicaSet", "u-rs")
	put("Pod", "web-1-b", "u-pb", "ReplicaSet", "u-rs")
	put("ConfigMap", "web-config", "u-cm", "Deployment", "u-deploy")
	put("Pod", "other", "u-other", "", "")
	return inv
}

func TestDependentsAreTransitive(t *testing.T) {
	objs, err := storedObjects(cascadeInventory(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, d := range dependents(objs, "u-deploy") {
		got[d.inv.Name] = true
	}
	want := map[string]bool{"web-1": true, "web-1-a": true, "web-1-b": true, "web-config": true}
	if len(got) != len(want) {
		t.Fatalf("dependents = %v, want %v", got, want)
	}
	for n := range want {
		if !got[n] {
			t.Errorf("dependents lack %s (got %v)", n, got)
		}
	}
	if d := dependents(objs, "u-other"); len(d) != 0 {
		t.Errorf("a pod owning nothing has dependents %v", d)
	}
}

func TestOrphanDependentsDropsOnlyThatOwner(t *testing.T) {
	inv := cascadeInventory(t)
	objs, err := storedObjects(inv)
	if err != nil {
		t.Fatal(err)
	}
	n, err := orphanDependents(inv, objs, "u-rs")
	if err != nil || n != 2 {
		t.Fatalf("orphaned %d (%v), want the 2 pods of the ReplicaSet", n, err)
	}
	after, err := storedObjects(inv)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range after {
		refs := o.meta.GetOwnerReferences()
		switch o.inv.Name {
		case "web-1-a", "web-1-b":
			if len(refs) != 0 {
				t.Errorf("%s still has owners %v", o.inv.Name, refs)
			}
		case "web-1", "web-config":
			if len(refs) != 1 || refs[0].UID != "u-deploy" {
				t.Errorf("%s lost its owner reference to the deployment: %v", o.inv.Name, refs)
			}
		}
	}
}
