//go:build !unix

package remote

import "os"

// lockFile does nothing where flock is not available: parallel first
// connections may then write duplicate known_hosts lines, which is harmless.
func lockFile(*os.File) (unlock func(), err error) { return func() {}, nil }
