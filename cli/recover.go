package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/plan/controller"
	"github.com/clusterctl/clusterctl/playbooks"
)

func recoverCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "recover",
		Usage: "rebuild the inventory's state (objects, allocations, bindings, revisions) from the snapshots the hosts keep",
		Description: "Every change clusterctl makes leaves a snapshot of the inventory's state on each reachable host.\n" +
			"recover reads them from the hosts given with --from (default: every host of the inventory, reached\n" +
			"with its ssh settings), takes the newest (highest generation), reports hosts that disagree, and\n" +
			"writes it into the inventory's state: section, keeping the rest of the file. Use it when the\n" +
			"inventory was lost (write a new one with cluster:, ssh: and hosts:) or is stale. Afterwards\n" +
			"`clusterctl reconcile` finds nothing to change.\n" +
			"Exit codes: 0 recovered, 3 recovered but some hosts could not be read, 1 nothing to recover.",
		Flags: append([]cli.Flag{
			inventoryFlag(),
			lockWaitFlag(),
			&cli.StringSliceFlag{Name: "from", Usage: "read the snapshots of these `HOSTS` (h1,h2; default: every inventory host)"},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "replace the inventory's existing state without asking"},
			&cli.BoolFlag{Name: "dry-run", Usage: "show what would be recovered, write nothing"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error { return runRecover(c, env) },
	}
}

func runRecover(c *cli.Context, env *Env) error {
	if c.NArg() > 0 {
		return withCode(ExitUsage, fmt.Errorf("recover: unexpected arguments %q", c.Args().Slice()))
	}
	// The inventory lock only: the cluster lease's fencing would refuse
	// this inventory for being older than the hosts, which is the point.
	path := inventoryPath(c, env)
	unlock, err := lockInventory(c, path)
	if err != nil {
		return err
	}
	defer unlock()
	inv, err := loadInventory(path)
	if err != nil {
		return err
	}
	from, err := recoverHosts(inv, c.StringSlice("from"))
	if err != nil {
		return err
	}
	fleet := playbooks.Connect(c.Context, from, dialer(c, env, inv), c.Int("parallel"))
	defer fleet.Close()
	results := fleet.GetSnapshots(c.Context, from)

	choice := playbooks.ChooseSnapshot(results)
	if choice == nil {
		for _, r := range results {
			if r.Err != nil {
				fmt.Fprintf(env.Err, "%s: %v\n", r.Host, unwrapStep(r.Err))
			}
		}
		return fmt.Errorf("recover: no snapshot found on %s", strings.Join(from, ", "))
	}
	snap, err := choice.Chosen.Snapshot()
	if err != nil {
		return fmt.Errorf("recover from %s: %w", choice.Winner, err)
	}
	if choice.SpecGeneration > snap.State.Generation {
		fmt.Fprintf(env.Err, "warning: %s holds node spec generation %d, newer than the newest snapshot (generation %d): "+
			"the last change reached the hosts but its snapshot did not, so the recovered state lacks it; "+
			"the generation is raised to %d and the spec checksums dropped, so that the next reconcile pushes the recovered state to every host\n",
			choice.SpecHost, choice.SpecGeneration, snap.State.Generation, choice.SpecGeneration)
		raiseGeneration(snap, choice.SpecGeneration)
	}
	if hasState(inv) && !c.Bool("dry-run") {
		q := fmt.Sprintf("%s already holds state (generation %d, %d objects); replace it with generation %d from %s?",
			inv.Path, inv.State.Generation, len(inv.State.Objects), snap.State.Generation, choice.Winner)
		if err := confirm(c, env, q); err != nil {
			return err
		}
	}
	differences, err := inv.Restore(snap)
	if err != nil {
		return fmt.Errorf("recover from %s: %w", choice.Winner, err)
	}
	printRecovery(env, inv, choice, snap, differences, c.Bool("dry-run"))
	if c.Bool("dry-run") {
		return nil
	}
	if err := inventory.Save(inv); err != nil {
		return fmt.Errorf("save inventory: %w", err)
	}
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
	}
	if failed > 0 {
		return withCode(ExitPartial, fmt.Errorf("recovered, but %d of %d hosts could not be read: one of them may hold a newer snapshot", failed, len(results)))
	}
	return nil
}

// recoverHosts checks --from against the inventory (default: every host).
func recoverHosts(inv *inventory.Inventory, from []string) ([]string, error) {
	if len(from) == 0 {
		return inv.HostNames(), nil
	}
	var out []string
	for _, h := range from {
		for _, name := range strings.Split(h, ",") {
			name = strings.TrimSpace(name)
			if name == "" || slices.Contains(out, name) {
				continue
			}
			if _, ok := inv.Host(name); !ok {
				return nil, withCode(ExitUsage, fmt.Errorf("recover: --from %s: not a host of %s (its address and ssh settings come from there)", name, inv.Path))
			}
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, withCode(ExitUsage, errors.New("recover: --from names no host"))
	}
	return out, nil
}

// raiseGeneration makes a snapshot that lacks the hosts' last change
// usable: a generation no lower than theirs (fencing), and no spec
// checksums, so that every host's spec counts as changed.
func raiseGeneration(snap *inventory.Snapshot, generation int64) {
	snap.State.Generation = generation
	hosts := make(map[string]inventory.HostState, len(snap.State.Hosts))
	for name, hs := range snap.State.Hosts {
		hs.SpecSHA256 = ""
		hosts[name] = hs
	}
	snap.State.Hosts = hosts
}

func hasState(inv *inventory.Inventory) bool {
	return inv.State.Generation != 0 || len(inv.State.Hosts) > 0 || len(inv.State.Objects) > 0
}

// printRecovery tells where the state came from, who disagrees, and what
// was recovered.
func printRecovery(env *Env, inv *inventory.Inventory, choice *playbooks.SnapshotChoice, snap *inventory.Snapshot, differences []string, dry bool) {
	s := choice.Chosen
	verb := "recovered"
	if dry {
		verb = "would recover"
	}
	agree := ""
	if len(choice.Agree) > 1 {
		agree = fmt.Sprintf(" (same on %s)", strings.Join(choice.Agree, ", "))
	}
	fmt.Fprintf(env.Out, "%s generation %d from %s%s: written by %s at %s\n", verb, s.Generation, choice.Winner, agree,
		s.Writer, s.WrittenAt.UTC().Format(time.RFC3339))
	for _, o := range choice.Others {
		fmt.Fprintf(env.Err, "  %s\n", o)
	}
	counts := snap.ObjectCounts()
	var kinds []string
	total := 0
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		kinds = append(kinds, fmt.Sprintf("%d %s", counts[k], k))
		total += counts[k]
	}
	if len(kinds) == 0 {
		kinds = []string{"none"}
	}
	fmt.Fprintf(env.Out, "objects: %d (%s)\n", total, strings.Join(kinds, ", "))
	fmt.Fprintln(env.Out, "hosts:")
	for _, name := range slices.Sorted(maps.Keys(inv.State.Hosts)) {
		hs := inv.State.Hosts[name]
		var parts []string
		if hs.PodCIDR.IsValid() {
			parts = append(parts, "podCIDR "+hs.PodCIDR.String())
		}
		if hs.InternalIP.IsValid() {
			parts = append(parts, "internalIP "+hs.InternalIP.String())
		}
		if hs.Unschedulable {
			parts = append(parts, "cordoned")
		}
		if hs.SpecSHA256 == "" {
			parts = append(parts, "no spec recorded")
		}
		fmt.Fprintf(env.Out, "  %s: %s\n", name, strings.Join(parts, ", "))
	}
	for _, d := range differences {
		fmt.Fprintf(env.Err, "warning: %s\n", d)
	}
	if !dry {
		fmt.Fprintf(env.Out, "wrote the state of %s; run clusterctl reconcile to check it is converged\n", inv.Path)
	}
}

// recordState stores a snapshot of the inventory's state and an audit
// record (this command's line and changes) on hosts over fleet, for
// commands that change the state outside a cluster loop (`up`, `cordon`,
// `uncordon`); reconcile.Run records its own. Call it after saving. A host
// that cannot record it is a warning: recover then finds an older snapshot
// there.
func recordState(c *cli.Context, env *Env, inv *inventory.Inventory, fleet *playbooks.Fleet, hosts []string, changes ...playbooks.AuditChange) {
	seed := make([]byte, 8)
	rand.Read(seed)
	rec := auditRecord(c, changes...).ForLoop(inv.State.Generation, writer(), time.Now().UTC().Truncate(time.Second),
		hex.EncodeToString(seed), nil, controller.Changes{}, nil)
	warnRecorded(env, fleet.PutSnapshot(c.Context, inv.Snapshot(), rec, hosts))
}

// warnRecorded prints the hosts that could not record the inventory's
// state (reconcile.Result.Recorded, recordState).
func warnRecorded(env *Env, recorded []playbooks.PushResult) {
	for _, r := range recorded {
		if r.Err != nil {
			fmt.Fprintf(env.Err, "warning: %s: could not record the inventory's state for recover and history: %v\n", r.Host, unwrapStep(r.Err))
		}
	}
}
