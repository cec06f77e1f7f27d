package agentlet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeCtr(t *testing.T, body string) (bin, dir string) {
	t.Helper()
	dir = t.TempDir()
	bin = filepath.Join(dir, "ctr")
	src := "#!/bin/sh\necho \"$*\" > " + filepath.Join(dir, "args") + "\ncat > " + filepath.Join(dir, "stdin") + "\n" + body + "\n"
	if err := os.WriteFile(bin, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, dir
}

func TestCtrImporter(t *testing.T) {
	bin, dir := fakeCtr(t, "exit 0")
	imp := CtrImporter{Ctr: bin, Address: "/run/containerd/containerd.sock"}
	if err := imp.Import(t.Context(), []byte("ARCHIVE")); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if got := strings.TrimSpace(string(args)); got != "--address /run/containerd/containerd.sock -n k8s.io images import -" {
		t.Errorf("ctr args = %q", got)
	}
	if stdin, _ := os.ReadFile(filepath.Join(dir, "stdin")); string(stdin) != "ARCHIVE" {
		t.Errorf("ctr stdin = %q, want the archive", stdin)
	}
}

func TestCtrImporterErrors(t *testing.T) {
	bin, _ := fakeCtr(t, `echo "ctr: failed to import: content digest sha256:abc: not found" >&2; exit 1`)
	err := CtrImporter{Ctr: bin, Address: "/x.sock"}.Import(t.Context(), []byte("A"))
	if err == nil || !strings.Contains(err.Error(), "exit status 1: ctr: failed to import") {
		t.Errorf("err = %v, want exit status and stderr", err)
	}
	err = CtrImporter{Ctr: "clusterctl-no-such-ctr", Address: "/x.sock"}.Import(t.Context(), []byte("A"))
	if err == nil || !strings.Contains(err.Error(), "clusterctl-no-such-ctr not found (ctr ships with containerd") {
		t.Errorf("err = %v, want a clear missing-ctr error", err)
	}
}
