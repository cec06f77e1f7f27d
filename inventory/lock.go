package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// lockRetry is how often Lock retries while waiting for the lock.
const lockRetry = 50 * time.Millisecond

// LockHolder identifies the process holding an inventory lock. Lock writes
// it into the lock file after acquiring the lock and clears it on unlock.
type LockHolder struct {
	PID   int       `json:"pid"`
	User  string    `json:"user,omitempty"`
	Host  string    `json:"host,omitempty"`
	Since time.Time `json:"since"`
}

func (h *LockHolder) String() string {
	who := h.User
	if h.Host != "" {
		who += "@" + h.Host
	}
	return fmt.Sprintf("pid %d (%s) since %s", h.PID, who, h.Since.UTC().Format(time.RFC3339))
}

// LockedError is returned by Lock when another process holds the lock.
type LockedError struct {
	LockFile string
	Holder   *LockHolder // nil when the lock file does not say
	Waited   time.Duration
}

func (e *LockedError) Error() string {
	holder := "another process"
	if e.Holder != nil {
		holder = e.Holder.String()
	}
	return fmt.Sprintf("lock inventory: %s is held by %s; gave up after %s", e.LockFile, holder, e.Waited)
}

// Lock takes the exclusive lock of the inventory at path: a flock on
// PATH.lock (the symlink-resolved path). It waits up to wait for another
// holder to let go (0 tries once, a negative wait waits until ctx is done)
// and then returns a *LockedError naming the holder. The returned unlock
// releases the lock; calling it again does nothing.
//
// The lock is advisory: it serialises clusterctl processes, not editors.
// The kernel releases it if the process dies; the lock file stays.
func Lock(ctx context.Context, path string, wait time.Duration) (unlock func() error, err error) {
	lockPath := realPath(path) + ".lock"
	fl := flock.New(lockPath)
	ok, err := fl.TryLock()
	if err == nil && !ok && wait != 0 {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if wait > 0 {
			wctx, cancel = context.WithTimeout(ctx, wait)
		}
		ok, err = fl.TryLockContext(wctx, lockRetry)
		cancel()
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = nil // our own wait ran out: report the holder below
		}
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("lock inventory %s: %w", lockPath, err)
	case !ok:
		return nil, &LockedError{LockFile: lockPath, Holder: readHolder(lockPath), Waited: max(wait, 0)}
	}
	// Best effort: the lock is held whether or not the holder can be recorded.
	_ = writeHolder(lockPath)
	var once sync.Once
	return func() error {
		var uerr error
		once.Do(func() {
			_ = os.Truncate(lockPath, 0)
			if err := fl.Unlock(); err != nil {
				uerr = fmt.Errorf("unlock inventory %s: %w", lockPath, err)
			}
		})
		return uerr
	}, nil
}

func writeHolder(lockPath string) error {
	h := LockHolder{PID: os.Getpid(), Since: time.Now().UTC().Truncate(time.Second)}
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	}
	h.Host, _ = os.Hostname()
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return os.WriteFile(lockPath, append(data, '\n'), 0o600)
}

func readHolder(lockPath string) *LockHolder {
	data, err := os.ReadFile(lockPath)
	if err != nil {
		return nil
	}
	var h LockHolder
	if json.Unmarshal(data, &h) != nil || h.PID == 0 {
		return nil
	}
	return &h
}
