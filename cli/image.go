package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/playbooks"
)

// imageCommand is `clusterctl image`: container images on the hosts.
func imageCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "work with container images on the hosts",
		Subcommands: []*cli.Command{{
			Name:      "load",
			Usage:     "side-load a docker or OCI image archive into containerd on the hosts (air-gapped hosts)",
			ArgsUsage: "FILE.tar",
			UsageText: "clusterctl image load FILE.tar [--hosts h1,h2] [-i FILE]",
			Description: "Uploads the archive to every host (or --hosts) in parallel over SFTP, verifies its sha256,\n" +
				"imports it into CRI's k8s.io namespace with ctr for the host's platform, unpacked, and checks\n" +
				"each image is ready for pods. Prints the image names per host.",
			Flags: append([]cli.Flag{
				inventoryFlag(),
				&cli.StringSliceFlag{Name: "hosts", Usage: "only these `HOSTS` (h1,h2; default: every inventory host)"},
			}, sshFlags()...),
			Action: func(c *cli.Context) error { return runImageLoad(c, env) },
		}},
	}
}

func runImageLoad(c *cli.Context, env *Env) error {
	if c.NArg() < 1 {
		return withCode(ExitUsage, errors.New("image load: missing FILE.tar argument"))
	}
	file := c.Args().First()
	rest, err := trailingFlags(c, c.Args().Tail())
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return withCode(ExitUsage, fmt.Errorf("image load: unexpected arguments after %s: %s", file, strings.Join(rest, " ")))
	}
	inv, err := loadInventory(inventoryPath(c, env))
	if err != nil {
		return err
	}
	hosts, err := selectHosts(inv, c.StringSlice("hosts"))
	if err != nil {
		return err
	}
	archive, err := playbooks.OpenImageArchive(file)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	defer archive.Close()

	prog := newProgress(env.Out, hosts)
	results := playbooks.LoadImage(c.Context, playbooks.ImageLoadOptions{
		Archive:  archive,
		Hosts:    hosts,
		Dial:     dialer(c, env, inv),
		Parallel: c.Int("parallel"),
		Progress: prog.Event,
	})
	hr := make([]playbooks.HostResult, len(results))
	for i, r := range results {
		hr[i] = r.HostResult
	}
	code := reportFailures(env, hr)
	fmt.Fprintln(env.Out, summary(hr, "loaded"))
	if code != ExitOK {
		return withCode(code, fmt.Errorf("image load failed on %d of %d hosts", failedCount(hr), len(hr)))
	}
	return nil
}

// selectHosts returns the inventory hosts named in only (comma lists
// allowed), in inventory order, or every host when only is empty.
func selectHosts(inv *inventory.Inventory, only []string) ([]string, error) {
	all := inv.HostNames()
	var want []string
	for _, s := range only {
		for h := range strings.SplitSeq(s, ",") {
			if h = strings.TrimSpace(h); h != "" {
				want = append(want, h)
			}
		}
	}
	if len(want) == 0 {
		return all, nil
	}
	var unknown []string
	for _, h := range want {
		if !slices.Contains(all, h) {
			unknown = append(unknown, h)
		}
	}
	if len(unknown) > 0 {
		return nil, withCode(ExitUsage, fmt.Errorf("--hosts: not in the inventory: %s", strings.Join(unknown, ", ")))
	}
	var out []string
	for _, h := range all {
		if slices.Contains(want, h) {
			out = append(out, h)
		}
	}
	return out, nil
}

// registryHosts lowers the inventory's registries to what containerd's
// hosts.toml files need (credentials stay out).
func registryHosts(inv *inventory.Inventory) []playbooks.RegistryHost {
	var out []playbooks.RegistryHost
	for _, r := range inv.Cluster.Registries {
		out = append(out, playbooks.RegistryHost{Host: r.Host, Insecure: r.Insecure, Mirrors: r.Mirrors})
	}
	return out
}
