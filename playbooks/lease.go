package playbooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/remote"
)

// The cluster lease: a mutating clusterctl run holds it on a strict
// majority of the inventory's hosts, so two runs (from two copies of the
// inventory, on two workstations, even partitioned from each other) never
// change the cluster at once. Each host keeps its share in agentlet's state
// directory (`agentlet lease`), granted under a flock and expiring by the
// host's own clock; the run renews it while it lasts and releases it at the
// end. Taking it is folded into the status observation: one round trip per
// host both takes the lease and observes.

// DefaultLeaseTTL is how long a host's share of the lease lasts without
// renewal. A run renews every third of it; a crashed run blocks others for
// at most this long (or until `clusterctl lock release --force`).
const DefaultLeaseTTL = 60 * time.Second

// exitLeaseHeld is agentlet's exit code for a refused lease command
// (agentlet.ExitLeaseHeld).
const exitLeaseHeld = 6

// LeaseRecord is a host's lease record (agentlet.Lease on the wire).
type LeaseRecord struct {
	Holder     string    `json:"holder"`
	AcquiredAt time.Time `json:"acquiredAt"`
	RenewedAt  time.Time `json:"renewedAt"`
	TTLMillis  int64     `json:"ttlMillis"`
}

// HeldSpec identifies the NodeSpec a host holds (agentlet.HeldSpec on the
// wire): what fencing compares with the inventory.
type HeldSpec struct {
	Generation    int64     `json:"generation"`
	Writer        string    `json:"writer,omitempty"`
	WrittenAt     time.Time `json:"writtenAt"`
	ContentSHA256 string    `json:"contentSHA256"`
}

// leaseReport is what `agentlet lease` prints (agentlet.LeaseReport).
type leaseReport struct {
	Granted  bool            `json:"granted"`
	Released bool            `json:"released,omitempty"`
	Lease    *LeaseRecord    `json:"lease,omitempty"`
	Now      time.Time       `json:"now"`
	Spec     *HeldSpec       `json:"spec,omitempty"`
	Status   json.RawMessage `json:"status,omitempty"`
}

// HostLease is one host's answer to a lease command.
type HostLease struct {
	Host    string
	Granted bool
	// Lease is the host's record after the command: the holder when an
	// acquire was refused; nil when the lease is free there.
	Lease *LeaseRecord
	// ExpiresIn is how long Lease lasts, by the host's clock (≤ 0: lapsed).
	ExpiresIn time.Duration
	// Released: a release removed the host's lease record.
	Released bool
	// Refused: the command was refused because the lease is someone
	// else's there (agentlet exit 6: a renewal or release); the holder is
	// not known then.
	Refused bool
	// Spec is the NodeSpec the host holds (acquire only).
	Spec *HeldSpec
	// NoAgentlet: agentlet is not installed (`clusterctl up` first).
	NoAgentlet bool
	// Unsupported: the host's agentlet predates the lease (`up` upgrades it).
	Unsupported bool
	// Err is the connection or command error.
	Err error
}

// Free reports whether nobody holds an unexpired lease on the host.
func (h HostLease) Free() bool { return h.Lease == nil || h.ExpiresIn <= 0 }

// Problem says why a host did not answer a lease command ("" when it did).
func (h HostLease) Problem() string {
	switch {
	case h.Err != nil:
		return h.Err.Error()
	case h.NoAgentlet:
		return "agentlet is not installed (run clusterctl up)"
	case h.Unsupported:
		return "agentlet predates the cluster lease (run clusterctl up to upgrade it)"
	}
	return ""
}

// LeaseOptions configure taking the cluster lease.
type LeaseOptions struct {
	// Holder names this run: "user@workstation (pid N, run ID)".
	Holder string
	// TTL is how long each host's share lasts without renewal
	// (DefaultLeaseTTL when 0).
	TTL time.Duration
	// Wait is how long to keep trying while another run holds the lease:
	// 0 tries once, a negative Wait tries until ctx ends.
	Wait time.Duration
	// SkipMissing leaves hosts without a lease-capable agentlet out of the
	// majority (for `up`, which installs or upgrades agentlet, and
	// `reset`); otherwise they count as hosts that did not grant it.
	SkipMissing bool
	// OnLost is called once, from the renewal goroutine, when renewals no
	// longer reach a majority (the lease was broken or the hosts are gone).
	OnLost func(error)
}

// LeaseTally is the outcome of one round of acquisition.
type LeaseTally struct {
	Granted  []string // hosts that granted it
	Eligible int      // hosts the majority is counted over
	Needed   int      // a strict majority of Eligible
}

// Won reports whether the round reached a majority.
func (t LeaseTally) Won() bool { return len(t.Granted) >= t.Needed }

// Quorum is the strict majority of n hosts.
func Quorum(n int) int { return n/2 + 1 }

// TallyLease counts one round: the hosts that granted the lease against a
// strict majority of the eligible hosts (all of them, or with SkipMissing
// those with a lease-capable agentlet or not reachable to tell). With no
// eligible host there is nothing to hold the lease on and nothing to
// protect: the round is won with no grants.
func TallyLease(results []HostLease, skipMissing bool) LeaseTally {
	t := LeaseTally{}
	for _, r := range results {
		if skipMissing && (r.NoAgentlet || r.Unsupported) {
			continue
		}
		t.Eligible++
		if r.Granted {
			t.Granted = append(t.Granted, r.Host)
		}
	}
	t.Needed = Quorum(t.Eligible)
	if t.Eligible == 0 {
		t.Needed = 0
	}
	return t
}

// LeaseError is the cluster lease not taken: another run holds it, or too
// few hosts answered. Nothing was changed.
type LeaseError struct {
	// Holder is the other run holding the most hosts ("" when the lease is
	// free everywhere but too few hosts could grant it).
	Holder    string
	Since     time.Time     // when Holder took it (its hosts' clocks)
	ExpiresIn time.Duration // the longest of its hosts' shares
	HeldOn    []string      // hosts where Holder has it
	Tally     LeaseTally
	// Problems are hosts that could not answer, with why.
	Problems map[string]string
	Waited   time.Duration
}

func (e *LeaseError) Error() string {
	var b strings.Builder
	if e.Holder != "" {
		fmt.Fprintf(&b, "cluster lease held by %s since %s, expires in %s (on %s)", e.Holder, clockTime(e.Since),
			max(e.ExpiresIn, 0).Round(time.Second), strings.Join(e.HeldOn, ", "))
	} else {
		fmt.Fprintf(&b, "cluster lease not taken: %d of %d hosts granted it, %d needed", len(e.Tally.Granted), e.Tally.Eligible, e.Tally.Needed)
	}
	if e.Waited >= 100*time.Millisecond {
		fmt.Fprintf(&b, "; waited %s", e.Waited.Round(100*time.Millisecond))
	}
	for _, h := range sortedKeys(e.Problems) {
		fmt.Fprintf(&b, "; %s: %s", h, e.Problems[h])
	}
	return b.String()
}

// clockTime shows a time of day, with the date when it is not today.
func clockTime(t time.Time) string {
	t = t.Local()
	if t.Format(time.DateOnly) == time.Now().Format(time.DateOnly) {
		return t.Format(time.TimeOnly)
	}
	return t.Format(time.DateTime)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// leaseError describes a lost round: the other holder with the most hosts.
func leaseError(results []HostLease, t LeaseTally, waited time.Duration) *LeaseError {
	e := &LeaseError{Tally: t, Waited: waited, Problems: map[string]string{}}
	type held struct {
		hosts     []string
		since     time.Time
		expiresIn time.Duration
	}
	by := map[string]*held{}
	for _, r := range results {
		if p := r.Problem(); p != "" {
			e.Problems[r.Host] = p
			continue
		}
		if r.Granted || r.Free() {
			continue
		}
		h := by[r.Lease.Holder]
		if h == nil {
			h = &held{since: r.Lease.AcquiredAt}
			by[r.Lease.Holder] = h
		}
		h.hosts = append(h.hosts, r.Host)
		h.expiresIn = max(h.expiresIn, r.ExpiresIn)
		if r.Lease.AcquiredAt.Before(h.since) {
			h.since = r.Lease.AcquiredAt
		}
	}
	for _, name := range sortedKeys(by) {
		if h := by[name]; e.Holder == "" || len(h.hosts) > len(e.HeldOn) {
			e.Holder, e.HeldOn, e.Since, e.ExpiresIn = name, h.hosts, h.since, h.expiresIn
		}
	}
	return e
}

// leaseClock is time for the acquisition loop; tests pass a fake.
type leaseClock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
	// Jitter returns a factor in [0.5, 1.5).
	Jitter() float64
}

type realClock struct{}

func (realClock) Now() time.Time  { return time.Now() }
func (realClock) Jitter() float64 { return 0.5 + rand.Float64() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Back-off between acquisition rounds: doubling from leaseRetryMin up to
// leaseRetryMax, each jittered by ±50% so that two runs that collided
// (each holding a minority) do not collide again in step.
const (
	leaseRetryMin = 100 * time.Millisecond
	leaseRetryMax = 2 * time.Second
)

// LeaseBackoff is the pause before acquisition round attempt+1 (attempt
// counts from 0), for a jitter factor in [0.5, 1.5).
func LeaseBackoff(attempt int, jitter float64) time.Duration {
	d := leaseRetryMin
	for i := 0; i < attempt && d < leaseRetryMax; i++ {
		d *= 2
	}
	return time.Duration(float64(min(d, leaseRetryMax)) * jitter)
}

// retryLease runs rounds until one wins, the wait runs out (a last round
// is tried at the deadline) or ctx ends. round returns the tally and the
// error to report if it is the last.
func retryLease(ctx context.Context, wait time.Duration, clock leaseClock, round func(ctx context.Context, waited time.Duration) (LeaseTally, error)) (LeaseTally, error) {
	start := clock.Now()
	for attempt := 0; ; attempt++ {
		t, err := round(ctx, clock.Now().Sub(start))
		if err == nil || wait == 0 {
			return t, err
		}
		var le *LeaseError
		if !errors.As(err, &le) {
			return t, err
		}
		pause := LeaseBackoff(attempt, clock.Jitter())
		if wait > 0 {
			left := start.Add(wait).Sub(clock.Now())
			if left <= 0 {
				return t, err
			}
			pause = min(pause, left)
		}
		if serr := clock.Sleep(ctx, pause); serr != nil {
			return t, err
		}
	}
}

// Lease commands on a host. Holders are quoted for the remote shell.
func leaseAcquireCmd(holder string, ttl time.Duration, renew, status bool) string {
	cmd := fmt.Sprintf("%s lease acquire --holder %s --ttl %s", nodeapi.BinaryPath, shellQuote(holder), ttl)
	if renew {
		cmd += " --renew"
	}
	if status {
		cmd += " --status"
	}
	return ifInstalled(cmd)
}

func leaseReleaseCmd(holder string, force bool) string {
	cmd := nodeapi.BinaryPath + " lease release"
	if holder != "" {
		cmd += " --holder " + shellQuote(holder)
	}
	if force {
		cmd += " --force"
	}
	return ifInstalled(cmd)
}

func leaseShowCmd() string { return ifInstalled(nodeapi.BinaryPath + " lease show") }

// ifInstalled runs an agentlet command, or exits 127 without agentlet.
func ifInstalled(cmd string) string {
	return fmt.Sprintf("if [ -x %s ]; then exec %s; else exit 127; fi", nodeapi.BinaryPath, cmd)
}

// runLease runs one lease command on a host and decodes its report. A
// refusal (exit 6) of a command without --status is a HostLease with
// Refused set and no Err; its report is lost with the exit code.
func runLease(ctx context.Context, name string, h Host, cmd string) (HostLease, json.RawMessage) {
	hl := HostLease{Host: name}
	out, err := h.Run(ctx, cmd, nil)
	var ce *remote.CommandError
	switch {
	case errors.As(err, &ce) && ce.ExitCode == 127:
		hl.NoAgentlet = true
		return hl, nil
	case errors.As(err, &ce) && ce.ExitCode == 2 && strings.Contains(ce.Stderr, `unknown command "lease"`):
		hl.Unsupported = true
		return hl, nil
	case errors.As(err, &ce) && ce.ExitCode == exitLeaseHeld:
		hl.Refused = true
		return hl, nil
	case err != nil:
		hl.Err = err
		return hl, nil
	}
	var rep leaseReport
	if err := json.Unmarshal(out, &rep); err != nil {
		hl.Err = fmt.Errorf("decode lease report from %s: %w", name, err)
		return hl, nil
	}
	hl.Granted, hl.Released, hl.Lease, hl.Spec = rep.Granted, rep.Released, rep.Lease, rep.Spec
	if rep.Lease != nil {
		hl.ExpiresIn = rep.Lease.RenewedAt.Add(time.Duration(rep.Lease.TTLMillis) * time.Millisecond).Sub(rep.Now)
	}
	return hl, rep.Status
}

// conn returns the live connection to a host, or why there is none.
func (f *Fleet) conn(name string) (Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs[name]; err != nil {
		return nil, err
	}
	h, ok := f.conns[name]
	if !ok {
		return nil, fmt.Errorf("no connection to %s", name)
	}
	return h, nil
}

// onHosts runs one lease command on each of hosts in parallel.
func (f *Fleet) onHosts(ctx context.Context, hosts []string, cmd func(name string) string) []HostLease {
	res := make([]HostLease, len(hosts))
	forEach(ctx, hosts, f.parallel, func(ctx context.Context, i int, name string) {
		h, err := f.conn(name)
		if err != nil {
			res[i] = HostLease{Host: name, Err: err}
			return
		}
		res[i], _ = runLease(ctx, name, h, cmd(name))
	})
	return res
}

// ShowLeases reads every host's lease record.
func (f *Fleet) ShowLeases(ctx context.Context) []HostLease {
	return f.onHosts(ctx, f.hosts, func(string) string { return leaseShowCmd() })
}

// ReleaseLeases releases the lease on the given hosts: the holder's
// (Refused when someone else holds it there), or whoever's with force.
func (f *Fleet) ReleaseLeases(ctx context.Context, hosts []string, holder string, force bool) []HostLease {
	return f.onHosts(ctx, hosts, func(string) string { return leaseReleaseCmd(holder, force) })
}

// ClusterLease is the cluster lease, held on a majority of the hosts.
type ClusterLease struct {
	fleet  *Fleet
	opts   LeaseOptions
	needed int

	mu       sync.Mutex
	granted  []string
	lost     error
	released bool
	stop     context.CancelFunc // ends the renewals
	done     chan struct{}      // closed when they have ended
}

// Holder names the holder of the lease.
func (l *ClusterLease) Holder() string { return l.opts.Holder }

// Hosts are the hosts where the lease is held.
func (l *ClusterLease) Hosts() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.granted...)
}

// Lost is why the lease was lost while held, or nil.
func (l *ClusterLease) Lost() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// AcquireLease takes the cluster lease on a strict majority of the fleet's
// hosts, in parallel, observing every host in the same round trip: the
// next Observe returns these observations, and HeldSpec what each host
// holds. A round short of a majority releases what it took and, while
// opts.Wait allows, tries again after a jittered back-off; then it fails
// with a *LeaseError. The lease is renewed in the background every third
// of its TTL until Release.
func (f *Fleet) AcquireLease(ctx context.Context, opts LeaseOptions) (*ClusterLease, error) {
	return f.acquireLease(ctx, opts, realClock{})
}

func (f *Fleet) acquireLease(ctx context.Context, opts LeaseOptions, clock leaseClock) (*ClusterLease, error) {
	if opts.TTL <= 0 {
		opts.TTL = DefaultLeaseTTL
	}
	tally, err := retryLease(ctx, opts.Wait, clock, func(ctx context.Context, waited time.Duration) (LeaseTally, error) {
		results, obs := f.acquireRound(ctx, opts)
		t := TallyLease(results, opts.SkipMissing)
		if t.Won() {
			f.mu.Lock()
			f.cached, f.cachedAt = obs, time.Now()
			f.mu.Unlock()
			return t, nil
		}
		if len(t.Granted) > 0 {
			f.ReleaseLeases(context.WithoutCancel(ctx), t.Granted, opts.Holder, false)
		}
		if err := ctx.Err(); err != nil {
			return t, fmt.Errorf("take the cluster lease: %w", err)
		}
		return t, leaseError(results, t, waited)
	})
	if err != nil {
		return nil, err
	}
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l := &ClusterLease{fleet: f, opts: opts, needed: tally.Needed, granted: tally.Granted, stop: stop, done: make(chan struct{})}
	go l.keep(kctx, opts.TTL/3)
	return l, nil
}

// acquireRound asks every host for the lease and its status in one round
// trip each and records what each holds (HeldSpec). It returns the
// observations too when every host answered as `agentlet status` would
// have (nil otherwise): a won round leaves them for the next Observe.
func (f *Fleet) acquireRound(ctx context.Context, opts LeaseOptions) ([]HostLease, []Observation) {
	results := make([]HostLease, len(f.hosts))
	obs := make([]Observation, len(f.hosts))
	clean := make([]bool, len(f.hosts))
	cmd := leaseAcquireCmd(opts.Holder, opts.TTL, false, true)
	forEach(ctx, f.hosts, f.parallel, func(ctx context.Context, i int, name string) {
		start := time.Now()
		obs[i] = Observation{Host: name}
		defer func() { obs[i].Elapsed = time.Since(start) }()
		h, err := f.conn(name)
		if err != nil {
			results[i] = HostLease{Host: name, Err: err}
			obs[i].Err, clean[i] = err, true
			return
		}
		var status json.RawMessage
		results[i], status = runLease(ctx, name, h, cmd)
		r := results[i]
		switch {
		case r.NoAgentlet:
			clean[i] = true
		case r.Err == nil && !r.Unsupported && status != nil:
			obs[i].Installed = true
			obs[i].Status, obs[i].Err = nodeapi.DecodeNodeStatus(status)
			clean[i] = true
		}
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held == nil {
		f.held = map[string]HeldSpec{}
	}
	for _, r := range results {
		if r.Spec != nil {
			f.held[r.Host] = *r.Spec
		} else if r.Err == nil && !r.Unsupported {
			delete(f.held, r.Host)
		}
	}
	f.cached, f.cachedAt = nil, time.Time{}
	for _, c := range clean {
		if !c {
			return results, nil
		}
	}
	return results, obs
}

// keep renews the lease every interval until ctx ends (Release).
func (l *ClusterLease) keep(ctx context.Context, interval time.Duration) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, interval)
		err := l.Renew(rctx)
		cancel()
		if ctx.Err() != nil {
			return // released meanwhile: not lost
		}
		if err != nil {
			if l.opts.OnLost != nil {
				l.opts.OnLost(err)
			}
			return
		}
	}
}

// LostError is the cluster lease gone while a run held it.
type LostError struct {
	Renewed []string          // hosts that still granted it
	Needed  int               // a majority
	Hosts   map[string]string // the others, with why
}

func (e *LostError) Error() string {
	var parts []string
	for _, h := range sortedKeys(e.Hosts) {
		parts = append(parts, h+": "+e.Hosts[h])
	}
	return fmt.Sprintf("cluster lease lost: renewed on %d hosts, %d needed (%s)", len(e.Renewed), e.Needed, strings.Join(parts, "; "))
}

// Renew extends the lease on the hosts that hold it for us. Hosts that no
// longer do (released with --force, or taken after expiry) drop out; when
// fewer than a majority renew, the lease is lost (*LostError) and no
// longer renewed.
func (l *ClusterLease) Renew(ctx context.Context) error {
	l.mu.Lock()
	if l.lost != nil {
		l.mu.Unlock()
		return l.lost
	}
	hosts := append([]string(nil), l.granted...)
	l.mu.Unlock()
	if l.needed == 0 {
		return nil
	}
	cmd := leaseAcquireCmd(l.opts.Holder, l.opts.TTL, true, false)
	res := l.fleet.onHosts(ctx, hosts, func(string) string { return cmd })
	lost := &LostError{Needed: l.needed, Hosts: map[string]string{}}
	var keep []string
	for _, r := range res {
		switch {
		case r.Granted, r.NoAgentlet, r.Unsupported:
			// Without a lease-capable agentlet (`reset` removed it) nobody
			// can take the lease there either.
			lost.Renewed = append(lost.Renewed, r.Host)
			keep = append(keep, r.Host)
		case r.Err != nil:
			lost.Hosts[r.Host] = r.Err.Error()
			keep = append(keep, r.Host) // may still be ours: release it at the end
		default:
			lost.Hosts[r.Host] = "no longer held by this run (released with --force, or expired and taken)"
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.granted = keep
	if len(lost.Renewed) < l.needed {
		l.lost = lost
		return lost
	}
	return nil
}

// Release stops the renewals and gives the lease back on every host that
// holds it for us, in parallel. Hosts where it is someone else's by now are
// left alone. It is safe to call more than once.
func (l *ClusterLease) Release(ctx context.Context) error {
	l.stop()
	<-l.done
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	hosts := append([]string(nil), l.granted...)
	l.granted, l.released = nil, true
	l.mu.Unlock()
	var errs []error
	for _, r := range l.fleet.ReleaseLeases(ctx, hosts, l.opts.Holder, false) {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("release the cluster lease on %s: %w", r.Host, r.Err))
		}
	}
	return errors.Join(errs...)
}
