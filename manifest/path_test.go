package manifest

import (
	"testing"

	"gopkg.in/yaml.v3"
)

func TestPathString(t *testing.T) {
	p := path{}.field("spec").field("containers").index(2).field("resources").field("limits").key("memory")
	if got, want := p.String(), "spec.containers[2].resources.limits.memory"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	q := path{}.field("metadata").field("labels").key("app.kubernetes.io/name")
	if got, want := q.String(), "metadata.labels[app.kubernetes.io/name]"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	// Extending a path never changes it.
	base := path{}.field("a")
	b1, b2 := base.field("b"), base.field("c")
	if b1.String() != "a.b" || b2.String() != "a.c" || base.String() != "a" {
		t.Errorf("aliasing: %s %s %s", base, b1, b2)
	}
	if got := parseFieldPath("spec.containers[0].ports[1].name").String(); got != "spec.containers[0].ports[1].name" {
		t.Errorf("parseFieldPath round trip = %q", got)
	}
}

const locateDoc = `spec:
  containers:
    - name: a
      image: x
    - name: b
      ports:
        - containerPort: http
      readinessProbe:
        httpGet:
          port: [80]
`

func TestLocate(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(locateDoc), &doc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path      string
		loose     bool
		wantLine  int
		wantFound string
	}{
		{"spec.containers[1].ports[0].containerPort", false, 7, "spec.containers[1].ports[0].containerPort"},
		{"spec.containers[0].image", false, 4, "spec.containers[0].image"},
		{"spec.containers[0].missing", false, 3, "spec.containers[0]"},
		{"spec.containers[5]", false, 2, "spec.containers"},
		// JSON type errors leave out indices and name embedded Go structs.
		{"spec.containers.ports.containerPort", true, 7, "spec.containers[1].ports[0].containerPort"},
		{"spec.containers.readinessProbe.ProbeHandler.httpGet.port", true, 10, "spec.containers[1].readinessProbe.httpGet.port"},
	}
	for _, tt := range tests {
		line, found := locate(&doc, parseFieldPath(tt.path), tt.loose)
		if line != tt.wantLine || found.String() != tt.wantFound {
			t.Errorf("locate(%s, loose=%v) = %d, %s; want %d, %s", tt.path, tt.loose, line, found, tt.wantLine, tt.wantFound)
		}
	}
}

func TestTypeErrorProblem(t *testing.T) {
	tests := []struct {
		msg, wantPath, wantMessage string
	}{
		{"json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32",
			"spec.containers.ports.containerPort", "expected int32, got string"},
		{"json: cannot unmarshal array into Go struct field HTTPGetAction.spec.containers.readinessProbe.ProbeHandler.httpGet.port of type int32",
			"spec.containers.readinessProbe.httpGet.port", "expected int32, got list"},
		{"json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container",
			"spec.containers", "expected list, got map"},
		{"json: cannot unmarshal number 1.5 into Go struct field PodSpec.spec.terminationGracePeriodSeconds of type int64",
			"spec.terminationGracePeriodSeconds", "expected int64, got number 1.5"},
		{"json: cannot unmarshal bool into Go struct field EnvVar.spec.containers.env.value of type string",
			"spec.containers.env.value", "expected string, got boolean"},
	}
	for _, tt := range tests {
		p, msg, ok := typeErrorProblem(tt.msg)
		if !ok || p.String() != tt.wantPath || msg != tt.wantMessage {
			t.Errorf("typeErrorProblem(%q) = %s, %q, %v; want %s, %q", tt.msg, p, msg, ok, tt.wantPath, tt.wantMessage)
		}
	}
	if _, _, ok := typeErrorProblem("json: cannot unmarshal number into Go value of type int"); ok {
		t.Error("typeErrorProblem accepted a message without a field")
	}
}

func TestResolveScalar(t *testing.T) {
	tests := []struct {
		value string
		style yaml.Style
		json  bool
		want  scalarKind
	}{
		{"yes", 0, false, boolScalar},
		{"Off", 0, false, boolScalar},
		{"y", 0, false, boolScalar},
		{"yes", yaml.DoubleQuotedStyle, false, stringScalar},
		{"~", 0, false, nullScalar},
		{"0644", 0, false, intScalar},
		{"0x1F", 0, false, intScalar},
		{"1_000", 0, false, intScalar},
		{"1e3", 0, false, floatScalar},
		{".5", 0, false, floatScalar},
		{"2024-01-02", 0, false, stringScalar},
		{"12XB", 0, false, stringScalar},
		{"1e3", 0, true, floatScalar},
		{"yes", 0, true, stringScalar},
		{"80", 0, true, intScalar},
	}
	for _, tt := range tests {
		got := resolveScalar(&yaml.Node{Kind: yaml.ScalarNode, Value: tt.value, Style: tt.style}, tt.json)
		if got.kind != tt.want {
			t.Errorf("resolveScalar(%q, style %v, json %v) = %v, want %v", tt.value, tt.style, tt.json, got.kind, tt.want)
		}
	}
}
