package cli

import (
	"errors"
	"fmt"
	"strings"

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
			"or not updated, 1 error, 2 usage.",
		Flags: append([]cli.Flag{
			inventoryFlag(),
			lockWaitFlag(),
			&cli.BoolFlag{Name: "dry-run", Usage: "plan and print, change nothing"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error { return runReconcile(c, env) },
	}
}

func runReconcile(c *cli.Context, env *Env) error {
	inv, unlock, err := lockAndLoad(c, env)
	if err != nil {
		return err
	}
	defer unlock()
	res, err := reconcileOnce(c, env, inv, c.Bool("dry-run"), nil)
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
