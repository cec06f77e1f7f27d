package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan"
	"github.com/clusterctl/clusterctl/plan/admission"
	"github.com/clusterctl/clusterctl/plan/controller"
	"github.com/clusterctl/clusterctl/playbooks"
	"github.com/clusterctl/clusterctl/reconcile"
)

func namespaceFlag() cli.Flag {
	return &cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "namespace of the objects"}
}

func applyCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "apply",
		Usage: "create or update objects from Kubernetes manifests, then reconcile the cluster",
		Description: "Reads -f FILE|DIR|- (multi-document YAML, JSON, List). Every problem is reported at once as\n" +
			"file:line: field: message, and nothing is applied unless all objects are valid.",
		Flags: append([]cli.Flag{
			inventoryFlag(), lockWaitFlag(), namespaceFlag(),
			&cli.StringSliceFlag{Name: "filename", Aliases: []string{"f"}, Required: true, Usage: "manifest file, directory, or - for stdin"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would change and change nothing"},
			&cli.BoolFlag{Name: "wait", Usage: "wait until the applied pods are Ready (or finished)"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "how long --wait waits"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error { return runApply(c, env) },
	}
}

// action is what apply or delete did to one object.
type action struct {
	kind, namespace, name, verb string
}

func (a action) String() string {
	return fmt.Sprintf("%s/%s %s", strings.ToLower(a.kind), a.name, a.verb)
}

func runApply(c *cli.Context, env *Env) error {
	objs, err := manifest.Read(c.StringSlice("filename"), env.In)
	if err != nil {
		var ve *manifest.ValidationError
		if errors.As(err, &ve) {
			return withCode(ExitUsage, err)
		}
		return err
	}
	inv, unlock, err := lockAndLoad(c, env)
	if err != nil {
		return err
	}
	defer unlock()
	cl, err := reconcile.Load(inv)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	actions, problems := prepareApply(cl, objs, c.String("namespace"), inv.Cluster.ServiceCIDR, now)
	if len(problems) == 0 {
		problems = admit(cl, objs, actions)
	}
	if len(problems) > 0 {
		return withCode(ExitUsage, fmt.Errorf("nothing applied:\n%s", strings.Join(problems, "\n")))
	}
	dry := c.Bool("dry-run")
	for i, o := range objs {
		if actions[i].verb != "unchanged" && !dry {
			if err := reconcile.Store(inv, o); err != nil {
				return err
			}
		}
		suffix := ""
		if dry {
			suffix = " (dry run)"
		}
		fmt.Fprintln(env.Out, actions[i].String()+suffix)
		if dry && actions[i].verb == "configured" {
			if old, ok := storedMeta(cl, o.Kind, actions[i].namespace, actions[i].name); ok {
				if err := printDiff(env.Out, actions[i].kind+" "+reconcile.Key(actions[i].namespace, actions[i].name), old.obj, o.Obj); err != nil {
					return err
				}
			}
		}
	}
	if !dry {
		if err := inventory.Save(inv); err != nil {
			return fmt.Errorf("save inventory: %w", err)
		}
	}
	var pods []string
	for _, a := range actions {
		if a.kind == "Pod" {
			pods = append(pods, reconcile.Key(a.namespace, a.name))
		}
	}
	var wait func(*playbooks.Fleet) error
	if c.Bool("wait") && len(pods) > 0 {
		wait = func(f *playbooks.Fleet) error {
			return waitPodsReady(c.Context, env, inv, f, pods, c.Duration("timeout"))
		}
	}
	var changes []playbooks.AuditChange
	for _, a := range actions {
		if a.verb != "unchanged" {
			changes = append(changes, playbooks.AuditChange{Action: a.verb, Kind: a.kind, Namespace: a.namespace, Name: a.name})
		}
	}
	return reconcileAndReport(c, env, inv, dry, wait, changes...)
}

// prepareApply defaults namespaces, checks them, carries identity over from
// stored objects and decides the verb per object. Problems block the apply.
func prepareApply(cl *reconcile.Cluster, objs []manifest.Object, defaultNS string, serviceCIDR netip.Prefix, now time.Time) ([]action, []string) {
	var problems []string
	newNS := map[string]bool{}
	for _, o := range objs {
		if ns, ok := o.Obj.(*corev1.Namespace); ok {
			newNS[ns.Name] = true
		}
	}
	actions := make([]action, len(objs))
	for i := range objs {
		o := &objs[i]
		meta, ok := metaOf(o.Obj)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s:%d: kind %s is not supported", o.File, o.Line, o.Kind))
			continue
		}
		if manifest.ClusterScoped(o.Kind) {
			meta.Namespace, o.Namespace = "", ""
		} else {
			if meta.Namespace == "" {
				meta.Namespace = defaultNS
			}
			o.Namespace = meta.Namespace
			if _, exists := cl.Namespaces[meta.Namespace]; !exists && !newNS[meta.Namespace] && meta.Namespace != "default" {
				problems = append(problems, fmt.Sprintf("%s:%d: metadata.namespace: namespace %q not found (apply a Namespace first)", o.File, o.Line, meta.Namespace))
			}
		}
		old, found := storedMeta(cl, o.Kind, meta.Namespace, meta.Name)
		actions[i] = action{kind: o.Kind, namespace: meta.Namespace, name: meta.Name, verb: "created"}
		if !found {
			meta.UID = types.UID(newUID())
			meta.CreationTimestamp = metav1.NewTime(now)
			if hasSpec(o.Obj) {
				meta.Generation = 1
			}
			continue
		}
		meta.UID, meta.CreationTimestamp = old.meta.UID, old.meta.CreationTimestamp
		carryOver(o.Obj, old.obj, meta, old.meta)
		if pod, ok := o.Obj.(*corev1.Pod); ok {
			oldPod := old.obj.(*corev1.Pod)
			if _, defaulted := oldPod.Annotations[admission.LimitRangerAnnotation]; defaulted {
				// It was created with LimitRange defaults: compare like with like.
				admission.DefaultPodSpec(meta.Namespace, &pod.Spec, cl.LimitRanges()[meta.Namespace])
				if pod.Annotations == nil {
					pod.Annotations = map[string]string{}
				}
				pod.Annotations[admission.LimitRangerAnnotation] = oldPod.Annotations[admission.LimitRangerAnnotation]
			}
			pod.Spec.NodeName = oldPod.Spec.NodeName
			if !jsonEqual(pod.Spec, oldPod.Spec) {
				problems = append(problems, fmt.Sprintf("%s:%d: spec: Forbidden: pod %s/%s exists and its spec cannot be changed; "+
					"delete it first (clusterctl delete pod %s -n %s)", o.File, o.Line, meta.Namespace, meta.Name, meta.Name, meta.Namespace))
				continue
			}
		}
		actions[i].verb = "configured"
	}
	if err := allocateServices(cl, objs, serviceCIDR); err != nil {
		problems = append(problems, err.Error())
	}
	for i, o := range objs {
		if actions[i].verb != "configured" {
			continue
		}
		if old, _ := storedMeta(cl, o.Kind, actions[i].namespace, actions[i].name); jsonEqual(o.Obj, old.obj) {
			actions[i].verb = "unchanged"
		}
	}
	return actions, problems
}

// admit runs the objects to be created or changed through the LimitRanges
// and ResourceQuotas of their namespaces (plan/admission): new pods get the
// LimitRange defaults; every violation is a problem naming the object's
// file and line.
func admit(cl *reconcile.Cluster, objs []manifest.Object, actions []action) []string {
	var changed []runtime.Object
	where := map[string]string{}
	for i, o := range objs {
		if actions[i].verb == "unchanged" {
			continue
		}
		changed = append(changed, o.Obj)
		where[o.Kind+"/"+reconcile.Key(actions[i].namespace, actions[i].name)] = fmt.Sprintf("%s:%d", o.File, o.Line)
	}
	var problems []string
	for _, v := range admission.New(cl.All(cl.Pods)).Apply(changed) {
		problems = append(problems, fmt.Sprintf("%s: %s", where[v.Kind+"/"+reconcile.Key(v.Namespace, v.Name)], v))
	}
	return problems
}

// controllerAnnotations are annotation prefixes the controllers own: an
// applied manifest without them keeps the stored values, as kubectl apply
// (which only manages what the manifest says) does.
func controllerAnnotations() []string {
	return []string{"deployment.kubernetes.io/", "autoscaling.clusterctl.io/", "batch.kubernetes.io/", "kubectl.kubernetes.io/restartedAt", "cronjob.clusterctl.io/"}
}

// hasSpec reports whether obj has a spec (and so a metadata.generation).
func hasSpec(obj any) bool {
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct && v.Elem().FieldByName("Spec").IsValid()
}

// carryOver keeps what the API server and controllers own when an object is
// applied again: its status, the controller annotations the manifest does
// not set, and metadata.generation, which moves on when the spec changes.
func carryOver(obj, old any, meta, oldMeta *metav1.ObjectMeta) {
	nv, ov := reflect.ValueOf(obj).Elem(), reflect.ValueOf(old).Elem()
	if st := nv.FieldByName("Status"); st.IsValid() && st.CanSet() && !isPod(obj) {
		st.Set(ov.FieldByName("Status"))
	}
	for k, v := range oldMeta.Annotations {
		if _, set := meta.Annotations[k]; set {
			continue
		}
		for _, prefix := range controllerAnnotations() {
			if strings.HasPrefix(k, prefix) {
				if meta.Annotations == nil {
					meta.Annotations = map[string]string{}
				}
				meta.Annotations[k] = v
			}
		}
	}
	if job, ok := obj.(*batchv1.Job); ok {
		// The selector and pod labels generated for the Job's uid.
		oldJob := old.(*batchv1.Job)
		if job.Spec.Selector == nil && (job.Spec.ManualSelector == nil || !*job.Spec.ManualSelector) {
			job.Spec.Selector = oldJob.Spec.Selector
			for k, v := range oldJob.Spec.Template.Labels {
				if _, set := job.Spec.Template.Labels[k]; !set && (strings.Contains(k, "job-name") || strings.Contains(k, "controller-uid")) {
					if job.Spec.Template.Labels == nil {
						job.Spec.Template.Labels = map[string]string{}
					}
					job.Spec.Template.Labels[k] = v
				}
			}
		}
	}
	if spec := nv.FieldByName("Spec"); spec.IsValid() {
		meta.Generation = oldMeta.Generation
		if !jsonEqual(spec.Interface(), ov.FieldByName("Spec").Interface()) {
			meta.Generation++
		}
	}
}

func isPod(obj any) bool { _, ok := obj.(*corev1.Pod); return ok }

// allocateServices gives the applied Services their cluster IPs and node
// ports, keeping stored allocations (plan.AllocateServices).
func allocateServices(cl *reconcile.Cluster, objs []manifest.Object, cidr netip.Prefix) error {
	var apply []plan.ServiceAllocation
	applied := map[string]bool{}
	for _, o := range objs {
		s, ok := o.Obj.(*corev1.Service)
		if !ok {
			continue
		}
		key := reconcile.Key(s.Namespace, s.Name)
		applied[key] = true
		apply = append(apply, plan.ServiceAllocation{Service: s, Stored: cl.Services[key]})
	}
	if len(apply) == 0 {
		return nil
	}
	var others []*corev1.Service
	for _, key := range reconcile.SortedKeys(cl.Services) {
		if !applied[key] {
			others = append(others, cl.Services[key])
		}
	}
	return plan.AllocateServices(cidr, apply, others)
}

type stored struct {
	meta *metav1.ObjectMeta
	obj  any
}

func storedMeta(cl *reconcile.Cluster, kind, ns, name string) (stored, bool) {
	obj, ok := cl.Object(kind, ns, name)
	if !ok {
		return stored{}, false
	}
	m, ok := metaOf(obj)
	return stored{m, obj}, ok
}

// metaOf returns the object's metadata.
func metaOf(obj any) (*metav1.ObjectMeta, bool) {
	o, ok := obj.(interface{ GetObjectMeta() metav1.Object })
	if !ok {
		return nil, false
	}
	m, ok := o.GetObjectMeta().(*metav1.ObjectMeta)
	return m, ok
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// newUID returns a random RFC 4122 version 4 UUID, as Kubernetes uses.
func newUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// reconcileAndReport runs one cluster loop (the inventory lock is held),
// saves, prints scheduling problems and push failures, then runs wait (if
// any) over the same connections.
// The command's own changes (what it applied or deleted) go into the
// hosts' audit trail.
func reconcileAndReport(c *cli.Context, env *Env, inv *inventory.Inventory, dry bool, wait func(*playbooks.Fleet) error, changes ...playbooks.AuditChange) error {
	_, err := reconcileOnce(c, env, inv, dry, wait, changes...)
	return err
}

// reconcileOnce is reconcileAndReport returning the loop's result.
func reconcileOnce(c *cli.Context, env *Env, inv *inventory.Inventory, dry bool, wait func(*playbooks.Fleet) error, changes ...playbooks.AuditChange) (*reconcile.Result, error) {
	auth, err := reconcile.RegistryAuth(inv, env.Getenv)
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	fleet, closeFleet := openFleet(c, env, inv) // the cluster lease's, when held (lock.go)
	defer closeFleet()
	opts := loopOptions(c, inv, auth, dry)
	opts.Audit.Add(changes...)
	res, err := reconcile.Run(c.Context, inv, fleet, opts)
	if err != nil {
		return nil, err
	}
	return res, reportAndWait(c, env, inv, fleet, res, auth, dry, wait)
}

func reportAndWait(c *cli.Context, env *Env, inv *inventory.Inventory, fleet *playbooks.Fleet, res *reconcile.Result,
	auth []nodeapi.RegistryAuth, dry bool, wait func(*playbooks.Fleet) error) error {
	if !dry {
		if err := inventory.Save(inv); err != nil {
			return fmt.Errorf("save inventory: %w", err)
		}
	}
	for _, e := range res.Controllers.Events {
		w := env.Out
		if e.Type == controller.EventWarning {
			w = env.Err
		}
		fmt.Fprintf(w, "%s/%s: %s\n", strings.ToLower(e.Object.Kind), e.Object.Name, e.Message)
	}
	for _, k := range reconcile.SortedKeys(res.Bindings) {
		fmt.Fprintf(env.Out, "pod/%s scheduled to %s\n", nameOf(k), res.Bindings[k])
	}
	for _, k := range reconcile.SortedKeys(res.Unschedulable) {
		fmt.Fprintf(env.Err, "pod/%s pending: %s\n", nameOf(k), res.Unschedulable[k].Message)
	}
	for _, k := range reconcile.SortedKeys(res.PodErrors) {
		fmt.Fprintf(env.Err, "pod/%s cannot run: %v\n", nameOf(k), res.PodErrors[k])
	}
	failed := 0
	for _, p := range res.Pushed {
		if p.Err != nil {
			failed++
			fmt.Fprintf(env.Err, "%s: push node spec: %v\n", p.Host, unwrapStep(p.Err))
		}
	}
	warnRecorded(env, res.Recorded)
	for _, o := range res.Observations {
		if st, reason := playbooks.Summarize(o); st != playbooks.StatusReady {
			fmt.Fprintf(env.Err, "%s: %s: %s (its pods are not updated)\n", o.Host, st, reason)
		}
	}
	if dry {
		return nil
	}
	if failed > 0 {
		return withCode(ExitPartial, fmt.Errorf("could not update %d hosts; the next apply or reconcile retries", failed))
	}
	if wait == nil {
		return nil
	}
	if err := wait(fleet); err != nil {
		return err
	}
	// The pods waited for now have IPs and readiness: one more loop puts
	// them into their Services' endpoints on every node.
	res, err := reconcile.Run(c.Context, inv, fleet, loopOptions(c, inv, auth, false))
	if err != nil {
		return err
	}
	if res.Changed() {
		if err := inventory.Save(inv); err != nil {
			return fmt.Errorf("save inventory: %w", err)
		}
	}
	for _, p := range res.Pushed {
		if p.Err != nil {
			return withCode(ExitPartial, fmt.Errorf("%s: push node spec: %w", p.Host, unwrapStep(p.Err)))
		}
	}
	return nil
}

// loopOptions are the options of one cluster loop run now by this user.
// The inventory is saved before any host is pushed a new generation.
// The command line goes into the hosts' audit trail.
func loopOptions(c *cli.Context, inv *inventory.Inventory, auth []nodeapi.RegistryAuth, dry bool) reconcile.Options {
	return reconcile.Options{RegistryAuth: auth, Writer: writer(), Now: time.Now().UTC().Truncate(time.Second), DryRun: dry,
		Seed: newUID(), LoadLocation: time.LoadLocation, BeforePush: func() error { return inventory.Save(inv) },
		Audit: auditRecord(c)}
}

func nameOf(key string) string {
	if _, n, ok := strings.Cut(key, "/"); ok {
		return n
	}
	return key
}

// waitPodsReady polls the nodes until every pod is Ready or has finished.
func waitPodsReady(ctx context.Context, env *Env, inv *inventory.Inventory, fleet *playbooks.Fleet, pods []string, timeout time.Duration) error {
	cl, err := reconcile.Load(inv)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		statuses := podStatuses(fleet.Observe(ctx))
		var waiting []string
		for _, k := range pods {
			ns, name, _ := strings.Cut(k, "/")
			p, ok := cl.Pod(ns, name)
			if !ok {
				continue
			}
			st := statuses[string(p.UID)]
			if st == nil || !(st.Phase == nodeapi.PodSucceeded || st.Phase == nodeapi.PodFailed || podReady(st)) {
				waiting = append(waiting, fmt.Sprintf("%s (%s)", name, podStatusWord(p, st)))
			}
		}
		if len(waiting) == 0 {
			fmt.Fprintf(env.Out, "%d pods ready\n", len(pods))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for pods: not ready after %s: %s", timeout, strings.Join(waiting, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func deleteCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete objects (pods stop gracefully on their node), then reconcile the cluster",
		ArgsUsage: "(-f FILE | TYPE NAME...)",
		Description: "TYPE is a kubectl resource name (pods/po, deployments/deploy, svc, ...).\n" +
			"Deleting a namespace deletes everything in it. A pod whose node is lost is\n" +
			"marked for deletion and removed once its node confirms it stopped it, or at\n" +
			"once with --force (then a StatefulSet re-creates it; a claim on a local\n" +
			"volume still pins it to the lost node until the claim is deleted too).",
		Flags: append([]cli.Flag{
			inventoryFlag(), lockWaitFlag(), namespaceFlag(),
			&cli.StringSliceFlag{Name: "filename", Aliases: []string{"f"}, Usage: "delete the objects in these manifests"},
			&cli.BoolFlag{Name: "wait", Usage: "wait until the deleted pods are gone from their nodes"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "how long --wait waits"},
			&cli.BoolFlag{Name: "ignore-not-found", Usage: "treat objects that do not exist as deleted"},
			&cli.StringFlag{Name: "cascade", Value: CascadeBackground, Usage: "what happens to dependents (a Deployment's ReplicaSets and pods, ...): " +
				"background (deleted by the garbage collector in this run), foreground (deleted first, and waited for), orphan (kept, without the owner reference)"},
			&cli.BoolFlag{Name: "force", Usage: "remove pods at once, even those whose node has not confirmed they stopped (a node that is lost for good)"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error { return runDelete(c, env) },
	}
}

// kindOf maps a kubectl resource name to a kind.
func kindOf(resource string) (string, bool) {
	switch strings.ToLower(resource) {
	case "pod", "pods", "po":
		return "Pod", true
	case "configmap", "configmaps", "cm":
		return "ConfigMap", true
	case "secret", "secrets":
		return "Secret", true
	case "namespace", "namespaces", "ns":
		return "Namespace", true
	case "service", "services", "svc":
		return "Service", true
	case "endpoints", "endpoint", "ep":
		return "Endpoints", true
	case "endpointslice", "endpointslices":
		return "EndpointSlice", true
	case "deployment", "deployments", "deploy":
		return "Deployment", true
	case "replicaset", "replicasets", "rs":
		return "ReplicaSet", true
	case "replicationcontroller", "replicationcontrollers", "rc":
		return "ReplicationController", true
	case "daemonset", "daemonsets", "ds":
		return "DaemonSet", true
	case "statefulset", "statefulsets", "sts":
		return "StatefulSet", true
	case "job", "jobs":
		return "Job", true
	case "cronjob", "cronjobs", "cj":
		return "CronJob", true
	case "horizontalpodautoscaler", "horizontalpodautoscalers", "hpa":
		return "HorizontalPodAutoscaler", true
	case "persistentvolumeclaim", "persistentvolumeclaims", "pvc":
		return "PersistentVolumeClaim", true
	case "persistentvolume", "persistentvolumes", "pv":
		return "PersistentVolume", true
	case "storageclass", "storageclasses", "sc":
		return "StorageClass", true
	case "resourcequota", "resourcequotas", "quota":
		return "ResourceQuota", true
	case "limitrange", "limitranges", "limits":
		return "LimitRange", true
	case "poddisruptionbudget", "poddisruptionbudgets", "pdb":
		return "PodDisruptionBudget", true
	}
	return "", false
}

func runDelete(c *cli.Context, env *Env) error {
	args, err := trailingFlags(c, c.Args().Slice())
	if err != nil {
		return err
	}
	type target struct{ kind, ns, name string }
	var targets []target
	ns := c.String("namespace")
	if files := c.StringSlice("filename"); len(files) > 0 {
		objs, err := manifest.Read(files, env.In)
		if err != nil {
			return withCode(ExitUsage, err)
		}
		for _, o := range objs {
			n := o.Namespace
			if n == "" && !manifest.ClusterScoped(o.Kind) {
				n = ns
			}
			targets = append(targets, target{o.Kind, n, o.Name})
		}
	} else {
		if len(args) < 2 {
			return withCode(ExitUsage, errors.New("delete: want -f FILE or TYPE NAME..."))
		}
		kind, ok := kindOf(args[0])
		if !ok {
			return withCode(ExitUsage, fmt.Errorf("delete: unknown resource type %q (pods, configmaps, secrets, namespaces, services, endpoints, endpointslices, deployments, replicasets, replicationcontrollers, daemonsets, statefulsets, jobs, cronjobs, hpa, pvc, pv, storageclasses, quota, limits, pdb)", args[0]))
		}
		for _, name := range args[1:] {
			n := ns
			if manifest.ClusterScoped(kind) {
				n = ""
			}
			targets = append(targets, target{kind, n, name})
		}
	}
	cascade := c.String("cascade")
	if !slices.Contains([]string{CascadeBackground, CascadeForeground, CascadeOrphan}, cascade) {
		return withCode(ExitUsage, fmt.Errorf("delete: invalid --cascade %q: want background, foreground or orphan", cascade))
	}
	inv, unlock, err := lockAndLoad(c, env)
	if err != nil {
		return err
	}
	defer unlock()
	objs, err := storedObjects(inv)
	if err != nil {
		return err
	}
	uidOfObject := func(kind, ns, name string) types.UID {
		for _, o := range objs {
			if o.inv.Kind == kind && o.inv.Namespace == ns && o.inv.Name == name {
				return o.meta.GetUID()
			}
		}
		return ""
	}
	var missing []string
	// Deleted pods are waited for by UID: a controller may re-create a pod
	// of the same name (a StatefulSet's) at once.
	before, err := reconcile.Load(inv)
	if err != nil {
		return err
	}
	uidOf := func(ns, name string) string {
		if p, ok := before.Pod(ns, name); ok {
			return string(p.UID)
		}
		return ""
	}
	var gonePods []string
	var deleted []playbooks.AuditChange
	for _, t := range targets {
		if t.kind == "Namespace" {
			for _, o := range slices.Clone(inv.Objects()) {
				if o.Namespace == t.name && inv.DeleteObject(o.Kind, o.Namespace, o.Name) {
					if o.Kind == "Pod" {
						gonePods = append(gonePods, uidOf(o.Namespace, o.Name))
					}
					fmt.Fprintf(env.Out, "%s/%s deleted (namespace %s)\n", strings.ToLower(o.Kind), o.Name, t.name)
					deleted = append(deleted, playbooks.AuditChange{Action: "deleted", Kind: o.Kind, Namespace: o.Namespace, Name: o.Name})
				}
			}
		}
		if p, ok := before.Pod(t.ns, t.name); ok && t.kind == "Pod" && p.DeletionTimestamp != nil && !c.Bool("force") {
			fmt.Fprintf(env.Err, "pod/%s is already being deleted: waiting for node %s to confirm it stopped; --force removes it now\n", t.name, p.Spec.NodeName)
			continue
		}
		if uid := uidOfObject(t.kind, t.ns, t.name); uid != "" {
			switch cascade {
			case CascadeOrphan:
				n, err := orphanDependents(inv, objs, uid)
				if err != nil {
					return err
				}
				if n > 0 {
					fmt.Fprintf(env.Out, "%s/%s: %d dependents orphaned\n", strings.ToLower(t.kind), t.name, n)
				}
			case CascadeForeground:
				for _, d := range dependents(objs, uid) {
					if inv.DeleteObject(d.inv.Kind, d.inv.Namespace, d.inv.Name) {
						if d.inv.Kind == "Pod" {
							gonePods = append(gonePods, string(d.meta.GetUID()))
						}
						fmt.Fprintf(env.Out, "%s/%s deleted (dependent of %s/%s)\n", strings.ToLower(d.inv.Kind), d.inv.Name, strings.ToLower(t.kind), t.name)
						deleted = append(deleted, playbooks.AuditChange{Action: "deleted", Kind: d.inv.Kind, Namespace: d.inv.Namespace, Name: d.inv.Name})
					}
				}
			}
		}
		if !inv.DeleteObject(t.kind, t.ns, t.name) {
			if t.kind != "Namespace" || t.name != "default" {
				missing = append(missing, fmt.Sprintf("%s %q not found in namespace %q", strings.ToLower(t.kind), t.name, t.ns))
			}
			continue
		}
		if t.kind == "Pod" {
			gonePods = append(gonePods, uidOf(t.ns, t.name))
		}
		fmt.Fprintf(env.Out, "%s/%s deleted\n", strings.ToLower(t.kind), t.name)
		deleted = append(deleted, playbooks.AuditChange{Action: "deleted", Kind: t.kind, Namespace: t.ns, Name: t.name})
	}
	if len(missing) > 0 && !c.Bool("ignore-not-found") {
		return withCode(ExitUsage, fmt.Errorf("nothing deleted: %s", strings.Join(missing, "; ")))
	}
	if err := inventory.Save(inv); err != nil {
		return fmt.Errorf("save inventory: %w", err)
	}
	var wait func(*playbooks.Fleet) error
	if (c.Bool("wait") || cascade == CascadeForeground) && len(gonePods) > 0 {
		wait = func(f *playbooks.Fleet) error { return waitPodsGone(c, f, gonePods) }
	}
	return reconcileAndReport(c, env, inv, false, wait, deleted...)
}

// waitPodsGone polls until no node reports the deleted pods (by UID).
func waitPodsGone(c *cli.Context, fleet *playbooks.Fleet, uids []string) error {
	deadline := time.Now().Add(c.Duration("timeout"))
	for {
		left := 0
		for _, o := range fleet.Observe(c.Context) {
			if o.Status == nil {
				continue
			}
			for _, p := range o.Status.Pods {
				if slices.Contains(uids, p.UID) {
					left++
				}
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for deletion: %d pods still on their nodes", left)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
