package netfilter

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/nodeapi"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func base(cidr string) Base {
	return Base{ClusterPodCIDR: netip.MustParsePrefix(cidr)}
}

func TestRenderBaseGolden(t *testing.T) {
	golden(t, "base.golden", RenderBase(base("10.244.0.0/16")))
}

func TestBaseFromSpec(t *testing.T) {
	tests := []struct {
		cidr    string
		want    string
		wantErr string
	}{
		{cidr: "10.244.0.0/16", want: "10.244.0.0/16"},
		{cidr: "10.244.3.7/16", want: "10.244.0.0/16"}, // masked
		{cidr: "fd00::/64", wantErr: "only IPv4"},
		{cidr: "nonsense", wantErr: "parse cluster pod CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.cidr, func(t *testing.T) {
			b, err := BaseFromSpec(&nodeapi.NodeSpec{Cluster: nodeapi.ClusterInfo{PodCIDR: tt.cidr}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := b.ClusterPodCIDR.String(); got != tt.want {
				t.Errorf("cidr = %s, want %s", got, tt.want)
			}
		})
	}
}

func sample(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/save-sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseSave(t *testing.T) {
	tables, err := ParseSave(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 2 || tables[0].Name != "filter" || tables[1].Name != "nat" {
		t.Fatalf("tables = %+v", tables)
	}
	f := tables[0]
	if !f.HasChain("DOCKER-USER") || !f.HasChain(ForwardChain) || f.HasChain("NOPE") {
		t.Errorf("chains = %+v", f.Chains)
	}
	// The quoted comment with escaped quotes is one argument.
	want := Rule{
		Chain:  "INPUT",
		Args:   []string{"-p", "tcp", "-m", "tcp", "--dport", "22", "-m", "comment", "--comment", `ssh "admin" access`, "-j", "ACCEPT"},
		Target: "ACCEPT",
		Line:   `-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "ssh \"admin\" access" -j ACCEPT`,
	}
	if diff := cmp.Diff(want, f.Rules[0]); diff != "" {
		t.Errorf("first rule (-want +got):\n%s", diff)
	}
	var gotoRule Rule
	for _, r := range f.Rules {
		if r.Chain == "DOCKER-USER" && r.Target == ForwardChain {
			gotoRule = r
		}
	}
	if gotoRule.Line == "" {
		t.Error("the -g CLUSTERCTL-FORWARD rule of DOCKER-USER was not recognised as targeting our chain")
	}
}

func TestParseSaveErrors(t *testing.T) {
	tests := map[string]string{
		"rule outside table": "-A INPUT -j ACCEPT\n",
		"missing commit":     "*filter\n:INPUT ACCEPT [0:0]\n",
		"nested table":       "*filter\n*nat\nCOMMIT\n",
		"stray commit":       "COMMIT\n",
		"bad quote":          "*filter\n-A INPUT -m comment --comment \"open\nCOMMIT\n",
		"bad declaration":    "*filter\n:INPUT\nCOMMIT\n",
		"unknown line":       "*filter\n-I INPUT -j ACCEPT\nCOMMIT\n",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseSave([]byte(in)); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestTeardownGolden(t *testing.T) {
	tables, err := ParseSave(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	payload := Teardown(tables)
	golden(t, "teardown.golden", payload)

	// Foreign rules are never named in the payload.
	for _, foreign := range []string{"DOCKER-ISOLATION", "docker0", "CNI-HOSTPORT", "ssh", "-A "} {
		if bytes.Contains(payload, []byte(foreign)) {
			t.Errorf("payload mentions foreign %q:\n%s", foreign, payload)
		}
	}
}

func TestTeardownNothingOwned(t *testing.T) {
	in := "*filter\n:INPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n-A INPUT -j DOCKER\nCOMMIT\n"
	tables, err := ParseSave([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := Teardown(tables); got != nil {
		t.Errorf("payload = %q, want nil", got)
	}
	if got := Teardown(nil); got != nil {
		t.Errorf("payload for no tables = %q, want nil", got)
	}
}

func TestBaseInPlace(t *testing.T) {
	const header = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
	const chain = ":CLUSTERCTL-FORWARD - [0:0]\n"
	const jump = "-A FORWARD -m comment --comment clusterctl -j CLUSTERCTL-FORWARD\n"
	const r1 = "-A CLUSTERCTL-FORWARD -s 10.244.0.0/16 -m comment --comment \"clusterctl: from pods\" -j ACCEPT\n"
	const r2 = "-A CLUSTERCTL-FORWARD -d 10.244.0.0/16 -m comment --comment \"clusterctl: to pods\" -j ACCEPT\n"
	tests := []struct {
		name string
		save string
		want bool
	}{
		{"in place", header + chain + jump + r1 + r2 + "COMMIT\n", true},
		{"in place among foreign rules", header + chain + ":DOCKER - [0:0]\n-A FORWARD -j DOCKER\n" + jump + r1 + r2 + "-A DOCKER -j RETURN\nCOMMIT\n", true},
		{"sample", string(sample(t)), true},
		{"empty", "", false},
		{"no chain", header + "COMMIT\n", false},
		{"no jump", header + chain + r1 + r2 + "COMMIT\n", false},
		{"missing rule", header + chain + jump + r1 + "COMMIT\n", false},
		{"duplicate rule", header + chain + jump + r1 + r2 + r2 + "COMMIT\n", false},
		{"other cidr", header + chain + jump + strings.ReplaceAll(r1+r2, "10.244.", "10.245.") + "COMMIT\n", false},
		{"rules swapped", header + chain + jump + r2 + r1 + "COMMIT\n", false},
		{"jump without comment", header + chain + "-A FORWARD -j CLUSTERCTL-FORWARD\n" + r1 + r2 + "COMMIT\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BaseInPlace([]byte(tt.save), base("10.244.0.0/16"))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("BaseInPlace = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSplitJoinArgs(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`-A X -j ACCEPT`, []string{"-A", "X", "-j", "ACCEPT"}},
		{`-A X  --comment "a b"   -j  ACCEPT`, []string{"-A", "X", "--comment", "a b", "-j", "ACCEPT"}},
		{`-A X --comment "say \"hi\" \\ ok"`, []string{"-A", "X", "--comment", `say "hi" \ ok`}},
		{`-A X --comment ""`, []string{"-A", "X", "--comment", ""}},
	}
	for _, tt := range tests {
		got, err := splitArgs(tt.line)
		if err != nil {
			t.Fatalf("splitArgs(%q): %v", tt.line, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("splitArgs(%q) (-want +got):\n%s", tt.line, diff)
		}
		back, err := splitArgs(joinArgs(got))
		if err != nil || !cmp.Equal(back, got) {
			t.Errorf("round trip of %q: %q, %v", tt.line, back, err)
		}
	}
}

// TestPure keeps the package free of I/O edges: it must not import os/exec,
// net, syscall-level packages, gRPC or the CLI framework.
func TestPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list not available: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "os/exec", dep == "net", strings.HasPrefix(dep, "google.golang.org/grpc"),
			strings.HasPrefix(dep, "github.com/urfave/"), strings.HasPrefix(dep, "golang.org/x/crypto/ssh"):
			t.Errorf("pure package netfilter depends on %s", dep)
		}
	}
}
