package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/playbooks"
	"github.com/clusterctl/clusterctl/reconcile"
)

// Concurrency: two locks guard a change to the cluster.
//
//   - The inventory lock (inventory.Lock): a flock on the inventory file,
//     for clusterctl processes on one workstation sharing one file.
//   - The cluster lease (playbooks.ClusterLease): held on a strict majority
//     of the hosts for the length of a mutating run, for copies of the
//     inventory anywhere. Taking it observes every host in the same round
//     trip, and the hosts' held specs are checked against the inventory
//     (reconcile.CheckFencing) before anything changes.
//
// lockAndLoad takes both for every command that changes the cluster (apply,
// delete, reconcile, each tick of watch, scale, rollout, set image,
// cordon/uncordon, drain, up, reset); read commands take neither.

// EnvLeaseTTL overrides the cluster lease's TTL (a Go duration, ≥ 3s).
const EnvLeaseTTL = "CLUSTERCTL_LEASE_TTL"

// runID tells this process's lease from others of the same user and pid.
var runID = func() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// leaseHolder names this process as a lease holder.
func leaseHolder() string {
	return fmt.Sprintf("%s (pid %d, run %s)", writer(), os.Getpid(), runID)
}

var holderRE = regexp.MustCompile(`^(.*) \(pid (\d+), run ([0-9a-f]+)\)$`)

// parseHolder splits a holder into user@workstation and pid.
func parseHolder(h string) (who string, pid int, ok bool) {
	m := holderRE.FindStringSubmatch(h)
	if m == nil {
		return "", 0, false
	}
	pid, err := strconv.Atoi(m[2])
	return m[1], pid, err == nil
}

func leaseTTL(env *Env) (time.Duration, error) {
	v := env.Getenv(EnvLeaseTTL)
	if v == "" {
		return playbooks.DefaultLeaseTTL, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 3*time.Second {
		return 0, withCode(ExitUsage, fmt.Errorf("$%s=%q: want a duration of at least 3s", EnvLeaseTTL, v))
	}
	return d, nil
}

// session is a mutating command's hold on the cluster lease: the fleet it
// was taken over, found through the command's context.
type session struct {
	fleet *playbooks.Fleet
	// owned: the fleet was opened for the lease; the command's other
	// connections reuse it (dialer, openFleet) and it is closed at the end.
	owned bool
}

type sessionKey struct{}

func sessionOf(c *cli.Context) *session {
	if c.Context == nil {
		return nil
	}
	s, _ := c.Context.Value(sessionKey{}).(*session)
	return s
}

// sharedHost is a session's connection lent out: closing it is the
// session's business.
type sharedHost struct{ playbooks.Host }

func (sharedHost) Close() error { return nil }

// openFleet returns the fleet the command's lease was taken over (its
// observations fresh from taking it) or connects a new one; the caller
// defers the returned close.
func openFleet(c *cli.Context, env *Env, inv *inventory.Inventory) (*playbooks.Fleet, func()) {
	if s := sessionOf(c); s != nil {
		return s.fleet, func() {}
	}
	f := playbooks.Connect(c.Context, inv.HostNames(), dialer(c, env, inv), c.Int("parallel"))
	return f, f.Close
}

// errInterrupted is the cause of a run stopped by Ctrl-C or SIGTERM.
var errInterrupted = errors.New("interrupted")

// takeLease takes the cluster lease for the command over fleet (or its own
// connections), checks what the hosts hold against fence, and makes the
// command's context (c.Context) end when the lease is lost or the user
// interrupts: the command unwinds and end releases the lease, restores the
// context and closes what it opened. A second Ctrl-C exits at once (the lease then lapses after its
// TTL, or `clusterctl lock release` breaks it).
func takeLease(c *cli.Context, env *Env, inv *inventory.Inventory, fleet *playbooks.Fleet, wait time.Duration, fence reconcile.Fence) (end func(), err error) {
	ttl, err := leaseTTL(env)
	if err != nil {
		return nil, err
	}
	parent := c.Context
	owned := fleet == nil
	if owned {
		fleet = playbooks.Connect(parent, inv.HostNames(), sshDialer(c, env, inv), c.Int("parallel"))
	}
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-sigs:
			signal.Stop(sigs)
			fmt.Fprintln(env.Err, "interrupted: stopping and releasing the cluster lease (Ctrl-C again to exit at once)")
			cancel(errInterrupted)
		case <-ctx.Done():
		}
	}()
	cleanup := func() {
		signal.Stop(sigs)
		cancel(nil)
		if owned {
			fleet.Close()
		}
	}
	// `up` installs or upgrades agentlet and `reset` removes it: hosts
	// without a lease-capable agentlet cannot hold the lease and are left
	// out of the majority (a fresh cluster's first `up` has none at all).
	skip := c.Command != nil && (c.Command.Name == "up" || c.Command.Name == "reset")
	lease, err := fleet.AcquireLease(ctx, playbooks.LeaseOptions{Holder: leaseHolder(), TTL: ttl, Wait: wait, SkipMissing: skip,
		OnLost: func(err error) { cancel(err) }})
	if err != nil {
		cleanup()
		var le *playbooks.LeaseError
		if errors.As(err, &le) && le.Holder != "" {
			return nil, withCode(ExitConflict, fmt.Errorf("%w; wait with --lock-wait DURATION or break it with `clusterctl lock release --force`", err))
		}
		if errors.As(err, &le) {
			return nil, withCode(ExitConflict, err)
		}
		return nil, err
	}
	if err := fence.Check(reconcile.HeldSpecs(fleet, nil), writer()); err != nil {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(parent), 10*time.Second)
		lease.Release(rctx)
		rcancel()
		cleanup()
		return nil, withCode(ExitConflict, err)
	}
	c.Context = context.WithValue(ctx, sessionKey{}, &session{fleet: fleet, owned: owned})
	return func() {
		c.Context = parent
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(parent), 10*time.Second)
		defer rcancel()
		if err := lease.Release(rctx); err != nil {
			fmt.Fprintf(env.Err, "warning: %v (it lapses by itself within %s)\n", err, ttl)
		}
		if lost := lease.Lost(); lost != nil {
			fmt.Fprintf(env.Err, "error: %v: the run was stopped\n", lost)
		}
		cleanup()
	}, nil
}

// leaseOnPush is a loop (reconcile, a tick of watch) that takes the
// cluster lease only when it is about to push or has made a new
// generation: a converged cluster, the common case for cron and watch,
// costs one round trip per host and no lease. The lease is taken from
// reconcile.Options.BeforePush, before the inventory is saved or any host
// changed, and fenced against the inventory as loaded: a host holding a
// generation above it means another copy pushed since this loop observed,
// and the loop stops. Changes to the inventory alone (no new generation,
// no push: controller status, node bookkeeping) are saved under the
// inventory lock only.
type leaseOnPush struct {
	c     *cli.Context
	env   *Env
	inv   *inventory.Inventory
	fleet *playbooks.Fleet
	start time.Time // for --lock-wait
	fence reconcile.Fence
	end   func()
	err   error
}

func newLeaseOnPush(c *cli.Context, env *Env, inv *inventory.Inventory, fleet *playbooks.Fleet, start time.Time) *leaseOnPush {
	return &leaseOnPush{c: c, env: env, inv: inv, fleet: fleet, start: start, fence: reconcile.FenceOf(inv)}
}

// run runs one loop, taking the lease before its first push; losing the
// lease (or Ctrl-C) then ends ctx.
func (l *leaseOnPush) run(ctx context.Context, opts reconcile.Options) (*reconcile.Result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	take := func() error {
		end, err := takeLease(l.c, l.env, l.inv, l.fleet, leaseWait(l.c, l.start), l.fence)
		if err != nil {
			l.err = err
			return err
		}
		l.end = end
		session := l.c.Context
		context.AfterFunc(session, func() { cancel(context.Cause(session)) })
		return nil
	}
	next := opts.BeforePush
	opts.BeforePush = func() error {
		if err := take(); err != nil {
			return err
		}
		if next != nil {
			return next()
		}
		return nil
	}
	res, err := reconcile.Run(ctx, l.inv, l.fleet, opts)
	if l.err != nil {
		return nil, l.err // not wrapped in Run's "before pushing" words
	}
	// A new generation is only ever made under the lease, even when no
	// host could be pushed to: the caller saves it after this.
	if err == nil && res.Bumped && !opts.DryRun && l.end == nil {
		if err := take(); err != nil {
			return nil, err
		}
	}
	return res, err
}

// release gives the lease back if the loop took it.
func (l *leaseOnPush) release() {
	if l.end != nil {
		l.end()
		l.end = nil
	}
}

func lockCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "lock",
		Usage: "show or break the inventory lock and the cluster lease",
		Description: "Every command that changes the cluster holds the inventory lock (a flock on the\n" +
			"inventory file) and the cluster lease (on a majority of the hosts, renewed while it\n" +
			"runs, released at the end; it lapses by itself after " + playbooks.DefaultLeaseTTL.String() + " if its holder dies).",
		Subcommands: []*cli.Command{
			{
				Name:   "status",
				Usage:  "show who holds the inventory lock and the cluster lease, per host",
				Flags:  append([]cli.Flag{inventoryFlag(), outputFlag("json or yaml")}, sshFlags()...),
				Action: func(c *cli.Context) error { return runLockStatus(c, env) },
			},
			{
				Name:  "release",
				Usage: "release a cluster lease left by a clusterctl of yours that is gone (--force: anyone's)",
				Description: "Without --force, only leases held by this user on this workstation whose process is\n" +
					"no longer running are released. --force breaks the lease whoever holds it: a run\n" +
					"still holding it stops at its next renewal.",
				Flags: append([]cli.Flag{inventoryFlag(),
					&cli.BoolFlag{Name: "force", Usage: "release the lease whoever holds it"},
				}, sshFlags()...),
				Action: func(c *cli.Context) error { return runLockRelease(c, env) },
			},
		},
	}
}

// LockStatus is what `lock status -o json|yaml` prints.
type LockStatus struct {
	Inventory InventoryLock `json:"inventory" yaml:"inventory"`
	Cluster   ClusterLease  `json:"cluster" yaml:"cluster"`
	Hosts     []HostLease   `json:"hosts" yaml:"hosts"`
}

// InventoryLock is the local inventory lock.
type InventoryLock struct {
	File   string                `json:"file" yaml:"file"`
	Held   bool                  `json:"held" yaml:"held"`
	Holder *inventory.LockHolder `json:"holder,omitempty" yaml:"holder,omitempty"`
}

// ClusterLease is the cluster lease as the hosts report it: held when one
// holder has it on a majority of the hosts.
type ClusterLease struct {
	Held   bool   `json:"held" yaml:"held"`
	Holder string `json:"holder,omitempty" yaml:"holder,omitempty"` // the holder with the most hosts
	Hosts  int    `json:"hosts" yaml:"hosts"`                       // hosts where Holder has it
	Needed int    `json:"needed" yaml:"needed"`                     // a majority of the inventory's hosts
}

// HostLease is one host's share of the cluster lease.
type HostLease struct {
	Host string `json:"host" yaml:"host"`
	// State is held, expired (a record past its TTL: free), free, or
	// unknown (Error says why).
	State            string     `json:"state" yaml:"state"`
	Holder           string     `json:"holder,omitempty" yaml:"holder,omitempty"`
	Since            *time.Time `json:"since,omitempty" yaml:"since,omitempty"`
	ExpiresInSeconds *int64     `json:"expiresInSeconds,omitempty" yaml:"expiresInSeconds,omitempty"`
	Error            string     `json:"error,omitempty" yaml:"error,omitempty"`
}

func runLockStatus(c *cli.Context, env *Env) error {
	format := c.String("output")
	if format != "" && format != "json" && format != "yaml" {
		return withCode(ExitUsage, fmt.Errorf("lock status: unknown output format %q (json or yaml)", format))
	}
	path := inventoryPath(c, env)
	inv, err := loadInventory(path)
	if err != nil {
		return err
	}
	st := LockStatus{Inventory: inventoryLockStatus(c.Context, path)}
	fleet := playbooks.Connect(c.Context, inv.HostNames(), dialer(c, env, inv), c.Int("parallel"))
	defer fleet.Close()
	count := map[string]int{}
	unknown := 0
	for _, r := range fleet.ShowLeases(c.Context) {
		h := HostLease{Host: r.Host, State: "free"}
		switch {
		case r.Problem() != "":
			h.State, h.Error = "unknown", r.Problem()
			unknown++
		case r.Lease != nil:
			since := r.Lease.AcquiredAt
			secs := int64(r.ExpiresIn.Round(time.Second) / time.Second)
			h.Holder, h.Since, h.ExpiresInSeconds = r.Lease.Holder, &since, &secs
			h.State = "held"
			if r.Free() {
				h.State = "expired"
			} else {
				count[r.Lease.Holder]++
			}
		}
		st.Hosts = append(st.Hosts, h)
	}
	st.Cluster.Needed = playbooks.Quorum(len(inv.Hosts))
	for _, holder := range reconcile.SortedKeys(count) {
		if count[holder] > st.Cluster.Hosts {
			st.Cluster.Holder, st.Cluster.Hosts = holder, count[holder]
		}
	}
	st.Cluster.Held = st.Cluster.Hosts >= st.Cluster.Needed
	if format != "" {
		if err := printObject(env.Out, format, st); err != nil {
			return err
		}
	} else {
		printLockStatus(env, st, len(inv.Hosts))
	}
	if unknown > 0 {
		return withCode(ExitPartial, fmt.Errorf("%d hosts could not report their lease", unknown))
	}
	return nil
}

// inventoryLockStatus tries the inventory lock once to learn whether it is
// held (and lets go at once when it was free).
func inventoryLockStatus(ctx context.Context, path string) InventoryLock {
	l := InventoryLock{File: path + ".lock"}
	unlock, err := inventory.Lock(ctx, path, 0)
	var le *inventory.LockedError
	switch {
	case err == nil:
		unlock()
	case errors.As(err, &le):
		l.File, l.Held, l.Holder = le.LockFile, true, le.Holder
	}
	return l
}

func printLockStatus(env *Env, st LockStatus, hosts int) {
	local := "free"
	if st.Inventory.Held {
		local = "held"
		if st.Inventory.Holder != nil {
			local = "held by " + st.Inventory.Holder.String()
		}
	}
	fmt.Fprintf(env.Out, "inventory lock: %s (%s)\n", local, st.Inventory.File)
	switch cl := st.Cluster; {
	case cl.Held:
		fmt.Fprintf(env.Out, "cluster lease:  held by %s on %d of %d hosts\n", cl.Holder, cl.Hosts, hosts)
	case cl.Holder != "":
		fmt.Fprintf(env.Out, "cluster lease:  not held (%s has %d of %d hosts, %d needed: a run taking it, or one that lost it)\n",
			cl.Holder, cl.Hosts, hosts, cl.Needed)
	default:
		fmt.Fprintln(env.Out, "cluster lease:  free")
	}
	tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tLEASE\tHOLDER\tSINCE\tEXPIRES")
	for _, h := range st.Hosts {
		since, expires := "-", "-"
		if h.Since != nil {
			since = h.Since.Local().Format(time.DateTime)
		}
		if h.ExpiresInSeconds != nil {
			if d := time.Duration(*h.ExpiresInSeconds) * time.Second; d > 0 {
				expires = "in " + d.String()
			} else {
				expires = (-d).String() + " ago"
			}
		}
		state := h.State
		if h.Error != "" {
			state += ": " + h.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Host, state, dash(h.Holder), since, expires)
	}
	tw.Flush()
}

func runLockRelease(c *cli.Context, env *Env) error {
	path := inventoryPath(c, env)
	inv, err := loadInventory(path)
	if err != nil {
		return err
	}
	if l := inventoryLockStatus(c.Context, path); l.Held {
		holder := "another process"
		if l.Holder != nil {
			holder = l.Holder.String()
		}
		fmt.Fprintf(env.Err, "note: the inventory lock %s is held by %s; it ends when that process exits\n", l.File, holder)
	}
	fleet := playbooks.Connect(c.Context, inv.HostNames(), dialer(c, env, inv), c.Int("parallel"))
	defer fleet.Close()
	force := c.Bool("force")
	var results []playbooks.HostLease
	kept := map[string]string{}
	if force {
		results = fleet.ReleaseLeases(c.Context, inv.HostNames(), "", true)
	} else {
		byHolder := map[string][]string{}
		for _, r := range fleet.ShowLeases(c.Context) {
			switch {
			case r.Problem() != "":
				results = append(results, r)
			case r.Lease == nil:
			case ownDeadHolder(r.Lease.Holder, kept, r.Host):
				byHolder[r.Lease.Holder] = append(byHolder[r.Lease.Holder], r.Host)
			}
		}
		for _, holder := range reconcile.SortedKeys(byHolder) {
			for _, r := range fleet.ReleaseLeases(c.Context, byHolder[holder], holder, false) {
				if r.Released {
					r.Lease = &playbooks.LeaseRecord{Holder: holder} // say whose
				}
				results = append(results, r)
			}
		}
	}
	failed := 0
	for _, r := range results {
		switch {
		case r.Problem() != "":
			failed++
			fmt.Fprintf(env.Err, "%s: %s\n", r.Host, r.Problem())
		case r.Released && r.Lease != nil:
			fmt.Fprintf(env.Out, "%s: released the lease of %s\n", r.Host, r.Lease.Holder)
		case r.Released:
			fmt.Fprintf(env.Out, "%s: lease released\n", r.Host)
		case r.Refused:
			kept[r.Host] = "taken by another holder meanwhile"
		}
	}
	for _, h := range reconcile.SortedKeys(kept) {
		fmt.Fprintf(env.Err, "%s: kept: %s\n", h, kept[h])
	}
	switch {
	case failed > 0:
		return withCode(ExitPartial, fmt.Errorf("%d hosts could not be reached", failed))
	case len(kept) > 0:
		return withCode(ExitConflict, fmt.Errorf("%d hosts keep a lease that is not yours to release: `clusterctl lock release --force` breaks it", len(kept)))
	}
	return nil
}

// ownDeadHolder reports whether a lease holder is this user on this
// workstation and its process is gone; otherwise it records in kept why
// the lease stays.
func ownDeadHolder(holder string, kept map[string]string, host string) bool {
	who, pid, ok := parseHolder(holder)
	switch {
	case !ok || who != writer():
		kept[host] = "held by " + holder + ", not by " + writer()
		return false
	case processAlive(pid):
		kept[host] = fmt.Sprintf("held by %s, a clusterctl still running here (pid %d): stop it, or use --force", holder, pid)
		return false
	}
	return true
}

// processAlive reports whether pid runs on this machine.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
