package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan/disruption"
	"github.com/clusterctl/clusterctl/reconcile"
)

func drainCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "drain",
		Usage:     "cordon a node and evict its pods within their PodDisruptionBudgets, waiting for replacements to be ready",
		ArgsUsage: "NODE",
		Description: "Marks NODE unschedulable, then evicts its pods one loop at a time: an eviction that\n" +
			"would take a PodDisruptionBudget below its minimum waits until replacements are\n" +
			"ready elsewhere. DaemonSet pods are left alone. Pods without a controller (nothing\n" +
			"would re-create them) need --force; pods with emptyDir data need\n" +
			"--delete-emptydir-data. Finishes when the node runs none of the evicted pods and\n" +
			"their controllers have as many ready pods as before. `uncordon` undoes the cordon.",
		Flags: append([]cli.Flag{
			inventoryFlag(), lockWaitFlag(),
			&cli.BoolFlag{Name: "force", Usage: "also evict pods that no controller manages (they are not re-created)"},
			&cli.BoolFlag{Name: "delete-emptydir-data", Usage: "also evict pods with emptyDir volumes (their data is lost)"},
			&cli.BoolFlag{Name: "ignore-daemonsets", Value: true, Usage: "leave DaemonSet pods (always: they would be re-created on the node)"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "give up after this long"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "time between loops while waiting"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error {
			args, err := trailingFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			if len(args) != 1 {
				return withCode(ExitUsage, errors.New("drain: want one NODE"))
			}
			return runDrain(c, env, args[0])
		},
	}
}

// drainState is what a drain remembers between its loops.
type drainState struct {
	node string
	// readyBefore is each controller's count of ready pods when the drain
	// began, by the controller's UID.
	readyBefore map[types.UID]int
	// evicted are the pods the drain deleted, by UID, with their
	// controller's UID.
	evicted map[string]types.UID
	// refused is the last refusal printed per pod, so it is printed once.
	refused map[string]string
}

func runDrain(c *cli.Context, env *Env, node string) error {
	st := &drainState{node: node, evicted: map[string]types.UID{}, refused: map[string]string{}}
	deadline := time.Now().Add(c.Duration("timeout"))
	for first := true; ; first = false {
		done, err := drainStep(c, env, st, first)
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("drain node %s: not done after %s (the node stays cordoned; pods not yet evicted stay on it)", node, c.Duration("timeout"))
		}
		select {
		case <-c.Context.Done():
			return c.Context.Err()
		case <-time.After(c.Duration("interval")):
		}
	}
}

// drainStep runs one cluster loop (which also replaces the pods evicted so
// far), then evicts what the budgets allow now.
func drainStep(c *cli.Context, env *Env, st *drainState, first bool) (bool, error) {
	inv, unlock, err := lockAndLoad(c, env)
	if err != nil {
		return false, err
	}
	defer unlock()
	if _, ok := inv.Host(st.node); !ok {
		return false, withCode(ExitUsage, fmt.Errorf("drain: node %q not found in %s", st.node, inv.Path))
	}
	if first {
		hs := inv.HostState(st.node)
		verb := "cordoned"
		if hs.Unschedulable {
			verb = "already cordoned"
		}
		hs.Unschedulable = true
		inv.SetHostState(st.node, hs)
		fmt.Fprintf(env.Out, "node/%s %s\n", st.node, verb)
	}
	quiet := *env
	quiet.Out = discard{}
	res, err := reconcileOnce(c, &quiet, inv, false, nil)
	if err != nil && res == nil {
		return false, err
	}
	cl, err := reconcile.Load(inv)
	if err != nil {
		return false, err
	}
	statuses := map[string]*nodeapi.NodeStatus{}
	for _, o := range res.Observations {
		statuses[o.Host] = o.Status
	}
	observed := reconcile.ObservedPods(statuses)
	pods := cl.PodsWithStatus(observed)
	if first {
		st.readyBefore = readyByController(pods)
	}

	// What is on the node, and what may go.
	var evict, daemons, unmanaged, local []*corev1.Pod
	for _, p := range pods {
		if p.Spec.NodeName != st.node || p.DeletionTimestamp != nil {
			continue
		}
		ref := metav1.GetControllerOf(p)
		switch {
		case ref != nil && ref.Kind == "DaemonSet":
			daemons = append(daemons, p)
			continue
		case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		case ref == nil && !c.Bool("force"):
			unmanaged = append(unmanaged, p)
			continue
		case hasEmptyDir(p) && !c.Bool("delete-emptydir-data"):
			local = append(local, p)
			continue
		}
		evict = append(evict, p)
	}
	if first && len(daemons) > 0 {
		fmt.Fprintf(env.Err, "warning: ignoring DaemonSet-managed pods: %s\n", podNames(daemons))
	}
	var blocked []string
	if len(unmanaged) > 0 {
		blocked = append(blocked, "cannot evict pods that declare no controller (use --force to override): "+podNames(unmanaged))
	}
	if len(local) > 0 {
		blocked = append(blocked, "cannot evict pods with local storage (use --delete-emptydir-data to override): "+podNames(local))
	}
	if len(blocked) > 0 {
		return false, fmt.Errorf("drain node %s: %s (the node stays cordoned)", st.node, strings.Join(blocked, "; "))
	}

	ev := disruption.Evaluate(reconcile.Typed[*policyv1.PodDisruptionBudget](cl, "PodDisruptionBudget"), pods, disruption.ScalesFrom(cl.All(pods)))
	deleted := 0
	for _, p := range evict {
		ok, reason := ev.CanEvict(p)
		if !ok {
			if st.refused[string(p.UID)] != reason {
				fmt.Fprintf(env.Err, "error when evicting pods/%q -n %q (will retry after %s): %s\n", p.Name, p.Namespace, c.Duration("interval"), reason)
				st.refused[string(p.UID)] = reason
			}
			continue
		}
		fmt.Fprintf(env.Out, "evicting pod %s/%s\n", p.Namespace, p.Name)
		inv.DeleteObject("Pod", p.Namespace, p.Name)
		var owner types.UID
		if ref := metav1.GetControllerOf(p); ref != nil {
			owner = ref.UID
		}
		st.evicted[string(p.UID)] = owner
		deleted++
	}
	if deleted > 0 {
		if err := inventory.Save(inv); err != nil {
			return false, fmt.Errorf("save inventory: %w", err)
		}
		return false, nil // the next loop stops them and starts replacements
	}
	if len(evict) > 0 {
		return false, nil
	}

	// Nothing left to evict: wait until the node let them go and their
	// controllers are back to the ready pods they had.
	for uid := range st.evicted {
		if _, running := observed[reconcile.ObservedKey(st.node, uid)]; running {
			return false, nil
		}
	}
	ready := readyByController(pods)
	for _, owner := range st.evicted {
		if owner != "" && ready[owner] < st.readyBefore[owner] {
			return false, nil
		}
	}
	fmt.Fprintf(env.Out, "node/%s drained\n", st.node)
	return true, nil
}

// readyByController counts the ready pods of each controller, by UID.
func readyByController(pods []*corev1.Pod) map[types.UID]int {
	out := map[types.UID]int{}
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		if ref == nil || p.DeletionTimestamp != nil {
			continue
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				out[ref.UID]++
			}
		}
	}
	return out
}

func hasEmptyDir(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			return true
		}
	}
	return false
}

func podNames(pods []*corev1.Pod) string {
	names := make([]string, 0, len(pods))
	for _, p := range pods {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
