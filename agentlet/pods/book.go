package pods

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// MaxEvents is how many events a pod keeps; MaxEventMessage caps each
// message (probe output can be long; the status travels over SSH).
const (
	MaxEvents       = 20
	MaxEventMessage = 512
)

// Book is agentlet's bookkeeping of one pod, beyond what the runtime
// remembers: restart counts, back-off, events, condition transition times
// and what a later deletion needs (grace period, preStop hooks). It is
// persisted as state.json in the pod directory, so a restarted agentlet
// adopts its pods with their history. It holds no secret data.
type Book struct {
	UID       string `json:"uid"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`

	StartTime time.Time `json:"startTime,omitzero"`
	// Terminal is the pod's phase once it reached Succeeded or Failed: a
	// terminal pod is never restarted.
	Terminal   string                     `json:"terminal,omitempty"`
	Sandbox    Retry                      `json:"sandbox,omitzero"`
	Delete     Retry                      `json:"delete,omitzero"`
	Containers map[string]*ContainerBook  `json:"containers,omitempty"`
	Conditions []nodeapi.Condition        `json:"conditions,omitempty"`
	Events     []nodeapi.Event            `json:"events,omitempty"`
	Grace      int64                      `json:"terminationGracePeriodSeconds"`
	PreStop    map[string]nodeapi.Handler `json:"preStop,omitempty"`

	// volumesHash is VolumesHash of the spec whose volumes were last
	// written (in memory only: it derives from secret data).
	volumesHash string
}

// ContainerBook is the bookkeeping of one container (by name).
type ContainerBook struct {
	// Attempts is how many instances were created; the next gets attempt
	// number Attempts and the restart count is Attempts-1.
	Attempts uint32 `json:"attempts"`
	// Backoff is the crash-loop back-off.
	Backoff Backoff `json:"backoff,omitzero"`
	// Pull and Create are failing image pulls and container creations.
	Pull   Retry `json:"pull,omitzero"`
	Create Retry `json:"create,omitzero"`
	// LastTerminated is the newest terminated instance seen, for lastState
	// once the runtime no longer has it (e.g. after a sandbox was replaced).
	LastTerminated *nodeapi.StateTerminated `json:"lastTerminated,omitempty"`
	LastAttempt    uint32                   `json:"lastAttempt,omitempty"`
}

// NewBook starts the book of a pod first seen at now.
func NewBook(spec *nodeapi.PodSpec, now time.Time) *Book {
	b := &Book{UID: spec.UID, Namespace: spec.Namespace, Name: spec.Name, StartTime: now, Containers: map[string]*ContainerBook{}}
	b.Remember(spec)
	return b
}

// Remember keeps what deleting the pod needs from its spec.
func (b *Book) Remember(spec *nodeapi.PodSpec) {
	b.Grace = spec.TerminationGracePeriodSeconds
	b.PreStop = nil
	for _, c := range spec.Containers {
		if c.PreStop != nil {
			if b.PreStop == nil {
				b.PreStop = map[string]nodeapi.Handler{}
			}
			b.PreStop[c.Name] = *c.PreStop
		}
	}
}

// Container returns the book of a container, creating it.
func (b *Book) Container(name string) *ContainerBook {
	if b.Containers == nil {
		b.Containers = map[string]*ContainerBook{}
	}
	cb := b.Containers[name]
	if cb == nil {
		cb = &ContainerBook{}
		b.Containers[name] = cb
	}
	return cb
}

// peek returns the book of a container or an empty one (not stored).
func (b *Book) peek(name string) ContainerBook {
	if b == nil || b.Containers[name] == nil {
		return ContainerBook{}
	}
	return *b.Containers[name]
}

// Clone deep-copies the book.
func (b *Book) Clone() *Book {
	c := *b
	c.Containers = make(map[string]*ContainerBook, len(b.Containers))
	for k, v := range b.Containers {
		cv := *v
		if v.LastTerminated != nil {
			t := *v.LastTerminated
			cv.LastTerminated = &t
		}
		c.Containers[k] = &cv
	}
	c.Conditions = append([]nodeapi.Condition(nil), b.Conditions...)
	c.Events = append([]nodeapi.Event(nil), b.Events...)
	return &c
}

// Event records an event at now: a repeat of the newest-of-its-kind (same
// reason and message) moves to the end with its count raised; only the
// newest MaxEvents are kept, oldest first.
func (b *Book) Event(now time.Time, reason, message string) {
	if len(message) > MaxEventMessage {
		cut := MaxEventMessage
		for cut > 0 && message[cut]&0xC0 == 0x80 {
			cut--
		}
		message = message[:cut] + "…"
	}
	ev := nodeapi.Event{Time: now, Reason: reason, Message: message, Count: 1}
	for i, e := range b.Events {
		if e.Reason == reason && e.Message == message {
			ev.Count = max(e.Count, 1) + 1
			b.Events = append(b.Events[:i], b.Events[i+1:]...)
			break
		}
	}
	b.Events = append(b.Events, ev)
	if len(b.Events) > MaxEvents {
		b.Events = append([]nodeapi.Event(nil), b.Events[len(b.Events)-MaxEvents:]...)
	}
}

// StateFile is the name of a pod's book in its directory.
const StateFile = "state.json"

// saveBook writes a book atomically (temp file, fsync, rename, 0600).
func saveBook(dir string, b *Book) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("encode pod state: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save pod state: %w", err)
	}
	return writeAtomic(filepath.Join(dir, StateFile), append(data, '\n'), 0o600)
}

// loadBooks reads the book of every pod directory under podsDir.
func loadBooks(podsDir string) (map[string]*Book, error) {
	entries, err := os.ReadDir(podsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]*Book{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pods directory: %w", err)
	}
	books := map[string]*Book{}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(podsDir, e.Name(), StateFile))
		if errors.Is(err, fs.ErrNotExist) {
			// A pod directory without state (crash before the first save):
			// keep a minimal book so the directory gets cleaned up.
			books[e.Name()] = &Book{UID: e.Name(), Containers: map[string]*ContainerBook{}}
			continue
		}
		var b Book
		if err == nil {
			err = json.Unmarshal(data, &b)
		}
		if err == nil && b.UID != e.Name() {
			err = fmt.Errorf("it names pod uid %q", b.UID)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("load pod state %s: %w", e.Name(), err))
			books[e.Name()] = &Book{UID: e.Name(), Containers: map[string]*ContainerBook{}}
			continue
		}
		if b.Containers == nil {
			b.Containers = map[string]*ContainerBook{}
		}
		books[e.Name()] = &b
	}
	return books, errors.Join(errs...)
}

// writeAtomic replaces path with data: temp file in the same directory,
// fsync, rename.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	return nil
}
