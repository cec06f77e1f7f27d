package agentlet

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// testSnapshot returns a valid snapshot of content at generation gen.
func testSnapshot(t *testing.T, gen int64, content string) Snapshot {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(content))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	return Snapshot{Generation: gen, Writer: "ann@laptop", WrittenAt: time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC),
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Data: buf.Bytes()}
}

func putInput(t *testing.T, s Snapshot, audit string) string {
	t.Helper()
	in := SnapshotPut{Snapshot: s}
	if audit != "" {
		in.Audit = json.RawMessage(audit)
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// getHeld runs `agentlet snapshot get`.
func getHeld(t *testing.T, root string) (*Snapshot, int64) {
	t.Helper()
	code, out, errs := run(t, "", "snapshot", "get", "--root", root)
	if code != ExitOK {
		t.Fatalf("snapshot get = %d: %s", code, errs)
	}
	var held struct {
		Snapshot       *Snapshot `json:"snapshot"`
		SpecGeneration int64     `json:"specGeneration"`
	}
	if err := json.Unmarshal([]byte(out), &held); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("snapshot get printed %q: %v", out, err)
	}
	return held.Snapshot, held.SpecGeneration
}

func heldSnapshot(t *testing.T, root string) *Snapshot {
	t.Helper()
	s, _ := getHeld(t, root)
	return s
}

// TestSnapshotGetReportsHeldSpec: get also tells the held spec's
// generation, readable or not, so that recover can see a change whose
// snapshot was not stored.
func TestSnapshotGetReportsHeldSpec(t *testing.T) {
	root := t.TempDir()
	if s, gen := getHeld(t, root); s != nil || gen != 0 {
		t.Fatalf("fresh host: %+v, spec generation %d", s, gen)
	}
	if _, err := (Applier{Paths: Paths{Root: root}, ProcRoot: "/proc"}).Apply(specJSON(t, testSpec(6))); err != nil {
		t.Fatal(err)
	}
	if _, gen := getHeld(t, root); gen != 6 {
		t.Errorf("spec generation = %d, want 6", gen)
	}
	// A spec for a newer agentlet still tells its generation.
	if err := os.WriteFile(Paths{Root: root}.SpecPath(), []byte(`{"generation":8,"future":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, gen := getHeld(t, root); gen != 8 {
		t.Errorf("spec generation of an undecodable spec = %d, want 8", gen)
	}
}

func TestSnapshotPutGet(t *testing.T) {
	root := t.TempDir()
	if s := heldSnapshot(t, root); s != nil {
		t.Fatalf("fresh host holds %+v", s)
	}
	first := testSnapshot(t, 5, `{"state":{"generation":5}}`)
	code, out, errs := run(t, putInput(t, first, ""), "snapshot", "put", "--root", root)
	if code != ExitOK || out != "stored snapshot generation 5\n" {
		t.Fatalf("put = %d %q %s", code, out, errs)
	}
	st, err := os.Stat(Paths{Root: root}.SnapshotPath())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file: %v, mode %v (want 0600: it holds Secrets)", err, st.Mode())
	}
	got := heldSnapshot(t, root)
	if got == nil || got.Generation != 5 || got.SHA256 != first.SHA256 || !bytes.Equal(got.Data, first.Data) || got.Writer != "ann@laptop" {
		t.Fatalf("held = %+v", got)
	}

	tests := []struct {
		name     string
		snap     Snapshot
		code     int
		out      string
		wantHeld string // sha256 of the held snapshot afterwards
	}{
		{"same again", first, ExitOK, "unchanged snapshot generation 5\n", first.SHA256},
		{"older refused", testSnapshot(t, 4, "old"), ExitStale, "", first.SHA256},
		{"same generation, new content", testSnapshot(t, 5, "status changed"), ExitOK, "stored snapshot generation 5\n", testSnapshot(t, 5, "status changed").SHA256},
		{"newer", testSnapshot(t, 9, "newer"), ExitOK, "stored snapshot generation 9\n", testSnapshot(t, 9, "newer").SHA256},
		{"older than the newer refused", testSnapshot(t, 8, "x"), ExitStale, "", testSnapshot(t, 9, "newer").SHA256},
	}
	for _, tt := range tests {
		code, out, errs := run(t, putInput(t, tt.snap, ""), "snapshot", "put", "--root", root)
		if code != tt.code || out != tt.out {
			t.Errorf("%s: put = %d %q %s, want %d %q", tt.name, code, out, errs, tt.code, tt.out)
		}
		if tt.code == ExitStale && !strings.Contains(errs, "holds generation") {
			t.Errorf("%s: stale error does not name the held generation: %s", tt.name, errs)
		}
		if h := heldSnapshot(t, root); h == nil || h.SHA256 != tt.wantHeld {
			t.Errorf("%s: held %+v, want sha %s", tt.name, h, tt.wantHeld)
		}
	}
}

func TestSnapshotPutRejectsInvalid(t *testing.T) {
	good := testSnapshot(t, 3, "content")
	tests := []struct {
		name  string
		input string
	}{
		{"not json", "snapshot"},
		{"generation 0", putInput(t, func() Snapshot { s := good; s.Generation = 0; return s }(), "")},
		{"checksum mismatch", putInput(t, func() Snapshot { s := good; s.SHA256 = strings.Repeat("0", 64); return s }(), "")},
		{"size mismatch", putInput(t, func() Snapshot { s := good; s.Size++; return s }(), "")},
		{"not gzip", putInput(t, func() Snapshot { s := good; s.Data = []byte("plain"); return s }(), "")},
		{"no data", putInput(t, func() Snapshot { s := good; s.Data = nil; return s }(), "")},
		{"audit without generation", putInput(t, good, `{"writer":"x"}`)},
		{"audit not an object", putInput(t, good, `[1,2]`)},
		{"audit generation not an integer", putInput(t, good, `{"generation":"7"}`)},
	}
	for _, tt := range tests {
		root := t.TempDir()
		code, _, errs := run(t, tt.input, "snapshot", "put", "--root", root)
		if code != ExitUsage {
			t.Errorf("%s: exit %d (%s), want %d", tt.name, code, errs, ExitUsage)
		}
		if _, err := os.Stat(Paths{Root: root}.SnapshotPath()); err == nil {
			t.Errorf("%s: a snapshot was stored", tt.name)
		}
		if _, err := os.Stat(Paths{Root: root}.AuditPath()); err == nil {
			t.Errorf("%s: an audit record was appended", tt.name)
		}
	}
}

func TestSnapshotPutWithAudit(t *testing.T) {
	root := t.TempDir()
	rec := `{"generation": 7, "writer": "ann@laptop", "command": ["clusterctl", "apply", "-f", "web.yaml"]}`
	code, out, errs := run(t, putInput(t, testSnapshot(t, 7, "s7"), rec), "snapshot", "put", "--root", root)
	if code != ExitOK || out != "stored snapshot generation 7; audit record appended\n" {
		t.Fatalf("put = %d %q %s", code, out, errs)
	}
	// A stale snapshot appends nothing either.
	if code, _, _ := run(t, putInput(t, testSnapshot(t, 6, "s6"), `{"generation":6}`), "snapshot", "put", "--root", root); code != ExitStale {
		t.Fatalf("stale put = %d", code)
	}
	code, out, _ = run(t, "", "audit", "list", "--root", root)
	want := `{"generation":7,"writer":"ann@laptop","command":["clusterctl","apply","-f","web.yaml"]}` + "\n"
	if code != ExitOK || out != want {
		t.Errorf("audit list = %d %q, want %q", code, out, want)
	}
}

func TestSnapshotReplacesUnreadableHeld(t *testing.T) {
	root := t.TempDir()
	p := Paths{Root: root}
	if err := os.MkdirAll(p.StateDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.SnapshotPath(), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := run(t, "", "snapshot", "get", "--root", root); code != ExitError {
		t.Errorf("get of an unreadable snapshot = %d, want %d", code, ExitError)
	}
	code, _, errs := run(t, putInput(t, testSnapshot(t, 1, "x"), ""), "snapshot", "put", "--root", root)
	if code != ExitOK || !strings.Contains(errs, "replacing an unreadable held snapshot") {
		t.Errorf("put over garbage = %d %q", code, errs)
	}
	if h := heldSnapshot(t, root); h == nil || h.Generation != 1 {
		t.Errorf("held = %+v", h)
	}
}

func TestSnapshotUsage(t *testing.T) {
	for _, args := range [][]string{{"snapshot"}, {"snapshot", "delete"}, {"snapshot", "get", "extra"}, {"audit"}, {"audit", "list", "--tail", "x"}} {
		if code, _, _ := run(t, "", args...); code != ExitUsage {
			t.Errorf("agentlet %v = %d, want %d", args, code, ExitUsage)
		}
	}
	for _, args := range [][]string{{"snapshot", "-h"}, {"audit", "help"}} {
		if code, out, _ := run(t, "", args...); code != ExitOK || !strings.Contains(out, "usage: agentlet") {
			t.Errorf("agentlet %v = %d %q", args, code, out)
		}
	}
}
