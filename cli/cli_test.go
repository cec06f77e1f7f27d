package cli

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/playbooks"
	"github.com/clusterctl/clusterctl/remote"
)

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{-time.Second: "0s", 45 * time.Second: "45s", 5 * time.Minute: "5m",
		3 * time.Hour: "3h", 50 * time.Hour: "2d"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %s, want %s", d, got, want)
		}
	}
}

func TestResources(t *testing.T) {
	r := resources(nodeapi.Resources{CPUMillis: 1900, MemoryBytes: 2 << 30, Pods: 110})
	if r.CPU != "1900m" || r.Memory != "2097152Ki" || r.Pods != 110 {
		t.Errorf("resources = %+v", r)
	}
	if got := resources(nodeapi.Resources{CPUMillis: 2000}).CPU; got != "2" {
		t.Errorf("2000m printed as %s", got)
	}
	if got := humanKi("2097152Ki"); got != "2.0Gi" {
		t.Errorf("humanKi = %s", got)
	}
}

func TestReportFailuresExitCodes(t *testing.T) {
	cmdErr := &playbooks.StepError{Host: "h2", Step: "cni", Err: &remote.CommandError{Host: "h2", Cmd: "install x", ExitCode: 1, Stderr: "disk full\nreally"}}
	keyErr := &playbooks.StepError{Host: "h3", Step: "connect", Err: &remote.DialError{Op: remote.OpHandshake,
		Err: &remote.HostKeyMismatchError{Host: "h3", GotFingerprint: "SHA256:b", KnownFingerprints: []string{"SHA256:a"}}}}
	ok := playbooks.HostResult{Host: "h1"}
	for _, tc := range []struct {
		name    string
		results []playbooks.HostResult
		code    int
		stderr  []string
	}{
		{"all ok", []playbooks.HostResult{ok}, ExitOK, nil},
		{"partial", []playbooks.HostResult{ok, {Host: "h2", Err: cmdErr}}, ExitPartial,
			[]string{"h2: FAILED", "step:      cni", "command:   install x", "exit code: 1", "    disk full\n    really"}},
		{"all failed", []playbooks.HostResult{{Host: "h2", Err: cmdErr}}, ExitError, nil},
		{"host key", []playbooks.HostResult{ok, {Host: "h3", Err: keyErr}}, ExitHostKey, []string{"h3: FAILED"}},
		{"plain error", []playbooks.HostResult{ok, {Host: "h4", Err: &playbooks.StepError{Host: "h4", Step: "ready", Err: errors.New("not Ready")}}}, ExitPartial,
			[]string{"step:  ready", "error: not Ready"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			code := reportFailures(&Env{Err: &errb}, tc.results)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
		})
	}
}

func TestPlainProgress(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, []string{"h1", "node-2"})
	p.Event(playbooks.Event{Host: "h1", Step: "facts", State: playbooks.Running})
	p.Event(playbooks.Event{Host: "h1", Step: "facts", State: playbooks.Unchanged})
	p.Event(playbooks.Event{Host: "h1", Step: "cni", State: playbooks.Changed, Message: "cni conflist 10.244.0.0/24"})
	p.Event(playbooks.Event{Host: "node-2", Step: "done", State: playbooks.HostDone, Message: "no changes"})
	want := "h1      cni: cni conflist 10.244.0.0/24\nnode-2  done: no changes\n"
	if out.String() != want {
		t.Errorf("plain progress:\n%q\nwant\n%q", out.String(), want)
	}
}

func TestRunUsageErrors(t *testing.T) {
	var out, errb bytes.Buffer
	env := &Env{In: strings.NewReader(""), Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
	if code := Run(env, []string{"clusterctl", "get", "nodes", "-i", "/nonexistent/cluster.yaml"}); code != ExitUsage {
		t.Errorf("missing inventory: exit %d, want %d; stderr %s", code, ExitUsage, errb.String())
	}
	errb.Reset()
	if code := Run(env, []string{"clusterctl", "reset", "-i", "/nonexistent/cluster.yaml"}); code == ExitOK {
		t.Errorf("reset of a missing inventory succeeded")
	}
}

func TestLineDiff(t *testing.T) {
	got := lineDiff([]string{"a", "b", "c", "d"}, []string{"a", "c", "x", "d"})
	want := []string{"  a", "- b", "  c", "+ x", "  d"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lineDiff = %q, want %q", got, want)
	}
}

func TestRemoteSpec(t *testing.T) {
	for in, want := range map[string][4]string{
		"web:/etc/hosts":  {"default", "web", "/etc/hosts", "ok"},
		"shop/web:/tmp/x": {"shop", "web", "/tmp/x", "ok"},
		"/local/path":     {"", "", "", ""},
		"./a:b":           {"", "", "", ""},
		"no-colon":        {"", "", "", ""},
	} {
		ns, pod, p, ok := remoteSpec(in, "default")
		got := [4]string{ns, pod, p, ""}
		if ok {
			got[3] = "ok"
		}
		if got != want {
			t.Errorf("remoteSpec(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestTarRoundTripAndTraversal(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "f.txt"), []byte("hi"), 0o640)
	var buf bytes.Buffer
	if err := tarPath(&buf, src, "copy"); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if err := untar(&buf, dst, "copy"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "d", "f.txt")); err != nil || string(b) != "hi" {
		t.Errorf("round trip: %q %v", b, err)
	}
	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	tw.WriteHeader(&tar.Header{Name: "copy/../../escape", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	if err := untar(&evil, t.TempDir(), "copy"); err == nil {
		t.Error("untar accepted an entry escaping the destination")
	}
}
