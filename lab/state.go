package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// labState is lab.json: what the lab is made of, written before each thing
// is created so that down always knows what to remove.
type labState struct {
	Version   int    `json:"version"`
	Name      string `json:"name"`
	Subnet    string `json:"subnet"`
	Inventory string `json:"inventory"`
	RootLink  string `json:"rootLink"`
	// Cgroups are the mountpoints of the cgroup hierarchies every host has a
	// directory in.
	Cgroups []string    `json:"cgroups"`
	Hosts   []hostState `json:"hosts"`
	// Partitions maps a partitioned host to the peers it is cut from
	// ("*" = everyone, the workstation included).
	Partitions map[string][]string `json:"partitions,omitempty"`
	// Registry is the lab's registry, if it has one.
	Registry *registryState `json:"registry,omitempty"`
}

// registryState is the lab registry: its address on the switch and port.
type registryState struct {
	Address string `json:"address"`
	Port    int    `json:"port"`
}

// host is host:port as image references name it.
func (r registryState) host() string { return net.JoinHostPort(r.Address, strconv.Itoa(r.Port)) }

type hostState struct {
	Name    string `json:"name"`
	Index   int    `json:"index"`
	Address string `json:"address"`
}

func (s *labState) prefix() netip.Prefix {
	p, err := netip.ParsePrefix(s.Subnet)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

func (s *labState) host(name string) (hostState, bool) {
	i := slices.IndexFunc(s.Hosts, func(h hostState) bool { return h.Name == name })
	if i < 0 {
		return hostState{}, false
	}
	return s.Hosts[i], true
}

func loadState(l layout) (*labState, error) {
	data, err := os.ReadFile(l.stateFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lab state: %w", err)
	}
	var st labState
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("parse lab state %s: %w", l.stateFile(), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("parse lab state %s: unsupported version %d", l.stateFile(), st.Version)
	}
	return &st, nil
}

func saveState(l layout, st *labState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode lab state: %w", err)
	}
	return writeFileAtomic(l.stateFile(), append(data, '\n'), 0o644)
}

// writeFileAtomic replaces path with data: readers see the old or the new
// content, never a mix.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeFileIfMissing writes data to path unless path exists.
func writeFileIfMissing(path string, data []byte, perm fs.FileMode) error {
	if _, err := os.Lstat(path); err == nil {
		return nil
	}
	return writeFileAtomic(path, data, perm)
}

// lockDir takes an exclusive flock on dir for the duration of one command,
// so that two `lab` commands never change the same lab at once. It fails if
// ctx ends first.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	for {
		f, err := os.Open(dir)
		if err != nil {
			return nil, fmt.Errorf("lock state dir: %w", err)
		}
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			if err == nil || !errors.Is(err, unix.EWOULDBLOCK) {
				break
			}
			select {
			case <-ctx.Done():
				f.Close()
				return nil, fmt.Errorf("lock state dir %s: %w", dir, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock state dir %s: %w", dir, err)
		}
		// The holder may have removed the directory (lab down): start over on
		// whatever is at the path now.
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(dir, &now) == nil && held.Ino == now.Ino && held.Dev == now.Dev {
			return func() { f.Close() }, nil
		}
		f.Close()
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("lock state dir: %w", err)
		}
	}
}
