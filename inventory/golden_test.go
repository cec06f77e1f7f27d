package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/inventory")

const testdataDir = "../testdata/inventory"

// golden compares got with the golden file, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(testdataDir, name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("update golden file: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./inventory -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func globTestdata(t *testing.T, pattern string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(testdataDir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	return names
}

func toJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(data, '\n')
}

// TestParseValidGolden parses every valid-*.yaml, compares the parsed and
// defaulted result with valid-*.golden.json, and checks that Marshal's
// output parses back to the same inventory.
func TestParseValidGolden(t *testing.T) {
	files := globTestdata(t, "valid-*.yaml")
	if len(files) < 3 {
		t.Fatalf("found only %d valid inventories in %s", len(files), testdataDir)
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			inv, err := Parse(name, readTestdata(t, name))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := toJSON(t, inv)
			golden(t, strings.TrimSuffix(name, ".yaml")+".golden.json", got)

			out, err := inv.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			again, err := Parse(name, out)
			if err != nil {
				t.Fatalf("Parse(Marshal()): %v\n%s", err, out)
			}
			// Warnings point at lines, which move when state is rewritten.
			inv.Warnings, again.Warnings = nil, nil
			if diff := cmp.Diff(string(toJSON(t, inv)), string(toJSON(t, again))); diff != "" {
				t.Errorf("round trip through Marshal changed the inventory (-before +after):\n%s", diff)
			}
		})
	}
}

// TestParseInvalidGolden parses every invalid-*.yaml and compares the error
// with invalid-*.golden.
func TestParseInvalidGolden(t *testing.T) {
	files := globTestdata(t, "invalid-*.yaml")
	if len(files) < 10 {
		t.Fatalf("found only %d invalid inventories in %s", len(files), testdataDir)
	}
	lineRE := regexp.MustCompile(`^invalid-[a-z0-9-]+\.yaml(:[1-9][0-9]*)?: `)
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			inv, err := Parse(name, readTestdata(t, name))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error; got %+v", inv)
			}
			if inv != nil {
				t.Errorf("Parse returned an inventory with its error")
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error is %T, want *ValidationError: %v", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(verr.Problems) {
				t.Errorf("Error() has %d lines for %d problems", len(lines), len(verr.Problems))
			}
			for _, l := range lines {
				if !lineRE.MatchString(l) {
					t.Errorf("problem not formatted as FILE:LINE: ...: %q", l)
				}
			}
			if !slices.IsSortedFunc(verr.Problems, func(a, b Problem) int { return a.Line - b.Line }) {
				t.Errorf("problems not sorted by line:\n%v", err)
			}
			golden(t, strings.TrimSuffix(name, ".yaml")+".golden", []byte(err.Error()+"\n"))
		})
	}
}

// TestGoldenFilesHaveInputs catches golden files left behind by renames.
func TestGoldenFilesHaveInputs(t *testing.T) {
	for _, pattern := range []string{"*.golden", "*.golden.json"} {
		for _, g := range globTestdata(t, pattern) {
			input := strings.TrimSuffix(strings.TrimSuffix(g, ".json"), ".golden")
			if !strings.HasSuffix(input, ".yaml") {
				input += ".yaml"
			}
			if _, err := os.Stat(filepath.Join(testdataDir, input)); err != nil {
				t.Errorf("golden file %s has no input %s", g, input)
			}
		}
	}
}

func TestValidationErrorFormat(t *testing.T) {
	err := &ValidationError{Problems: []Problem{
		{File: "c.yaml", Line: 3, Field: "cluster.name", Message: "missing required field"},
		{File: "c.yaml", Message: "empty inventory"},
		{File: "c.yaml", Line: 9, Message: "invalid YAML: bad"},
		{Message: "no file"},
	}}
	want := "c.yaml:3: cluster.name: missing required field\nc.yaml: empty inventory\nc.yaml:9: invalid YAML: bad\nno file"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !bytes.Contains([]byte(err.Error()), []byte("c.yaml:3")) {
		t.Error("missing location")
	}
}
