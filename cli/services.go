package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/playbooks"
	"github.com/clusterctl/clusterctl/reconcile"
)

// serviceView is a stored Service with its endpoints as the nodes report
// their pods now.
type serviceView struct {
	svc  *corev1.Service
	spec nodeapi.ServiceSpec
}

// storedServices loads the Services matching the flags (and names).
func storedServices(c *cli.Context, env *Env, names []string) (*inventory.Inventory, *reconcile.Cluster, []*corev1.Service, listScope, error) {
	inv, cl, err := loadCluster(c, env)
	if err != nil {
		return nil, nil, nil, listScope{}, err
	}
	scope, err := newListScope(c, names, false)
	if err != nil {
		return nil, nil, nil, scope, err
	}
	var svcs []*corev1.Service
	found := map[string]bool{}
	for _, key := range reconcile.SortedKeys(cl.Services) {
		if s := cl.Services[key]; scope.match(s) {
			svcs = append(svcs, s)
			found[s.Name] = true
		}
	}
	return inv, cl, svcs, scope, scope.missing("Service", found)
}

// observeServices loads the Services matching the flags (and names) and
// computes their endpoints from what the nodes report.
func observeServices(c *cli.Context, env *Env, names []string) ([]serviceView, error) {
	inv, cl, svcs, _, err := storedServices(c, env, names)
	if err != nil {
		return nil, err
	}
	obs := playbooks.Observe(c.Context, inv.HostNames(), dialer(c, env, inv), c.Int("parallel"))
	statuses := map[string]*nodeapi.NodeStatus{}
	for _, o := range obs {
		statuses[o.Host] = o.Status
	}
	specs := map[string]nodeapi.ServiceSpec{}
	for _, s := range reconcile.ServiceSpecs(cl, reconcile.ObservedPods(statuses)) {
		specs[s.Key()] = s
	}
	views := make([]serviceView, 0, len(svcs))
	for _, s := range svcs {
		views = append(views, serviceView{svc: s, spec: specs[reconcile.Key(s.Namespace, s.Name)]})
	}
	return views, nil
}

func serviceFlags() []cli.Flag {
	return append([]cli.Flag{inventoryFlag(), namespaceFlag(),
		&cli.BoolFlag{Name: "all-namespaces", Aliases: []string{"A"}, Usage: "list across all namespaces"},
		&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "label selector"}}, sshFlags()...)
}

func getServicesCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "services",
		Aliases:   []string{"service", "svc"},
		Usage:     "list Services with their cluster IPs and ports (from the inventory)",
		ArgsUsage: "[NAME...]",
		Flags:     append(serviceFlags(), outputFlag("output format: wide|json|yaml")),
		Action: func(c *cli.Context) error {
			names, err := trailingFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			_, _, svcs, scope, err := storedServices(c, env, names)
			if err != nil {
				return err
			}
			return printServices(env.Out, c.String("output"), svcs, scope.all, time.Now())
		},
	}
}

func printServices(w io.Writer, format string, svcs []*corev1.Service, showNS bool, now time.Time) error {
	switch format {
	case "json", "yaml":
		list := corev1.ServiceList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
		for _, s := range svcs {
			c := s.DeepCopy()
			c.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
			list.Items = append(list.Items, *c)
		}
		return printK8s(w, format, &list)
	case "", "wide":
	default:
		return withCode(ExitUsage, fmt.Errorf("unknown output format %q (want wide, json or yaml)", format))
	}
	if len(svcs) == 0 {
		fmt.Fprintln(w, "No resources found.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	head := "NAME\tTYPE\tCLUSTER-IP\tEXTERNAL-IP\tPORT(S)\tAGE"
	if format == "wide" {
		head += "\tSELECTOR"
	}
	if showNS {
		head = "NAMESPACE\t" + head
	}
	fmt.Fprintln(tw, head)
	for _, s := range svcs {
		line := s.Name
		if showNS {
			line = s.Namespace + "\t" + line
		}
		ip := s.Spec.ClusterIP
		if ip == "" {
			ip = "<pending>"
		}
		line += fmt.Sprintf("\t%s\t%s\t<none>\t%s\t%s", s.Spec.Type, ip, servicePorts(s), age(s.CreationTimestamp, now))
		if format == "wide" {
			line += "\t" + selectorString(s.Spec.Selector)
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

// servicePorts is kubectl's PORT(S) column: 80/TCP, 80:30080/TCP.
func servicePorts(s *corev1.Service) string {
	if len(s.Spec.Ports) == 0 {
		return "<none>"
	}
	var parts []string
	for _, p := range s.Spec.Ports {
		if p.NodePort != 0 {
			parts = append(parts, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol))
		} else {
			parts = append(parts, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
		}
	}
	return strings.Join(parts, ",")
}

func selectorString(sel map[string]string) string {
	if len(sel) == 0 {
		return "<none>"
	}
	return labels.SelectorFromSet(sel).String()
}

func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return humanDuration(now.Sub(t.Time))
}

func getEndpointsCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "endpoints",
		Aliases:   []string{"endpoint", "ep"},
		Usage:     "list each Service's endpoints: its ready pods as their nodes report them",
		ArgsUsage: "[NAME...]",
		Flags:     append(serviceFlags(), outputFlag("output format: json|yaml")),
		Action: func(c *cli.Context) error {
			names, err := trailingFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			views, err := observeServices(c, env, names)
			if err != nil {
				return err
			}
			return printEndpoints(env.Out, c.String("output"), views, c.Bool("all-namespaces"), time.Now())
		},
	}
}

// endpointsObject is the v1 Endpoints object of a Service, as Kubernetes'
// endpoints controller would write it: one subset per distinct port set,
// ready and not-ready addresses apart.
func endpointsObject(v serviceView) corev1.Endpoints {
	ep := corev1.Endpoints{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Endpoints"},
		ObjectMeta: metav1.ObjectMeta{Name: v.svc.Name, Namespace: v.svc.Namespace, Labels: v.svc.Labels}}
	subsets := map[string]*corev1.EndpointSubset{}
	var order []string
	for _, e := range v.spec.Endpoints {
		var ports []corev1.EndpointPort
		for _, p := range v.svc.Spec.Ports {
			if tp, ok := e.Ports[p.Name]; ok {
				ports = append(ports, corev1.EndpointPort{Name: p.Name, Port: tp, Protocol: p.Protocol})
			}
		}
		key := fmt.Sprint(ports)
		ss, ok := subsets[key]
		if !ok {
			ss = &corev1.EndpointSubset{Ports: ports}
			subsets[key] = ss
			order = append(order, key)
		}
		addr := corev1.EndpointAddress{IP: e.IP, Hostname: e.Hostname}
		if e.NodeName != "" {
			addr.NodeName = &e.NodeName
		}
		if e.Ready {
			ss.Addresses = append(ss.Addresses, addr)
		} else {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, addr)
		}
	}
	sort.Strings(order)
	for _, k := range order {
		ep.Subsets = append(ep.Subsets, *subsets[k])
	}
	return ep
}

func printEndpoints(w io.Writer, format string, views []serviceView, showNS bool, now time.Time) error {
	switch format {
	case "json", "yaml":
		list := corev1.EndpointsList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
		for _, v := range views {
			list.Items = append(list.Items, endpointsObject(v))
		}
		return printK8s(w, format, &list)
	case "":
	default:
		return withCode(ExitUsage, fmt.Errorf("unknown output format %q (want json or yaml)", format))
	}
	if len(views) == 0 {
		fmt.Fprintln(w, "No resources found.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	head := "NAME\tENDPOINTS\tAGE"
	if showNS {
		head = "NAMESPACE\t" + head
	}
	fmt.Fprintln(tw, head)
	for _, v := range views {
		line := v.svc.Name
		if showNS {
			line = v.svc.Namespace + "\t" + line
		}
		fmt.Fprintln(tw, line+"\t"+readyEndpoints(v, 3)+"\t"+age(v.svc.CreationTimestamp, now))
	}
	return tw.Flush()
}

// readyEndpoints is kubectl's ENDPOINTS column: ready ip:port pairs, the
// first max of them and "+ N more...".
func readyEndpoints(v serviceView, max int) string {
	var eps []string
	for _, e := range v.spec.Endpoints {
		if !e.Ready {
			continue
		}
		for _, p := range v.svc.Spec.Ports {
			if tp, ok := e.Ports[p.Name]; ok {
				eps = append(eps, fmt.Sprintf("%s:%d", e.IP, tp))
			}
		}
		if len(v.svc.Spec.Ports) == 0 { // headless without ports
			eps = append(eps, e.IP)
		}
	}
	switch {
	case len(eps) == 0:
		return "<none>"
	case max > 0 && len(eps) > max:
		return strings.Join(eps[:max], ",") + fmt.Sprintf(" + %d more...", len(eps)-max)
	}
	return strings.Join(eps, ",")
}

func describeServiceCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "service",
		Aliases:   []string{"services", "svc"},
		Usage:     "show a Service's IPs, ports, selector and endpoints",
		ArgsUsage: "NAME...",
		Flags:     serviceFlags(),
		Action: func(c *cli.Context) error {
			names, err := trailingFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			views, err := observeServices(c, env, names)
			if err != nil {
				return err
			}
			for i, v := range views {
				if i > 0 {
					fmt.Fprintln(env.Out)
				}
				describeService(env.Out, v)
			}
			return nil
		},
	}
}

func describeService(w io.Writer, v serviceView) {
	s := v.svc
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	kv := func(k, val string) { fmt.Fprintf(tw, "%s:\t%s\n", k, val) }
	kv("Name", s.Name)
	kv("Namespace", s.Namespace)
	kv("Labels", mapString(s.Labels))
	kv("Annotations", mapString(s.Annotations))
	kv("Selector", selectorString(s.Spec.Selector))
	kv("Type", string(s.Spec.Type))
	kv("IP Family Policy", "SingleStack")
	kv("IP Families", "IPv4")
	kv("IP", s.Spec.ClusterIP)
	kv("IPs", s.Spec.ClusterIP)
	for _, p := range s.Spec.Ports {
		name := p.Name
		if name == "" {
			name = "<unset>"
		}
		kv("Port", fmt.Sprintf("%s  %d/%s", name, p.Port, p.Protocol))
		kv("TargetPort", fmt.Sprintf("%s/%s", p.TargetPort.String(), p.Protocol))
		if p.NodePort != 0 {
			kv("NodePort", fmt.Sprintf("%s  %d/%s", name, p.NodePort, p.Protocol))
		}
		one := v
		one.svc = s.DeepCopy()
		one.svc.Spec.Ports = []corev1.ServicePort{p}
		kv("Endpoints", readyEndpoints(one, 0))
	}
	if len(s.Spec.Ports) == 0 {
		kv("Endpoints", readyEndpoints(v, 0))
	}
	var unready []string
	for _, e := range v.spec.Endpoints {
		if !e.Ready {
			unready = append(unready, e.IP)
		}
	}
	if len(unready) > 0 {
		kv("Not Ready", strings.Join(unready, ","))
	}
	kv("Session Affinity", string(s.Spec.SessionAffinity))
	if s.Spec.Type == corev1.ServiceTypeNodePort {
		kv("External Traffic Policy", string(s.Spec.ExternalTrafficPolicy))
	}
	kv("Internal Traffic Policy", "Cluster")
	kv("Events", "<none>")
	tw.Flush() //nolint:errcheck // the writer is the terminal
}

func mapString(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}
