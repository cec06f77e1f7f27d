package cli

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/agentlet/dist"
	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan"
	"github.com/clusterctl/clusterctl/playbooks"
	"github.com/clusterctl/clusterctl/reconcile"
)

func upCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "bring every inventory host into the cluster (idempotent)",
		Description: "Connects to every host in parallel, checks it, configures containerd and CNI,\n" +
			"installs agentlet as a service and waits until each node is Ready.\n" +
			"Re-running changes nothing and says so per host.",
		Flags: append([]cli.Flag{
			inventoryFlag(),
			lockWaitFlag(),
			&cli.BoolFlag{Name: "install-missing", Usage: "install missing containerd, runc, iptables or CNI plugins with the host's package manager"},
			&cli.DurationFlag{Name: "ready-timeout", Value: 2 * time.Minute, Usage: "how long to wait for each node to become Ready"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error { return runUp(c, env) },
	}
}

func runUp(c *cli.Context, env *Env) error {
	inv, unlock, err := lockAndLoad(c, env)
	if err != nil {
		return err
	}
	defer unlock()
	hosts := inv.HostNames()

	// Allocate what is missing; it is saved (in computeSpecs) after the
	// read-only facts step and before any host is changed, so a killed run
	// never leaves a host with a CIDR the inventory does not know.
	alloc, err := plan.AllocatePodCIDRs(inv.Cluster.PodCIDR, inv.Cluster.NodeCIDRMaskSize, hosts, inv.PodCIDRs())
	if err != nil {
		return err
	}
	changed := inv.State.Generation == 0
	for _, h := range hosts {
		hs := inv.HostState(h)
		if hs.PodCIDR != alloc[h] {
			hs.PodCIDR = alloc[h]
			inv.SetHostState(h, hs)
			changed = true
		}
	}
	// Node specs carry the pods already bound to each host, so `up` never
	// takes pods away; scheduling new ones is the reconcile loop's job.
	cl, err := reconcile.Load(inv)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	auth, err := reconcile.RegistryAuth(inv, env.Getenv)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	// The specs are computed once every host has reported its facts, which
	// carry what each agentlet runs now: Services keep the endpoints of
	// running pods. They are recorded before any host is changed.
	var specs map[string]nodeapi.NodeSpec
	computeSpecs := func(facts map[string]*playbooks.Facts) (map[string]nodeapi.NodeSpec, error) {
		statuses := map[string]*nodeapi.NodeStatus{}
		for name, f := range facts {
			statuses[name] = f.AgentletStatus
			h, _ := inv.Host(name)
			hs := inv.HostState(name)
			if ip := internalIP(h, f); ip != hs.InternalIP {
				hs.InternalIP = ip
				inv.SetHostState(name, hs)
				changed = true
			}
		}
		var podErrs map[string]error
		specs, podErrs = reconcile.Desired(inv, cl, reconcile.DesiredInput{Generation: inv.State.Generation, Writer: writer(),
			Now: now, Auth: auth, Observed: reconcile.ObservedPods(statuses)})
		for _, k := range reconcile.SortedKeys(podErrs) {
			fmt.Fprintf(env.Err, "warning: pod %s is left out of its node's spec: %v\n", k, podErrs[k])
		}
		for _, h := range hosts {
			spec := specs[h]
			if inv.HostState(h).SpecSHA256 != nodeapi.ContentSHA256(&spec) {
				changed = true
			}
		}
		if changed {
			gen := inv.BumpGeneration()
			for h, spec := range specs {
				spec.Generation = gen
				specs[h] = spec
			}
		}
		if err := inventory.Save(inv); err != nil {
			return nil, fmt.Errorf("save inventory: %w", err)
		}
		return specs, nil
	}

	prog := newProgress(env.Out, hosts)
	results := playbooks.Up(c.Context, playbooks.UpOptions{
		Specs:          computeSpecs,
		Hosts:          hosts,
		Dial:           dialer(c, env, inv),
		Agentlet:       agentletBinary,
		InstallMissing: c.Bool("install-missing"),
		Registries:     registryHosts(inv),
		ReadyTimeout:   c.Duration("ready-timeout"),
		Parallel:       c.Int("parallel"),
		Progress:       prog.Event,
	})

	for _, r := range results {
		if r.Err != nil {
			continue
		}
		hs := inv.HostState(r.Host)
		if hs.JoinedAt.IsZero() {
			hs.JoinedAt = now
		}
		hs.AgentletSHA256 = r.Agentlet
		spec := specs[r.Host]
		hs.SpecSHA256 = nodeapi.ContentSHA256(&spec)
		inv.SetHostState(r.Host, hs)
	}
	if err := inventory.Save(inv); err != nil {
		return fmt.Errorf("save inventory: %w", err)
	}
	// The hosts keep the state for recover and the audit trail.
	var upHosts []string
	for _, r := range results {
		if r.Err == nil {
			upHosts = append(upHosts, r.Host)
		}
	}
	if len(upHosts) > 0 {
		fleet, closeFleet := openFleet(c, env, inv)
		recordState(c, env, inv, fleet, upHosts)
		closeFleet()
	}
	for _, r := range results {
		for _, w := range r.Warnings {
			fmt.Fprintf(env.Err, "warning: %s: %s\n", r.Host, w)
		}
	}
	code := reportFailures(env, results)
	fmt.Fprintln(env.Out, summary(results, "changed"))
	if code != ExitOK {
		return withCode(code, fmt.Errorf("up failed on %d of %d hosts", failedCount(results), len(results)))
	}
	return nil
}

// internalIP is the host's cluster-facing address: the inventory address
// when it is an IPv4 literal, else the host's first global IPv4 address.
func internalIP(h inventory.Host, f *playbooks.Facts) netip.Addr {
	if a, err := netip.ParseAddr(h.Address); err == nil && a.Is4() {
		return a
	}
	for _, ia := range f.Addresses {
		if ia.Prefix.Addr().Is4() {
			return ia.Prefix.Addr()
		}
	}
	return netip.Addr{}
}

// agentletBinary returns the embedded agentlet for arch and its checksum.
func agentletBinary(arch string) ([]byte, string, error) {
	bin, err := dist.Binary(arch)
	if err != nil {
		return nil, "", err
	}
	sum, err := dist.SHA256(arch)
	if err != nil {
		return nil, "", err
	}
	return bin, sum, nil
}

func failedCount(results []playbooks.HostResult) int {
	n := 0
	for _, r := range results {
		if r.Err != nil {
			n++
		}
	}
	return n
}

// summary is the one-line result of a playbook run.
func summary(results []playbooks.HostResult, verb string) string {
	ok, changed, failed := 0, 0, 0
	var slowest time.Duration
	for _, r := range results {
		switch {
		case r.Err != nil:
			failed++
		case len(r.Changes) > 0:
			changed++
			ok++
		default:
			ok++
		}
		slowest = max(slowest, r.Elapsed)
	}
	parts := []string{fmt.Sprintf("%d ok (%d %s)", ok, changed, verb)}
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", failed))
	}
	return fmt.Sprintf("%d hosts: %s in %s", len(results), strings.Join(parts, ", "), slowest.Round(10*time.Millisecond))
}

func resetCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "reset",
		Usage: "undo `up` on every host: agentlet, its state, clusterctl's configs and iptables chains (containerd stays)",
		Flags: append([]cli.Flag{
			inventoryFlag(),
			lockWaitFlag(),
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error {
			inv, unlock, err := lockAndLoad(c, env)
			if err != nil {
				return err
			}
			defer unlock()
			hosts := inv.HostNames()
			if err := confirm(c, env, fmt.Sprintf("Reset %d hosts of cluster %q?", len(hosts), inv.Cluster.Name)); err != nil {
				return err
			}
			prog := newProgress(env.Out, hosts)
			results := playbooks.Reset(c.Context, playbooks.ResetOptions{
				Hosts: hosts, Dial: dialer(c, env, inv), Parallel: c.Int("parallel"), Progress: prog.Event,
			})
			for _, r := range results {
				if r.Err == nil {
					inv.DeleteHostState(r.Host)
				}
			}
			if err := inventory.Save(inv); err != nil {
				return fmt.Errorf("save inventory: %w", err)
			}
			code := reportFailures(env, results)
			fmt.Fprintln(env.Out, summary(results, "reset"))
			if code != ExitOK {
				return withCode(code, fmt.Errorf("reset failed on %d of %d hosts", failedCount(results), len(results)))
			}
			return nil
		},
	}
}

func inventoryCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "inventory",
		Usage: "work with the inventory file",
		Subcommands: []*cli.Command{{
			Name:  "validate",
			Usage: "check the inventory and report every problem at once (file:line: field: message)",
			Flags: []cli.Flag{inventoryFlag()},
			Action: func(c *cli.Context) error {
				path := inventoryPath(c, env)
				inv, err := loadInventory(path)
				if err != nil {
					return err
				}
				for _, w := range inv.Warnings {
					fmt.Fprintf(env.Err, "warning: %s\n", w)
				}
				fmt.Fprintf(env.Out, "%s: valid: cluster %q, %d hosts\n", path, inv.Cluster.Name, len(inv.Hosts))
				return nil
			},
		}},
	}
}
