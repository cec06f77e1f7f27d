package iptables

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// script writes an executable shell script standing in for an iptables tool:
// it logs its arguments and stdin to log and behaves as body says.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	log := filepath.Join(dir, "log")
	src := "#!/bin/sh\necho \"" + name + " $*\" >> " + log + "\n" + body + "\n"
	if err := os.WriteFile(path, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func readLog(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func TestExec(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := Exec{
		IptablesBin: script(t, dir, "iptables", `case "$*" in
  *"-C FORWARD"*present*) exit 0 ;;
  *"-C FORWARD"*) echo "iptables: Bad rule (does a matching rule exist in that chain?)." >&2; exit 1 ;;
  *"-C BROKEN"*) echo "iptables v1.8.9 (nf_tables): unknown option" >&2; exit 2 ;;
  *"-I"*) exit 0 ;;
esac`),
		SaveBin: script(t, dir, "iptables-save", `case "$*" in
  *mangle*) echo "iptables-save v1.8.9 (nf_tables): table 'mangle' does not exist" >&2; exit 1 ;;
  *raw*) echo "broken" >&2; exit 3 ;;
esac
printf '*filter\nCOMMIT\n'`),
		RestoreBin: script(t, dir, "iptables-restore", `cat > `+filepath.Join(dir, "stdin")+`
case "$(cat `+filepath.Join(dir, "stdin")+`)" in *FAIL*) echo "iptables-restore: line 2 failed" >&2; exit 1 ;; esac`),
	}

	ok, err := e.Check(ctx, "filter", "FORWARD", []string{"-j", "present"})
	if err != nil || !ok {
		t.Errorf("Check(present) = %v, %v; want true", ok, err)
	}
	ok, err = e.Check(ctx, "filter", "FORWARD", []string{"-j", "absent"})
	if err != nil || ok {
		t.Errorf("Check(absent) = %v, %v; want false, nil", ok, err)
	}
	_, err = e.Check(ctx, "filter", "BROKEN", []string{"-j", "x"})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(err.Error(), "unknown option") {
		t.Errorf("Check(broken) err = %v, want exit status 2 with stderr", err)
	}
	if err := e.Insert(ctx, "filter", "FORWARD", []string{"-j", "X"}); err != nil {
		t.Errorf("Insert: %v", err)
	}
	out, err := e.Save(ctx, "filter")
	if err != nil || string(out) != "*filter\nCOMMIT\n" {
		t.Errorf("Save(filter) = %q, %v", out, err)
	}
	out, err = e.Save(ctx, "mangle")
	if err != nil || out != nil {
		t.Errorf("Save(missing table) = %q, %v; want empty, nil", out, err)
	}
	if _, err := e.Save(ctx, "raw"); err == nil || !strings.Contains(err.Error(), "save table raw") {
		t.Errorf("Save(raw) err = %v", err)
	}
	payload := []byte("*filter\n:CLUSTERCTL-X - [0:0]\nCOMMIT\n")
	if err := e.Restore(ctx, payload); err != nil {
		t.Errorf("Restore: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "stdin")); string(got) != string(payload) {
		t.Errorf("restore stdin = %q, want the payload", got)
	}
	err = e.Restore(ctx, []byte("*filter\nFAIL secret-looking-payload\nCOMMIT\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2 failed") || strings.Contains(err.Error(), "secret-looking-payload") {
		t.Errorf("Restore(bad) err = %v; want stderr, never the payload", err)
	}

	want := []string{
		"iptables -w -t filter -C FORWARD -j present",
		"iptables -w -t filter -C FORWARD -j absent",
		"iptables -w -t filter -C BROKEN -j x",
		"iptables -w -t filter -I FORWARD -j X",
		"iptables-save -t filter",
		"iptables-save -t mangle",
		"iptables-save -t raw",
		"iptables-restore -w --noflush",
		"iptables-restore -w --noflush",
	}
	if diff := cmp.Diff(want, readLog(t, dir)); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
}

func TestExecNotInstalled(t *testing.T) {
	e := Exec{SaveBin: "clusterctl-no-such-iptables-save"}
	_, err := e.Save(context.Background(), "filter")
	if !NotInstalled(err) {
		t.Errorf("err = %v, want NotInstalled", err)
	}
}

func TestFake(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	rule := []string{"-j", "X"}
	if ok, _ := f.Check(ctx, "filter", "FORWARD", rule); ok {
		t.Error("fresh fake has rules")
	}
	_ = f.Insert(ctx, "filter", "FORWARD", rule)
	if ok, _ := f.Check(ctx, "filter", "FORWARD", rule); !ok {
		t.Error("inserted rule not found")
	}
	var hooked []byte
	f.OnRestore = func(p []byte) { hooked = p }
	_ = f.Restore(ctx, []byte("p"))
	if string(hooked) != "p" || len(f.Restored) != 1 {
		t.Errorf("restore not recorded: %q %q", hooked, f.Restored)
	}
	f.RestoreErr = errors.New("boom")
	if err := f.Restore(ctx, []byte("q")); err == nil || len(f.Restored) != 1 {
		t.Error("RestoreErr not injected")
	}
	want := []string{"check filter FORWARD -j X", "insert filter FORWARD -j X", "check filter FORWARD -j X", "restore", "restore"}
	if diff := cmp.Diff(want, f.TakeCalls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
