package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/playbooks"
)

// Node is what `get nodes` and `describe node` print: the inventory's view of
// a host joined with what its agentlet reports.
type Node struct {
	Name              string              `json:"name" yaml:"name"`
	Address           string              `json:"address" yaml:"address"`
	Status            string              `json:"status" yaml:"status"`
	Reason            string              `json:"reason,omitempty" yaml:"reason,omitempty"`
	Roles             []string            `json:"roles" yaml:"roles"`
	Labels            map[string]string   `json:"labels,omitempty" yaml:"labels,omitempty"`
	Taints            []string            `json:"taints,omitempty" yaml:"taints,omitempty"`
	PodCIDR           string              `json:"podCIDR,omitempty" yaml:"podCIDR,omitempty"`
	JoinedAt          *time.Time          `json:"joinedAt,omitempty" yaml:"joinedAt,omitempty"`
	Capacity          *Resources          `json:"capacity,omitempty" yaml:"capacity,omitempty"`
	Allocatable       *Resources          `json:"allocatable,omitempty" yaml:"allocatable,omitempty"`
	AgentletVersion   string              `json:"agentletVersion,omitempty" yaml:"agentletVersion,omitempty"`
	ContainerdVersion string              `json:"containerdVersion,omitempty" yaml:"containerdVersion,omitempty"`
	Kernel            string              `json:"kernel,omitempty" yaml:"kernel,omitempty"`
	OS                string              `json:"os,omitempty" yaml:"os,omitempty"`
	Arch              string              `json:"arch,omitempty" yaml:"arch,omitempty"`
	CgroupVersion     int                 `json:"cgroupVersion,omitempty" yaml:"cgroupVersion,omitempty"`
	SpecGeneration    int64               `json:"specGeneration,omitempty" yaml:"specGeneration,omitempty"`
	Conditions        []nodeapi.Condition `json:"conditions,omitempty" yaml:"conditions,omitempty"`
	RecentErrors      []nodeapi.Event     `json:"recentErrors,omitempty" yaml:"recentErrors,omitempty"`
	HeartbeatAt       *time.Time          `json:"heartbeatAt,omitempty" yaml:"heartbeatAt,omitempty"`
}

// Resources are printed Kubernetes-style: cpu "2" or "1900m", memory "…Ki".
type Resources struct {
	CPU    string `json:"cpu" yaml:"cpu"`
	Memory string `json:"memory" yaml:"memory"`
	Pods   int64  `json:"pods" yaml:"pods"`
}

func resources(r nodeapi.Resources) *Resources {
	cpu := fmt.Sprintf("%dm", r.CPUMillis)
	if r.CPUMillis%1000 == 0 {
		cpu = fmt.Sprint(r.CPUMillis / 1000)
	}
	return &Resources{CPU: cpu, Memory: fmt.Sprintf("%dKi", r.MemoryBytes/1024), Pods: r.Pods}
}

// nodeView joins an inventory host with its observation.
func nodeView(inv *inventory.Inventory, o playbooks.Observation) Node {
	h, _ := inv.Host(o.Host)
	hs := inv.HostState(o.Host)
	n := Node{Name: o.Host, Address: h.Address, Labels: h.Labels, Roles: roles(h.Labels)}
	n.Status, n.Reason = playbooks.Summarize(o)
	if hs.Unschedulable {
		n.Status += ",SchedulingDisabled" // as kubectl shows a cordoned node
		n.Taints = append(n.Taints, "node.kubernetes.io/unschedulable:NoSchedule")
	}
	for _, t := range h.Taints {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		n.Taints = append(n.Taints, s+":"+string(t.Effect))
	}
	if hs.PodCIDR.IsValid() {
		n.PodCIDR = hs.PodCIDR.String()
	}
	if !hs.JoinedAt.IsZero() {
		t := hs.JoinedAt
		n.JoinedAt = &t
	}
	if st := o.Status; st != nil {
		n.Capacity, n.Allocatable = resources(st.Capacity), resources(st.Allocatable)
		n.AgentletVersion, n.Kernel, n.OS, n.Arch = st.AgentletVersion, st.Kernel, st.OS, st.Arch
		if st.Runtime.Name != "" {
			n.ContainerdVersion = st.Runtime.Name + "://" + st.Runtime.Version
		}
		n.CgroupVersion, n.SpecGeneration = st.CgroupVersion, st.SpecGeneration
		n.Conditions, n.RecentErrors = st.Conditions, st.RecentErrors
		if !st.HeartbeatAt.IsZero() {
			t := st.HeartbeatAt
			n.HeartbeatAt = &t
		}
	}
	return n
}

// roles are read from node-role.kubernetes.io/ROLE labels, as kubectl does.
func roles(labels map[string]string) []string {
	var rs []string
	for k := range labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
			rs = append(rs, r)
		}
	}
	sort.Strings(rs)
	return rs
}

func getCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "get",
		Usage: "list objects",
		Subcommands: append([]*cli.Command{getPodsCommand(env), getServicesCommand(env), getEndpointsCommand(env),
			getStoredCommand(env, "ConfigMap", "configmaps", "configmap", "cm"),
			getStoredCommand(env, "Secret", "secrets", "secret"),
			getStoredCommand(env, "Namespace", "namespaces", "namespace", "ns"), {
				Name:    "nodes",
				Aliases: []string{"node", "no"},
				Usage:   "list the cluster's nodes with their status as agentlet reports it",
				Flags: append([]cli.Flag{inventoryFlag(), outputFlag("output format: wide|json|yaml")},
					sshFlags()...),
				Action: func(c *cli.Context) error {
					inv, nodes, err := observeNodes(c, env, nil)
					if err != nil {
						return err
					}
					return printNodes(env.Out, c.String("output"), inv, nodes, time.Now())
				},
			}}, getWorkloadsCommands(env)...),
	}
}

func getWorkloadsCommands(env *Env) []*cli.Command {
	var out []*cli.Command
	for _, wk := range workloadKinds() {
		out = append(out, getWorkloadsCommand(env, wk))
	}
	return out
}

func describeCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "describe",
		Usage: "show details of an object",
		Subcommands: []*cli.Command{describePodCommand(env), describeServiceCommand(env), {
			Name:      "node",
			Aliases:   []string{"nodes", "no"},
			Usage:     "show a node's conditions, resources, versions and recent errors",
			ArgsUsage: "NAME...",
			Flags:     append([]cli.Flag{inventoryFlag(), outputFlag("output format: json|yaml")}, sshFlags()...),
			Action: func(c *cli.Context) error {
				names, err := trailingFlags(c, c.Args().Slice())
				if err != nil {
					return err
				}
				_, nodes, err := observeNodes(c, env, names)
				if err != nil {
					return err
				}
				switch c.String("output") {
				case "json", "yaml":
					return printObject(env.Out, c.String("output"), nodeList(nodes))
				case "":
				default:
					return withCode(ExitUsage, fmt.Errorf("unknown output format %q (want json or yaml)", c.String("output")))
				}
				now := time.Now()
				for i, n := range nodes {
					if i > 0 {
						fmt.Fprintln(env.Out)
					}
					describeNode(env.Out, n, now)
				}
				return nil
			},
		}},
	}
}

// observeNodes observes the named hosts (all when names is empty).
func observeNodes(c *cli.Context, env *Env, names []string) (*inventory.Inventory, []Node, error) {
	inv, err := loadInventory(inventoryPath(c, env))
	if err != nil {
		return nil, nil, err
	}
	if len(names) == 0 {
		names = inv.HostNames()
	}
	for _, n := range names {
		if _, ok := inv.Host(n); !ok {
			return nil, nil, withCode(ExitUsage, fmt.Errorf("node %q not found in %s", n, inv.Path))
		}
	}
	obs := playbooks.Observe(c.Context, names, dialer(c, env, inv), c.Int("parallel"))
	nodes := make([]Node, len(obs))
	for i, o := range obs {
		nodes[i] = nodeView(inv, o)
	}
	return inv, nodes, nil
}

// NodeList is the -o json|yaml envelope.
type NodeList struct {
	APIVersion string `json:"apiVersion" yaml:"apiVersion"`
	Kind       string `json:"kind" yaml:"kind"`
	Items      []Node `json:"items" yaml:"items"`
}

func nodeList(nodes []Node) NodeList {
	return NodeList{APIVersion: inventory.APIVersion, Kind: "NodeList", Items: nodes}
}

func printNodes(w io.Writer, format string, inv *inventory.Inventory, nodes []Node, now time.Time) error {
	switch format {
	case "json", "yaml":
		return printObject(w, format, nodeList(nodes))
	case "", "wide":
	default:
		return withCode(ExitUsage, fmt.Errorf("unknown output format %q (want wide, json or yaml)", format))
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if format == "wide" {
		fmt.Fprintln(tw, "NAME\tSTATUS\tROLES\tAGE\tADDRESS\tPOD-CIDR\tCPU\tMEMORY\tPODS\tAGENTLET\tCONTAINERD\tKERNEL\tOS\tREASON")
	} else {
		fmt.Fprintln(tw, "NAME\tSTATUS\tROLES\tAGE\tPOD-CIDR\tAGENTLET\tREASON")
	}
	for _, n := range nodes {
		age := "<unknown>"
		if n.JoinedAt != nil {
			age = humanDuration(now.Sub(*n.JoinedAt))
		}
		rs := strings.Join(n.Roles, ",")
		if rs == "" {
			rs = "<none>"
		}
		reason := n.Reason
		if format == "wide" {
			cpu, mem, pods := "-", "-", "-"
			if a := n.Allocatable; a != nil {
				cpu, mem, pods = a.CPU, humanKi(a.Memory), fmt.Sprint(a.Pods)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Status, rs, age, n.Address,
				dash(n.PodCIDR), cpu, mem, pods, dash(n.AgentletVersion), dash(n.ContainerdVersion), dash(n.Kernel), dash(n.OS), reason)
		} else {
			if len(reason) > 70 {
				reason = reason[:69] + "…"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Status, rs, age, dash(n.PodCIDR), dash(n.AgentletVersion), reason)
		}
	}
	return tw.Flush()
}

func describeNode(w io.Writer, n Node, now time.Time) {
	kv := func(k, v string) { fmt.Fprintf(w, "%-18s%s\n", k+":", v) }
	kv("Name", n.Name)
	kv("Address", n.Address)
	status := n.Status
	if n.Reason != "" {
		status += " (" + n.Reason + ")"
	}
	kv("Status", status)
	kv("Roles", orNone(strings.Join(n.Roles, ",")))
	var labels []string
	for k, v := range n.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	kv("Labels", orNone(strings.Join(labels, "\n"+strings.Repeat(" ", 18))))
	kv("Taints", orNone(strings.Join(n.Taints, "\n"+strings.Repeat(" ", 18))))
	kv("PodCIDR", dash(n.PodCIDR))
	if n.JoinedAt != nil {
		kv("Joined", fmt.Sprintf("%s (%s ago)", n.JoinedAt.Format(time.RFC3339), humanDuration(now.Sub(*n.JoinedAt))))
	}
	if n.HeartbeatAt != nil {
		kv("Last Heartbeat", fmt.Sprintf("%s (%s ago)", n.HeartbeatAt.Format(time.RFC3339), humanDuration(now.Sub(*n.HeartbeatAt))))
	}
	if len(n.Conditions) > 0 {
		fmt.Fprintln(w, "Conditions:")
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  TYPE\tSTATUS\tLAST TRANSITION\tREASON\tMESSAGE")
		for _, c := range n.Conditions {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.LastTransitionTime.Format(time.RFC3339), dash(c.Reason), c.Message)
		}
		tw.Flush()
	}
	for _, r := range []struct {
		name string
		res  *Resources
	}{{"Capacity", n.Capacity}, {"Allocatable", n.Allocatable}} {
		if r.res == nil {
			continue
		}
		fmt.Fprintf(w, "%s:\n  cpu:     %s\n  memory:  %s\n  pods:    %d\n", r.name, r.res.CPU, r.res.Memory, r.res.Pods)
	}
	if n.Kernel != "" {
		fmt.Fprintln(w, "System Info:")
		fmt.Fprintf(w, "  Kernel Version:     %s\n  OS Image:           %s\n  Architecture:       %s\n  Cgroup Version:     %d\n  Container Runtime:  %s\n  Agentlet Version:   %s\n  Spec Generation:    %d\n",
			n.Kernel, n.OS, n.Arch, n.CgroupVersion, dash(n.ContainerdVersion), n.AgentletVersion, n.SpecGeneration)
	}
	fmt.Fprintln(w, "Recent Errors:")
	if len(n.RecentErrors) == 0 {
		fmt.Fprintln(w, "  <none>")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  TIME\tREASON\tMESSAGE")
	for _, e := range n.RecentErrors {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.Reason, e.Message)
	}
	tw.Flush()
}

// printObject prints v as indented JSON or as YAML.
func printObject(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		return enc.Close()
	}
	return withCode(ExitUsage, errors.New("unknown output format "+format))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// humanDuration prints an age the way kubectl does: 45s, 12m, 5h, 3d.
func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// humanKi turns "123456Ki" into "120.6Mi"/"23.4Gi" for tables.
func humanKi(s string) string {
	var ki float64
	if _, err := fmt.Sscanf(s, "%fKi", &ki); err != nil {
		return s
	}
	switch {
	case ki >= 1<<20:
		return fmt.Sprintf("%.1fGi", ki/(1<<20))
	case ki >= 1<<10:
		return fmt.Sprintf("%.1fMi", ki/(1<<10))
	}
	return s
}
