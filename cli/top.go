package cli

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/playbooks"
)

// topRow is one line of `top`: usage as agentlet measured it.
type topRow struct {
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name"`
	CPUMillis   int64  `json:"cpuMillis"`
	MemoryBytes int64  `json:"memoryWorkingSetBytes"`
	CPUPercent  *int64 `json:"cpuPercent,omitempty"`
	MemPercent  *int64 `json:"memoryPercent,omitempty"`
}

func topCommand(env *Env) *cli.Command {
	flags := func(extra ...cli.Flag) []cli.Flag {
		return append(append([]cli.Flag{inventoryFlag(), outputFlag("output format: json|yaml")}, extra...), sshFlags()...)
	}
	return &cli.Command{
		Name:  "top",
		Usage: "show CPU and memory usage that agentlet measures (CRI stats, /proc)",
		Subcommands: []*cli.Command{{
			Name:    "nodes",
			Aliases: []string{"node", "no"},
			Usage:   "usage of each node, against its allocatable resources",
			Flags:   flags(),
			Action: func(c *cli.Context) error {
				inv, err := loadInventory(inventoryPath(c, env))
				if err != nil {
					return err
				}
				var rows []topRow
				for _, o := range playbooks.Observe(c.Context, inv.HostNames(), dialer(c, env, inv), c.Int("parallel")) {
					if o.Status == nil || o.Status.Usage == nil {
						fmt.Fprintf(env.Err, "%s: no usage reported yet\n", o.Host)
						continue
					}
					u, a := o.Status.Usage, o.Status.Allocatable
					r := topRow{Name: o.Host, CPUMillis: u.CPUMillis, MemoryBytes: u.MemoryWorkingSetBytes}
					if a.CPUMillis > 0 {
						p := u.CPUMillis * 100 / a.CPUMillis
						r.CPUPercent = &p
					}
					if a.MemoryBytes > 0 {
						p := u.MemoryWorkingSetBytes * 100 / a.MemoryBytes
						r.MemPercent = &p
					}
					rows = append(rows, r)
				}
				return printTop(env.Out, c.String("output"), rows, false, true)
			},
		}, {
			Name:    "pods",
			Aliases: []string{"pod", "po"},
			Usage:   "usage of each pod (the sum of its containers)",
			Flags: flags(namespaceFlag(),
				&cli.BoolFlag{Name: "all-namespaces", Aliases: []string{"A"}, Usage: "list across all namespaces"}),
			Action: func(c *cli.Context) error {
				inv, err := loadInventory(inventoryPath(c, env))
				if err != nil {
					return err
				}
				all, ns := c.Bool("all-namespaces"), c.String("namespace")
				var rows []topRow
				for _, o := range playbooks.Observe(c.Context, inv.HostNames(), dialer(c, env, inv), c.Int("parallel")) {
					if o.Status == nil {
						continue
					}
					for _, p := range o.Status.Pods {
						if (!all && p.Namespace != ns) || p.Usage == nil {
							continue
						}
						rows = append(rows, podTopRow(p))
					}
				}
				sort.Slice(rows, func(i, j int) bool {
					return rows[i].Namespace+"/"+rows[i].Name < rows[j].Namespace+"/"+rows[j].Name
				})
				return printTop(env.Out, c.String("output"), rows, all, false)
			},
		}},
	}
}

func podTopRow(p nodeapi.PodStatus) topRow {
	return topRow{Namespace: p.Namespace, Name: p.Name, CPUMillis: p.Usage.CPUMillis, MemoryBytes: p.Usage.MemoryWorkingSetBytes}
}

func printTop(w io.Writer, format string, rows []topRow, showNS, percents bool) error {
	switch format {
	case "json", "yaml":
		if rows == nil {
			rows = []topRow{}
		}
		return printObject(w, format, rows)
	case "":
	default:
		return withCode(ExitUsage, fmt.Errorf("unknown output format %q (want json or yaml)", format))
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "No resources found (usage appears after two samples, about 20s after a pod starts).")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	head := "NAME\tCPU(cores)\tMEMORY(bytes)"
	if percents {
		head = "NAME\tCPU(cores)\tCPU(%)\tMEMORY(bytes)\tMEMORY(%)"
	}
	if showNS {
		head = "NAMESPACE\t" + head
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		line := r.Name
		if showNS {
			line = r.Namespace + "\t" + line
		}
		mem := fmt.Sprintf("%dMi", r.MemoryBytes>>20)
		if percents {
			line += fmt.Sprintf("\t%dm\t%s\t%s\t%s", r.CPUMillis, pct(r.CPUPercent), mem, pct(r.MemPercent))
		} else {
			line += fmt.Sprintf("\t%dm\t%s", r.CPUMillis, mem)
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func pct(p *int64) string {
	if p == nil {
		return "<unknown>"
	}
	return fmt.Sprintf("%d%%", *p)
}
