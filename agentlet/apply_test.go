package agentlet

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func specJSON(t *testing.T, s *nodeapi.NodeSpec) io.Reader {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(data)
}

func TestApply(t *testing.T) {
	paths := Paths{Root: t.TempDir()}
	a := Applier{Paths: paths, ProcRoot: "/proc"}

	res, err := a.Apply(specJSON(t, testSpec(5)))
	if err != nil || !res.Changed || res.Generation != 5 || res.DaemonPID != 0 {
		t.Fatalf("first apply = %+v, %v", res, err)
	}
	fi, err := os.Stat(paths.SpecPath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("spec file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	di, err := os.Stat(paths.StateDir())
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode = %v, %v; want 0700", di.Mode(), err)
	}
	held, _, err := loadSpec(paths.SpecPath())
	if err != nil || held.Generation != 5 {
		t.Fatalf("held = %+v, %v", held, err)
	}
	entries, _ := os.ReadDir(paths.StateDir())
	if len(entries) != 1 {
		t.Errorf("state dir holds %d entries, want only the spec (no temp files)", len(entries))
	}

	// Same spec, other formatting: unchanged, nothing written.
	before, _ := os.ReadFile(paths.SpecPath())
	data, _ := json.MarshalIndent(testSpec(5), "", "\t")
	res, err = a.Apply(bytes.NewReader(data))
	if err != nil || res.Changed {
		t.Errorf("re-apply = %+v, %v; want unchanged", res, err)
	}
	after, _ := os.ReadFile(paths.SpecPath())
	if !bytes.Equal(before, after) {
		t.Error("unchanged apply rewrote the file")
	}

	// Same generation and content from another writer or time: unchanged.
	s := testSpec(5)
	s.Writer = "bob@desk"
	if res, err := a.Apply(specJSON(t, s)); err != nil || res.Changed {
		t.Errorf("same content, other writer = %+v, %v; want unchanged", res, err)
	}

	// Same generation, other content: two inventories diverged; refused
	// (the exit code of a stale apply), nothing written, whoever wrote it.
	before, _ = os.ReadFile(paths.SpecPath())
	for _, w := range []string{"alice@laptop", "bob@desk"} {
		s := testSpec(5)
		s.Writer = w
		s.PodCIDR = "10.244.9.0/24"
		_, err = a.Apply(specJSON(t, s))
		var diverged *DivergedSpecError
		if !errors.As(err, &diverged) || diverged.Generation != 5 || diverged.HeldWriter != "alice@laptop" || !IsStale(err) {
			t.Fatalf("same generation, other content by %s: err = %v, want a DivergedSpecError naming alice@laptop", w, err)
		}
		if !strings.Contains(err.Error(), "refuse node spec generation 5 on h1: it holds another spec of generation 5, written by alice@laptop") {
			t.Errorf("diverged error = %q", err)
		}
	}
	if after, _ := os.ReadFile(paths.SpecPath()); !bytes.Equal(before, after) {
		t.Error("diverged apply changed the held spec")
	}

	// Older generation: fenced, nothing written.
	before, _ = os.ReadFile(paths.SpecPath())
	_, err = a.Apply(specJSON(t, testSpec(4)))
	var stale *nodeapi.StaleGenerationError
	if !errors.As(err, &stale) || stale.Held != 5 || stale.HeldWriter != "alice@laptop" || !IsStale(err) {
		t.Fatalf("err = %v, want a StaleGenerationError naming alice@laptop", err)
	}
	after, _ = os.ReadFile(paths.SpecPath())
	if !bytes.Equal(before, after) {
		t.Error("fenced apply changed the held spec")
	}

	// Newer generation: applied.
	if res, err := a.Apply(specJSON(t, testSpec(6))); err != nil || !res.Changed || res.Generation != 6 {
		t.Errorf("newer = %+v, %v", res, err)
	}
}

func TestApplyInvalid(t *testing.T) {
	tests := map[string]string{
		"not json":      "hello",
		"unknown field": `{"apiVersion":"` + nodeapi.APIVersion + `","bogus":1}`,
		"invalid":       `{"apiVersion":"` + nodeapi.APIVersion + `"}`,
		"empty":         "",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			paths := Paths{Root: t.TempDir()}
			_, err := Applier{Paths: paths}.Apply(strings.NewReader(in))
			var ie *InvalidSpecError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want InvalidSpecError", err)
			}
			if _, err := os.Stat(paths.SpecPath()); !os.IsNotExist(err) {
				t.Errorf("invalid input wrote a spec: %v", err)
			}
		})
	}
}

func TestApplyFencesOnUndecodableHeldSpec(t *testing.T) {
	paths := Paths{Root: t.TempDir()}
	if err := os.MkdirAll(paths.StateDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	// Written for a newer agentlet: an unknown field, still a generation.
	held := `{"apiVersion":"` + nodeapi.APIVersion + `","nodeName":"h1","generation":9,"writer":"carol@ci","futureField":true}`
	if err := os.WriteFile(paths.SpecPath(), []byte(held), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Applier{Paths: paths}.Apply(specJSON(t, testSpec(8)))
	if !IsStale(err) || !strings.Contains(err.Error(), "carol@ci") {
		t.Errorf("err = %v, want fencing by the held generation 9", err)
	}

	// Garbage held: replaced, with a warning.
	if err := os.WriteFile(paths.SpecPath(), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	var warned string
	res, err := Applier{Paths: paths, Warn: func(m string) { warned = m }}.Apply(specJSON(t, testSpec(1)))
	if err != nil || !res.Changed || !strings.Contains(warned, "unreadable") {
		t.Errorf("apply over garbage = %+v, %v, warning %q", res, err, warned)
	}
}

func TestMainApplyExitCodes(t *testing.T) {
	root := t.TempDir()
	run := func(in io.Reader) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(t.Context(), Env{In: in, Out: &out, Err: &errb}, []string{"apply", "--root", root})
		return code, out.String(), errb.String()
	}
	if code, out, _ := run(specJSON(t, testSpec(2))); code != ExitOK || out != "applied generation 2\n" {
		t.Errorf("apply = %d %q", code, out)
	}
	if code, out, _ := run(specJSON(t, testSpec(2))); code != ExitOK || out != "unchanged generation 2\n" {
		t.Errorf("re-apply = %d %q", code, out)
	}
	code, out, errs := run(specJSON(t, testSpec(1)))
	if code != ExitStale || out != "" || !strings.Contains(errs, "refuse node spec generation 1 on h1: it holds generation 2 written by alice@laptop") {
		t.Errorf("stale apply = %d %q %q", code, out, errs)
	}
	if code, _, errs := run(strings.NewReader("{")); code != ExitUsage || !strings.Contains(errs, "decode node spec") {
		t.Errorf("invalid apply = %d %q", code, errs)
	}
}
