package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/plan/workloads"
	"github.com/clusterctl/clusterctl/reconcile"
)

// parseTarget reads "deployment/web" or "deployment web" into kind and name.
func parseTarget(args []string) (kind, name string, rest []string, err error) {
	if len(args) == 0 {
		return "", "", nil, withCode(ExitUsage, errors.New("want TYPE/NAME or TYPE NAME"))
	}
	t, n, slash := strings.Cut(args[0], "/")
	rest = args[1:]
	if !slash {
		if len(rest) == 0 {
			return "", "", nil, withCode(ExitUsage, fmt.Errorf("want TYPE/NAME or TYPE NAME, got %q", args[0]))
		}
		n, rest = rest[0], rest[1:]
	}
	k, ok := kindOf(t)
	if !ok {
		return "", "", nil, withCode(ExitUsage, fmt.Errorf("unknown resource type %q", t))
	}
	return k, n, rest, nil
}

// mutate loads the inventory (locked), changes one stored object with fn,
// stores it and runs one cluster loop.
func mutate(c *cli.Context, env *Env, kind, name string, fn func(obj runtime.Object, cl *reconcile.Cluster) (string, error)) error {
	inv, unlock, err := lockAndLoad(c, env)
	if err != nil {
		return err
	}
	defer unlock()
	cl, err := reconcile.Load(inv)
	if err != nil {
		return err
	}
	ns := c.String("namespace")
	obj, ok := cl.Object(kind, ns, name)
	if !ok {
		return withCode(ExitUsage, fmt.Errorf("%s %q not found in namespace %q", strings.ToLower(kind), name, ns))
	}
	obj = obj.DeepCopyObject()
	msg, err := fn(obj, cl)
	if err != nil {
		return err
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if err := reconcile.Store(inv, manifest.Object{APIVersion: gvk.GroupVersion().String(), Kind: kind, Namespace: ns, Name: name, Obj: obj}); err != nil {
		return err
	}
	if err := inventory.Save(inv); err != nil {
		return fmt.Errorf("save inventory: %w", err)
	}
	fmt.Fprintf(env.Out, "%s/%s %s\n", strings.ToLower(kind), name, msg)
	return reconcileAndReport(c, env, inv, false, nil)
}

// bumpGeneration records a spec change the way the API server does.
func bumpGeneration(obj runtime.Object) {
	if m, ok := metaOf(obj); ok {
		m.Generation++
	}
}

func mutatingFlags(extra ...cli.Flag) []cli.Flag {
	return append(append([]cli.Flag{inventoryFlag(), namespaceFlag(), lockWaitFlag()}, extra...), sshFlags()...)
}

func scaleCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "scale",
		Usage:     "set the replicas of a Deployment, ReplicaSet, ReplicationController or StatefulSet",
		ArgsUsage: "TYPE/NAME --replicas N",
		Flags:     mutatingFlags(&cli.IntFlag{Name: "replicas", Value: -1, Usage: "the new number of replicas (required)"}),
		Action: func(c *cli.Context) error {
			args, err := trailingFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			kind, name, _, err := parseTarget(args)
			if err != nil {
				return err
			}
			n := c.Int("replicas")
			if n < 0 {
				return withCode(ExitUsage, errors.New("scale: --replicas N is required (N ≥ 0)"))
			}
			r := int32(n)
			return mutate(c, env, kind, name, func(obj runtime.Object, _ *reconcile.Cluster) (string, error) {
				switch o := obj.(type) {
				case *appsv1.Deployment:
					o.Spec.Replicas = &r
				case *appsv1.ReplicaSet:
					o.Spec.Replicas = &r
				case *appsv1.StatefulSet:
					o.Spec.Replicas = &r
				case *corev1.ReplicationController:
					o.Spec.Replicas = &r
				default:
					return "", withCode(ExitUsage, fmt.Errorf("scale: %s cannot be scaled", kind))
				}
				bumpGeneration(obj)
				return "scaled", nil
			})
		},
	}
}

// podTemplate returns the pod template of a workload.
func podTemplate(obj runtime.Object) (*corev1.PodTemplateSpec, bool) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template, true
	case *appsv1.ReplicaSet:
		return &o.Spec.Template, true
	case *appsv1.DaemonSet:
		return &o.Spec.Template, true
	case *appsv1.StatefulSet:
		return &o.Spec.Template, true
	case *corev1.ReplicationController:
		return o.Spec.Template, o.Spec.Template != nil
	}
	return nil, false
}

func setCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "set",
		Usage: "change a field of a workload",
		Subcommands: []*cli.Command{{
			Name:      "image",
			Usage:     "set container images of a workload's pod template",
			ArgsUsage: "TYPE/NAME CONTAINER=IMAGE...",
			Flags:     mutatingFlags(),
			Action: func(c *cli.Context) error {
				args, err := trailingFlags(c, c.Args().Slice())
				if err != nil {
					return err
				}
				kind, name, rest, err := parseTarget(args)
				if err != nil {
					return err
				}
				if len(rest) == 0 {
					return withCode(ExitUsage, errors.New("set image: want CONTAINER=IMAGE"))
				}
				return mutate(c, env, kind, name, func(obj runtime.Object, _ *reconcile.Cluster) (string, error) {
					t, ok := podTemplate(obj)
					if !ok {
						return "", withCode(ExitUsage, fmt.Errorf("set image: %s has no pod template", kind))
					}
					for _, kv := range rest {
						cname, img, ok := strings.Cut(kv, "=")
						if !ok || img == "" {
							return "", withCode(ExitUsage, fmt.Errorf("set image: want CONTAINER=IMAGE, got %q", kv))
						}
						found := false
						for i := range t.Spec.Containers {
							if t.Spec.Containers[i].Name == cname || cname == "*" {
								t.Spec.Containers[i].Image, found = img, true
							}
						}
						for i := range t.Spec.InitContainers {
							if t.Spec.InitContainers[i].Name == cname || cname == "*" {
								t.Spec.InitContainers[i].Image, found = img, true
							}
						}
						if !found {
							return "", withCode(ExitUsage, fmt.Errorf("set image: no container %q in %s/%s", cname, strings.ToLower(kind), name))
						}
					}
					bumpGeneration(obj)
					return "image updated", nil
				})
			},
		}},
	}
}

func rolloutCommand(env *Env) *cli.Command {
	one := func(name, usage string, flags []cli.Flag, fn func(c *cli.Context, kind, name string) error) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, ArgsUsage: "TYPE/NAME", Flags: flags,
			Action: func(c *cli.Context) error {
				args, err := trailingFlags(c, c.Args().Slice())
				if err != nil {
					return err
				}
				kind, n, _, err := parseTarget(args)
				if err != nil {
					return err
				}
				return fn(c, kind, n)
			},
		}
	}
	return &cli.Command{
		Name:  "rollout",
		Usage: "manage the rollout of a Deployment, DaemonSet or StatefulSet",
		Subcommands: []*cli.Command{
			one("status", "run cluster loops until the rollout is done, printing its progress",
				mutatingFlags(&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "give up after this long (exit 1)"},
					&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "time between loops"}),
				func(c *cli.Context, kind, name string) error { return rolloutStatus(c, env, kind, name) }),
			one("history", "list a Deployment's revisions", []cli.Flag{inventoryFlag(), namespaceFlag(),
				&cli.Int64Flag{Name: "revision", Usage: "show the pod template of this revision"}},
				func(c *cli.Context, kind, name string) error { return rolloutHistory(c, env, kind, name) }),
			one("undo", "roll a Deployment back to an earlier revision",
				mutatingFlags(&cli.Int64Flag{Name: "to-revision", Usage: "the revision (default: the previous one)"}),
				func(c *cli.Context, kind, name string) error {
					return mutate(c, env, kind, name, func(obj runtime.Object, cl *reconcile.Cluster) (string, error) {
						d, ok := obj.(*appsv1.Deployment)
						if !ok {
							return "", withCode(ExitUsage, errors.New("rollout undo: only Deployments have revisions here"))
						}
						rolled, msg, err := workloads.RollbackDeployment(d, reconcile.Typed[*appsv1.ReplicaSet](cl, "ReplicaSet"), c.Int64("to-revision"))
						if err != nil {
							return "", withCode(ExitUsage, fmt.Errorf("rollout undo: %w", err))
						}
						if rolled != nil {
							*d = *rolled
							bumpGeneration(d)
						}
						return msg, nil
					})
				}),
			one("pause", "stop a Deployment's rollout where it is", mutatingFlags(), func(c *cli.Context, kind, name string) error {
				return setPaused(c, env, kind, name, true)
			}),
			one("resume", "resume a paused Deployment", mutatingFlags(), func(c *cli.Context, kind, name string) error {
				return setPaused(c, env, kind, name, false)
			}),
			one("restart", "restart every pod of a workload by rolling it", mutatingFlags(), func(c *cli.Context, kind, name string) error {
				return mutate(c, env, kind, name, func(obj runtime.Object, _ *reconcile.Cluster) (string, error) {
					now := time.Now().UTC().Truncate(time.Second)
					switch o := obj.(type) {
					case *appsv1.Deployment:
						d, err := workloads.RestartDeployment(o, now)
						if err != nil {
							return "", withCode(ExitUsage, fmt.Errorf("rollout restart: %w", err))
						}
						*o = *d
					case *appsv1.DaemonSet:
						*o = *workloads.RestartDaemonSet(o, now)
					case *appsv1.StatefulSet:
						*o = *workloads.RestartStatefulSet(o, now)
					default:
						return "", withCode(ExitUsage, fmt.Errorf("rollout restart: %s cannot be restarted", kind))
					}
					bumpGeneration(obj)
					return "restarted", nil
				})
			}),
		},
	}
}

func setPaused(c *cli.Context, env *Env, kind, name string, paused bool) error {
	return mutate(c, env, kind, name, func(obj runtime.Object, _ *reconcile.Cluster) (string, error) {
		d, ok := obj.(*appsv1.Deployment)
		if !ok {
			return "", withCode(ExitUsage, fmt.Errorf("%s cannot be paused or resumed", kind))
		}
		if d.Spec.Paused == paused {
			return map[bool]string{true: "already paused", false: "not paused"}[paused], nil
		}
		d.Spec.Paused = paused
		bumpGeneration(d)
		return map[bool]string{true: "paused", false: "resumed"}[paused], nil
	})
}

// rolloutStatus runs cluster loops until the workload's rollout is done.
func rolloutStatus(c *cli.Context, env *Env, kind, name string) error {
	deadline := time.Now().Add(c.Duration("timeout"))
	last := ""
	for {
		msg, done, err := rolloutStep(c, env, kind, name)
		if err != nil {
			return err
		}
		if msg != last {
			fmt.Fprint(env.Out, msg)
			last = msg
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rollout status: timed out after %s", c.Duration("timeout"))
		}
		select {
		case <-c.Context.Done():
			return c.Context.Err()
		case <-time.After(c.Duration("interval")):
		}
	}
}

// rolloutStep runs one loop and reads the workload's rollout status.
func rolloutStep(c *cli.Context, env *Env, kind, name string) (string, bool, error) {
	inv, unlock, err := lockAndLoad(c, env)
	if err != nil {
		return "", false, err
	}
	defer unlock()
	quiet := *env
	quiet.Out = discard{}
	if _, err := reconcileOnce(c, &quiet, inv, false, nil); err != nil {
		return "", false, err
	}
	if err := inventory.Save(inv); err != nil {
		return "", false, fmt.Errorf("save inventory: %w", err)
	}
	cl, err := reconcile.Load(inv)
	if err != nil {
		return "", false, err
	}
	obj, ok := cl.Object(kind, c.String("namespace"), name)
	if !ok {
		return "", false, withCode(ExitUsage, fmt.Errorf("%s %q not found", strings.ToLower(kind), name))
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return workloads.DeploymentRolloutStatus(o, 0)
	case *appsv1.DaemonSet:
		return workloads.DaemonSetRolloutStatus(o)
	case *appsv1.StatefulSet:
		return workloads.StatefulSetRolloutStatus(o)
	}
	return "", false, withCode(ExitUsage, fmt.Errorf("rollout status: %s has no rollout", kind))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func rolloutHistory(c *cli.Context, env *Env, kind, name string) error {
	if kind != "Deployment" {
		return withCode(ExitUsage, errors.New("rollout history: only Deployments have revisions here"))
	}
	inv, err := loadInventory(inventoryPath(c, env))
	if err != nil {
		return err
	}
	cl, err := reconcile.Load(inv)
	if err != nil {
		return err
	}
	obj, ok := cl.Object(kind, c.String("namespace"), name)
	if !ok {
		return withCode(ExitUsage, fmt.Errorf("deployment %q not found", name))
	}
	hist := workloads.DeploymentHistory(obj.(*appsv1.Deployment), reconcile.Typed[*appsv1.ReplicaSet](cl, "ReplicaSet"))
	if r := c.Int64("revision"); r > 0 {
		for _, h := range hist {
			if h.Revision == r {
				fmt.Fprintf(env.Out, "deployment.apps/%s with revision #%d\n", name, r)
				return printK8s(env.Out, "yaml", h.Template)
			}
		}
		return withCode(ExitUsage, fmt.Errorf("rollout history: unable to find revision %d", r))
	}
	fmt.Fprintf(env.Out, "deployment.apps/%s\n", name)
	tw := tabwriter.NewWriter(env.Out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tCHANGE-CAUSE")
	for _, h := range hist {
		cause := h.ChangeCause
		if cause == "" {
			cause = "<none>"
		}
		fmt.Fprintf(tw, "%d\t%s\n", h.Revision, cause)
	}
	return tw.Flush()
}
