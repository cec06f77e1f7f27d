package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/playbooks"
	"github.com/clusterctl/clusterctl/reconcile"
)

func historyCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "show the audit trail: who changed the cluster, when, with which command, and what changed",
		Description: "Every change clusterctl makes appends one record on each reachable host. history reads\n" +
			"them from every host, merges them (a record held by several hosts is shown once) and prints\n" +
			"the newest first.",
		Flags: append([]cli.Flag{
			inventoryFlag(),
			outputFlag("output format: json|yaml"),
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "show at most the newest `N` records (0: all)"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error { return runHistory(c, env) },
	}
}

// AuditList is the -o json|yaml envelope of history.
type AuditList struct {
	APIVersion string                 `json:"apiVersion"`
	Kind       string                 `json:"kind"`
	Items      []playbooks.AuditEntry `json:"items"`
}

func runHistory(c *cli.Context, env *Env) error {
	if c.NArg() > 0 {
		return withCode(ExitUsage, fmt.Errorf("history: unexpected arguments %q", c.Args().Slice()))
	}
	format := c.String("output")
	if format != "" && format != "json" && format != "yaml" {
		return withCode(ExitUsage, fmt.Errorf("unknown output format %q (want json or yaml)", format))
	}
	limit := c.Int("limit")
	if limit < 0 {
		return withCode(ExitUsage, fmt.Errorf("--limit %d: must not be negative", limit))
	}
	inv, err := loadInventory(inventoryPath(c, env))
	if err != nil {
		return err
	}
	hosts := inv.HostNames()
	fleet := playbooks.Connect(c.Context, hosts, dialer(c, env, inv), c.Int("parallel"))
	defer fleet.Close()
	// Each host's newest limit records hold the newest limit of all.
	trails := fleet.AuditTrail(c.Context, hosts, limit)
	answered := 0
	for _, t := range trails {
		switch {
		case t.Err != nil:
			fmt.Fprintf(env.Err, "warning: %s: %v (its records are left out)\n", t.Host, unwrapStep(t.Err))
		default:
			answered++
			if t.Skipped > 0 {
				fmt.Fprintf(env.Err, "warning: %s: %d unreadable records skipped\n", t.Host, t.Skipped)
			}
		}
	}
	if answered == 0 {
		return errors.New("history: no host could be read")
	}
	entries := playbooks.MergeAudit(trails)
	if limit > 0 && len(entries) > limit {
		entries = entries[:limit]
	}
	return printHistory(env.Out, format, entries)
}

func printHistory(w io.Writer, format string, entries []playbooks.AuditEntry) error {
	if entries == nil {
		entries = []playbooks.AuditEntry{}
	}
	list := AuditList{APIVersion: inventory.APIVersion, Kind: "AuditList", Items: entries}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	case "yaml":
		data, err := sigsyaml.Marshal(list)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = w.Write(data)
		return err
	}
	if len(entries) == 0 {
		fmt.Fprintln(w, "No records.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "GENERATION\tTIME\tWRITER\tCOMMAND\tCHANGES")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Generation, e.Time.UTC().Format(time.RFC3339), dash(e.Writer),
			clip(strings.Join(e.Command, " "), 60), clip(e.Summary(), 60))
	}
	return tw.Flush()
}

// clip shortens s to at most n runes, marking the cut; "" becomes "-".
func clip(s string, n int) string {
	r := []rune(s)
	switch {
	case len(r) == 0:
		return "-"
	case len(r) > n:
		return string(r[:n-1]) + "…"
	}
	return s
}

// commandLine is the command line this command was started with, as
// typed after the program name, secret flag values redacted: what the
// audit trail records.
func commandLine(c *cli.Context) []string {
	// The app's root context holds every argument after the program name
	// and the app's own flags; urfave/cli wraps it in a bare context
	// without an app.
	var root *cli.Context
	for _, l := range c.Lineage() {
		if l.App != nil {
			root = l
		}
	}
	if root == nil {
		return []string{"clusterctl"}
	}
	return playbooks.RedactCommand(append([]string{"clusterctl"}, root.Args().Slice()...))
}

// auditRecord is the command's part of the audit record of the loops it
// runs (reconcile.Options.Audit): its command line and the objects it
// changed itself.
func auditRecord(c *cli.Context, changes ...playbooks.AuditChange) *playbooks.AuditRecord {
	r := &playbooks.AuditRecord{Command: commandLine(c)}
	r.Add(changes...)
	return r
}

// withAudit sets the loop options' audit record to this command's line
// (no changes of its own): what every command running a cluster loop
// passes to reconcile.Run, so that the hosts' audit trail says which
// command made each change.
func withAudit(c *cli.Context, o reconcile.Options) reconcile.Options {
	o.Audit = auditRecord(c)
	return o
}
