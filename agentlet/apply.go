package agentlet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// InvalidSpecError is a NodeSpec that cannot be decoded or validated.
type InvalidSpecError struct{ Err error }

func (e *InvalidSpecError) Error() string { return e.Err.Error() }
func (e *InvalidSpecError) Unwrap() error { return e.Err }

// ApplyResult says what `agentlet apply` did.
type ApplyResult struct {
	Generation int64
	Changed    bool // false: the held spec was byte-identical
	DaemonPID  int  // the daemon told to re-read the spec (SIGHUP), 0 for none
}

// Applier writes a NodeSpec for the daemon, fenced by generation.
type Applier struct {
	Paths    Paths
	ProcRoot string // /proc
	Warn     func(msg string)
}

// Apply decodes the NodeSpec on r, refuses it when the node holds a newer
// generation (*nodeapi.StaleGenerationError) or other content under the same
// generation (*DivergedSpecError), writes it atomically (state
// directory 0700, file 0600, fsync of file and directory) and wakes the
// daemon with SIGHUP. The spec is stored in canonical JSON, so re-applying
// the same spec is reported as unchanged and writes nothing.
func (a Applier) Apply(r io.Reader) (ApplyResult, error) {
	spec, err := nodeapi.DecodeNodeSpec(r)
	if err != nil {
		return ApplyResult{}, &InvalidSpecError{Err: err}
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return ApplyResult{}, fmt.Errorf("encode node spec: %w", err)
	}
	data = append(data, '\n')
	res := ApplyResult{Generation: spec.Generation}

	dir := a.Paths.StateDir()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return res, fmt.Errorf("create state directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return res, fmt.Errorf("create state directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return res, fmt.Errorf("chmod state directory: %w", err)
	}
	unlock, err := lockDir(dir, 10*time.Second)
	if err != nil {
		return res, fmt.Errorf("apply node spec: %w", err)
	}
	defer unlock()

	held, raw, err := loadSpec(a.Paths.SpecPath())
	if err != nil && raw == nil {
		return res, err
	}
	if err != nil {
		// A held spec this agentlet cannot fully decode (e.g. written for
		// a newer agentlet) still fences by its generation.
		held = lenientSpec(raw)
		if held == nil && a.Warn != nil {
			a.Warn(fmt.Sprintf("replacing an unreadable held node spec: %v", err))
		}
	}
	if bytes.Equal(raw, data) || nodeapi.SameContent(held, spec) {
		return res, nil // unchanged: the daemon already converges to it
	}
	if err := nodeapi.CheckFence(held, spec); err != nil {
		return res, err
	}
	if held != nil && held.Generation == spec.Generation {
		// Same generation, other content: two inventories both moved
		// on from one generation. The first to arrive wins.
		return res, &DivergedSpecError{Node: spec.NodeName, Generation: spec.Generation,
			HeldWriter: held.Writer, HeldAt: held.WrittenAt}
	}
	if err := writeAtomic(a.Paths.SpecPath(), data, 0o600, true); err != nil {
		return res, fmt.Errorf("apply node spec: %w", err)
	}
	res.Changed = true
	res.DaemonPID, err = signalDaemon(a.Paths.PidPath(), a.ProcRoot, syscall.SIGHUP)
	return res, err
}

// lenientSpec decodes what it can of a held spec, ignoring unknown fields
// and validation; nil when it is not JSON at all.
func lenientSpec(raw []byte) *nodeapi.NodeSpec {
	var s nodeapi.NodeSpec
	if err := json.Unmarshal(raw, &s); err != nil || s.Generation == 0 {
		return nil
	}
	return &s
}

// DivergedSpecError is a spec refused because the node holds another spec
// of the same generation: two copies of the inventory both advanced from
// one generation, and the other one got here first.
type DivergedSpecError struct {
	Node       string
	Generation int64
	HeldWriter string
	HeldAt     time.Time
}

func (e *DivergedSpecError) Error() string {
	return fmt.Sprintf("refuse node spec generation %d on %s: it holds another spec of generation %d, written by %s at %s; "+
		"two copies of the inventory diverged, recover it from the hosts before changing the cluster",
		e.Generation, e.Node, e.Generation, e.HeldWriter, e.HeldAt.UTC().Format(time.RFC3339))
}

// IsStale reports whether err is a fencing refusal: an older generation, or
// the same generation with other content.
func IsStale(err error) bool {
	var se *nodeapi.StaleGenerationError
	var de *DivergedSpecError
	return errors.As(err, &se) || errors.As(err, &de)
}
