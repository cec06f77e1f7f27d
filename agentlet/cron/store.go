package cron

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Load reads the state saved at path. A missing file is the empty state.
// An unreadable or undecodable one is reported and the empty state is
// returned: the CLI's last schedule times (in the spec) still keep the
// node from firing a time the CLI knows was run.
func Load(path string) (State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{Version: StateVersion}, nil
	}
	if err != nil {
		return State{Version: StateVersion}, fmt.Errorf("load cron state: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return State{Version: StateVersion}, fmt.Errorf("load cron state %s: %w", path, err)
	}
	if st.Version != StateVersion {
		return State{Version: StateVersion}, fmt.Errorf("load cron state %s: unsupported version %d (want %d)", path, st.Version, StateVersion)
	}
	return st, nil
}

// Save writes the state to path atomically and durably: a temporary file
// (0600: run pods may carry secrets) in the same directory, fsync, rename,
// fsync of the directory.
func Save(path string, st State) error {
	st.Version = StateVersion
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("save cron state: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save cron state: %w", err)
	}
	f, err := os.CreateTemp(dir, ".cronjobs-*.tmp")
	if err != nil {
		return fmt.Errorf("save cron state: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) //nolint:errcheck // gone after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close() //nolint:errcheck // already failing
		return fmt.Errorf("save cron state: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close() //nolint:errcheck // already failing
		return fmt.Errorf("save cron state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close() //nolint:errcheck // already failing
		return fmt.Errorf("save cron state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save cron state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save cron state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save cron state: %w", err)
	}
	defer d.Close() //nolint:errcheck // read-only
	if err := d.Sync(); err != nil {
		return fmt.Errorf("save cron state: %w", err)
	}
	return nil
}
