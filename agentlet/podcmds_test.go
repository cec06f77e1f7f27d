package agentlet

import (
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func TestParsePod(t *testing.T) {
	tests := []struct {
		args      []string
		ns, name  string
		container string
		rest      []string
		err       bool
	}{
		{args: []string{"default/web"}, ns: "default", name: "web"},
		{args: []string{"web"}, ns: "default", name: "web"},
		{args: []string{"kube-system/dns", "-c", "x"}, ns: "kube-system", name: "dns", container: "x"},
		{args: []string{"-c", "x", "ns/p", "--", "sh", "-c", "exit 3"}, ns: "ns", name: "p", container: "x", rest: []string{"sh", "-c", "exit 3"}},
		{args: []string{"ns/p", "-c", "x", "--", "cat"}, ns: "ns", name: "p", container: "x", rest: []string{"cat"}},
		{args: []string{"ns/p", "ls", "-l"}, ns: "ns", name: "p", rest: []string{"ls", "-l"}},
		{args: nil, err: true},
		{args: []string{"a/b/c"}, err: true},
		{args: []string{"/x"}, err: true},
		{args: []string{"ns/p", "--bogus"}, err: true},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c := fs.String("c", "", "")
		ns, name, rest, err := parsePod(fs, tt.args)
		if (err != nil) != tt.err {
			t.Errorf("parsePod(%q) error %v", tt.args, err)
			continue
		}
		if err == nil && (ns != tt.ns || name != tt.name || *c != tt.container || !cmp.Equal(tt.rest, rest, cmpEmpty)) {
			t.Errorf("parsePod(%q) = %s %s -c %q %q", tt.args, ns, name, *c, rest)
		}
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") })

// logsRoot makes an agentlet root holding a spec with pod default/web
// (containers web, side; init setup) and CRI log files for web.
func logsRoot(t *testing.T) (Paths, *nodeapi.PodSpec) {
	t.Helper()
	paths := Paths{Root: t.TempDir()}
	pod := nodeapi.PodSpec{UID: "u1", Namespace: "default", Name: "web", RestartPolicy: nodeapi.RestartAlways,
		InitContainers: []nodeapi.ContainerSpec{{Name: "setup", Image: "busybox"}},
		Containers:     []nodeapi.ContainerSpec{{Name: "web", Image: "busybox"}, {Name: "side", Image: "busybox"}}}
	spec := nodeapi.NodeSpec{APIVersion: nodeapi.APIVersion, NodeName: "h1", Generation: 1,
		Cluster: nodeapi.ClusterInfo{Name: "c", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"},
		PodCIDR: "10.244.1.0/24", Pods: []nodeapi.PodSpec{pod}}
	data, _ := json.Marshal(spec)
	if err := os.MkdirAll(paths.StateDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(paths.SpecPath(), data, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(paths.PodLogsDir(), "default_web_u1", "web")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "0.log"), []byte("2026-11-21T12:00:00Z stdout F first run\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "1.log"), []byte("2026-11-21T12:01:00Z stdout F a\n2026-11-21T12:01:01Z stderr P b-\n2026-11-21T12:01:02Z stderr F c\n"), 0o644)
	return paths, &pod
}

func TestLogsCommand(t *testing.T) {
	paths, _ := logsRoot(t)
	r := paths.Root
	tests := []struct {
		args    []string
		code    int
		out     string
		errPart string
	}{
		{[]string{"logs", "default/web", "--root", r}, 0, "a\nb-c\n", `Defaulted container "web" out of: web, side; init: setup`},
		{[]string{"logs", "default/web", "-c", "web", "--root", r, "--tail", "1", "--timestamps"}, 0, "2026-11-21T12:01:01Z b-c\n", ""},
		{[]string{"logs", "default/web", "-c", "web", "--root", r, "--previous"}, 0, "first run\n", ""},
		{[]string{"logs", "--root", r, "-p", "-c", "web", "default/web"}, 0, "first run\n", ""},
		{[]string{"logs", "default/web", "-c", "side", "--root", r}, 1, "", `container "side" in pod default/web has not started yet`},
		{[]string{"logs", "default/web", "-c", "nope", "--root", r}, 1, "", `container "nope" not found in pod default/web; containers: web, side; init: setup`},
		{[]string{"logs", "default/db", "--root", r}, 1, "", "pod default/db not found on this node; pods here: default/web"},
		{[]string{"logs", "--root", r}, 2, "", "want NAMESPACE/NAME"},
		{[]string{"logs", "default/web", "extra", "--root", r}, 2, "", "unexpected arguments"},
	}
	for _, tt := range tests {
		code, out, errs := run(t, "", tt.args...)
		if code != tt.code || out != tt.out || !strings.Contains(errs, tt.errPart) {
			t.Errorf("agentlet %q = %d %q %q; want %d %q, stderr with %q", tt.args, code, out, errs, tt.code, tt.out, tt.errPart)
		}
	}
}

func TestLogsFollowStopsWithTheInstance(t *testing.T) {
	paths, pod := logsRoot(t)
	// The published status says the instance logged in 1.log (restart 1) has exited.
	st := nodeapi.NodeStatus{APIVersion: nodeapi.APIVersion, Pods: []nodeapi.PodStatus{{UID: pod.UID, Namespace: "default", Name: "web",
		ContainerStatuses: []nodeapi.ContainerStatus{{Name: "web", RestartCount: 1,
			State: nodeapi.ContainerState{Terminated: &nodeapi.StateTerminated{ExitCode: 0}}}}}}}
	data, _ := json.Marshal(st)
	os.MkdirAll(paths.RunDir(), 0o755)
	if err := os.WriteFile(paths.StatusPath(), data, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, out, _ := run(t, "", "logs", "default/web", "-c", "web", "-f", "--root", paths.Root)
	if code != 0 || out != "a\nb-c\n" || time.Since(start) > 3*time.Second {
		t.Errorf("logs -f of an exited container = %d %q after %s", code, out, time.Since(start))
	}
}

func TestExecUsage(t *testing.T) {
	for _, args := range [][]string{{"exec"}, {"exec", "default/web"}, {"exec", "default/web", "--"}, {"exec", "--runtime-endpoint", "tcp://x", "a/b", "--", "true"}} {
		if code, _, errs := run(t, "", args...); code != ExitUsage {
			t.Errorf("agentlet %q = %d %q, want %d", args, code, errs, ExitUsage)
		}
	}
}
