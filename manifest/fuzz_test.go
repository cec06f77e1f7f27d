package manifest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
)

// FuzzDecode checks that Decode never panics, that it returns either objects
// or a *ValidationError with problems, and that every accepted object
// survives Encode and DecodeStored unchanged.
func FuzzDecode(f *testing.F) {
	for _, pattern := range []string{"*.yaml", "*.json", "*/*.yaml"} {
		paths, err := filepath.Glob(filepath.Join(testdataDir, pattern))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Decode("fuzz.yaml", data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("Decode error is not a *ValidationError with problems: %#v", err)
			}
			if objs != nil {
				t.Fatalf("Decode returned %d objects with an error", len(objs))
			}
			return
		}
		for _, o := range objs {
			enc, err := Encode(o.Obj)
			if err != nil {
				t.Fatalf("Encode(%s %s): %v", o.Kind, o.Name, err)
			}
			back, err := DecodeStored(enc)
			if err != nil {
				t.Fatalf("DecodeStored(Encode(%s %s)): %v\n%s", o.Kind, o.Name, err, enc)
			}
			if !apiequality.Semantic.DeepEqual(o.Obj, back.Obj) {
				t.Fatalf("%s %s changed through Encode and DecodeStored", o.Kind, o.Name)
			}
			again, err := Encode(back.Obj)
			if err != nil || !bytes.Equal(enc, again) {
				t.Fatalf("Encode not stable: %s\nthen %s (%v)", enc, again, err)
			}
			if back.Kind != o.Kind || back.Name != o.Name || back.Namespace != o.Namespace {
				t.Fatalf("identity changed: %s %s/%s, then %s %s/%s", o.Kind, o.Namespace, o.Name, back.Kind, back.Namespace, back.Name)
			}
		}
	})
}
