package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/playbooks"
	"github.com/clusterctl/clusterctl/reconcile"
	"github.com/clusterctl/clusterctl/remote"
)

// Flags shared by the commands that talk to hosts.
func inventoryFlag() cli.Flag {
	return &cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, EnvVars: []string{inventory.EnvInventory},
		Usage: "inventory file (default ./" + inventory.DefaultFile + ")"}
}

// inventoryLongFlag is inventoryFlag without -i, for commands where -i means
// stdin as in kubectl (exec).
func inventoryLongFlag() cli.Flag {
	return &cli.StringFlag{Name: "inventory", EnvVars: []string{inventory.EnvInventory},
		Usage: "inventory file (default ./" + inventory.DefaultFile + ")"}
}

func sshFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "accept-new-host-keys", Usage: "trust and record host keys not yet in known_hosts (a changed key is still refused)"},
		&cli.IntFlag{Name: "parallel", Value: playbooks.DefaultParallel, Usage: "hosts worked on at once"},
	}
}

func outputFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: usage}
}

func lockWaitFlag() cli.Flag {
	return &cli.DurationFlag{Name: "lock-wait", Value: 10 * time.Second,
		Usage: "how long to wait for another clusterctl holding the inventory lock or the cluster lease (0: fail at once)"}
}

// inventoryPath resolves -i, $CLUSTERCTL_INVENTORY, ./cluster.yaml.
func inventoryPath(c *cli.Context, env *Env) string {
	if p := c.String("inventory"); p != "" {
		return p
	}
	return inventory.DefaultPath(env.Getenv)
}

// loadInventory loads and validates the inventory; problems are usage errors.
func loadInventory(path string) (*inventory.Inventory, error) {
	inv, err := inventory.Load(path)
	if err != nil {
		var ve *inventory.ValidationError
		if errors.As(err, &ve) || errors.Is(err, fs.ErrNotExist) {
			return nil, withCode(ExitUsage, err)
		}
		return nil, err
	}
	return inv, nil
}

// lockInventory takes the inventory's lock for a mutating command.
func lockInventory(c *cli.Context, path string) (func() error, error) {
	unlock, err := inventory.Lock(c.Context, path, c.Duration("lock-wait"))
	if err != nil {
		return nil, fmt.Errorf("lock inventory: %w", err)
	}
	return unlock, nil
}

// lockAndLoad takes the inventory's lock, loads the inventory and takes
// the cluster lease (lock.go), for commands that change the cluster; the
// caller defers unlock, which gives both back. --lock-wait covers both.
// A --dry-run takes the inventory lock only.
func lockAndLoad(c *cli.Context, env *Env) (*inventory.Inventory, func() error, error) {
	start := time.Now()
	inv, unlock, err := lockAndLoadLocal(c, env)
	if err != nil || c.Bool("dry-run") {
		return inv, unlock, err
	}
	end, err := takeLease(c, env, inv, nil, leaseWait(c, start), reconcile.FenceOf(inv))
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return inv, func() error {
		end()
		return unlock()
	}, nil
}

// lockAndLoadLocal takes the inventory's lock and loads it, without the
// cluster lease: for loops that take the lease only when they are about to
// push (reconcile, watch: leaseOnPush).
func lockAndLoadLocal(c *cli.Context, env *Env) (*inventory.Inventory, func() error, error) {
	path := inventoryPath(c, env)
	unlock, err := lockInventory(c, path)
	if err != nil {
		return nil, nil, err
	}
	inv, err := loadInventory(path)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return inv, unlock, nil
}

// leaseWait is what is left of --lock-wait for the cluster lease after
// the inventory lock took its part since start.
func leaseWait(c *cli.Context, start time.Time) time.Duration {
	wait := c.Duration("lock-wait")
	if wait > 0 {
		wait = max(wait-time.Since(start), 0)
	}
	return wait
}

// dialer connects to inventory hosts with the inventory's SSH settings.
// Within a command holding the cluster lease over connections of its own,
// it hands out those connections (closing them is left to the lease), so
// `up` and `reset` dial each host once and a host that could not be
// reached fails at once with the same error.
func dialer(c *cli.Context, env *Env, inv *inventory.Inventory) playbooks.Dialer {
	dial := sshDialer(c, env, inv)
	return func(ctx context.Context, name string) (playbooks.Host, error) {
		if s := sessionOf(c); s != nil && s.owned {
			h, err := s.fleet.Conn(name)
			if err != nil {
				return nil, err
			}
			return sharedHost{h}, nil
		}
		return dial(ctx, name)
	}
}

// sshDialer dials a new SSH connection per call.
func sshDialer(c *cli.Context, env *Env, inv *inventory.Inventory) playbooks.Dialer {
	acceptNew := c.Bool("accept-new-host-keys")
	prompt := newSudoPrompt(env)
	return func(ctx context.Context, name string) (playbooks.Host, error) {
		h, ok := inv.Host(name)
		if !ok {
			return nil, fmt.Errorf("dial %s: not in the inventory", name)
		}
		s := inv.HostSSH(h)
		cfg := remote.Config{
			UseAgent:          s.UseAgent,
			KnownHostsFile:    s.KnownHosts,
			AcceptNewHostKeys: acceptNew,
			ProxyJump:         s.ProxyJump,
			Sudo:              remote.SudoAuto,
			SudoPassword:      prompt.password,
			ConnectTimeout:    s.ConnectTimeout,
			// A host that dies mid-command (powered off, partitioned)
			// is noticed within three intervals instead of never.
			KeepAlive: 5 * time.Second,
			Getenv:    env.Getenv,
		}
		// Unset user and port are left to ~/.ssh/config, then root and 22.
		if s.UserSet {
			cfg.User = s.User
		}
		if s.PortSet {
			cfg.Port = s.Port
		}
		switch s.SudoMode {
		case inventory.SudoAlways:
			cfg.Sudo = remote.SudoAlways
		case inventory.SudoNever:
			cfg.Sudo = remote.SudoNever
		}
		if s.IdentityFile != "" {
			cfg.IdentityFiles = []string{s.IdentityFile}
		}
		if s.SSHConfig != "" {
			if _, err := os.Stat(s.SSHConfig); err == nil {
				cfg.SSHConfigFile = s.SSHConfig
			}
		}
		client, err := remote.Dial(ctx, remote.Target{Name: name, Address: s.Address}, cfg)
		if err != nil {
			return nil, err
		}
		return client, nil
	}
}

// sudoPrompt asks once for a sudo password on the terminal and reuses it.
type sudoPrompt struct {
	env  *Env
	mu   sync.Mutex
	pass *string
}

func newSudoPrompt(env *Env) *sudoPrompt { return &sudoPrompt{env: env} }

func (p *sudoPrompt) password(host string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pass != nil {
		return *p.pass, nil
	}
	f, ok := p.env.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("sudo needs a password and stdin is not a terminal: configure passwordless sudo for the SSH user")
	}
	fmt.Fprintf(p.env.Err, "[sudo] password for %s (used for every host that asks): ", host)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(p.env.Err)
	if err != nil {
		return "", fmt.Errorf("read sudo password: %w", err)
	}
	s := string(b)
	p.pass = &s
	return s, nil
}

// confirm asks a yes/no question on a terminal; off a terminal it requires --yes.
func confirm(c *cli.Context, env *Env, question string) error {
	if c.Bool("yes") {
		return nil
	}
	f, ok := env.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return withCode(ExitUsage, errors.New("not a terminal: pass --yes to confirm"))
	}
	fmt.Fprintf(env.Err, "%s [y/N] ", question)
	line, _ := bufio.NewReader(env.In).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return withCode(ExitUsage, errors.New("aborted"))
	}
	return nil
}

// writer names this workstation's user for NodeSpecs and audit.
func writer() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return name + "@" + host
}

// reportFailures prints every failed host with the step, the command, its exit
// code and stderr in full, and returns the exit code for the run.
func reportFailures(env *Env, results []playbooks.HostResult) int {
	failed, mismatch := 0, false
	for _, r := range results {
		if r.Err == nil {
			continue
		}
		failed++
		fmt.Fprintf(env.Err, "\n%s: FAILED\n", r.Host)
		var se *playbooks.StepError
		step := ""
		if errors.As(r.Err, &se) {
			step = se.Step
		}
		var ce *remote.CommandError
		var hk *remote.HostKeyMismatchError
		switch {
		case errors.As(r.Err, &ce):
			fmt.Fprintf(env.Err, "  step:      %s\n  command:   %s\n  exit code: %d\n  stderr:\n", step, indentCmd(ce.Cmd), ce.ExitCode)
			for _, ln := range strings.Split(strings.TrimRight(ce.Stderr, "\n"), "\n") {
				fmt.Fprintf(env.Err, "    %s\n", ln)
			}
		case errors.As(r.Err, &hk):
			mismatch = true
			fmt.Fprintf(env.Err, "  step:  %s\n  error: %v\n", step, hk)
		default:
			fmt.Fprintf(env.Err, "  step:  %s\n  error: %v\n", step, unwrapStep(r.Err))
		}
	}
	switch {
	case failed == 0:
		return ExitOK
	case mismatch:
		return ExitHostKey
	case failed == len(results):
		return ExitError
	}
	return ExitPartial
}

func unwrapStep(err error) error {
	var se *playbooks.StepError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}

func indentCmd(cmd string) string {
	return strings.ReplaceAll(strings.TrimSpace(cmd), "\n", "\n             ")
}

// trailingFlags applies the command's flags found after its positional
// arguments (`lab partition h1 --from h2`: urfave/cli v2 stops parsing at
// the first argument) and returns the remaining arguments.
func trailingFlags(c *cli.Context, args []string) ([]string, error) {
	known := map[string]string{} // any name or alias → primary name
	isBool := map[string]bool{}
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			known[n] = f.Names()[0]
		}
		if _, ok := f.(*cli.BoolFlag); ok {
			isBool[f.Names()[0]] = true
		}
	}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" { // the rest are arguments, even if they look like flags
			rest = append(rest, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		primary, ok := known[name]
		if !ok {
			return nil, withCode(ExitUsage, fmt.Errorf("%s: unknown flag %s", c.Command.Name, a))
		}
		if !hasVal && isBool[primary] {
			val, hasVal = "true", true
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, withCode(ExitUsage, fmt.Errorf("%s: flag %s needs a value", c.Command.Name, a))
			}
			i++
			val = args[i]
		}
		if err := c.Set(primary, val); err != nil {
			return nil, withCode(ExitUsage, fmt.Errorf("%s: set %s: %w", c.Command.Name, a, err))
		}
	}
	return rest, nil
}
