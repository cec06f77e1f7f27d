// Package agentlet is the node agent of clusterctl: a small daemon on each
// host that holds the last NodeSpec it was given and keeps the host
// converged to it with nobody connected, plus the commands the CLI runs over
// SSH (status, apply, logs, exec, teardown).
//
// The node loop (Daemon) talks to containerd through CRI (agentlet/cri),
// imports the embedded sandbox image (agentlet/pause) with ctr, loads its
// iptables rules rendered by the pure agentlet/netfilter package through
// agentlet/iptables, runs the spec's pods (agentlet/pods, with probes from
// agentlet/probe), measures the host's and the pods' CPU and memory
// (agentlet/usage) and publishes a nodeapi.NodeStatus. `agentlet logs` reads
// the CRI log files (agentlet/podlogs); `agentlet exec` runs commands in
// containers (CRI ExecSync, or `ctr tasks exec` when interactive). Each edge
// is a small interface defined here (Runtime, ImageImporter, Iptables,
// PodRuntime, UsageSampler) with a real and a fake implementation.
//
// The package must stay small: no text/template, html/template, k8s.io/api,
// urfave/cli or YAML in its import graph (a test checks).
package agentlet

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	clusterdns "github.com/clusterctl/clusterctl/agentlet/dns"
	"github.com/clusterctl/clusterctl/agentlet/iptables"
	"github.com/clusterctl/clusterctl/agentlet/pause"
	"github.com/clusterctl/clusterctl/agentlet/routes"
	resusage "github.com/clusterctl/clusterctl/agentlet/usage"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/version"
)

// Exit codes of the agentlet binary. The CLI relies on them. `agentlet
// exec` exits with the command's own exit code once the command ran, and
// with ExitExecNotFound/ExitExecCannotRun when it could not be started.
const (
	ExitOK    = 0 // success
	ExitError = 1 // the command failed (for logs and exec: no such pod or container, not running, runtime error)
	ExitUsage = 2 // bad flags or invalid input (e.g. an invalid NodeSpec); nothing changed
	ExitStale = 4 // apply refused: the node holds a newer spec generation; nothing changed
)

// Env is what the commands get: their streams.
type Env struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

const usage = `usage: agentlet COMMAND [flags]

commands:
  version [-o json]      print the version
  daemon                 run the node loop (as the agentlet service)
  status [--wait DUR]    print the node status JSON
  apply                  hold the NodeSpec JSON read from stdin
  lease acquire|release|show
                         the host's share of the cluster lease (JSON)
  logs NS/POD [flags]    print a container's logs (CRI log files)
  exec NS/POD [flags] -- CMD...
                         run CMD in a container; exits with CMD's exit code
  teardown               remove agentlet's iptables chains and run directory
  snapshot put|get       store (stdin) or print the inventory snapshot
  audit append|list      append (stdin) or print the audit trail

Run "agentlet COMMAND -h" for a command's flags.
`

// usageError marks bad flags or arguments.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// Main runs agentlet with args (without the program name) and returns the
// exit code. ctx cancels long-running commands.
func Main(ctx context.Context, env Env, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(env.Err, usage)
		return ExitUsage
	}
	var err error
	switch args[0] {
	case "version", "--version", "-v":
		err = versionCmd(env, args[1:])
	case "daemon":
		err = daemonCmd(ctx, env, args[1:])
	case "status":
		err = statusCmd(ctx, env, args[1:])
	case "apply":
		err = applyCmd(env, args[1:])
	case "lease":
		err = leaseCmd(env, args[1:])
	case "teardown":
		err = teardownCmd(ctx, env, args[1:])
	case "logs":
		err = logsCmd(ctx, env, args[1:])
	case "exec":
		err = execCmd(ctx, env, args[1:])
	case "snapshot":
		err = snapshotCmd(env, args[1:])
	case "audit":
		err = auditCmd(env, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(env.Out, usage)
		return ExitOK
	default:
		fmt.Fprintf(env.Err, "agentlet: unknown command %q\n\n%s", args[0], usage)
		return ExitUsage
	}
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	var ec *ExitCodeError
	if errors.As(err, &ec) {
		return ec.Code // the command's own exit code, reported by exec
	}
	fmt.Fprintf(env.Err, "agentlet %s: %v\n", args[0], err)
	var ue *usageError
	var ie *InvalidSpecError
	switch {
	case errors.As(err, &ue), errors.As(err, &ie):
		return ExitUsage
	case IsStale(err):
		return ExitStale
	default:
		return ExitError
	}
}

func newFlags(env Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("agentlet "+name, flag.ContinueOnError)
	fs.SetOutput(env.Err)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return nil
}

// VersionInfo is what `agentlet version -o json` prints.
type VersionInfo struct {
	Version    string `json:"version"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	PauseImage string `json:"pauseImage"`
}

func versionCmd(env Env, args []string) error {
	fs := newFlags(env, "version")
	output := fs.String("o", "", `output format: "" (text) or json`)
	if err := parse(fs, args); err != nil {
		return err
	}
	v := VersionInfo{Version: version.Version, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, PauseImage: version.PauseImage}
	switch *output {
	case "":
		fmt.Fprintf(env.Out, "agentlet %s (%s, %s/%s)\n", v.Version, v.GoVersion, v.OS, v.Arch)
	case "json":
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode version: %w", err)
		}
		fmt.Fprintf(env.Out, "%s\n", data)
	default:
		return &usageError{fmt.Errorf("-o: unknown format %q (want json)", *output)}
	}
	return nil
}

func rootFlag(fs *flag.FlagSet) *string {
	return fs.String("root", "", "prefix for agentlet's state and run directories (tests, labs); empty on real hosts")
}

func daemonCmd(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "daemon")
	root := rootFlag(fs)
	endpoint := fs.String("runtime-endpoint", cri.DefaultEndpoint, "CRI endpoint of the container runtime (unix socket)")
	interval := fs.Duration("interval", DefaultInterval, "tick interval of the node loop")
	cniDir := fs.String("cni-conf-dir", DefaultCNIConfDir, "directory of the CNI network configs containerd uses")
	ctrPath := fs.String("ctr", "ctr", "containerd's ctr tool, used to import the sandbox image")
	usageInterval := fs.Duration("usage-interval", DefaultUsageInterval, "time between two CPU and memory usage samples (the window CPU rates are averaged over; at most one per tick); 0 disables")
	po := podFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *interval < 100*time.Millisecond {
		return &usageError{fmt.Errorf("--interval %s: must be at least 100ms", *interval)}
	}
	if *usageInterval < 0 {
		return &usageError{fmt.Errorf("--usage-interval %s: must not be negative", *usageInterval)}
	}
	socket, err := cri.SocketPath(*endpoint)
	if err != nil {
		return &usageError{err}
	}
	paths := Paths{Root: *root}
	log := NewLogger(env.Err, time.Now)

	pid, err := acquirePidFile(paths.PidPath())
	if err != nil {
		return err
	}
	defer func() {
		if err := pid.release(); err != nil {
			log.Error("release pid file", "err", err)
		}
	}()
	client, err := cri.Dial(*endpoint)
	if err != nil {
		return err
	}
	defer client.Close()

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	podManager, err := po.manager(paths, client, log, poke)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigs:
				if s == syscall.SIGHUP {
					poke()
					continue
				}
				log.Info("stopping", "signal", s)
				stop()
				return
			}
		}
	}()

	d := &Daemon{
		Paths:      paths,
		CNIConfDir: *cniDir,
		Endpoint:   *endpoint,
		Interval:   *interval,
		Arch:       runtime.GOARCH,
		Runtime:    client,
		Importer:   CtrImporter{Ctr: *ctrPath, Address: socket},
		Iptables:   iptables.Exec{},
		Archive:    pause.Archive,
		Facts:      func() (HostFacts, error) { return ReadHostFacts(HostPaths{}) },
		Now:        time.Now,
		Log:        log,
		Pods:       podManager,
		DNS:        &clusterdns.Runner{},
		Routes:     routes.Syncer{Host: routes.Exec{}},
		Services:   &iptables.ServiceSyncer{IPT: iptables.Exec{}},
	}
	if *usageInterval > 0 {
		d.Usage, d.UsageInterval = &resusage.Sampler{Runtime: client}, *usageInterval
	}
	err = d.Run(ctx, wake)
	log.Info("daemon stopped")
	return err
}

func statusCmd(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "status")
	root := rootFlag(fs)
	wait := fs.Duration("wait", 0, "poll until the node is Ready or this duration passes, then print the last status")
	if err := parse(fs, args); err != nil {
		return err
	}
	r := StatusReader{
		Paths:    Paths{Root: *root},
		ProcRoot: "/proc",
		Facts:    func() (HostFacts, error) { return ReadHostFacts(HostPaths{}) },
		Now:      time.Now,
	}
	var st, err = r.Read()
	if *wait > 0 && err == nil && !st.Ready() {
		wctx, cancel := context.WithTimeout(ctx, *wait)
		st, err = r.Wait(wctx, 250*time.Millisecond)
		cancel()
	}
	if err != nil {
		return err
	}
	data, err := encodeStatus(st)
	if err != nil {
		return err
	}
	_, err = env.Out.Write(data)
	return err
}

func applyCmd(env Env, args []string) error {
	fs := newFlags(env, "apply")
	root := rootFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	a := Applier{
		Paths:    Paths{Root: *root},
		ProcRoot: "/proc",
		Warn:     func(msg string) { fmt.Fprintf(env.Err, "agentlet apply: warning: %s\n", msg) },
	}
	res, err := a.Apply(env.In)
	if err != nil {
		return err
	}
	if res.Changed {
		fmt.Fprintf(env.Out, "applied generation %d\n", res.Generation)
	} else {
		fmt.Fprintf(env.Out, "unchanged generation %d\n", res.Generation)
	}
	return nil
}

func teardownCmd(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "teardown")
	root := rootFlag(fs)
	force := fs.Bool("force", false, "tear down even though a daemon is running (it would restore its rules)")
	if err := parse(fs, args); err != nil {
		return err
	}
	paths := Paths{Root: *root}
	if pid := daemonPid(paths.PidPath(), "/proc"); pid != 0 && !*force {
		return fmt.Errorf("refuse to tear down: the agentlet daemon (pid %d) is running; stop the %s service first", pid, "agentlet")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := Teardown(ctx, iptables.Exec{}, paths, TeardownTables())
	if err != nil {
		return err
	}
	switch {
	case res.IptablesAbsent:
		fmt.Fprintln(env.Out, "iptables not installed: no rules to remove")
	case res.Payload == nil:
		fmt.Fprintln(env.Out, "no clusterctl iptables chains found")
	default:
		fmt.Fprintf(env.Out, "removed clusterctl iptables chains: %s\n", strings.Join(chainsIn(res.Payload), " "))
	}
	// Our host-gw routes (their own protocol number): a spec without peers
	// keeps none of them.
	if err := (routes.Syncer{Host: routes.Exec{}}).Sync(ctx, &nodeapi.NodeSpec{}, nil); err != nil {
		return fmt.Errorf("remove host-gw routes: %w", err)
	}
	fmt.Fprintf(env.Out, "removed %s\n", paths.RunDir())
	return nil
}

// chainsIn lists the chains a teardown payload deletes.
func chainsIn(payload []byte) []string {
	var chains []string
	table := ""
	for _, line := range strings.Split(string(payload), "\n") {
		if t, ok := strings.CutPrefix(line, "*"); ok {
			table = t
		}
		if c, ok := strings.CutPrefix(line, "-X "); ok {
			chains = append(chains, table+"/"+c)
		}
	}
	return chains
}
