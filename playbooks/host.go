package playbooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sourcegraph/conc/pool"

	"github.com/clusterctl/clusterctl/remote"
)

// Host is one SSH connection to one host: the only edge playbooks use.
// Commands run as root (the implementation adds sudo where needed).
type Host interface {
	Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error)
	Upload(ctx context.Context, r io.Reader, remotePath string, mode os.FileMode) error
	TempPath(prefix string) string
	Close() error
}

// Dialer connects to the inventory host with the given name.
type Dialer func(ctx context.Context, name string) (Host, error)

// DefaultParallel is the default fan-out width.
const DefaultParallel = 32

// StepError reports which step failed on which host. The wrapped error is
// often a *remote.CommandError carrying the command, exit code and stderr.
type StepError struct {
	Host string
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: %s: %v", e.Host, e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// Event is one progress report from a playbook.
type Event struct {
	Host    string
	Step    string
	State   State
	Message string // change summary or error text
}

// State is the state of a step in an Event.
type State int

// Step states.
const (
	Running State = iota
	Changed
	Unchanged
	Failed
	HostDone
)

// Progress receives events; it must be safe for concurrent use.
type Progress func(Event)

func (p Progress) emit(ev Event) {
	if p != nil {
		p(ev)
	}
}

// forEach runs fn for every host name with at most parallel goroutines and
// waits for all of them. Results land in index order.
func forEach(ctx context.Context, names []string, parallel int, fn func(ctx context.Context, i int, name string)) {
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	p := pool.New().WithMaxGoroutines(parallel)
	for i, name := range names {
		p.Go(func() { fn(ctx, i, name) })
	}
	p.Wait()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeFile installs data at path atomically: SFTP upload to a temp name,
// checksum verification, install into a sibling temp file, rename.
func writeFile(ctx context.Context, h Host, path string, data []byte, mode os.FileMode) error {
	tmp := h.TempPath("clusterctl-upload-")
	if err := h.Upload(ctx, bytes.NewReader(data), tmp, 0o600); err != nil {
		return fmt.Errorf("upload %s: %w", path, err)
	}
	sum := sha256Hex(data)
	next := path + ".clusterctl-new"
	cmd := fmt.Sprintf(`set -e; trap 'rm -f %[1]s' EXIT
got=$(sha256sum %[1]s | cut -d' ' -f1)
if [ "$got" != %[2]s ]; then echo "checksum mismatch after upload: got $got, want %[2]s" >&2; exit 1; fi
install -D -m %[3]o %[1]s %[4]s
mv -f %[4]s %[5]s`, shellQuote(tmp), sum, mode.Perm(), shellQuote(next), shellQuote(path))
	if _, err := h.Run(ctx, cmd, nil); err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	return nil
}

// waitFor polls check until it returns nil or timeout passes.
func waitFor(ctx context.Context, timeout, every time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// IsUnreachable reports whether err means the host could not be reached at
// all: no TCP connection or no SSH handshake. Authentication and host key
// failures are not: the host answered, and the user must act.
func IsUnreachable(err error) bool {
	var de *remote.DialError
	var mismatch *remote.HostKeyMismatchError
	var unknown *remote.UnknownHostKeyError
	if !errors.As(err, &de) || errors.As(err, &mismatch) || errors.As(err, &unknown) {
		return false
	}
	return de.Op == remote.OpConnect || de.Op == remote.OpHandshake
}
