package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/playbooks"
	"github.com/clusterctl/clusterctl/reconcile"
)

func reconcileCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "reconcile",
		Usage: "run one cluster loop: observe every host, schedule, push changed node specs, save",
		Description: "Idempotent and safe to run from cron. Prints what changed and a one-line summary.\n" +
			"Exit codes: 0 converged (nothing to do), 5 changes made, 3 some hosts unreachable\n" +
			"or not updated, 6 another clusterctl holds the cluster lease (past --lock-wait) or the\n" +
			"hosts hold newer state than the inventory (nothing changed), 1 error, 2 usage.",
		Flags: append([]cli.Flag{
			inventoryFlag(),
			lockWaitFlag(),
			&cli.BoolFlag{Name: "dry-run", Usage: "plan and print, change nothing"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error { return runReconcile(c, env) },
	}
}

func runReconcile(c *cli.Context, env *Env) error {
	res, err := reconcileLeased(c, env, c.Bool("dry-run"))
	if fe := (*reconcile.FencedError)(nil); errors.As(err, &fe) {
		return withCode(ExitConflict, err) // fenced when the loop observed
	}
	if res == nil {
		return err
	}
	unreachable := unreachableCount(res)
	fmt.Fprintln(env.Out, loopSummary(res, c.Bool("dry-run")))
	switch {
	case err != nil:
		return err
	case unreachable > 0:
		return withCode(ExitPartial, fmt.Errorf("%d hosts unreachable", unreachable))
	case res.Changed() && !c.Bool("dry-run"):
		return &exitError{code: ExitChanged, err: errors.New("changes made"), silent: true}
	}
	return nil
}

// reconcileLeased runs one loop that takes the cluster lease only when it
// is about to push (leaseOnPush); --dry-run never takes it.
func reconcileLeased(c *cli.Context, env *Env, dry bool) (*reconcile.Result, error) {
	start := time.Now()
	inv, unlock, err := lockAndLoadLocal(c, env)
	if err != nil {
		return nil, err
	}
	defer unlock()
	auth, err := reconcile.RegistryAuth(inv, env.Getenv)
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	fleet := playbooks.Connect(c.Context, inv.HostNames(), dialer(c, env, inv), c.Int("parallel"))
	defer fleet.Close()
	lease := newLeaseOnPush(c, env, inv, fleet, start)
	defer lease.release()
	res, err := lease.run(c.Context, loopOptions(c, inv, auth, dry))
	if err != nil {
		return nil, err
	}
	return res, reportAndWait(c, env, inv, fleet, res, auth, dry, nil)
}

// unreachableCount counts the hosts that did not report a status: not
// reachable, or their connection dropped during the loop.
func unreachableCount(res *reconcile.Result) int {
	n := 0
	for _, o := range res.Observations {
		if st, _ := playbooks.Summarize(o); st == playbooks.StatusUnreachable || o.Err != nil {
			n++
		}
	}
	return n
}

// loopSummary is the one line a loop prints: what changed, hosts
// reachable, pods pending.
func loopSummary(res *reconcile.Result, dry bool) string {
	pushed := 0
	for _, p := range res.Pushed {
		if p.Err == nil && p.Changed {
			pushed++
		}
	}
	var parts []string
	switch {
	case res.Changed() && dry:
		parts = append(parts, fmt.Sprintf("would change: generation %d → %d", res.Generation-1, res.Generation))
	case res.Changed():
		parts = append(parts, fmt.Sprintf("changed: generation %d, %d hosts updated, %d pods scheduled, %d objects changed by controllers",
			res.Generation, pushed, len(res.Bindings), len(res.Controllers.Put)+len(res.Controllers.Delete)))
	default:
		parts = append(parts, fmt.Sprintf("converged at generation %d", res.Generation))
	}
	parts = append(parts, fmt.Sprintf("%d/%d hosts reachable", len(res.Observations)-unreachableCount(res), len(res.Observations)),
		fmt.Sprintf("%d pods pending", len(res.Unschedulable)))
	return strings.Join(parts, "; ")
}
