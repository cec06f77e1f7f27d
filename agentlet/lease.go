package agentlet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// The cluster lease: who may change the cluster right now. Each host keeps
// its own record (lease.json in the state directory), changed only by the
// `agentlet lease` commands under the state directory's flock, so two SSH
// sessions can never both be granted it. The CLI holds the cluster lease
// when a strict majority of the inventory's hosts granted it. Expiry is
// judged by each host's own clock; the CLI never compares clocks.

// ExitLeaseHeld is the exit code of `agentlet lease acquire` when another
// holder has the lease (or `--renew` finds it no longer ours), and of
// `agentlet lease release` when the lease belongs to someone else. Nothing
// was changed.
const ExitLeaseHeld = 6

// LeaseFileName is the lease record's name in the state directory.
const LeaseFileName = "lease.json"

// LeasePath is the lease record under Root.
func (p Paths) LeasePath() string { return filepath.Join(p.StateDir(), LeaseFileName) }

// Lease is the record of who holds a host's share of the cluster lease.
type Lease struct {
	// Holder names the holder: "user@workstation (pid N, run ID)".
	Holder     string    `json:"holder"`
	AcquiredAt time.Time `json:"acquiredAt"`
	RenewedAt  time.Time `json:"renewedAt"`
	TTLMillis  int64     `json:"ttlMillis"`
}

// ExpiresAt is when the lease lapses unless renewed.
func (l *Lease) ExpiresAt() time.Time {
	return l.RenewedAt.Add(time.Duration(l.TTLMillis) * time.Millisecond)
}

// Expired reports whether the lease has lapsed at now.
func (l *Lease) Expired(now time.Time) bool { return !now.Before(l.ExpiresAt()) }

// HeldSpec identifies the NodeSpec a host holds, for fencing: the CLI
// compares it with its inventory before it changes anything.
type HeldSpec struct {
	Generation int64     `json:"generation"`
	Writer     string    `json:"writer,omitempty"`
	WrittenAt  time.Time `json:"writtenAt"`
	// ContentSHA256 is nodeapi.ContentSHA256 of the held spec.
	ContentSHA256 string `json:"contentSHA256"`
}

// LeaseReport is what every `agentlet lease` command prints (one JSON
// object), whether or not it was granted.
type LeaseReport struct {
	// Granted: acquire or renew succeeded, the caller holds the lease.
	Granted bool `json:"granted"`
	// Released: release removed a lease.
	Released bool `json:"released,omitempty"`
	// Lease is the record after the command; nil when the lease is free.
	// When an acquire is refused it names the current holder.
	Lease *Lease `json:"lease,omitempty"`
	// Now is the host's clock when the command decided: expiry is
	// Lease.ExpiresAt() − Now, by the host's clock alone.
	Now time.Time `json:"now"`
	// Spec is the NodeSpec the host holds (acquire only; nil for none).
	Spec *HeldSpec `json:"spec,omitempty"`
	// Status is the node's status (acquire --status only), as `agentlet
	// status` prints it: one round trip both takes the lease and observes.
	Status json.RawMessage `json:"status,omitempty"`
}

// GrantLease decides an acquire (renew false) or a renewal (renew true) of
// the lease by holder at now. An acquire is granted when the lease is free,
// expired or already the holder's; a renewal only when the record still
// names the holder (a lease broken with release --force stays broken).
// AcquiredAt is kept across renewals and re-acquires by the same holder.
func GrantLease(cur *Lease, holder string, ttl time.Duration, now time.Time, renew bool) (*Lease, bool) {
	mine := cur != nil && cur.Holder == holder
	if !mine && (renew || (cur != nil && !cur.Expired(now))) {
		return cur, false
	}
	next := &Lease{Holder: holder, AcquiredAt: now, RenewedAt: now, TTLMillis: ttl.Milliseconds()}
	if mine {
		next.AcquiredAt = cur.AcquiredAt
	}
	return next, true
}

// NotHolderError is a release refused because the lease belongs to someone
// else.
type NotHolderError struct {
	Holder string // who holds it
	Caller string // who asked to release
}

func (e *NotHolderError) Error() string {
	return fmt.Sprintf("refuse to release the lease held by %s: it is not held by %s (use --force to break it)", e.Holder, e.Caller)
}

// RevokeLease decides a release: the holder's own lease, or any with force.
// Releasing a free lease is a no-op.
func RevokeLease(cur *Lease, holder string, force bool) (next *Lease, released bool, err error) {
	switch {
	case cur == nil:
		return nil, false, nil
	case force || cur.Holder == holder:
		return nil, true, nil
	}
	return cur, false, &NotHolderError{Holder: cur.Holder, Caller: holder}
}

// LeaseHeldError is an acquire refused because another holder has the
// lease (or a renewal found it gone). The report is still printed.
type LeaseHeldError struct{ Report LeaseReport }

func (e *LeaseHeldError) Error() string {
	if e.Report.Lease == nil {
		return "the lease is no longer held by the caller (released or broken)"
	}
	l := e.Report.Lease
	return fmt.Sprintf("the lease is held by %s since %s, expires in %s", l.Holder,
		l.AcquiredAt.UTC().Format(time.RFC3339), l.ExpiresAt().Sub(e.Report.Now).Round(time.Second))
}

// LeaseStore reads and changes a host's lease record under the state
// directory's flock (the one `agentlet apply` takes), so lease commands and
// applies on one host never interleave.
type LeaseStore struct {
	Paths Paths
	Now   func() time.Time
}

// Acquire takes or renews the lease for holder (GrantLease) and reports it
// with the held NodeSpec. A refusal is a *LeaseHeldError carrying the report.
func (s LeaseStore) Acquire(holder string, ttl time.Duration, renew bool) (LeaseReport, error) {
	var rep LeaseReport
	err := s.locked(func(cur *Lease, now time.Time) error {
		next, granted := GrantLease(cur, holder, ttl, now, renew)
		rep = LeaseReport{Granted: granted, Lease: next, Now: now, Spec: s.heldSpec()}
		if !granted {
			return &LeaseHeldError{Report: rep}
		}
		return s.write(next)
	})
	return rep, err
}

// Release removes the lease when holder holds it, or whoever does with
// force (RevokeLease).
func (s LeaseStore) Release(holder string, force bool) (LeaseReport, error) {
	var rep LeaseReport
	err := s.locked(func(cur *Lease, now time.Time) error {
		next, released, err := RevokeLease(cur, holder, force)
		rep = LeaseReport{Released: released, Lease: next, Now: now}
		if err != nil || !released {
			return err
		}
		if err := os.Remove(s.Paths.LeasePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove lease: %w", err)
		}
		return nil
	})
	return rep, err
}

// Show reports the lease as it stands (an expired one included).
func (s LeaseStore) Show() (LeaseReport, error) {
	var rep LeaseReport
	err := s.locked(func(cur *Lease, now time.Time) error {
		rep = LeaseReport{Lease: cur, Now: now}
		return nil
	})
	return rep, err
}

// locked runs fn with the current lease under the state directory's lock.
func (s LeaseStore) locked(fn func(cur *Lease, now time.Time) error) error {
	dir := s.Paths.StateDir()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create state directory: %w", err)
	}
	unlock, err := lockDir(dir, 10*time.Second)
	if err != nil {
		return fmt.Errorf("lock lease: %w", err)
	}
	defer unlock()
	cur, err := readLease(s.Paths.LeasePath())
	if err != nil {
		return err
	}
	return fn(cur, s.Now())
}

// readLease reads the lease record; nil when there is none. A record that
// is not a lease (a torn write after a crash) counts as free: leases are
// advisory and expire anyway.
func readLease(path string) (*Lease, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lease: %w", err)
	}
	var l Lease
	if json.Unmarshal(data, &l) != nil || l.Holder == "" {
		return nil, nil
	}
	return &l, nil
}

func (s LeaseStore) write(l *Lease) error {
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode lease: %w", err)
	}
	// No directory fsync: a lease lost in a host crash is a free lease,
	// which is what a rebooted host should offer anyway.
	if err := writeAtomic(s.Paths.LeasePath(), append(data, '\n'), 0o600, false); err != nil {
		return fmt.Errorf("write lease: %w", err)
	}
	return nil
}

// heldSpec summarises the NodeSpec on disk (nil when there is none or it
// is unreadable). It decodes leniently, as fencing in Apply does.
func (s LeaseStore) heldSpec() *HeldSpec {
	raw, err := os.ReadFile(s.Paths.SpecPath())
	if err != nil {
		return nil
	}
	spec := lenientSpec(raw)
	if spec == nil {
		return nil
	}
	return &HeldSpec{Generation: spec.Generation, Writer: spec.Writer, WrittenAt: spec.WrittenAt,
		ContentSHA256: nodeapi.ContentSHA256(spec)}
}

const leaseUsage = `usage: agentlet lease COMMAND [flags]

commands:
  acquire --holder H --ttl DUR [--renew] [--status]
                 take (or renew) the cluster lease; exits 6 when another holder has it
  release --holder H [--force]
                 give the lease back; exits 6 when someone else holds it (unless --force)
  show           print the lease

Each prints one JSON object (the lease report).
`

func leaseCmd(env Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.Err, leaseUsage)
		return &usageError{errors.New("lease: a command is required")}
	}
	switch args[0] {
	case "acquire":
		return leaseAcquireCmd(env, args[1:])
	case "release":
		return leaseReleaseCmd(env, args[1:])
	case "show":
		return leaseShowCmd(env, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(env.Out, leaseUsage)
		return nil
	}
	return &usageError{fmt.Errorf("lease: unknown command %q", args[0])}
}

func leaseAcquireCmd(env Env, args []string) error {
	fs := newFlags(env, "lease acquire")
	root := rootFlag(fs)
	holder := fs.String("holder", "", "who takes the lease (required)")
	ttl := fs.Duration("ttl", 0, "how long the lease lasts without renewal (required)")
	renew := fs.Bool("renew", false, "only extend a lease the holder still has (never take a free one)")
	withStatus := fs.Bool("status", false, "also print the node status in the report, and exit 0 when refused (the report says granted=false)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *holder == "" || *ttl <= 0 {
		return &usageError{errors.New("lease acquire: --holder and a positive --ttl are required")}
	}
	paths := Paths{Root: *root}
	rep, err := LeaseStore{Paths: paths, Now: time.Now}.Acquire(*holder, *ttl, *renew)
	var held *LeaseHeldError
	if err != nil && !errors.As(err, &held) {
		return err
	}
	if *withStatus {
		r := StatusReader{Paths: paths, ProcRoot: "/proc", Now: time.Now,
			Facts: func() (HostFacts, error) { return ReadHostFacts(HostPaths{}) }}
		st, serr := r.Read()
		if serr != nil {
			return serr
		}
		data, serr := json.Marshal(st)
		if serr != nil {
			return fmt.Errorf("encode status: %w", serr)
		}
		rep.Status = data
		err = nil // the report says whether it was granted
	}
	if perr := printLeaseReport(env, rep); perr != nil {
		return perr
	}
	return refusal(env, "lease acquire", err)
}

func leaseReleaseCmd(env Env, args []string) error {
	fs := newFlags(env, "lease release")
	root := rootFlag(fs)
	holder := fs.String("holder", "", "who gives the lease back")
	force := fs.Bool("force", false, "release the lease whoever holds it")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *holder == "" && !*force {
		return &usageError{errors.New("lease release: --holder (or --force) is required")}
	}
	rep, err := LeaseStore{Paths: Paths{Root: *root}, Now: time.Now}.Release(*holder, *force)
	var nh *NotHolderError
	if err != nil && !errors.As(err, &nh) {
		return err
	}
	if perr := printLeaseReport(env, rep); perr != nil {
		return perr
	}
	return refusal(env, "lease release", err)
}

func leaseShowCmd(env Env, args []string) error {
	fs := newFlags(env, "lease show")
	root := rootFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	rep, err := LeaseStore{Paths: Paths{Root: *root}, Now: time.Now}.Show()
	if err != nil {
		return err
	}
	return printLeaseReport(env, rep)
}

func printLeaseReport(env Env, rep LeaseReport) error {
	data, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode lease report: %w", err)
	}
	var buf bytes.Buffer
	buf.Write(data)
	buf.WriteByte('\n')
	_, err = env.Out.Write(buf.Bytes())
	return err
}

// refusal turns a refused acquire or release into ExitLeaseHeld, saying
// why on stderr (the report is on stdout already).
func refusal(env Env, cmd string, err error) error {
	if err == nil {
		return nil
	}
	fmt.Fprintf(env.Err, "agentlet %s: %v\n", cmd, err)
	return &ExitCodeError{Code: ExitLeaseHeld}
}
