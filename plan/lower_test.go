package plan

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/clusterctl/clusterctl/nodeapi"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/plan")

// testLowerInput is the optional "kind: LowerInput" document of a
// lower-*.yaml fixture (test-only); unset fields take defaultTestInput's.
type testLowerInput struct {
	APIVersion      string                 `json:"apiVersion"`
	Kind            string                 `json:"kind"`
	NodeName        string                 `json:"nodeName"`
	HostIP          string                 `json:"hostIP"`
	ClusterDomain   string                 `json:"clusterDomain"`
	ClusterDNS      string                 `json:"clusterDNS"`
	NodeAllocatable nodeapi.Resources      `json:"nodeAllocatable"`
	RegistryAuth    []nodeapi.RegistryAuth `json:"registryAuth"`
}

func defaultTestInput() LowerInput {
	return LowerInput{
		ConfigMaps:      map[string]*corev1.ConfigMap{},
		Secrets:         map[string]*corev1.Secret{},
		ClusterDomain:   "cluster.local",
		NodeName:        "h1",
		HostIP:          "10.250.0.11",
		NodeAllocatable: nodeapi.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, Pods: 110},
	}
}

// readFixture decodes a multi-document YAML fixture: one Pod, any number of
// ConfigMaps and Secrets, and optionally a LowerInput.
func readFixture(t *testing.T, path string) (*corev1.Pod, LowerInput) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in := defaultTestInput()
	var pod *corev1.Pod
	r := yamlutil.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		switch meta.Kind {
		case "":
			continue // comments only
		case "Pod":
			pod = &corev1.Pod{}
			strict(t, path, doc, pod)
		case "ConfigMap":
			var cm corev1.ConfigMap
			strict(t, path, doc, &cm)
			in.ConfigMaps[cm.Namespace+"/"+cm.Name] = &cm
		case "Secret":
			var s corev1.Secret
			strict(t, path, doc, &s)
			in.Secrets[s.Namespace+"/"+s.Name] = &s
		case "LowerInput":
			var li testLowerInput
			strict(t, path, doc, &li)
			in.NodeName = cmpOr(li.NodeName, in.NodeName)
			in.HostIP = cmpOr(li.HostIP, in.HostIP)
			in.ClusterDomain = cmpOr(li.ClusterDomain, in.ClusterDomain)
			in.ClusterDNS = cmpOr(li.ClusterDNS, in.ClusterDNS)
			if li.NodeAllocatable != (nodeapi.Resources{}) {
				in.NodeAllocatable = li.NodeAllocatable
			}
			in.RegistryAuth = li.RegistryAuth
		default:
			t.Fatalf("%s: unexpected kind %q", path, meta.Kind)
		}
	}
	if pod == nil {
		t.Fatalf("%s: no Pod", path)
	}
	return pod, in
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func strict(t *testing.T, path string, doc []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

func TestLowerPodGolden(t *testing.T) {
	files, err := filepath.Glob("../testdata/plan/lower-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			pod, in := readFixture(t, file)
			before := pod.DeepCopy()
			got, err := LowerPod(pod, in)
			if err != nil {
				t.Fatalf("LowerPod: %v", err)
			}
			if diff := cmp.Diff(before, pod); diff != "" {
				t.Errorf("LowerPod modified the pod (-before +after):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("result does not validate: %v", err)
			}
			again, _ := LowerPod(pod, in)
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("not deterministic (-first +second):\n%s", diff)
			}
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			golden := strings.TrimSuffix(file, ".yaml") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(out)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "a", "B": "$(A)", "EMPTY": "", "X Y": "spaced"}
	lookup := func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"$(A)", "a"},
		{"x$(A)y$(A)z", "xayaz"},
		{"$(B)", "$(A)"}, // no recursion
		{"$(EMPTY)", ""},
		{"$(UNDEFINED)", "$(UNDEFINED)"},
		{"$$(A)", "$(A)"},    // escaped
		{"$$$(A)", "$a"},     // escape, then a reference
		{"$$$$(A)", "$$(A)"}, // two escapes
		{"$$", "$"},
		{"$", "$"},
		{"a$", "a$"},
		{"$A", "$A"},
		{"$(A", "$(A"}, // incomplete
		{"$(A$(A)", "$(A$(A)"},
		{"$()", "$()"}, // the empty name is undefined
		{"$(X Y)", "spaced"},
		{"$($(A))", "$($(A))"}, // name "$(A" is undefined, then ")" is literal
		{"100$", "100$"},
		{"$)", "$)"},
		{"é$(A)é", "éaé"},
	}
	for _, tt := range tests {
		if got := expand(tt.in, lookup); got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := references("$(A) $$(B) $(C) $(A"); !slicesEqual(got, []string{"A", "C"}) {
		t.Errorf("references = %q", got)
	}
}

func slicesEqual(a, b []string) bool { return cmp.Equal(a, b) }

// basePod is a valid pod the error tests break one field at a time.
func basePod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: objectMeta("default", "p", "uid-1"),
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}},
		},
	}
}

func objectMeta(ns, name, uid string) (m metav1.ObjectMeta) {
	m.Namespace, m.Name, m.UID = ns, name, types.UID(uid)
	return m
}

func TestLowerEnv(t *testing.T) {
	in := defaultTestInput()
	in.ConfigMaps["default/cm"] = &corev1.ConfigMap{Data: map[string]string{"K": "from-cm", "X": "x"}}
	in.Secrets["default/s"] = &corev1.Secret{Data: map[string][]byte{"K": []byte("from-secret")}}
	tests := []struct {
		name    string
		from    []corev1.EnvFromSource
		env     []corev1.EnvVar
		command []string
		want    []nodeapi.EnvVar
		wantCmd []string
	}{
		{
			name: "references only earlier variables",
			env:  []corev1.EnvVar{{Name: "A", Value: "$(B)"}, {Name: "B", Value: "b"}, {Name: "C", Value: "$(B)"}},
			want: []nodeapi.EnvVar{{Name: "A", Value: "$(B)"}, {Name: "B", Value: "b"}, {Name: "C", Value: "b"}},
		},
		{
			name: "a variable may refer to its own earlier value",
			env:  []corev1.EnvVar{{Name: "PATH", Value: "/bin"}, {Name: "PATH", Value: "/opt:$(PATH)"}},
			want: []nodeapi.EnvVar{{Name: "PATH", Value: "/opt:/bin"}},
		},
		{
			name: "env overrides envFrom in place; envFrom values are expandable",
			from: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
			env:  []corev1.EnvVar{{Name: "Y", Value: "$(X)$(K)"}, {Name: "K", Value: "mine"}},
			want: []nodeapi.EnvVar{{Name: "K", Value: "mine"}, {Name: "X", Value: "x"}, {Name: "Y", Value: "xfrom-cm"}},
		},
		{
			name: "later envFrom sources win",
			from: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}},
			},
			want: []nodeapi.EnvVar{{Name: "K", Value: "from-secret"}, {Name: "X", Value: "x"}},
		},
		{
			name: "values from sources are not expanded",
			env: []corev1.EnvVar{{Name: "A", Value: "a"}, {Name: "B", ValueFrom: &corev1.EnvVarSource{
				ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "K"}}}},
			want: []nodeapi.EnvVar{{Name: "A", Value: "a"}, {Name: "B", Value: "from-cm"}},
		},
		{
			name:    "command sees the final environment, undefined stays",
			env:     []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "A", Value: "2"}},
			command: []string{"echo", "$(A)", "$$(A)", "$(B)"},
			want:    []nodeapi.EnvVar{{Name: "A", Value: "2"}},
			wantCmd: []string{"echo", "2", "$(A)", "$(B)"},
		},
		{
			name: "the pod IP is left to the node and can be overridden",
			env: []corev1.EnvVar{
				{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIPs"}}},
				{Name: "IP2", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
				{Name: "IP2", Value: "fixed"}, {Name: "USE", Value: "$(IP2)"},
			},
			want: []nodeapi.EnvVar{{Name: "IP", FieldPath: nodeapi.FieldPodIP}, {Name: "IP2", Value: "fixed"}, {Name: "USE", Value: "fixed"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := basePod()
			pod.Spec.Containers[0].EnvFrom = tt.from
			pod.Spec.Containers[0].Env = tt.env
			pod.Spec.Containers[0].Command = tt.command
			got, err := LowerPod(pod, in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.Containers[0].Env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCmd, got.Containers[0].Command); diff != "" {
				t.Errorf("command (-want +got):\n%s", diff)
			}
		})
	}
}
