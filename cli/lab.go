package cli

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/lab"
)

// labCommand is `clusterctl lab`: the local multi-host lab.
func labCommand(env *Env) *cli.Command {
	common := func(extra ...cli.Flag) []cli.Flag {
		return append([]cli.Flag{
			&cli.StringFlag{Name: "name", Value: lab.DefaultName, Usage: "lab `NAME` (part of every namespace, link and cgroup name)"},
			&cli.StringFlag{Name: "state-dir", Usage: "lab state `DIR` (not under /etc, /opt, /var/lib, /tmp, /run, /var/log, /root) (default: " + lab.DefaultStateRoot + "/NAME)"},
			&cli.StringFlag{Name: "subnet", Usage: "lab `CIDR`: hosts get .11, .12, ..., the workstation .1 (default: the lab's, else " + lab.DefaultSubnet().String() + ")"},
		}, extra...)
	}
	host := func(c *cli.Context) (string, error) {
		if c.NArg() < 1 {
			return "", withCode(ExitUsage, fmt.Errorf("%s: missing host argument (h1, h2, ...)", c.Command.Name))
		}
		return c.Args().First(), nil
	}
	oneHost := func(name, usage string, do func(*cli.Context, lab.Options, string) error, extra ...cli.Flag) *cli.Command {
		return &cli.Command{
			Name:      name,
			Usage:     usage,
			ArgsUsage: "HOST",
			Flags:     common(extra...),
			Action: func(c *cli.Context) error {
				h, err := host(c)
				if err != nil {
					return err
				}
				rest, err := trailingFlags(c, c.Args().Tail())
				if err != nil {
					return err
				}
				if len(rest) > 0 {
					return withCode(ExitUsage, fmt.Errorf("%s: unexpected arguments after %s: %s", name, h, strings.Join(rest, " ")))
				}
				opts, err := labOptions(c, env)
				if err != nil {
					return err
				}
				return do(c, opts, h)
			},
		}
	}
	return &cli.Command{
		Name:  "lab",
		Usage: "local multi-host lab: N isolated hosts (netns + sshd + containerd) on this machine; needs root",
		Subcommands: []*cli.Command{
			{
				Name:      "up",
				Usage:     "create or complete a lab of N hosts and write its inventory (idempotent)",
				UsageText: "clusterctl lab up --hosts N [-i|--inventory FILE] [--name NAME] [--subnet CIDR] [--state-dir DIR] [--registry=false]",
				Flags: common(
					&cli.IntFlag{Name: "hosts", Usage: "number of hosts `N` (required)"},
					&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `FILE` to write (default: the lab's, else ./" + lab.DefaultInventory + ")"},
					&cli.BoolFlag{Name: "registry", Value: true, Usage: "run a registry (docker-registry, plain HTTP) at the subnet's .2, port 5000, listed in the inventory; unset: only when docker-registry is installed"},
				),
				Action: func(c *cli.Context) error {
					opts, err := labOptions(c, env)
					if err != nil {
						return err
					}
					if c.Int("hosts") < 1 {
						return withCode(ExitUsage, errors.New("up: --hosts N (at least 1) is required"))
					}
					opts.Inventory = c.String("inventory")
					switch {
					case !c.IsSet("registry"):
						opts.Registry = lab.RegistryAuto
					case c.Bool("registry"):
						opts.Registry = lab.RegistryOn
					default:
						opts.Registry = lab.RegistryOff
					}
					return lab.Up(c.Context, opts, c.Int("hosts"))
				},
			},
			{
				Name:  "down",
				Usage: "remove everything the lab made: processes, namespaces, links, cgroups, state, inventory",
				Flags: common(),
				Action: func(c *cli.Context) error {
					opts, err := labOptions(c, env)
					if err != nil {
						return err
					}
					return lab.Down(c.Context, opts)
				},
			},
			oneHost("kill", "power a host off (SIGKILL its PID 1, switch port down)",
				func(c *cli.Context, o lab.Options, h string) error { return lab.Kill(c.Context, o, h) }),
			oneHost("boot", "(re)boot a host with the same disk: fresh namespaces and /run, port up",
				func(c *cli.Context, o lab.Options, h string) error { return lab.Boot(c.Context, o, h) }),
			oneHost("partition", "cut a host off the network: from everyone, or --from some hosts",
				func(c *cli.Context, o lab.Options, h string) error {
					return lab.Partition(c.Context, o, h, c.StringSlice("from"))
				},
				&cli.StringSliceFlag{Name: "from", Usage: "cut only these `HOSTS` (h2,h3; \"workstation\" for the CLI's port)"}),
			oneHost("heal", "remove a host's partition",
				func(c *cli.Context, o lab.Options, h string) error { return lab.Heal(c.Context, o, h) }),
			{
				Name:  "status",
				Usage: "show the lab's hosts, ports, partitions and services",
				Flags: common(&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "`FORMAT`: text or json"}),
				Action: func(c *cli.Context) error {
					opts, err := labOptions(c, env)
					if err != nil {
						return err
					}
					if f := c.String("output"); f != "text" && f != "json" {
						return withCode(ExitUsage, fmt.Errorf("status: unknown output format %q (want text or json)", f))
					}
					st, err := lab.Status(c.Context, opts)
					if err != nil {
						return err
					}
					return st.Write(env.Out, c.String("output"))
				},
			},
			{
				Name:      "exec",
				Usage:     "run a command inside a host (its namespaces and cgroups); exit code propagated",
				ArgsUsage: "HOST -- CMD [ARG...]",
				Flags:     common(),
				Action: func(c *cli.Context) error {
					h, err := host(c)
					if err != nil {
						return err
					}
					// HOST [flags] -- CMD...: flags after the host go up to "--".
					argv := c.Args().Tail()
					if len(argv) > 0 && strings.HasPrefix(argv[0], "-") {
						i := slices.Index(argv, "--")
						if i < 0 {
							return withCode(ExitUsage, errors.New("exec: put the command after -- (lab exec HOST -- CMD...)"))
						}
						rest, err := trailingFlags(c, argv[:i])
						if err != nil {
							return err
						}
						if len(rest) > 0 {
							return withCode(ExitUsage, fmt.Errorf("exec: unexpected arguments before --: %s", strings.Join(rest, " ")))
						}
						argv = argv[i+1:]
					}
					opts, err := labOptions(c, env)
					if err != nil {
						return err
					}
					if len(argv) == 0 {
						return withCode(ExitUsage, errors.New("exec: missing command (lab exec HOST -- CMD...)"))
					}
					opts.In, opts.Err = env.In, env.Err
					code, err := lab.Exec(c.Context, opts, h, argv)
					if err != nil {
						return err
					}
					if code != 0 {
						return withCode(code, fmt.Errorf("%s: %s exited with status %d", h, argv[0], code))
					}
					return nil
				},
			},
			{
				Name:            "__init",
				Hidden:          true,
				Usage:           "PID 1 of a lab host (started by lab up and lab boot)",
				SkipFlagParsing: true,
				Action: func(c *cli.Context) error {
					return lab.HostInit(c.Args().Slice())
				},
			},
		},
	}
}

// labOptions maps the common lab flags to lab.Options.
func labOptions(c *cli.Context, env *Env) (lab.Options, error) {
	opts := lab.Options{Name: c.String("name"), StateDir: c.String("state-dir"), Out: env.Out, Err: env.Err}
	if s := c.String("subnet"); s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return opts, withCode(ExitUsage, fmt.Errorf("parse --subnet: %w", err))
		}
		opts.Subnet = p
	}
	return opts, nil
}
