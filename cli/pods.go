package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan/sched"
	"github.com/clusterctl/clusterctl/playbooks"
	"github.com/clusterctl/clusterctl/reconcile"
	"github.com/clusterctl/clusterctl/remote"
)

func listFlags() []cli.Flag {
	return append([]cli.Flag{
		inventoryFlag(), namespaceFlag(),
		&cli.BoolFlag{Name: "all-namespaces", Aliases: []string{"A"}, Usage: "list across all namespaces"},
		&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "label selector, e.g. app=web,tier in (fe,be)"},
		outputFlag("output format: wide|json|yaml"),
	}, sshFlags()...)
}

// podView is a stored pod joined with what its node reports.
type podView struct {
	pod    *corev1.Pod
	status *nodeapi.PodStatus
	// pending explains why an unbound pod is not scheduled.
	pending string
}

// podStatuses indexes the reported pods by UID.
func podStatuses(obs []playbooks.Observation) map[string]*nodeapi.PodStatus {
	m := map[string]*nodeapi.PodStatus{}
	for _, o := range obs {
		if o.Status == nil {
			continue
		}
		for i := range o.Status.Pods {
			p := &o.Status.Pods[i]
			m[p.UID] = p
		}
	}
	return m
}

// observePods loads the stored pods matching the flags and what nodes say.
func observePods(c *cli.Context, env *Env, names []string) ([]podView, error) {
	inv, cl, err := loadCluster(c, env)
	if err != nil {
		return nil, err
	}
	scope, err := newListScope(c, names, false)
	if err != nil {
		return nil, err
	}
	var pods []*corev1.Pod
	found := map[string]bool{}
	for _, p := range cl.Pods {
		if scope.match(p) {
			pods = append(pods, p)
			found[p.Name] = true
		}
	}
	if err := scope.missing("Pod", found); err != nil {
		return nil, err
	}
	obs := playbooks.Observe(c.Context, inv.HostNames(), dialer(c, env, inv), c.Int("parallel"))
	statuses := podStatuses(obs)
	// Explain pending pods with a read-only scheduling pass (binds nothing).
	fleetNodes := schedNodesFor(inv, obs)
	why := sched.ScheduleCluster(cl.SchedCluster(fleetNodes)).Unschedulable
	views := make([]podView, len(pods))
	for i, p := range pods {
		views[i] = podView{pod: p, status: statuses[string(p.UID)]}
		if u, ok := why[reconcile.Key(p.Namespace, p.Name)]; ok && p.Spec.NodeName == "" {
			views[i].pending = u.Message
		}
	}
	sort.Slice(views, func(i, j int) bool {
		a, b := views[i].pod, views[j].pod
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	return views, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// schedNodesFor mirrors reconcile's view of nodes for read-only scheduling.
func schedNodesFor(inv *inventory.Inventory, obs []playbooks.Observation) []sched.Node {
	return reconcile.SchedNodes(inv, obs)
}

func podReady(st *nodeapi.PodStatus) bool { return st.Ready() }

// podStatusWord is kubectl's STATUS column.
func podStatusWord(p *corev1.Pod, st *nodeapi.PodStatus) string {
	if st == nil {
		return "Pending"
	}
	reason := st.Phase
	if st.Reason != "" {
		reason = st.Reason
	}
	for i, c := range st.InitContainerStatuses {
		switch {
		case c.State.Terminated != nil && c.State.Terminated.ExitCode == 0:
			continue
		case c.State.Terminated != nil:
			if c.State.Terminated.Reason != "" {
				return "Init:" + c.State.Terminated.Reason
			}
			return fmt.Sprintf("Init:ExitCode:%d", c.State.Terminated.ExitCode)
		case c.State.Waiting != nil && c.State.Waiting.Reason != "" && c.State.Waiting.Reason != "PodInitializing":
			return "Init:" + c.State.Waiting.Reason
		default:
			return fmt.Sprintf("Init:%d/%d", i, len(st.InitContainerStatuses))
		}
	}
	running := false
	for i := len(st.ContainerStatuses) - 1; i >= 0; i-- {
		c := st.ContainerStatuses[i]
		switch {
		case c.State.Waiting != nil && c.State.Waiting.Reason != "":
			reason = c.State.Waiting.Reason
		case c.State.Terminated != nil && c.State.Terminated.Reason != "":
			reason = c.State.Terminated.Reason
		case c.State.Terminated != nil:
			reason = fmt.Sprintf("ExitCode:%d", c.State.Terminated.ExitCode)
		case c.Ready && c.State.Running != nil:
			running = true
		}
	}
	if reason == "Completed" && running {
		reason = nodeapi.PodRunning
	}
	return reason
}

func readyCount(p *corev1.Pod, st *nodeapi.PodStatus) string {
	ready := 0
	if st != nil {
		for _, c := range st.ContainerStatuses {
			if c.Ready {
				ready++
			}
		}
	}
	return fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers))
}

func restarts(st *nodeapi.PodStatus) string {
	if st == nil {
		return "0"
	}
	var n int32
	var last time.Time
	for _, c := range st.ContainerStatuses {
		n += c.RestartCount
		if t := c.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(last) {
			last = t.FinishedAt
		}
	}
	if n > 0 && !last.IsZero() {
		return fmt.Sprintf("%d (%s ago)", n, humanDuration(time.Since(last)))
	}
	return fmt.Sprint(n)
}

func printPods(w io.Writer, format string, views []podView, allNS bool) error {
	switch format {
	case "json", "yaml":
		list := corev1.PodList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
		for _, v := range views {
			list.Items = append(list.Items, withStatus(v))
		}
		return printK8s(w, format, &list)
	case "", "wide":
	default:
		return withCode(ExitUsage, fmt.Errorf("unknown output format %q (want wide, json or yaml)", format))
	}
	if len(views) == 0 {
		fmt.Fprintln(w, "No resources found.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	head := "NAME\tREADY\tSTATUS\tRESTARTS\tAGE"
	if allNS {
		head = "NAMESPACE\t" + head
	}
	if format == "wide" {
		head += "\tIP\tNODE\tNOMINATED NODE"
	}
	fmt.Fprintln(tw, head)
	for _, v := range views {
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", v.pod.Name, readyCount(v.pod, v.status), podStatusWord(v.pod, v.status),
			restarts(v.status), humanDuration(time.Since(v.pod.CreationTimestamp.Time)))
		if allNS {
			row = v.pod.Namespace + "\t" + row
		}
		if format == "wide" {
			ip := "<none>"
			if v.status != nil && v.status.PodIP != "" {
				ip = v.status.PodIP
			}
			row += fmt.Sprintf("\t%s\t%s\t<none>", ip, orNone(v.pod.Spec.NodeName))
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

// withStatus fills a pod's status from what its node reports, and says why
// a pod that no node runs is pending.
func withStatus(v podView) corev1.Pod {
	p := *reconcile.PodWithStatus(v.pod, v.status)
	if v.status == nil && v.pending != "" {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: v.pending}}
	}
	return p
}

// printK8s prints Kubernetes objects the way kubectl does (json tags).
func printK8s(w io.Writer, format string, obj any) error {
	if format == "json" {
		return printObject(w, "json", obj)
	}
	data, err := sigsyaml.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode yaml: %w", err)
	}
	_, err = w.Write(data)
	return err
}

func getPodsCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "pods",
		Aliases:   []string{"pod", "po"},
		Usage:     "list pods with their status as their nodes report it",
		ArgsUsage: "[NAME...]",
		Flags: append(listFlags(), &cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "keep watching and print changes"},
			&cli.DurationFlag{Name: "interval", Value: 2 * time.Second, Usage: "how often --watch looks"}),
		Action: func(c *cli.Context) error {
			names, err := trailingFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			views, err := observePods(c, env, names)
			if err != nil {
				return err
			}
			if err := printPods(env.Out, c.String("output"), views, c.Bool("all-namespaces")); err != nil || !c.Bool("watch") {
				return err
			}
			last := map[string]string{}
			for _, v := range views {
				last[string(v.pod.UID)] = podLine(v)
			}
			for {
				select {
				case <-c.Context.Done():
					return nil
				case <-time.After(c.Duration("interval")):
				}
				views, err := observePods(c, env, names)
				if err != nil {
					return err
				}
				for _, v := range views {
					if l := podLine(v); last[string(v.pod.UID)] != l {
						last[string(v.pod.UID)] = l
						fmt.Fprintln(env.Out, l)
					}
				}
			}
		},
	}
}

func podLine(v podView) string {
	return fmt.Sprintf("%s   %s   %s   %s   %s", v.pod.Name, readyCount(v.pod, v.status), podStatusWord(v.pod, v.status),
		restarts(v.status), humanDuration(time.Since(v.pod.CreationTimestamp.Time)))
}

func describePodCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "pod",
		Aliases:   []string{"pods", "po"},
		Usage:     "show a pod's containers, conditions, scheduling and recent node-side events",
		ArgsUsage: "NAME...",
		Flags:     listFlags(),
		Action: func(c *cli.Context) error {
			names, err := trailingFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			views, err := observePods(c, env, names)
			if err != nil {
				return err
			}
			if f := c.String("output"); f == "json" || f == "yaml" {
				return printPods(env.Out, f, views, true)
			}
			for i, v := range views {
				if i > 0 {
					fmt.Fprintln(env.Out)
				}
				describePod(env.Out, v)
			}
			return nil
		},
	}
}

func describePod(w io.Writer, v podView) {
	p, st := v.pod, v.status
	kv := func(k, val string) { fmt.Fprintf(w, "%-18s%s\n", k+":", val) }
	kv("Name", p.Name)
	kv("Namespace", p.Namespace)
	kv("Node", orNone(p.Spec.NodeName))
	kv("Created", p.CreationTimestamp.UTC().Format(time.RFC3339))
	var ls []string
	for k, val := range p.Labels {
		ls = append(ls, k+"="+val)
	}
	sort.Strings(ls)
	kv("Labels", orNone(strings.Join(ls, "\n"+strings.Repeat(" ", 18))))
	kv("Status", podStatusWord(p, st))
	if st != nil {
		kv("IP", orNone(st.PodIP))
		if st.Message != "" {
			kv("Message", st.Message)
		}
	}
	kv("UID", string(p.UID))
	statusOf := func(name string, list []nodeapi.ContainerStatus) *nodeapi.ContainerStatus {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
		return nil
	}
	section := func(title string, cs []corev1.Container, list []nodeapi.ContainerStatus) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(w, "%s:\n", title)
		for _, c := range cs {
			fmt.Fprintf(w, "  %s:\n    Image:          %s\n", c.Name, c.Image)
			s := statusOf(c.Name, list)
			if s == nil {
				fmt.Fprintln(w, "    State:          Waiting (not reported by the node yet)")
				continue
			}
			fmt.Fprintf(w, "    State:          %s\n", stateLine(s.State))
			if s.LastTerminationState.Terminated != nil {
				fmt.Fprintf(w, "    Last State:     %s\n", stateLine(s.LastTerminationState))
			}
			fmt.Fprintf(w, "    Ready:          %t\n    Restart Count:  %d\n", s.Ready, s.RestartCount)
			if lim := c.Resources.Limits; len(lim) > 0 {
				fmt.Fprintf(w, "    Limits:         cpu=%s memory=%s\n", lim.Cpu(), lim.Memory())
			}
			if req := c.Resources.Requests; len(req) > 0 {
				fmt.Fprintf(w, "    Requests:       cpu=%s memory=%s\n", req.Cpu(), req.Memory())
			}
		}
	}
	var init, ctrs []nodeapi.ContainerStatus
	if st != nil {
		init, ctrs = st.InitContainerStatuses, st.ContainerStatuses
	}
	section("Init Containers", p.Spec.InitContainers, init)
	section("Containers", p.Spec.Containers, ctrs)
	if st != nil && len(st.Conditions) > 0 {
		fmt.Fprintln(w, "Conditions:")
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON")
		for _, c := range st.Conditions {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Type, c.Status, c.Reason)
		}
		tw.Flush()
	}
	if len(p.Spec.Volumes) > 0 {
		fmt.Fprintln(w, "Volumes:")
		for _, vol := range p.Spec.Volumes {
			fmt.Fprintf(w, "  %s: %s\n", vol.Name, volumeKind(vol))
		}
	}
	fmt.Fprintln(w, "Events:")
	if v.pending != "" {
		fmt.Fprintf(w, "  Warning  FailedScheduling  %s\n", v.pending)
	}
	if st == nil || len(st.Events) == 0 {
		if v.pending == "" {
			fmt.Fprintln(w, "  <none>")
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, e := range st.Events {
		count := ""
		if e.Count > 1 {
			count = fmt.Sprintf(" (x%d)", e.Count)
		}
		fmt.Fprintf(tw, "  %s ago\t%s%s\t%s\n", humanDuration(time.Since(e.Time)), e.Reason, count, e.Message)
	}
	tw.Flush()
}

func stateLine(s nodeapi.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running since " + s.Running.StartedAt.UTC().Format(time.RFC3339)
	case s.Waiting != nil:
		line := "Waiting: " + s.Waiting.Reason
		if s.Waiting.Message != "" {
			line += " (" + s.Waiting.Message + ")"
		}
		return line
	case s.Terminated != nil:
		t := s.Terminated
		return fmt.Sprintf("Terminated: %s, exit code %d, finished %s", t.Reason, t.ExitCode, t.FinishedAt.UTC().Format(time.RFC3339))
	}
	return "<unknown>"
}

func volumeKind(v corev1.Volume) string {
	switch {
	case v.ConfigMap != nil:
		return "configMap " + v.ConfigMap.Name
	case v.Secret != nil:
		return "secret " + v.Secret.SecretName
	case v.EmptyDir != nil:
		return "emptyDir"
	case v.HostPath != nil:
		return "hostPath " + v.HostPath.Path
	case v.Projected != nil:
		return "projected"
	}
	return "other"
}

// podOnNode finds a bound pod and opens a connection to its node.
func podOnNode(c *cli.Context, env *Env, name string) (*corev1.Pod, playbooks.Host, error) {
	inv, err := loadInventory(inventoryPath(c, env))
	if err != nil {
		return nil, nil, err
	}
	cl, err := reconcile.Load(inv)
	if err != nil {
		return nil, nil, err
	}
	ns := c.String("namespace")
	p, ok := cl.Pod(ns, name)
	if !ok {
		return nil, nil, withCode(ExitUsage, fmt.Errorf("pod %q not found in namespace %q", name, ns))
	}
	if p.Spec.NodeName == "" {
		return nil, nil, fmt.Errorf("pod %s is not scheduled to a node yet", name)
	}
	h, err := dialer(c, env, inv)(c.Context, p.Spec.NodeName)
	if err != nil {
		return nil, nil, err
	}
	return p, h, nil
}

// streamer is the part of remote.Client that logs and exec need.
type streamer interface {
	Stream(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error
}

func logsCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print a container's logs (read from the CRI log files on its node)",
		ArgsUsage: "POD",
		Flags: append([]cli.Flag{inventoryFlag(), namespaceFlag(),
			&cli.StringFlag{Name: "container", Aliases: []string{"c"}, Usage: "container name (default: the only or first container)"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep streaming"},
			&cli.BoolFlag{Name: "previous", Aliases: []string{"p"}, Usage: "the previous (terminated) instance's logs"},
			&cli.IntFlag{Name: "tail", Value: -1, Usage: "only the last N lines"},
			&cli.DurationFlag{Name: "since", Usage: "only lines newer than this, e.g. 5m"},
			&cli.BoolFlag{Name: "timestamps", Usage: "prefix each line with its time"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error {
			args, err := trailingFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			if len(args) != 1 {
				return withCode(ExitUsage, errors.New("logs: want exactly one POD"))
			}
			p, h, err := podOnNode(c, env, args[0])
			if err != nil {
				return err
			}
			defer h.Close()
			cmd := []string{nodeapi.BinaryPath, "logs", p.Namespace + "/" + p.Name}
			if ctr := c.String("container"); ctr != "" {
				cmd = append(cmd, "-c", ctr)
			}
			for _, b := range []string{"follow", "previous", "timestamps"} {
				if c.Bool(b) {
					cmd = append(cmd, "--"+b)
				}
			}
			if n := c.Int("tail"); n >= 0 {
				cmd = append(cmd, "--tail", fmt.Sprint(n))
			}
			if d := c.Duration("since"); d > 0 {
				cmd = append(cmd, "--since", d.String())
			}
			return silentExit(h.(streamer).Stream(c.Context, quoteArgs(cmd), nil, env.Out, env.Err))
		},
	}
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = remote.Quote(a)
	}
	return strings.Join(q, " ")
}
