package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/playbooks"
)

// cordonCommand marks hosts unschedulable (cordon) or schedulable again
// (uncordon), as kubectl does: running pods stay, new ones go elsewhere.
func cordonCommand(env *Env, name string, cordon bool) *cli.Command {
	usage := "mark nodes unschedulable: their pods keep running, new pods go elsewhere"
	if !cordon {
		usage = "mark nodes schedulable again"
	}
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "NODE...",
		Flags:     []cli.Flag{inventoryFlag(), lockWaitFlag()},
		Action: func(c *cli.Context) error {
			names, err := trailingFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			if len(names) == 0 {
				return withCode(ExitUsage, fmt.Errorf("%s: want one or more NODE names", name))
			}
			inv, unlock, err := lockAndLoad(c, env)
			if err != nil {
				return err
			}
			defer unlock()
			for _, n := range names {
				if _, ok := inv.Host(n); !ok {
					return withCode(ExitUsage, fmt.Errorf("%s: node %q not found in %s", name, n, inv.Path))
				}
			}
			for _, n := range names {
				hs := inv.HostState(n)
				verb := map[bool]string{true: "cordoned", false: "uncordoned"}[cordon]
				if hs.Unschedulable == cordon {
					verb = "already " + verb
				}
				hs.Unschedulable = cordon
				inv.SetHostState(n, hs)
				fmt.Fprintf(env.Out, "node/%s %s\n", n, verb)
			}
			if err := inventory.Save(inv); err != nil {
				return fmt.Errorf("save inventory: %w", err)
			}
			// The hosts keep the state for recover and the audit trail.
			fleet, closeFleet := openFleet(c, env, inv)
			defer closeFleet()
			var changes []playbooks.AuditChange
			for _, n := range names {
				changes = append(changes, playbooks.AuditChange{Action: name + "ed", Kind: "Node", Name: n})
			}
			recordState(c, env, inv, fleet, playbooks.Reachable(fleet.Observe(c.Context)), changes...)
			return nil
		},
	}
}
