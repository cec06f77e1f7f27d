package manifest

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/manifest")

const testdataDir = "../testdata/manifest"

// golden compares got with the golden file testdata/manifest/name (or, when
// name is absolute, name), or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(testdataDir, name)
	}
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("update golden file: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./manifest -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// manifests lists the testdata files matching prefix*.yaml and prefix*.json.
func manifests(t *testing.T, prefix string) []string {
	t.Helper()
	var names []string
	for _, ext := range []string{".yaml", ".json"} {
		paths, err := filepath.Glob(filepath.Join(testdataDir, prefix+"*"+ext))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			if !strings.HasSuffix(p, ".golden.json") {
				names = append(names, filepath.Base(p))
			}
		}
	}
	return names
}

func goldenName(manifest, suffix string) string {
	return strings.TrimSuffix(manifest, filepath.Ext(manifest)) + suffix
}

// goldenObject is how a decoded object is written to a golden file.
type goldenObject struct {
	File       string          `json:"file"`
	Line       int             `json:"line"`
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Namespace  string          `json:"namespace,omitempty"`
	Name       string          `json:"name"`
	Object     json.RawMessage `json:"object"`
}

// TestDecodeValidGolden decodes every valid-* manifest, compares the
// defaulted objects with valid-*.golden.json, and checks that each object
// survives Encode and DecodeStored unchanged.
func TestDecodeValidGolden(t *testing.T) {
	files := manifests(t, "valid-")
	if len(files) < 6 {
		t.Fatalf("found only %d valid manifests in %s", len(files), testdataDir)
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			objs, err := Decode(name, readTestdata(t, name))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var out []goldenObject
			for _, o := range objs {
				enc, err := Encode(o.Obj)
				if err != nil {
					t.Fatalf("Encode %s %s: %v", o.Kind, o.Name, err)
				}
				out = append(out, goldenObject{o.File, o.Line, o.APIVersion, o.Kind, o.Namespace, o.Name, enc})
				back, err := DecodeStored(enc)
				if err != nil {
					t.Fatalf("DecodeStored(Encode(%s %s)): %v", o.Kind, o.Name, err)
				}
				if !apiequality.Semantic.DeepEqual(o.Obj, back.Obj) {
					t.Errorf("%s %s changed through Encode and DecodeStored:\n%s", o.Kind, o.Name, cmp.Diff(o.Obj, back.Obj))
				}
				if back.Kind != o.Kind || back.Name != o.Name || back.Namespace != o.Namespace || back.APIVersion != o.APIVersion {
					t.Errorf("DecodeStored identity = %s %s/%s %s, want %s %s/%s %s",
						back.APIVersion, back.Namespace, back.Name, back.Kind, o.APIVersion, o.Namespace, o.Name, o.Kind)
				}
			}
			data, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, goldenName(name, ".golden.json"), append(data, '\n'))
		})
	}
}

// TestDecodeInvalidGolden decodes every invalid-* manifest and compares the
// error text with invalid-*.golden.
func TestDecodeInvalidGolden(t *testing.T) {
	files := manifests(t, "invalid-")
	if len(files) < 12 {
		t.Fatalf("found only %d invalid manifests in %s", len(files), testdataDir)
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			objs, err := Decode(name, readTestdata(t, name))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Decode = %d objects, error %v; want a *ValidationError", len(objs), err)
			}
			if objs != nil {
				t.Errorf("Decode returned %d objects with an error", len(objs))
			}
			golden(t, goldenName(name, ".golden"), []byte(err.Error()+"\n"))
		})
	}
}

// TestReadInvalidDirGolden reads directories of manifests that are only
// wrong together, such as an object defined in two files.
func TestReadInvalidDirGolden(t *testing.T) {
	abs, err := filepath.Abs(testdataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(testdataDir) // so that messages name the files as the golden files do
	dirs, err := filepath.Glob("invalid-*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dir := range dirs {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			continue
		}
		n++
		t.Run(dir, func(t *testing.T) {
			_, readErr := Read([]string{dir}, nil)
			var ve *ValidationError
			if !errors.As(readErr, &ve) {
				t.Fatalf("Read error = %v, want a *ValidationError", readErr)
			}
			// Each file must be valid on its own.
			files, err := manifestFiles(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if _, err := Read([]string{f}, nil); err != nil {
					t.Errorf("%s is invalid on its own: %v", f, err)
				}
			}
			golden(t, filepath.Join(abs, dir+".golden"), []byte(readErr.Error()+"\n"))
		})
	}
	if n == 0 {
		t.Fatal("no invalid-* directories")
	}
}
