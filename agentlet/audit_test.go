package agentlet

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

func record(gen int) string { return fmt.Sprintf(`{"generation":%d,"writer":"ann@laptop"}`, gen) }

func TestAuditAppendList(t *testing.T) {
	root := t.TempDir()
	for i := 1; i <= 3; i++ {
		// Pretty-printed input is stored as one line.
		if code, _, errs := run(t, fmt.Sprintf("{\n  \"generation\": %d,\n  \"writer\": \"ann@laptop\"\n}\n", i), "audit", "append", "--root", root); code != ExitOK {
			t.Fatalf("append %d = %d %s", i, code, errs)
		}
	}
	code, out, _ := run(t, "", "audit", "list", "--root", root)
	if want := record(1) + "\n" + record(2) + "\n" + record(3) + "\n"; code != ExitOK || out != want {
		t.Errorf("list = %d %q, want %q", code, out, want)
	}
	if _, out, _ := run(t, "", "audit", "list", "--root", root, "--tail", "2"); out != record(2)+"\n"+record(3)+"\n" {
		t.Errorf("list --tail 2 = %q", out)
	}
	st, err := os.Stat(Paths{Root: root}.AuditPath())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("audit file: %v %v, want mode 0600", err, st.Mode())
	}
	for _, bad := range []string{"", "x", "[]", `{"writer":"x"}`, `{"generation":1.5}`, `{"generation":1} {"generation":2}`} {
		if code, _, _ := run(t, bad, "audit", "append", "--root", root); code != ExitUsage {
			t.Errorf("append %q = %d, want %d", bad, code, ExitUsage)
		}
	}
	if _, out2, _ := run(t, "", "audit", "list", "--root", root); out2 != out {
		t.Errorf("rejected records changed the trail: %q", out2)
	}
}

func TestAuditRotation(t *testing.T) {
	root := t.TempDir()
	line := len(record(10)) + 1
	log := AuditLog{Paths: Paths{Root: root}, MaxBytes: int64(3 * line)} // three records per file
	for i := 10; i < 20; i++ {
		if err := log.Append([]byte(record(i))); err != nil {
			t.Fatal(err)
		}
	}
	// 10 records, 3 per file: rotations before 13, 16 and 19 leave 16, 17,
	// 18 in the rotated file and 19 in the current one; older ones are gone.
	var buf bytes.Buffer
	if _, err := log.List(&buf, 0); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 16; i < 20; i++ {
		want.WriteString(record(i) + "\n")
	}
	if buf.String() != want.String() {
		t.Errorf("after rotation:\n%s\nwant:\n%s", buf.String(), want.String())
	}
	for _, p := range []string{log.Paths.AuditPath(), log.Paths.AuditPath() + ".1"} {
		st, err := os.Stat(p)
		if err != nil || st.Size() > log.MaxBytes {
			t.Errorf("%s: %v, size %d > limit %d", p, err, st.Size(), log.MaxBytes)
		}
	}
}

func TestAuditTornRecord(t *testing.T) {
	root := t.TempDir()
	log := AuditLog{Paths: Paths{Root: root}}
	if err := log.Append([]byte(record(1))); err != nil {
		t.Fatal(err)
	}
	// A crash mid-write leaves half a record without its newline.
	f, err := os.OpenFile(log.Paths.AuditPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"generation":2,"wri`)
	f.Close()
	if err := log.Append([]byte(record(3))); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "", "audit", "list", "--root", root)
	if code != ExitOK || out != record(1)+"\n"+record(3)+"\n" || !strings.Contains(errs, "skipped 1 unreadable lines") {
		t.Errorf("list = %d %q %q", code, out, errs)
	}
}
