package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v2"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/clusterctl/clusterctl/playbooks"
)

func TestCommandLine(t *testing.T) {
	var got []string
	var rec *playbooks.AuditRecord
	change := playbooks.AuditChange{Action: playbooks.ActionCreated, Kind: "ConfigMap", Name: "a"}
	capture := func(c *cli.Context) error { got, rec = commandLine(c), auditRecord(c, change); return nil }
	app := &cli.App{Name: "clusterctl", Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{},
		Commands: []*cli.Command{
			{Name: "apply", Flags: []cli.Flag{&cli.StringSliceFlag{Name: "filename", Aliases: []string{"f"}}, &cli.StringFlag{Name: "password"}}, Action: capture},
			{Name: "rollout", Subcommands: []*cli.Command{{Name: "undo", Flags: []cli.Flag{&cli.IntFlag{Name: "to-revision"}}, Action: capture}}},
		}}
	tests := []struct{ args, want string }{
		{"clusterctl apply -f web.yaml -f db.yaml", "clusterctl apply -f web.yaml -f db.yaml"},
		{"clusterctl apply --password hunter2 -f x.yaml", "clusterctl apply --password <redacted> -f x.yaml"},
		{"clusterctl apply --password=hunter2", "clusterctl apply --password=<redacted>"},
		{"clusterctl rollout undo --to-revision 2 deployment/web", "clusterctl rollout undo --to-revision 2 deployment/web"},
	}
	for _, tt := range tests {
		got = nil
		if err := app.Run(strings.Fields(tt.args)); err != nil {
			t.Fatalf("%s: %v", tt.args, err)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("commandLine(%s) = %q, want %q", tt.args, got, tt.want)
		}
	}
	if rec == nil || !rec.HasChanges() || rec.Changes[0] != change || strings.Join(rec.Command, " ") != tests[len(tests)-1].want {
		t.Errorf("auditRecord = %+v", rec)
	}
}

func historyEntries() []playbooks.AuditEntry {
	t0 := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	return []playbooks.AuditEntry{
		{AuditRecord: playbooks.AuditRecord{Generation: 8, Time: t0.Add(time.Minute), Writer: "bob@ci", ID: "b",
			Command: []string{"clusterctl", "delete", "cm", "cfg"},
			Changes: []playbooks.AuditChange{{Action: playbooks.ActionDeleted, Kind: "ConfigMap", Namespace: "default", Name: "cfg"}}},
			Hosts: []string{"h1"}},
		{AuditRecord: playbooks.AuditRecord{Generation: 7, Time: t0, Writer: "ann@laptop", ID: "a",
			Command: []string{"clusterctl", "apply", "-f", "web.yaml"}, Nodes: []string{"h1", "h2"},
			Changes: []playbooks.AuditChange{{Action: playbooks.ActionCreated, Kind: "Deployment", Namespace: "default", Name: "web"},
				{Action: playbooks.ActionBound, Kind: "Pod", Namespace: "default", Name: "web-1", Node: "h1"}}},
			Hosts: []string{"h1", "h2"}},
	}
}

func TestPrintHistoryTable(t *testing.T) {
	var out bytes.Buffer
	if err := printHistory(&out, "", historyEntries()); err != nil {
		t.Fatal(err)
	}
	want := "GENERATION   TIME                   WRITER       COMMAND                        CHANGES\n" +
		"8            2026-11-21T22:01:00Z   bob@ci       clusterctl delete cm cfg       1 deleted\n" +
		"7            2026-11-21T22:00:00Z   ann@laptop   clusterctl apply -f web.yaml   1 created, 1 bound; 2 nodes updated\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	out.Reset()
	if err := printHistory(&out, "", nil); err != nil || out.String() != "No records.\n" {
		t.Errorf("empty history = %q, %v", out.String(), err)
	}
}

func TestPrintHistoryStructured(t *testing.T) {
	for _, format := range []string{"json", "yaml"} {
		var out bytes.Buffer
		if err := printHistory(&out, format, historyEntries()); err != nil {
			t.Fatal(err)
		}
		data := out.Bytes()
		if format == "yaml" {
			var err error
			if data, err = sigsyaml.YAMLToJSON(data); err != nil {
				t.Fatalf("yaml: %v", err)
			}
		}
		var list AuditList
		if err := json.Unmarshal(data, &list); err != nil {
			t.Fatalf("%s: %v\n%s", format, err, out.String())
		}
		if list.Kind != "AuditList" || len(list.Items) != 2 {
			t.Fatalf("%s: %+v", format, list)
		}
		if diff := cmp.Diff(historyEntries(), list.Items); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", format, diff)
		}
	}
}

func TestClip(t *testing.T) {
	for in, want := range map[string]string{"": "-", "abc": "abc", "abcdef": "abcd…", "äöüäöü": "äöüä…"} {
		if got := clip(in, 5); got != want {
			t.Errorf("clip(%q) = %q, want %q", in, got, want)
		}
	}
}
