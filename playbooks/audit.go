package playbooks

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan/controller"
)

// MaxAuditChanges bounds the changes one audit record lists; the rest are
// counted in AuditRecord.More.
const MaxAuditChanges = 200

// AuditRecord is one entry of the hosts' audit trail: who changed the
// cluster, when, with which command, to which generation, and what
// changed. Every reachable host appends the same record, so that any one of
// them can tell the story.
type AuditRecord struct {
	Generation int64     `json:"generation"`
	Time       time.Time `json:"time"`
	Writer     string    `json:"writer"` // user@workstation
	// ID tells apart records of one writer in the same second.
	ID string `json:"id,omitempty"`
	// Command is the command line, with secret flag values redacted
	// (RedactCommand).
	Command []string      `json:"command,omitempty"`
	Changes []AuditChange `json:"changes,omitempty"`
	// More counts the changes left out past MaxAuditChanges.
	More int `json:"more,omitempty"`
	// Nodes are the hosts whose node spec changed.
	Nodes []string `json:"nodes,omitempty"`
}

// AuditChange is one object changed.
type AuditChange struct {
	// Action is what happened: created, configured, deleted (by the
	// command), updated or removed (by a controller), bound (a pod
	// scheduled to Node).
	Action    string `json:"action"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Node      string `json:"node,omitempty"`
}

// Audit actions.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionDeleted    = "deleted"
	ActionUpdated    = "updated" // by a controller
	ActionRemoved    = "removed" // by a controller
	ActionBound      = "bound"
)

// HasChanges reports whether r lists any change (false for nil): a command
// that changed objects is recorded even when its loop changes nothing else.
func (r *AuditRecord) HasChanges() bool { return r != nil && (len(r.Changes) > 0 || r.More > 0) }

// Add appends changes, counting those past MaxAuditChanges in More.
func (r *AuditRecord) Add(changes ...AuditChange) {
	for _, c := range changes {
		if len(r.Changes) >= MaxAuditChanges {
			r.More++
			continue
		}
		r.Changes = append(r.Changes, c)
	}
}

// ForLoop returns the record of one cluster loop: a copy of r (the
// command's line and its own changes; nil for none) with the loop's
// generation, writer and time, the pods it bound, what its controllers
// changed, and the hosts whose spec changed. seed is the loop's entropy:
// it makes the record's ID.
func (r *AuditRecord) ForLoop(generation int64, writer string, now time.Time, seed string,
	bindings map[string]string, changes controller.Changes, pushed []PushResult) *AuditRecord {
	out := &AuditRecord{}
	if r != nil {
		out.Command = slices.Clone(r.Command)
		out.Changes = slices.Clone(r.Changes)
		out.More = r.More
	}
	out.Generation, out.Writer, out.Time = generation, writer, now.UTC()
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d\x00%s", seed, writer, generation, now.Format(time.RFC3339Nano))))
	out.ID = hex.EncodeToString(sum[:6])
	for _, o := range changes.Put {
		ref := controller.RefOf(o)
		out.Add(AuditChange{Action: ActionUpdated, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name})
	}
	for _, ref := range changes.Delete {
		out.Add(AuditChange{Action: ActionRemoved, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name})
	}
	for _, key := range slices.Sorted(maps.Keys(bindings)) {
		ns, name, _ := strings.Cut(key, "/")
		out.Add(AuditChange{Action: ActionBound, Kind: "Pod", Namespace: ns, Name: name, Node: bindings[key]})
	}
	for _, p := range pushed {
		if p.Err == nil && p.Changed {
			out.Nodes = append(out.Nodes, p.Host)
		}
	}
	slices.Sort(out.Nodes)
	return out
}

// Summary is a short account of the changes, e.g. "2 created, 1 bound, 3
// nodes".
func (r *AuditRecord) Summary() string {
	order := []string{ActionCreated, ActionConfigured, ActionDeleted, ActionUpdated, ActionRemoved, ActionBound}
	counts := map[string]int{}
	for _, c := range r.Changes {
		counts[c.Action]++
	}
	var parts []string
	for _, a := range order {
		if n := counts[a]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, a))
		}
		delete(counts, a)
	}
	for _, a := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
	}
	if r.More > 0 {
		parts = append(parts, fmt.Sprintf("%d more", r.More))
	}
	out := strings.Join(parts, ", ")
	switch n := len(r.Nodes); {
	case n == 1:
		out += "; 1 node updated"
	case n > 1:
		out += fmt.Sprintf("; %d nodes updated", n)
	}
	out = strings.TrimPrefix(out, "; ")
	if out == "" {
		return "-"
	}
	return out
}

// secretFlag reports whether a flag's value must not be recorded.
func secretFlag(name string) bool {
	name = strings.ToLower(strings.TrimLeft(name, "-"))
	for _, w := range []string{"password", "passwd", "token", "secret", "credential", "apikey", "api-key", "private-key", "from-literal"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// Redacted replaces a secret value in a command line.
const Redacted = "<redacted>"

// RedactCommand returns argv with the values of secret-looking flags
// (--password, --token, --from-literal, ...) replaced by Redacted, in both
// --flag=value and --flag value forms. Arguments after "--" are kept.
func RedactCommand(argv []string) []string {
	out := slices.Clone(argv)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, hasValue := strings.Cut(a, "=")
		if !secretFlag(name) {
			continue
		}
		if hasValue {
			out[i] = name + "=" + Redacted
		} else if i+1 < len(out) && !strings.HasPrefix(out[i+1], "-") {
			out[i+1] = Redacted
			i++
		}
	}
	return out
}

// HostAudit is one host's audit trail, oldest first.
type HostAudit struct {
	Host    string
	Records []AuditRecord
	Skipped int // lines that were not records
	Err     error
}

// AuditTrail reads the audit trail of the given hosts in parallel (their
// last tail records; 0: all).
func (f *Fleet) AuditTrail(ctx context.Context, hosts []string, tail int) []HostAudit {
	out := make([]HostAudit, len(hosts))
	cmd := nodeapi.BinaryPath + " audit list"
	if tail > 0 {
		cmd += fmt.Sprintf(" --tail %d", tail)
	}
	forEach(ctx, hosts, f.parallel, func(ctx context.Context, i int, name string) {
		out[i].Host = name
		h, err := f.Conn(name)
		if err != nil {
			out[i].Err = err
			return
		}
		data, err := h.Run(ctx, cmd, nil)
		if err != nil {
			out[i].Err = &StepError{Host: name, Step: "audit list", Err: err}
			return
		}
		out[i].Records, out[i].Skipped = ParseAuditTrail(data)
	})
	return out
}

// ParseAuditTrail decodes JSON lines of audit records, skipping (and
// counting) lines that are not records.
func ParseAuditTrail(data []byte) ([]AuditRecord, int) {
	var recs []AuditRecord
	skipped := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r AuditRecord
		if err := json.Unmarshal(line, &r); err != nil {
			skipped++
			continue
		}
		recs = append(recs, r)
	}
	return recs, skipped
}

// AuditEntry is a record with the hosts that hold it.
type AuditEntry struct {
	AuditRecord
	Hosts []string `json:"hosts"`
}

// MergeAudit merges the hosts' trails: records that are the same change
// (generation, writer, time and ID) once, with every host holding them,
// newest first (by generation, then time).
func MergeAudit(trails []HostAudit) []AuditEntry {
	type key struct {
		gen        int64
		writer, id string
		t          time.Time
	}
	index := map[key]int{}
	var out []AuditEntry
	for _, tr := range trails {
		for _, r := range tr.Records {
			k := key{r.Generation, r.Writer, r.ID, r.Time.UTC()}
			if i, ok := index[k]; ok {
				if !slices.Contains(out[i].Hosts, tr.Host) {
					out[i].Hosts = append(out[i].Hosts, tr.Host)
				}
				continue
			}
			index[k] = len(out)
			out = append(out, AuditEntry{AuditRecord: r, Hosts: []string{tr.Host}})
		}
	}
	for i := range out {
		slices.Sort(out[i].Hosts)
	}
	slices.SortStableFunc(out, func(a, b AuditEntry) int {
		return cmp.Or(cmp.Compare(b.Generation, a.Generation), b.Time.Compare(a.Time), cmp.Compare(a.Writer, b.Writer), cmp.Compare(a.ID, b.ID))
	})
	return out
}
