//go:build unix

package remote

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on f, waiting for it. Locks belong to the
// open file description, so they also order goroutines of one process that
// opened the file separately.
func lockFile(f *os.File) (unlock func(), err error) {
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }, nil
}
