package playbooks

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// maxSnapshotContent bounds a decompressed snapshot read back from a host.
const maxSnapshotContent = 256 << 20

// StoredSnapshot is an inventory snapshot as a host stores it (the JSON of
// `agentlet snapshot get|put`, agentlet.Snapshot): the gzip-compressed
// inventory.Snapshot with its generation, writer and checksum.
type StoredSnapshot struct {
	Generation int64     `json:"generation"`
	Writer     string    `json:"writer,omitempty"`
	WrittenAt  time.Time `json:"writtenAt"`
	SHA256     string    `json:"sha256"` // of the uncompressed content
	Size       int64     `json:"size"`   // uncompressed bytes
	Data       []byte    `json:"data"`   // gzip
}

// NewStoredSnapshot compresses an inventory snapshot for the hosts.
func NewStoredSnapshot(snap *inventory.Snapshot, writer string, at time.Time) (StoredSnapshot, error) {
	content, err := snap.Marshal()
	if err != nil {
		return StoredSnapshot{}, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return StoredSnapshot{}, err
	}
	if _, err := zw.Write(content); err != nil {
		return StoredSnapshot{}, fmt.Errorf("compress snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return StoredSnapshot{}, fmt.Errorf("compress snapshot: %w", err)
	}
	sum := sha256.Sum256(content)
	return StoredSnapshot{Generation: snap.State.Generation, Writer: writer, WrittenAt: at.UTC(),
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Data: buf.Bytes()}, nil
}

// Snapshot decompresses and decodes the stored snapshot, checking its
// size, checksum and that its generation matches.
func (s *StoredSnapshot) Snapshot() (*inventory.Snapshot, error) {
	zr, err := gzip.NewReader(bytes.NewReader(s.Data))
	if err != nil {
		return nil, fmt.Errorf("decompress snapshot: %w", err)
	}
	content, err := io.ReadAll(io.LimitReader(zr, maxSnapshotContent+1))
	if err != nil {
		return nil, fmt.Errorf("decompress snapshot: %w", err)
	}
	sum := sha256.Sum256(content)
	switch {
	case len(content) > maxSnapshotContent:
		return nil, fmt.Errorf("decompress snapshot: larger than %d MiB", maxSnapshotContent>>20)
	case int64(len(content)) != s.Size || hex.EncodeToString(sum[:]) != s.SHA256:
		return nil, errors.New("decompress snapshot: size or checksum mismatch")
	}
	snap, err := inventory.ParseSnapshot(content)
	if err != nil {
		return nil, err
	}
	if snap.State.Generation != s.Generation {
		return nil, fmt.Errorf("snapshot holds generation %d, its envelope says %d", snap.State.Generation, s.Generation)
	}
	return snap, nil
}

// snapshotPut is the stdin of `agentlet snapshot put`.
type snapshotPut struct {
	Snapshot StoredSnapshot `json:"snapshot"`
	Audit    *AuditRecord   `json:"audit,omitempty"`
}

// PutSnapshot stores the inventory snapshot and appends the audit record
// on every target host, in parallel, in one round trip per host (`agentlet
// snapshot put`). rec is required: it names the writer and time, and its
// generation must be the snapshot's. A host holding a newer snapshot
// refuses it (exit 4, a *StepError wrapping the *remote.CommandError).
// Changed is false for a host that already held the same content.
func (f *Fleet) PutSnapshot(ctx context.Context, snap *inventory.Snapshot, rec *AuditRecord, targets []string) []PushResult {
	res := make([]PushResult, len(targets))
	for i, h := range targets {
		res[i].Host = h
	}
	fail := func(err error) []PushResult {
		for i := range res {
			res[i].Err = err
		}
		return res
	}
	if rec == nil || rec.Generation != snap.State.Generation {
		return fail(errors.New("put snapshot: the audit record must have the snapshot's generation"))
	}
	stored, err := NewStoredSnapshot(snap, rec.Writer, rec.Time)
	if err != nil {
		return fail(err)
	}
	payload, err := json.Marshal(snapshotPut{Snapshot: stored, Audit: rec})
	if err != nil {
		return fail(fmt.Errorf("encode snapshot: %w", err))
	}
	forEach(ctx, targets, f.parallel, func(ctx context.Context, i int, name string) {
		h, err := f.Conn(name)
		if err != nil {
			res[i].Err = err
			return
		}
		out, err := h.Run(ctx, nodeapi.BinaryPath+" snapshot put", bytes.NewReader(payload))
		if err != nil {
			res[i].Err = &StepError{Host: name, Step: "snapshot", Err: err}
			return
		}
		res[i].Changed = strings.HasPrefix(strings.TrimSpace(string(out)), "stored")
	})
	return res
}

// Reachable lists the observed hosts that reported a status, in order.
func Reachable(obs []Observation) []string {
	var out []string
	for _, o := range obs {
		if o.Status != nil && o.Err == nil {
			out = append(out, o.Host)
		}
	}
	return out
}

// SnapshotResult is what one host holds.
type SnapshotResult struct {
	Host     string
	Snapshot *StoredSnapshot // nil: none held (or Err)
	// SpecGeneration is the generation of the node spec the host holds.
	SpecGeneration int64
	Err            error
}

// GetSnapshots fetches the snapshot every given host holds, in parallel.
func (f *Fleet) GetSnapshots(ctx context.Context, hosts []string) []SnapshotResult {
	out := make([]SnapshotResult, len(hosts))
	forEach(ctx, hosts, f.parallel, func(ctx context.Context, i int, name string) {
		out[i].Host = name
		h, err := f.Conn(name)
		if err != nil {
			out[i].Err = err
			return
		}
		data, err := h.Run(ctx, nodeapi.BinaryPath+" snapshot get", nil)
		if err != nil {
			out[i].Err = &StepError{Host: name, Step: "snapshot get", Err: err}
			return
		}
		var held struct {
			Snapshot       *StoredSnapshot `json:"snapshot"`
			SpecGeneration int64           `json:"specGeneration"`
		}
		if err := json.Unmarshal(data, &held); err != nil {
			out[i].Err = &StepError{Host: name, Step: "snapshot get", Err: fmt.Errorf("decode snapshot: %w", err)}
			return
		}
		out[i].Snapshot, out[i].SpecGeneration = held.Snapshot, held.SpecGeneration
	})
	return out
}

// SnapshotChoice is the snapshot to recover from and how the hosts agree.
type SnapshotChoice struct {
	// Winner is the host whose snapshot is newest: highest generation,
	// then latest written, then held by most hosts, then host name.
	Winner string
	Chosen *StoredSnapshot
	// Agree are the hosts holding the same snapshot (Winner included).
	Agree []string
	// Others describe every host holding something else, none, or that
	// could not be read, one line each.
	Others []string
	// SpecGeneration is the newest node spec generation any host holds.
	// Above the chosen snapshot's, the last change was pushed but its
	// snapshot was not stored: the snapshot lacks it.
	SpecGeneration int64
	SpecHost       string // a host holding it
}

// ChooseSnapshot picks the newest snapshot among the hosts' (nil when no
// host holds one). It is pure.
func ChooseSnapshot(results []SnapshotResult) *SnapshotChoice {
	holders := map[string]int{} // sha → hosts holding it
	var cands []SnapshotResult
	for _, r := range results {
		if r.Err == nil && r.Snapshot != nil {
			holders[r.Snapshot.SHA256]++
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	best := slices.MinFunc(cands, func(a, b SnapshotResult) int {
		x, y := a.Snapshot, b.Snapshot
		return cmp.Or(cmp.Compare(y.Generation, x.Generation), y.WrittenAt.Compare(x.WrittenAt),
			cmp.Compare(holders[y.SHA256], holders[x.SHA256]), cmp.Compare(a.Host, b.Host))
	})
	c := &SnapshotChoice{Winner: best.Host, Chosen: best.Snapshot}
	for _, r := range results {
		if r.Err == nil && r.SpecGeneration > c.SpecGeneration {
			c.SpecGeneration, c.SpecHost = r.SpecGeneration, r.Host
		}
		s := r.Snapshot
		switch {
		case r.Err != nil:
			c.Others = append(c.Others, fmt.Sprintf("%s: %v", r.Host, unwrapStep(r.Err)))
		case s == nil:
			c.Others = append(c.Others, fmt.Sprintf("%s: holds no snapshot", r.Host))
		case s.SHA256 == best.Snapshot.SHA256 && s.Generation == best.Snapshot.Generation:
			c.Agree = append(c.Agree, r.Host)
		case s.Generation == best.Snapshot.Generation:
			c.Others = append(c.Others, fmt.Sprintf("%s: holds different content at the same generation %d, written by %s at %s",
				r.Host, s.Generation, s.Writer, s.WrittenAt.UTC().Format(time.RFC3339)))
		default:
			c.Others = append(c.Others, fmt.Sprintf("%s: holds older generation %d, written by %s at %s",
				r.Host, s.Generation, s.Writer, s.WrittenAt.UTC().Format(time.RFC3339)))
		}
	}
	return c
}

func unwrapStep(err error) error {
	var se *StepError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}
