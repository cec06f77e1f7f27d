package inventory

import (
	"strings"
	"testing"
)

func TestObjectsRoundTrip(t *testing.T) {
	src := head + "# keep me\nhosts:\n  - {name: h1, address: 10.0.0.1}\n"
	inv := mustParse(t, src)
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default","labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"busybox:1","ports":[{"containerPort":8080}]}]}}`
	cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"default"},"data":{"a":"1"}}`
	for _, o := range []Object{
		{APIVersion: "v1", Kind: "Pod", Namespace: "default", Name: "web", JSON: []byte(pod)},
		{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "cfg", JSON: []byte(cm)},
	} {
		if err := inv.PutObject(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := inv.PutObject(Object{Kind: "Pod", Name: "bad", JSON: []byte("[1]")}); err == nil {
		t.Error("PutObject accepted a non-object")
	}
	out, err := inv.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "# keep me") || strings.Index(string(out), "kind: ConfigMap") > strings.Index(string(out), "kind: Pod") {
		t.Errorf("objects not stored sorted, or comment lost:\n%s", out)
	}
	back, err := Parse("c.yaml", out)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	got, ok := back.Object("Pod", "default", "web")
	if !ok || got.Line == 0 || !strings.Contains(string(got.JSON), `"containerPort":8080`) {
		t.Errorf("pod after round trip: %+v %s", got, got.JSON)
	}
	again, _ := back.Marshal()
	if string(again) != string(out) {
		t.Errorf("second marshal differs:\n%s\n---\n%s", out, again)
	}
	if !back.DeleteObject("Pod", "default", "web") || back.DeleteObject("Pod", "default", "web") {
		t.Error("DeleteObject")
	}
	if len(back.Objects()) != 1 {
		t.Errorf("objects after delete: %v", back.Objects())
	}
}

func TestObjectsInvalid(t *testing.T) {
	src := head + "hosts:\n  - {name: h1, address: 10.0.0.1}\nstate:\n  objects:\n    - {kind: Pod}\n    - 3\n" +
		"    - {apiVersion: v1, kind: Pod, metadata: {name: a}}\n    - {apiVersion: v1, kind: Pod, metadata: {name: a}}\n"
	_, err := Parse("c.yaml", []byte(src))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"c.yaml:8: state.objects[0]: an object needs apiVersion, kind and metadata.name",
		"c.yaml:9: state.objects[1]", "c.yaml:11: state.objects[3]: duplicate object Pod /a (first at line 10)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
