package agentlet

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/agentlet/iptables"
	"github.com/clusterctl/clusterctl/agentlet/netfilter"
)

func TestTeardown(t *testing.T) {
	sample, err := os.ReadFile("netfilter/testdata/save-sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	filter, nat, _ := strings.Cut(string(sample), "# Completed")
	_, nat, _ = strings.Cut(nat, "\n")
	ipt := iptables.NewFake()
	ipt.SetSave("filter", []byte(filter+"# Completed\n"))
	ipt.SetSave("nat", []byte(nat))
	paths := Paths{Root: t.TempDir()}
	if err := os.MkdirAll(paths.RunDir(), 0o755); err != nil {
		t.Fatal(err)
	}

	res, err := Teardown(t.Context(), ipt, paths, TeardownTables())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"save filter", "save nat", "restore"}, ipt.TakeCalls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	want, _ := os.ReadFile("netfilter/testdata/teardown.golden")
	if diff := cmp.Diff(string(want), string(res.Payload)); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(paths.RunDir()); !os.IsNotExist(err) {
		t.Errorf("run directory left: %v", err)
	}
	wantChains := []string{"filter/CLUSTERCTL-FIREWALL", "filter/CLUSTERCTL-FORWARD", "nat/CLUSTERCTL-POSTROUTING",
		"nat/CLUSTERCTL-SEP-WEB1", "nat/CLUSTERCTL-SEP-WEB2", "nat/CLUSTERCTL-SERVICES", "nat/CLUSTERCTL-SVC-WEB"}
	if diff := cmp.Diff(wantChains, chainsIn(res.Payload)); diff != "" {
		t.Errorf("chains (-want +got):\n%s", diff)
	}

	// Nothing of ours: no restore at all.
	ipt.SetSave("filter", []byte("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"))
	ipt.SetSave("nat", nil)
	res, err = Teardown(t.Context(), ipt, paths, TeardownTables())
	if err != nil || res.Payload != nil {
		t.Errorf("clean host: %+v, %v", res, err)
	}
	if diff := cmp.Diff([]string{"save filter", "save nat"}, ipt.TakeCalls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestTeardownErrors(t *testing.T) {
	paths := Paths{Root: t.TempDir()}
	ipt := iptables.NewFake()
	ipt.SaveErr = &exec.Error{Name: "iptables-save", Err: exec.ErrNotFound}
	res, err := Teardown(t.Context(), ipt, paths, TeardownTables())
	if err != nil || !res.IptablesAbsent {
		t.Errorf("no iptables: %+v, %v; want success", res, err)
	}
	ipt.SaveErr = errors.New("save table filter: boom")
	if _, err := Teardown(t.Context(), ipt, paths, TeardownTables()); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v", err)
	}
	ipt.SaveErr = nil
	ipt.SetSave("filter", []byte("*filter\n:CLUSTERCTL-X - [0:0]\nCOMMIT\n"))
	ipt.RestoreErr = errors.New("restore failed")
	if _, err := Teardown(t.Context(), ipt, paths, TeardownTables()); err == nil {
		t.Error("restore error swallowed")
	}
}

func TestEnsureBaseRulesFake(t *testing.T) {
	ipt := iptables.NewFake()
	b, _ := netfilter.BaseFromSpec(testSpec(1))
	for range 2 {
		if err := EnsureBaseRules(t.Context(), ipt, b); err != nil {
			t.Fatal(err)
		}
	}
	j := netfilter.BaseJumps()[0]
	key := "filter FORWARD " + strings.Join(j.Rule, " ")
	want := []string{"restore", "check " + key, "insert " + key, "restore", "check " + key}
	if diff := cmp.Diff(want, ipt.TakeCalls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	ipt.CheckErr = errors.New("iptables exited with status 2")
	if err := EnsureBaseRules(t.Context(), ipt, b); err == nil {
		t.Error("check error swallowed")
	}
}
