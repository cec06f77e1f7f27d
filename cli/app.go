// Package cli wires clusterctl's commands: flags → options → one call into the
// packages that do the work. It is the only package that imports urfave/cli.
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/version"
)

// Exit codes. They are part of the interface: scripts and cron rely on them.
const (
	ExitOK      = 0 // success
	ExitError   = 1 // the command failed
	ExitUsage   = 2 // bad flags, arguments or input files; nothing was changed
	ExitPartial = 3 // some hosts failed or were unreachable; the others succeeded
	ExitHostKey = 4 // a host key did not match known_hosts; nothing was changed on that host
	ExitChanged = 5 // reconcile: the cluster was not converged and changes were made
	// ExitConflict: another run holds the cluster lease, or the hosts hold
	// newer state than the inventory (fencing); nothing was changed.
	ExitConflict = 6
)

// Env is what every command gets: its streams and how to reach the terminal.
type Env struct {
	In     io.Reader
	Out    io.Writer
	Err    io.Writer
	Getenv func(string) string
}

// ExitError carries an exit code through urfave/cli up to main.
type exitError struct {
	code   int
	err    error
	silent bool // the exit code is all there is to say (exec)
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode attaches an exit code to err.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// Run runs clusterctl with args (args[0] is the program name) and returns the
// process exit code. main is the only caller and the only os.Exit.
func Run(env *Env, args []string) int {
	app := newApp(env)
	err := app.Run(args)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.silent {
			fmt.Fprintf(env.Err, "error: %v\n", err)
		}
		return ee.code
	}
	fmt.Fprintf(env.Err, "error: %v\n", err)
	return ExitError
}

func newApp(env *Env) *cli.App {
	return &cli.App{
		Name:                 "clusterctl",
		Usage:                "Kubernetes semantics without a control plane: plain Linux hosts over SSH",
		Version:              version.Version,
		Reader:               env.In,
		Writer:               env.Out,
		ErrWriter:            env.Err,
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		ExitErrHandler:       func(*cli.Context, error) {}, // Run maps errors to exit codes
		Commands: []*cli.Command{
			upCommand(env),
			applyCommand(env),
			deleteCommand(env),
			reconcileCommand(env),
			rolloutCommand(env),
			scaleCommand(env),
			setCommand(env),
			topCommand(env),
			watchCommand(env),
			lockCommand(env),
			recoverCommand(env),
			historyCommand(env),
			cordonCommand(env, "cordon", true),
			cordonCommand(env, "uncordon", false),
			drainCommand(env),
			resetCommand(env),
			getCommand(env),
			describeCommand(env),
			logsCommand(env),
			execCommand(env),
			cpCommand(env),
			inventoryCommand(env),
			imageCommand(env),
			labCommand(env),
		},
	}
}
