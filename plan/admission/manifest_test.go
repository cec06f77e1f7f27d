package admission

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clusterctl/clusterctl/manifest"
)

// TestQuotaNamesAgreeWithManifest checks that the manifest decoder accepts
// a ResourceQuota on every resource this package charges, and refuses one
// it never charges: the two lists must not drift apart.
func TestQuotaNamesAgreeWithManifest(t *testing.T) {
	objects := []runtime.Object{
		mkPod("ns", "p", []corev1.Container{ctr("a",
			res("cpu", "1", "memory", "1Gi", "ephemeral-storage", "1Gi", "hugepages-2Mi", "2Mi", "example.com/gpu", "1"),
			res("cpu", "1", "memory", "1Gi", "ephemeral-storage", "1Gi"))}),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c"}, Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr("fast"), Resources: corev1.VolumeResourceRequirements{Requests: res("storage", "1Gi")}}},
	}
	names := map[string]bool{}
	for _, obj := range objects {
		for name := range Usage(obj) {
			names[string(name)] = true
		}
	}
	for _, r := range apiResources() {
		names[string(r.countName())] = true
	}
	for _, legacy := range legacyCounts() {
		names[legacy] = true
	}
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: all, namespace: ns}\nspec:\n  hard:\n")
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	for _, n := range sorted {
		fmt.Fprintf(&b, "    %s: \"1\"\n", n)
	}
	if _, err := manifest.Decode("all.yaml", []byte(b.String())); err != nil {
		t.Errorf("the manifest decoder refuses quota resources this package charges:\n%v", err)
	}
	bad := "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: bad}\nspec:\n  hard:\n    count/ingresses.networking.k8s.io: \"1\"\n"
	if _, err := manifest.Decode("bad.yaml", []byte(bad)); err == nil {
		t.Error("the manifest decoder accepts a quota on a kind clusterctl does not store")
	}
}
