package agentlet

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/version"
)

func run(t *testing.T, in string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(t.Context(), Env{In: strings.NewReader(in), Out: &out, Err: &errb}, args)
	return code, out.String(), errb.String()
}

func TestMainVersion(t *testing.T) {
	code, out, _ := run(t, "", "version")
	want := "agentlet " + version.Version + " (" + runtime.Version() + ", linux/" + runtime.GOARCH + ")\n"
	if code != ExitOK || out != want {
		t.Errorf("version = %d %q, want %q", code, out, want)
	}
	code, out, _ = run(t, "", "version", "-o", "json")
	var v VersionInfo
	if err := json.Unmarshal([]byte(out), &v); code != ExitOK || err != nil {
		t.Fatalf("version -o json = %d %q %v", code, out, err)
	}
	if v.Version != version.Version || v.GoVersion != runtime.Version() || v.Arch != runtime.GOARCH || v.PauseImage != version.PauseImage {
		t.Errorf("version json = %+v", v)
	}
	if code, _, _ := run(t, "", "version", "-o", "yaml"); code != ExitUsage {
		t.Errorf("version -o yaml exit = %d, want %d", code, ExitUsage)
	}
}

func TestMainUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{nil, ExitUsage},
		{[]string{"frobnicate"}, ExitUsage},
		{[]string{"status", "--bogus"}, ExitUsage},
		{[]string{"status", "extra"}, ExitUsage},
		{[]string{"daemon", "--interval", "1ms"}, ExitUsage},
		{[]string{"daemon", "--runtime-endpoint", "tcp://x:1"}, ExitUsage},
		{[]string{"help"}, ExitOK},
		{[]string{"apply", "-h"}, ExitOK},
	}
	for _, tt := range tests {
		if code, _, _ := run(t, "", tt.args...); code != tt.code {
			t.Errorf("agentlet %v exit = %d, want %d", tt.args, code, tt.code)
		}
	}
}

func TestMainStatus(t *testing.T) {
	root := t.TempDir()
	code, out, errs := run(t, "", "status", "--root", root)
	if code != ExitOK {
		t.Fatalf("status = %d %s", code, errs)
	}
	st, err := nodeapi.DecodeNodeStatus([]byte(out))
	if err != nil || st.DaemonRunning || st.Ready() {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if c, _ := st.Condition(nodeapi.ConditionReady); c.Reason != ReasonNotRunning {
		t.Errorf("Ready reason = %s", c.Reason)
	}
	start := time.Now()
	if code, _, _ := run(t, "", "status", "--root", root, "--wait", "300ms"); code != ExitOK {
		t.Errorf("status --wait exit = %d", code)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("status --wait 300ms took %s", d)
	}
}

func TestMainTeardownRefusesWhileDaemonRuns(t *testing.T) {
	paths := Paths{Root: t.TempDir()}
	if err := os.MkdirAll(paths.RunDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	// Our own PID passes as a live agentlet (same executable).
	if err := os.WriteFile(paths.PidPath(), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := run(t, "", "teardown", "--root", paths.Root)
	if code != ExitError || !strings.Contains(errs, "is running") {
		t.Errorf("teardown = %d %q", code, errs)
	}
	if _, err := os.Stat(paths.RunDir()); err != nil {
		t.Errorf("refused teardown removed the run directory: %v", err)
	}
}

func TestMainDaemonRefusesSecondInstance(t *testing.T) {
	paths := Paths{Root: t.TempDir()}
	p, err := acquirePidFile(paths.PidPath())
	if err != nil {
		t.Fatal(err)
	}
	defer p.release()
	code, _, errs := run(t, "", "daemon", "--root", paths.Root)
	if code != ExitError || !strings.Contains(errs, "another agentlet daemon (pid "+strconv.Itoa(os.Getpid())+")") {
		t.Errorf("second daemon = %d %q", code, errs)
	}
}

// TestAgentletDeps keeps the agent small: none of these may be linked into
// cmd/agentlet (see docs: text/template disables method dead-code
// elimination; k8s.io/api adds ~6 MiB).
func TestAgentletDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "grpcnotrace", "../cmd/agentlet").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 {
		t.Fatalf("go list returned too little: %q", out)
	}
	for _, d := range deps {
		switch {
		case d == "text/template", d == "html/template",
			d == "k8s.io/api" || strings.HasPrefix(d, "k8s.io/api/"),
			strings.HasPrefix(d, "k8s.io/apimachinery"),
			strings.HasPrefix(d, "github.com/urfave/cli"),
			strings.HasPrefix(d, "gopkg.in/yaml"), strings.HasPrefix(d, "go.yaml.in/"), strings.HasPrefix(d, "sigs.k8s.io/yaml"),
			strings.HasPrefix(d, "golang.org/x/net/trace"),
			strings.HasPrefix(d, "github.com/google/go-containerregistry"):
			t.Errorf("cmd/agentlet links %s", d)
		}
	}
}
