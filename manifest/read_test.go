package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

const configMapYAML = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"

func configMap(name string) string { return strings.Replace(configMapYAML, "%s", name, 1) }

// writeFiles creates files (name → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeFiles(t, dir, map[string]string{
		"manifests/b.yaml":       configMap("b"),
		"manifests/a.yml":        configMap("a"),
		"manifests/c.JSON":       `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}`,
		"manifests/notes.txt":    "not a manifest",
		"manifests/sub/d.yaml":   configMap("d"), // not read: no recursion
		"manifests/dir.yaml/x":   "",             // a directory named like a manifest
		"single.yaml":            configMap("e"),
		"empty/README":           "",
		"bad/invalid.yaml":       configMap("Bad_Name"),
		"bad/duplicate.yaml":     configMap("a"),
		"bad/not-kubernetes.yml": "hello: world\n",
	})
	names := func(objs []Object) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.File+":"+o.Name)
		}
		return out
	}
	tests := []struct {
		name    string
		paths   []string
		stdin   string
		want    []string // File:Name of the objects
		wantErr string
	}{
		{name: "directory: sorted, not recursive, manifests only", paths: []string{"manifests"},
			want: []string{"manifests/a.yml:a", "manifests/b.yaml:b", "manifests/c.JSON:c"}},
		{name: "files, directories and stdin in the order given", paths: []string{"single.yaml", "-", "manifests/b.yaml"},
			stdin: configMap("f"), want: []string{"single.yaml:e", "-:f", "manifests/b.yaml:b"}},
		{name: "a file given twice is read once", paths: []string{"manifests", "manifests/a.yml", "./manifests/a.yml"},
			want: []string{"manifests/a.yml:a", "manifests/b.yaml:b", "manifests/c.JSON:c"}},
		{name: "problems of all files at once", paths: []string{"missing.yaml", "empty", "manifests", "bad", "-", "-"}, stdin: "a: [",
			wantErr: strings.Join([]string{
				"<stdin>: stdin is given more than once",
				"<stdin>:1: invalid YAML: did not find expected node content",
				`bad/duplicate.yaml:4: metadata.name: duplicate ConfigMap "a": first defined at manifests/a.yml:4`,
				"bad/invalid.yaml:4: metadata.name: invalid name \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
				"bad/not-kubernetes.yml:1: apiVersion: required (e.g. apiVersion: v1)",
				"bad/not-kubernetes.yml:1: kind: required (e.g. kind: Pod)",
				"empty: no *.yaml, *.yml or *.json files in this directory",
				"missing.yaml: cannot read: no such file or directory",
			}, "\n")},
		{name: "no stdin", paths: []string{"-"}, wantErr: "<stdin>: cannot read: no stdin"},
		{name: "no paths", wantErr: "read manifests: no files given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdin *strings.Reader
			if tt.stdin != "" {
				stdin = strings.NewReader(tt.stdin)
			}
			var objs []Object
			var err error
			if stdin != nil {
				objs, err = Read(tt.paths, stdin)
			} else {
				objs, err = Read(tt.paths, nil)
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Read error:\n%v\nwant:\n%s", err, tt.wantErr)
				}
				if objs != nil {
					t.Errorf("Read returned %d objects with an error", len(objs))
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(tt.want, names(objs)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadStdinError(t *testing.T) {
	_, err := Read([]string{"-"}, iotest.ErrReader(errors.New("broken pipe")))
	if err == nil || err.Error() != "<stdin>: cannot read: broken pipe" {
		t.Errorf("Read error = %v, want the stdin read error", err)
	}
}
