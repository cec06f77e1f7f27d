package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestEncode(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Data: map[string]string{"z": "1", "a": "2"}}
	got, err := Encode(cm)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a"},"data":{"a":"2","z":"1"}}`
	if string(got) != want {
		t.Errorf("Encode = %s, want %s", got, want)
	}
	if cm.Kind != "" || cm.APIVersion != "" {
		t.Errorf("Encode set the caller's TypeMeta to %+v", cm.TypeMeta)
	}
	for _, tt := range []struct {
		obj  runtime.Object
		want string
	}{
		{nil, "encode object: nil object"},
		{&corev1.ServiceAccount{}, "encode object: v1 ServiceAccount is not supported"},
		{&corev1.List{}, "encode object: v1 List is not supported"},
	} {
		if _, err := Encode(tt.obj); err == nil || err.Error() != tt.want {
			t.Errorf("Encode(%T) error = %v, want %q", tt.obj, err, tt.want)
		}
	}
}

func TestDecodeStored(t *testing.T) {
	// Stored objects keep what Decode clears from manifests.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "1234"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.5"},
	}
	defaultPod(pod)
	data, err := Encode(pod)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeStored(data)
	if err != nil {
		t.Fatal(err)
	}
	want := pod.DeepCopy()
	want.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	if diff := cmp.Diff(want, got.Obj); diff != "" {
		t.Errorf("DecodeStored(Encode(pod)) (-want +got):\n%s", diff)
	}
	if got.Kind != "Pod" || got.Name != "p" || got.Namespace != "default" || got.Line != 1 || got.File != "" {
		t.Errorf("DecodeStored object = %+v", got)
	}

	for _, tt := range []struct {
		name, data, want string
	}{
		{"unknown field", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"dat":{}}`,
			`line 1: dat: unknown field (did you mean "data"?)`},
		{"invalid", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"A"}}`, "line 1: metadata.name: invalid name"},
		{"list", `{"apiVersion":"v1","kind":"List","items":[]}`, "decode stored object: got a List, want a single object"},
		{"two objects", configMap("a") + "---\n" + configMap("b"), "decode stored object: got 2 objects, want 1"},
		{"nothing", "", "decode stored object: got 0 objects, want 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeStored([]byte(tt.data))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("DecodeStored error = %v, want %q...", err, tt.want)
			}
			var ve *ValidationError
			if strings.HasPrefix(tt.want, "line") && !errors.As(err, &ve) {
				t.Errorf("error is %T, want *ValidationError", err)
			}
		})
	}
}
