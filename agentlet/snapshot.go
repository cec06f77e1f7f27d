package agentlet

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Each host keeps a copy of the latest inventory snapshot the CLI wrote
// (its state: section: allocations, bindings, revisions, every object) so
// that a lost or stale inventory can be rebuilt from the hosts
// (`clusterctl recover`). agentlet treats the snapshot as opaque: it checks
// the checksum, fences by generation and stores it; it never reads the
// objects.
const (
	// SnapshotFile, in the state directory, holds the snapshot (0600: it
	// contains the cluster's Secrets).
	SnapshotFile = "snapshot.json"
	// maxSnapshotInput bounds what `snapshot put` reads (JSON, base64).
	maxSnapshotInput = 64 << 20
	// maxSnapshotSize bounds the uncompressed snapshot.
	maxSnapshotSize = 256 << 20
)

// SnapshotPath is where the held snapshot is stored.
func (p Paths) SnapshotPath() string { return filepath.Join(p.StateDir(), SnapshotFile) }

// Snapshot is a stored inventory snapshot, as `agentlet snapshot get`
// prints it and `agentlet snapshot put` takes it.
type Snapshot struct {
	// Generation is the cluster generation of the inventory it was taken
	// from; a host refuses an older one than it holds.
	Generation int64     `json:"generation"`
	Writer     string    `json:"writer,omitempty"` // user@workstation
	WrittenAt  time.Time `json:"writtenAt"`
	// SHA256 and Size describe the uncompressed snapshot.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Data is the gzip-compressed snapshot (base64 in JSON).
	Data []byte `json:"data"`
}

// SnapshotPut is what `agentlet snapshot put` reads on stdin: the snapshot
// and, optionally, the audit record of the change it records, appended
// once the snapshot is accepted (one round trip for both).
type SnapshotPut struct {
	Snapshot Snapshot        `json:"snapshot"`
	Audit    json.RawMessage `json:"audit,omitempty"`
}

// InvalidInputError is a snapshot or audit record that cannot be accepted;
// nothing was written.
type InvalidInputError struct{ Err error }

func (e *InvalidInputError) Error() string { return "invalid input: " + e.Err.Error() }
func (e *InvalidInputError) Unwrap() error { return e.Err }

// StaleSnapshotError refuses a snapshot older than the one held.
type StaleSnapshotError struct {
	Offered, Held int64
	HeldWriter    string
	HeldAt        time.Time
}

func (e *StaleSnapshotError) Error() string {
	return fmt.Sprintf("refuse inventory snapshot generation %d: this host holds generation %d written by %s at %s; "+
		"your inventory is stale, recover it from the hosts before changing the cluster",
		e.Offered, e.Held, e.HeldWriter, e.HeldAt.UTC().Format(time.RFC3339))
}

// PutResult says what `snapshot put` did.
type PutResult struct {
	Generation int64
	Changed    bool // false: the same content at the same generation was held
	Audited    bool // an audit record was appended
}

// SnapshotStore keeps the host's snapshot and audit trail.
type SnapshotStore struct {
	Paths Paths
	// AuditMax is the size at which the audit trail rotates (0:
	// DefaultAuditMax).
	AuditMax int64
	Warn     func(msg string)
}

// Validate checks the snapshot: a positive generation, and data that
// decompresses to Size bytes with checksum SHA256.
func (s *Snapshot) Validate() error {
	var errs []error
	if s.Generation < 1 {
		errs = append(errs, fmt.Errorf("generation: must be positive, got %d", s.Generation))
	}
	if len(s.SHA256) != 64 {
		errs = append(errs, fmt.Errorf("sha256: want 64 hex digits, got %q", s.SHA256))
	}
	if len(s.Data) == 0 {
		errs = append(errs, errors.New("data: empty"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	zr, err := gzip.NewReader(bytes.NewReader(s.Data))
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(zr, maxSnapshotSize+1))
	switch {
	case err != nil:
		return fmt.Errorf("data: %w", err)
	case n > maxSnapshotSize:
		return fmt.Errorf("data: larger than %d MiB uncompressed", maxSnapshotSize>>20)
	case n != s.Size:
		return fmt.Errorf("data: %d bytes uncompressed, size says %d", n, s.Size)
	case hex.EncodeToString(h.Sum(nil)) != s.SHA256:
		return errors.New("data: checksum mismatch")
	}
	return nil
}

// Put stores the snapshot read from r, unless the host holds a newer
// generation (*StaleSnapshotError), atomically (0600, fsync of file and
// directory), then appends the audit record, if any. Nothing is written
// when the input is invalid or stale. Same-generation snapshots replace
// each other: a loop may change objects without moving the generation.
func (s SnapshotStore) Put(r io.Reader) (PutResult, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSnapshotInput+1))
	if err != nil {
		return PutResult{}, fmt.Errorf("read snapshot: %w", err)
	}
	if len(data) > maxSnapshotInput {
		return PutResult{}, &InvalidInputError{fmt.Errorf("input larger than %d MiB", maxSnapshotInput>>20)}
	}
	var in SnapshotPut
	if err := json.Unmarshal(data, &in); err != nil {
		return PutResult{}, &InvalidInputError{err}
	}
	if err := in.Snapshot.Validate(); err != nil {
		return PutResult{}, &InvalidInputError{fmt.Errorf("snapshot: %w", err)}
	}
	var record []byte
	if len(in.Audit) > 0 && string(in.Audit) != "null" {
		if record, err = auditLine(in.Audit); err != nil {
			return PutResult{}, &InvalidInputError{fmt.Errorf("audit: %w", err)}
		}
	}
	res := PutResult{Generation: in.Snapshot.Generation}
	unlock, err := lockStateDir(s.Paths)
	if err != nil {
		return res, err
	}
	defer unlock()

	held, err := s.held()
	if err != nil {
		return res, err
	}
	switch {
	case held != nil && held.Generation > in.Snapshot.Generation:
		return res, &StaleSnapshotError{Offered: in.Snapshot.Generation, Held: held.Generation, HeldWriter: held.Writer, HeldAt: held.WrittenAt}
	case held != nil && held.Generation == in.Snapshot.Generation && held.SHA256 == in.Snapshot.SHA256:
		// unchanged
	default:
		enc, err := json.Marshal(in.Snapshot)
		if err != nil {
			return res, fmt.Errorf("encode snapshot: %w", err)
		}
		if err := writeAtomic(s.Paths.SnapshotPath(), append(enc, '\n'), 0o600, true); err != nil {
			return res, fmt.Errorf("store snapshot: %w", err)
		}
		res.Changed = true
	}
	if record != nil {
		if err := s.audit().append(record); err != nil {
			return res, err
		}
		res.Audited = true
	}
	return res, nil
}

// held reads the held snapshot; nil when there is none. An unreadable one
// is replaced (with a warning): it fences nothing it can prove.
func (s SnapshotStore) held() (*Snapshot, error) {
	data, err := os.ReadFile(s.Paths.SnapshotPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read held snapshot: %w", err)
	}
	var h Snapshot
	if err := json.Unmarshal(data, &h); err != nil {
		if s.Warn != nil {
			s.Warn(fmt.Sprintf("replacing an unreadable held snapshot: %v", err))
		}
		return nil, nil
	}
	return &h, nil
}

// HeldSnapshot is what `agentlet snapshot get` prints.
type HeldSnapshot struct {
	// Snapshot is the held snapshot as stored; null when none is held.
	Snapshot json.RawMessage `json:"snapshot"`
	// SpecGeneration is the generation of the held NodeSpec (0: none). A
	// spec newer than the snapshot means the last change was pushed but
	// its snapshot not stored.
	SpecGeneration int64 `json:"specGeneration"`
}

// Get returns the held snapshot as stored and the held spec's generation.
func (s SnapshotStore) Get() (HeldSnapshot, error) {
	out := HeldSnapshot{Snapshot: json.RawMessage("null")}
	spec, raw, err := loadSpec(s.Paths.SpecPath())
	switch {
	case spec != nil:
		out.SpecGeneration = spec.Generation
	case raw != nil:
		if l := lenientSpec(raw); l != nil {
			out.SpecGeneration = l.Generation
		}
	case err != nil:
		return out, err
	}
	data, err := os.ReadFile(s.Paths.SnapshotPath())
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("read snapshot: %w", err)
	}
	var h Snapshot
	if err := json.Unmarshal(data, &h); err != nil {
		return out, fmt.Errorf("read snapshot %s: %w", s.Paths.SnapshotPath(), err)
	}
	out.Snapshot = bytes.TrimSpace(data)
	return out, nil
}

func (s SnapshotStore) audit() AuditLog {
	return AuditLog{Paths: s.Paths, MaxBytes: s.AuditMax}
}

// lockStateDir creates the state directory (0700) if needed and locks it,
// as `agentlet apply` does.
func lockStateDir(p Paths) (func(), error) {
	dir := p.StateDir()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	unlock, err := lockDir(dir, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("lock state directory: %w", err)
	}
	return unlock, nil
}

const snapshotUsage = `usage: agentlet snapshot put|get [--root DIR]

  put   store the inventory snapshot read from stdin (JSON: {"snapshot": {...},
        "audit": {...}}), refusing one older than the held generation (exit 4);
        the optional audit record is appended to the audit trail
  get   print {"snapshot": HELD, "specGeneration": N}: the held snapshot (null when
        none is held) and the generation of the held node spec
`

func snapshotCmd(env Env, args []string) error {
	if len(args) == 0 || (args[0] != "put" && args[0] != "get") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(env.Out, snapshotUsage)
			return nil
		}
		fmt.Fprint(env.Err, snapshotUsage)
		return &usageError{errors.New("want put or get")}
	}
	fs := newFlags(env, "snapshot "+args[0])
	root := rootFlag(fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	store := SnapshotStore{Paths: Paths{Root: *root},
		Warn: func(msg string) { fmt.Fprintf(env.Err, "agentlet snapshot: warning: %s\n", msg) }}
	if args[0] == "get" {
		held, err := store.Get()
		if err != nil {
			return err
		}
		data, err := json.Marshal(held)
		if err != nil {
			return fmt.Errorf("encode snapshot: %w", err)
		}
		_, err = fmt.Fprintf(env.Out, "%s\n", data)
		return err
	}
	res, err := store.Put(env.In)
	var stale *StaleSnapshotError
	var invalid *InvalidInputError
	switch {
	case errors.As(err, &stale):
		fmt.Fprintf(env.Err, "agentlet snapshot put: %v\n", err)
		return &ExitCodeError{Code: ExitStale}
	case errors.As(err, &invalid):
		return &usageError{err}
	case err != nil:
		return err
	}
	verb := "stored"
	if !res.Changed {
		verb = "unchanged"
	}
	fmt.Fprintf(env.Out, "%s snapshot generation %d", verb, res.Generation)
	if res.Audited {
		fmt.Fprint(env.Out, "; audit record appended")
	}
	fmt.Fprintln(env.Out)
	return nil
}
