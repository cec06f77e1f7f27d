package cli

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/remote"
)

func execCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command in a container; its exit code becomes clusterctl's",
		ArgsUsage: "POD -- COMMAND [ARGS...]",
		Description: "As in kubectl, -i passes stdin and -t allocates a terminal (exec -it POD -- sh);\n" +
			"so here the inventory is given with --inventory (or $CLUSTERCTL_INVENTORY).",
		Flags: append([]cli.Flag{inventoryLongFlag(), namespaceFlag(),
			&cli.StringFlag{Name: "container", Aliases: []string{"c"}, Usage: "container name (default: the first)"},
			&cli.BoolFlag{Name: "stdin", Aliases: []string{"i"}, Usage: "pass stdin to the command"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a terminal"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error {
			args, err := trailingFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			if len(args) < 2 {
				return withCode(ExitUsage, errors.New("exec: want POD -- COMMAND [ARGS...]"))
			}
			p, h, err := podOnNode(c, env, args[0])
			if err != nil {
				return err
			}
			defer h.Close()
			cmd := []string{nodeapi.BinaryPath, "exec", p.Namespace + "/" + p.Name}
			if ctr := c.String("container"); ctr != "" {
				cmd = append(cmd, "-c", ctr)
			}
			if c.Bool("stdin") {
				cmd = append(cmd, "-i")
			}
			if c.Bool("tty") {
				cmd = append(cmd, "-t")
			}
			cmd = append(append(cmd, "--"), args[1:]...)
			line := quoteArgs(cmd)
			if !c.Bool("tty") {
				var in = env.In
				if !c.Bool("stdin") {
					in = nil
				}
				return silentExit(h.(streamer).Stream(c.Context, line, in, env.Out, env.Err))
			}
			return runTTY(c, env, h.(*remote.Client), line)
		},
	}
}

// runTTY runs line on a remote terminal, with the local one in raw mode.
func runTTY(c *cli.Context, env *Env, h *remote.Client, line string) error {
	size := remote.Size{Width: 80, Height: 24}
	in, _ := env.In.(*os.File)
	if in != nil && term.IsTerminal(int(in.Fd())) {
		if w, hgt, err := term.GetSize(int(in.Fd())); err == nil {
			size = remote.Size{Width: w, Height: hgt}
		}
		old, err := term.MakeRaw(int(in.Fd()))
		if err == nil {
			defer term.Restore(int(in.Fd()), old)
		}
	}
	resize := make(chan remote.Size, 1)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-winch:
				if in != nil {
					if w, hgt, err := term.GetSize(int(in.Fd())); err == nil {
						select {
						case resize <- remote.Size{Width: w, Height: hgt}:
						default:
						}
					}
				}
			}
		}
	}()
	termName := env.Getenv("TERM")
	if termName == "" {
		termName = "xterm"
	}
	return silentExit(h.Interactive(c.Context, line, env.In, env.Out, termName, size, resize))
}

// silentExit passes a remote command's exit code through as ours without
// printing an error: the command said what it had to say.
func silentExit(err error) error {
	var ce *remote.CommandError
	if errors.As(err, &ce) && ce.ExitCode > 0 {
		return &exitError{code: ce.ExitCode, err: err, silent: true}
	}
	return err
}
