package cli

import (
	"context"
	"fmt"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/playbooks"
	"github.com/clusterctl/clusterctl/reconcile"
)

func watchCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "watch",
		Usage: "run the cluster loop every interval, keeping one SSH connection per host, until interrupted",
		Description: "Each tick takes the inventory lock, observes, runs the controllers and the scheduler,\n" +
			"pushes what changed (taking the cluster lease for that, given back at the end of the\n" +
			"tick), saves, then prints one line (and what changed). Hosts that drop are reconnected\n" +
			"with back-off. Ctrl-C (or SIGTERM) exits cleanly after the current tick.",
		Flags: append([]cli.Flag{
			inventoryFlag(),
			lockWaitFlag(),
			&cli.DurationFlag{Name: "interval", Value: 10 * time.Second, Usage: "time between loops"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error { return runWatch(c, env) },
	}
}

func runWatch(c *cli.Context, env *Env) error {
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	inv, err := loadInventory(inventoryPath(c, env))
	if err != nil {
		return err
	}
	hosts := strings.Join(inv.HostNames(), ",")
	dial := dialer(c, env, inv)
	fleet := playbooks.Connect(ctx, inv.HostNames(), dial, c.Int("parallel"))
	defer func() { fleet.Close() }()
	for tick := 1; ; tick++ {
		res, err := watchTick(ctx, c, env, fleet)
		now := time.Now()
		switch {
		case err != nil:
			fmt.Fprintf(env.Err, "%s tick %d: %v\n", now.Format(time.TimeOnly), tick, err)
		default:
			fmt.Fprintf(env.Out, "%s tick %d: %s\n", now.Format(time.TimeOnly), tick, loopSummary(res, false))
			if again := fleet.Redial(ctx, dial, res.Observations, now, time.Minute); len(again) > 0 {
				fmt.Fprintf(env.Out, "%s reconnecting %s\n", now.Format(time.TimeOnly), strings.Join(again, ", "))
			}
		}
		// A changed host list means new connections.
		if inv, err := loadInventory(inventoryPath(c, env)); err == nil && strings.Join(inv.HostNames(), ",") != hosts {
			fleet.Close()
			hosts = strings.Join(inv.HostNames(), ",")
			dial = dialer(c, env, inv)
			fleet = playbooks.Connect(ctx, inv.HostNames(), dial, c.Int("parallel"))
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(env.Out, "interrupted: stopping")
			return nil
		case <-time.After(c.Duration("interval")):
		}
	}
}

// watchTick runs one loop over the held connections under the inventory
// lock, taking the cluster lease only to push (leaseOnPush) and giving it
// back at the end of the tick: other commands (apply, scale, ...) take it
// between ticks.
func watchTick(ctx context.Context, c *cli.Context, env *Env, fleet *playbooks.Fleet) (*reconcile.Result, error) {
	start := time.Now()
	inv, unlock, err := lockAndLoadLocal(c, env)
	if err != nil {
		return nil, err
	}
	defer unlock()
	auth, err := reconcile.RegistryAuth(inv, env.Getenv)
	if err != nil {
		return nil, err
	}
	lease := newLeaseOnPush(c, env, inv, fleet, start)
	defer lease.release()
	res, err := lease.run(ctx, loopOptions(c, inv, auth, false))
	if err != nil {
		return nil, err
	}
	if res.Changed() {
		if err := inventory.Save(inv); err != nil {
			return nil, fmt.Errorf("save inventory: %w", err)
		}
	}
	for _, e := range res.Controllers.Events {
		fmt.Fprintf(env.Out, "  %s/%s: %s\n", strings.ToLower(e.Object.Kind), e.Object.Name, e.Message)
	}
	for _, k := range reconcile.SortedKeys(res.Bindings) {
		fmt.Fprintf(env.Out, "  pod/%s scheduled to %s\n", nameOf(k), res.Bindings[k])
	}
	return res, nil
}
