// Package reconcile is the cluster loop: observe every host over one SSH
// connection each, plan (pure: schedule unbound pods, lower bound pods to
// node specs), push one NodeSpec per host whose desired state changed, and
// record bindings and spec checksums in the inventory. The caller holds the
// inventory lock and saves it.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan"
	"github.com/clusterctl/clusterctl/plan/controller"
	"github.com/clusterctl/clusterctl/plan/sched"
	"github.com/clusterctl/clusterctl/plan/workloads"
	"github.com/clusterctl/clusterctl/playbooks"
)

// Cluster is the desired state decoded from the inventory's objects.
type Cluster struct {
	Pods       []*corev1.Pod
	ConfigMaps map[string]*corev1.ConfigMap // "ns/name"
	Secrets    map[string]*corev1.Secret    // "ns/name"
	Namespaces map[string]*corev1.Namespace // name
	Services   map[string]*corev1.Service   // "ns/name"
	Endpoints  map[string]*corev1.Endpoints // "ns/name"
	// EndpointSlices belong to the Service named by their
	// kubernetes.io/service-name label.
	EndpointSlices []*discoveryv1.EndpointSlice
	// Workloads holds the objects of the workload and storage kinds
	// (Deployment, ReplicaSet, Job, PersistentVolumeClaim, ...) by kind and
	// "ns/name" ("/name" for cluster-scoped kinds).
	Workloads map[string]map[string]runtime.Object
}

// Key is the "namespace/name" of an object.
func Key(namespace, name string) string { return namespace + "/" + name }

// Load decodes the objects stored in the inventory.
func Load(inv *inventory.Inventory) (*Cluster, error) {
	c := &Cluster{ConfigMaps: map[string]*corev1.ConfigMap{}, Secrets: map[string]*corev1.Secret{}, Namespaces: map[string]*corev1.Namespace{},
		Services: map[string]*corev1.Service{}, Endpoints: map[string]*corev1.Endpoints{}, Workloads: map[string]map[string]runtime.Object{}}
	var errs []error
	for _, o := range inv.Objects() {
		obj, err := manifest.DecodeStored(o.JSON)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: stored %s %s: %w", inv.Path, o.Line, o.Kind, Key(o.Namespace, o.Name), err))
			continue
		}
		switch t := obj.Obj.(type) {
		case *corev1.Pod:
			c.Pods = append(c.Pods, t)
		case *corev1.ConfigMap:
			c.ConfigMaps[Key(t.Namespace, t.Name)] = t
		case *corev1.Secret:
			c.Secrets[Key(t.Namespace, t.Name)] = t
		case *corev1.Namespace:
			c.Namespaces[t.Name] = t
		case *corev1.Service:
			c.Services[Key(t.Namespace, t.Name)] = t
		case *corev1.Endpoints:
			c.Endpoints[Key(t.Namespace, t.Name)] = t
		case *discoveryv1.EndpointSlice:
			c.EndpointSlices = append(c.EndpointSlices, t)
		default:
			c.putWorkload(obj.Kind, Key(obj.Namespace, obj.Name), obj.Obj)
		}
	}
	return c, errors.Join(errs...)
}

// Object returns the stored object of a kind ("" namespace for cluster-
// scoped kinds).
func (c *Cluster) Object(kind, namespace, name string) (runtime.Object, bool) {
	key := Key(namespace, name)
	var obj runtime.Object
	var ok bool
	switch kind {
	case "Pod":
		obj, ok = c.Pod(namespace, name)
	case "ConfigMap":
		obj, ok = c.ConfigMaps[key]
	case "Secret":
		obj, ok = c.Secrets[key]
	case "Namespace":
		obj, ok = c.Namespaces[name]
	case "Service":
		obj, ok = c.Services[key]
	case "Endpoints":
		obj, ok = c.Endpoints[key]
	case "EndpointSlice":
		for _, es := range c.EndpointSlices {
			if es.Namespace == namespace && es.Name == name {
				return es, true
			}
		}
	default:
		obj, ok = c.Workloads[kind][key]
	}
	return obj, ok
}

// SchedCluster is the scheduler's view of the cluster: the pods, the nodes
// and every namespace's labels (for namespaceSelectors).
func (c *Cluster) SchedCluster(nodes []sched.Node) sched.Cluster {
	ns := map[string]map[string]string{}
	for name, n := range c.Namespaces {
		ns[name] = n.Labels
	}
	return sched.Cluster{Pods: c.Pods, Nodes: nodes, Namespaces: ns}
}

// Pod returns the stored pod namespace/name.
func (c *Cluster) Pod(namespace, name string) (*corev1.Pod, bool) {
	for _, p := range c.Pods {
		if p.Namespace == namespace && p.Name == name {
			return p, true
		}
	}
	return nil, false
}

// Options configure one cluster loop.
type Options struct {
	// RegistryAuth are the inventory's registry credentials, resolved by the
	// caller (they may come from files or the environment).
	RegistryAuth []nodeapi.RegistryAuth
	Writer       string
	Now          time.Time
	// DryRun plans without pushing or changing the inventory.
	DryRun bool
	// Seed is this run's entropy for the names and UIDs controllers make.
	Seed string
	// LoadLocation resolves CronJob time zones (time.LoadLocation; nil:
	// UTC only).
	LoadLocation func(string) (*time.Location, error)
	// BeforePush saves the inventory (with the new generation and what
	// each host is about to be given) before any host is changed; nil
	// saves nothing then.
	BeforePush func() error
	// Audit is the command's part of the audit record (its command line
	// and the objects it changed itself); nil records the loop's changes
	// only. A command with changes is recorded even if the loop changes
	// nothing else.
	Audit *playbooks.AuditRecord
}

// Result is what one loop saw and did.
type Result struct {
	Observations  []playbooks.Observation
	Bindings      map[string]string // pods bound in this loop → node
	Unschedulable map[string]sched.Unschedulable
	// PodErrors are bound pods that cannot be lowered to a node spec (for
	// example a missing ConfigMap); they are left out of their node's spec.
	PodErrors  map[string]error
	Specs      map[string]nodeapi.NodeSpec
	Pushed     []playbooks.PushResult
	Generation int64
	Bumped     bool
	// Controllers is what the workload controllers changed in this loop.
	Controllers controller.Changes
	// Recorded is the snapshot and audit upload to each reachable host,
	// done when anything changed (playbooks.PutSnapshot).
	Recorded []playbooks.PushResult
}

// Changed reports whether the loop changed anything on a host or in the
// inventory.
func (r *Result) Changed() bool {
	if r.Bumped || len(r.Bindings) > 0 || !r.Controllers.Empty() {
		return true
	}
	for _, p := range r.Pushed {
		if p.Changed {
			return true
		}
	}
	return false
}

// Run performs one loop over an open fleet. inv is updated in memory.
func Run(ctx context.Context, inv *inventory.Inventory, fleet *playbooks.Fleet, opts Options) (*Result, error) {
	cl, err := Load(inv)
	if err != nil {
		return nil, err
	}
	res := &Result{Observations: fleet.Observe(ctx)}
	statuses := map[string]*nodeapi.NodeStatus{}
	for _, o := range res.Observations {
		statuses[o.Host] = o.Status
	}
	// Fencing: a host holding newer state than this inventory stops the
	// run before anything changes (fencing.go).
	if err := CheckFencing(inv, HeldSpecs(fleet, res.Observations), opts.Writer); err != nil {
		return nil, err
	}

	// Controllers: workloads make and remove pods, to a fixed point.
	nodes := SchedNodes(inv, res.Observations)
	observed := ObservedPods(statuses)
	lifecycle, err := nodeLifecycle(inv, cl, nodes, statuses, observed, opts)
	if err != nil {
		return nil, err
	}
	res.Controllers, err = RunControllers(inv, cl, ControllerInput{Now: opts.Now, Seed: opts.Seed, Observed: observed,
		Nodes: workloadNodes(nodes), LoadLocation: opts.LoadLocation, NodeStatuses: statuses,
		WithinGrace: withinGrace(inv, nodes, opts.Now)}, opts.DryRun)
	if err != nil {
		return nil, err
	}
	lifecycle.Merge(res.Controllers)
	res.Controllers = lifecycle

	// Schedule: pods using bound claims go to their claim's node.
	schedPods, held := cl.schedulingPods()
	sc := cl.SchedCluster(nodes)
	sc.Pods = schedPods
	s := sched.ScheduleCluster(sc)
	if s.Unschedulable == nil {
		s.Unschedulable = map[string]sched.Unschedulable{}
	}
	for k, why := range held {
		s.Unschedulable[k] = sched.Unschedulable{Message: fmt.Sprintf("0/%d nodes are available: %s.", len(nodes), why)}
	}
	res.Bindings, res.Unschedulable = s.Bindings, s.Unschedulable
	for _, p := range cl.Pods {
		node, bound := s.Bindings[Key(p.Namespace, p.Name)]
		if !bound {
			continue
		}
		p.Spec.NodeName = node
		if !opts.DryRun {
			if err := store(inv, p); err != nil {
				return nil, err
			}
		}
	}

	if err := cl.bindClaims(inv, s.Bindings, metav1.NewTime(opts.Now), opts.DryRun); err != nil {
		return nil, err
	}

	// Lower and assemble.
	res.Specs, res.PodErrors = Desired(inv, cl, DesiredInput{Generation: inv.State.Generation, Writer: opts.Writer, Now: opts.Now,
		Auth: opts.RegistryAuth, Observed: observed})
	var changed []string
	for _, h := range inv.HostNames() {
		spec := res.Specs[h]
		if inv.HostState(h).SpecSHA256 != nodeapi.ContentSHA256(&spec) {
			changed = append(changed, h)
		}
	}
	res.Generation = inv.State.Generation
	if len(changed) > 0 {
		res.Generation++
		res.Bumped = true
		if !opts.DryRun {
			inv.BumpGeneration()
		}
		for h, spec := range res.Specs {
			spec.Generation = res.Generation
			res.Specs[h] = spec
		}
	}
	if opts.DryRun {
		return res, nil
	}

	// Push: every reachable host when the generation moved (so every node
	// holds the newest generation for fencing), otherwise only hosts that
	// hold an older or no spec (reinstalled, or lost their state).
	var targets []string
	for _, h := range inv.HostNames() {
		st := statuses[h]
		if st == nil {
			continue // unreachable or agentlet not installed: `up` first
		}
		if res.Bumped || st.SpecGeneration != res.Generation {
			targets = append(targets, h)
		}
	}
	// Record before pushing: a run killed after some hosts took the new
	// generation leaves an inventory that knows it (and what each host was
	// given), so fencing lets the next run through and it re-pushes the
	// hosts that missed it.
	if len(targets) > 0 && opts.BeforePush != nil {
		for _, h := range targets {
			hs := inv.HostState(h)
			spec := res.Specs[h]
			hs.SpecSHA256 = nodeapi.ContentSHA256(&spec)
			inv.SetHostState(h, hs)
		}
		if err := opts.BeforePush(); err != nil {
			return nil, fmt.Errorf("record generation %d before pushing it: %w", res.Generation, err)
		}
	}
	res.Pushed = fleet.Push(ctx, res.Specs, targets)
	for _, p := range res.Pushed {
		if p.Err != nil {
			continue
		}
		hs := inv.HostState(p.Host)
		spec := res.Specs[p.Host]
		hs.SpecSHA256 = nodeapi.ContentSHA256(&spec)
		inv.SetHostState(p.Host, hs)
	}
	// Record: when anything changed, every reachable host keeps a snapshot
	// of the inventory's state (`clusterctl recover`) and an audit record.
	if res.Changed() || opts.Audit.HasChanges() {
		rec := opts.Audit.ForLoop(inv.State.Generation, opts.Writer, opts.Now, opts.Seed, res.Bindings, res.Controllers, res.Pushed)
		res.Recorded = fleet.PutSnapshot(ctx, inv.Snapshot(), rec, playbooks.Reachable(res.Observations))
	}
	return res, nil
}

// RegistryAuth resolves the inventory's registry credentials.
func RegistryAuth(inv *inventory.Inventory, getenv func(string) string) ([]nodeapi.RegistryAuth, error) {
	var out []nodeapi.RegistryAuth
	for _, r := range inv.Cluster.Registries {
		user, pass, err := inv.RegistryCredentials(r, getenv)
		if err != nil {
			return nil, err
		}
		if user != "" {
			out = append(out, nodeapi.RegistryAuth{Server: r.Host, Username: user, Password: pass})
		}
	}
	return out, nil
}

// DesiredInput is what Desired needs besides the inventory and its objects.
type DesiredInput struct {
	Generation int64
	Writer     string
	Now        time.Time
	Auth       []nodeapi.RegistryAuth
	// Observed is what nodes report about their pods (ObservedPods): pod
	// IPs and readiness make the Services' endpoints.
	Observed map[string]ObservedPod
}

// Desired lowers every bound pod and assembles one NodeSpec per inventory
// host: its pods, the other nodes (host-gw peers), every Service with its
// endpoints across hosts, and its cluster DNS. It is pure.
func Desired(inv *inventory.Inventory, cl *Cluster, in DesiredInput) (map[string]nodeapi.NodeSpec, map[string]error) {
	podErrs := map[string]error{}
	claims := cl.claims()
	var lowered []nodeapi.PodSpec
	bindings := map[string]string{}
	for _, p := range cl.Pods {
		if p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
			continue // pods being deleted are stopped by their node
		}
		h, ok := inv.Host(p.Spec.NodeName)
		if !ok {
			podErrs[Key(p.Namespace, p.Name)] = fmt.Errorf("bound to node %q, which is not in the inventory", p.Spec.NodeName)
			continue
		}
		li := plan.LowerInput{
			ConfigMaps: cl.ConfigMaps, Secrets: cl.Secrets, PVCs: claims, ClusterDomain: inv.Cluster.Domain,
			NodeName: h.Name, HostIP: h.Address, RegistryAuth: in.Auth,
		}
		if ip, ok := NodeIP(inv, h); ok {
			li.HostIP, li.ClusterDNS = ip.String(), ip.String()
		}
		spec, err := plan.LowerPod(p, li)
		if err != nil {
			podErrs[Key(p.Namespace, p.Name)] = err
			continue
		}
		lowered = append(lowered, spec)
		bindings[spec.Key()] = h.Name
	}
	var nodes []plan.NodeInput
	for _, h := range inv.Hosts {
		cidr := ""
		if p := inv.HostState(h.Name).PodCIDR; p.IsValid() {
			cidr = p.String()
		}
		nodes = append(nodes, plan.NodeInput{Name: h.Name, PodCIDR: cidr, Address: h.Address})
	}
	cluster := nodeapi.ClusterInfo{Name: inv.Cluster.Name, PodCIDR: inv.Cluster.PodCIDR.String(),
		ServiceCIDR: inv.Cluster.ServiceCIDR.String(), Domain: inv.Cluster.Domain}
	specs := plan.NodeSpecs(cluster, nodes, in.Generation, in.Writer, in.Now, lowered, bindings)
	for h, cronJobs := range cronJobSpecs(inv, cl, in.Auth, podErrs) { // CronJobs fired by their node (cronjobs.go)
		spec := specs[h]
		spec.CronJobs = cronJobs
		specs[h] = spec
	}
	all := peers(inv)
	services := ServiceSpecs(cl, in.Observed)
	for _, h := range inv.Hosts {
		spec := specs[h.Name]
		for _, p := range all {
			if p.Name != h.Name {
				spec.Peers = append(spec.Peers, p)
			}
		}
		spec.Services = services
		if ip, ok := NodeIP(inv, h); ok {
			spec.DNS = &nodeapi.ClusterDNS{Address: ip.String()}
		}
		specs[h.Name] = spec
	}
	return specs, podErrs
}

// workloadNodes are the nodes as the DaemonSet controller sees them.
func workloadNodes(nodes []sched.Node) []workloads.Node {
	out := make([]workloads.Node, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, workloads.Node{Name: n.Name, Labels: n.Labels, Taints: n.Taints, Unschedulable: n.Unschedulable, Ready: n.Ready})
	}
	return out
}

// SchedNodes describes the inventory hosts for the scheduler, with what
// agentlet reported: a host that is not Ready takes no new pods.
func SchedNodes(inv *inventory.Inventory, obs []playbooks.Observation) []sched.Node {
	byHost := map[string]playbooks.Observation{}
	for _, o := range obs {
		byHost[o.Host] = o
	}
	var nodes []sched.Node
	for _, h := range inv.Hosts {
		o := byHost[h.Name]
		n := sched.Node{Name: h.Name, Labels: nodeLabels(h), Unschedulable: inv.HostState(h.Name).Unschedulable}
		for _, t := range h.Taints {
			n.Taints = append(n.Taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
		}
		switch st, _ := playbooks.Summarize(o); {
		case st == playbooks.StatusReady && o.Status != nil:
			n.Ready = true
			n.Allocatable = o.Status.Allocatable
		case st == playbooks.StatusUnreachable:
			n.Unreachable = true
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// nodeLabels are the host's labels plus the well-known ones Kubernetes sets.
func nodeLabels(h inventory.Host) map[string]string {
	l := map[string]string{"kubernetes.io/hostname": h.Name, "kubernetes.io/os": "linux"}
	for k, v := range h.Labels {
		l[k] = v
	}
	return l
}

// store writes a pod back into the inventory.
func store(inv *inventory.Inventory, p *corev1.Pod) error {
	data, err := manifest.Encode(p)
	if err != nil {
		return fmt.Errorf("store pod %s: %w", Key(p.Namespace, p.Name), err)
	}
	return inv.PutObject(inventory.Object{APIVersion: "v1", Kind: "Pod", Namespace: p.Namespace, Name: p.Name, JSON: data})
}

// Store writes any supported object into the inventory.
func Store(inv *inventory.Inventory, o manifest.Object) error {
	data, err := manifest.Encode(o.Obj)
	if err != nil {
		return fmt.Errorf("store %s %s: %w", o.Kind, Key(o.Namespace, o.Name), err)
	}
	return inv.PutObject(inventory.Object{APIVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, JSON: data})
}

// SortedKeys returns the keys of m, sorted.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
