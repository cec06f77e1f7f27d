package playbooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterctl/clusterctl/agentlet"
	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan/controller"
	"github.com/clusterctl/clusterctl/remote"
)

// agentletHost is a Host whose agentlet commands run the real agentlet
// (in-process, its state under root), so that the CLI's side of the
// snapshot and audit contract is tested against agentlet's.
type agentletHost struct {
	name string
	root string
	cmds []string
	down bool
}

func (h *agentletHost) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	h.cmds = append(h.cmds, cmd)
	if h.down {
		return nil, errors.New("connection lost")
	}
	args, ok := strings.CutPrefix(cmd, nodeapi.BinaryPath+" ")
	if !ok {
		return nil, fmt.Errorf("unexpected command %q", cmd)
	}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	code := agentlet.Main(ctx, agentlet.Env{In: stdin, Out: &out, Err: &errb}, append(strings.Fields(args), "--root", h.root))
	if code != 0 {
		return out.Bytes(), &remote.CommandError{Host: h.name, Cmd: cmd, ExitCode: code, Stderr: errb.String()}
	}
	return out.Bytes(), nil
}

func (h *agentletHost) Upload(context.Context, io.Reader, string, os.FileMode) error { return nil }
func (h *agentletHost) TempPath(prefix string) string                                { return "/tmp/" + prefix }
func (h *agentletHost) Close() error                                                 { return nil }

func agentletFleet(t *testing.T, names ...string) (*Fleet, map[string]*agentletHost) {
	t.Helper()
	hosts := map[string]*agentletHost{}
	for _, n := range names {
		hosts[n] = &agentletHost{name: n, root: t.TempDir()}
	}
	f := Connect(t.Context(), names, func(_ context.Context, name string) (Host, error) { return hosts[name], nil }, 4)
	return f, hosts
}

const testInventory = `apiVersion: clusterctl.dev/v1alpha1
kind: Inventory
cluster: {name: demo}
hosts:
  - {name: h1, address: 10.0.0.1}
  - {name: h2, address: 10.0.0.2}
state:
  generation: %d
  hosts:
    h1: {podCIDR: 10.244.0.0/24}
    h2: {podCIDR: 10.244.1.0/24}
  objects:
    - {apiVersion: v1, kind: ConfigMap, metadata: {name: cfg, namespace: default}, data: {gen: "%d"}}
`

func testSnapshotOf(t *testing.T, gen int64) *inventory.Snapshot {
	t.Helper()
	inv, err := inventory.Parse("c.yaml", []byte(fmt.Sprintf(testInventory, gen, gen)))
	if err != nil {
		t.Fatal(err)
	}
	return inv.Snapshot()
}

func TestPutAndGetSnapshots(t *testing.T) {
	f, hosts := agentletFleet(t, "h1", "h2", "h3")
	at := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	rec := &AuditRecord{Generation: 4, Time: at, Writer: "ann@laptop", Command: []string{"clusterctl", "apply", "-f", "cfg.yaml"},
		Changes: []AuditChange{{Action: ActionCreated, Kind: "ConfigMap", Namespace: "default", Name: "cfg"}}}
	res := f.PutSnapshot(t.Context(), testSnapshotOf(t, 4), rec, []string{"h1", "h2"})
	for _, r := range res {
		if r.Err != nil || !r.Changed {
			t.Fatalf("put %s: %+v", r.Host, r)
		}
	}
	// The same again changes nothing; an older one is refused as stale.
	if res := f.PutSnapshot(t.Context(), testSnapshotOf(t, 4), rec, []string{"h1"}); res[0].Err != nil || res[0].Changed {
		t.Errorf("same snapshot again: %+v", res[0])
	}
	old := *rec
	old.Generation = 3
	res = f.PutSnapshot(t.Context(), testSnapshotOf(t, 3), &old, []string{"h2"})
	var ce *remote.CommandError
	if !errors.As(res[0].Err, &ce) || ce.ExitCode != agentlet.ExitStale {
		t.Errorf("older snapshot: %v, want exit %d", res[0].Err, agentlet.ExitStale)
	}
	// A mismatched record is refused before any host is asked.
	n := len(hosts["h1"].cmds)
	if res := f.PutSnapshot(t.Context(), testSnapshotOf(t, 5), rec, []string{"h1"}); res[0].Err == nil || len(hosts["h1"].cmds) != n {
		t.Errorf("record of another generation: %+v, %d commands", res[0], len(hosts["h1"].cmds)-n)
	}
	if len(hosts["h1"].cmds) != 2 || hosts["h1"].cmds[0] != nodeapi.BinaryPath+" snapshot put" {
		t.Errorf("h1 commands = %q, want one snapshot put per call", hosts["h1"].cmds)
	}

	// h1 holds a node spec of generation 4 (undecodable here: only its
	// generation matters).
	specPath := filepath.Join(hosts["h1"].root, nodeapi.SpecPath)
	if err := os.WriteFile(specPath, []byte(`{"generation":4}`), 0o600); err != nil {
		t.Fatal(err)
	}
	got := f.GetSnapshots(t.Context(), []string{"h1", "h2", "h3"})
	if got[0].SpecGeneration != 4 || got[1].SpecGeneration != 0 {
		t.Errorf("spec generations = %d, %d; want 4, 0", got[0].SpecGeneration, got[1].SpecGeneration)
	}
	if c := ChooseSnapshot(got); c == nil || c.SpecGeneration != 4 || c.SpecHost != "h1" {
		t.Errorf("choice = %+v, want spec generation 4 on h1", c)
	}
	if got[2].Err != nil || got[2].Snapshot != nil {
		t.Errorf("h3 holds %+v, %v; want none", got[2].Snapshot, got[2].Err)
	}
	for _, r := range got[:2] {
		if r.Err != nil || r.Snapshot == nil {
			t.Fatalf("get %s: %+v", r.Host, r)
		}
		snap, err := r.Snapshot.Snapshot()
		if err != nil {
			t.Fatalf("decode %s: %v", r.Host, err)
		}
		want, _ := testSnapshotOf(t, 4).Marshal()
		if got, _ := snap.Marshal(); !bytes.Equal(want, got) {
			t.Errorf("%s snapshot changed on the way:\n%s\nwant:\n%s", r.Host, got, want)
		}
		if r.Snapshot.Writer != "ann@laptop" || !r.Snapshot.WrittenAt.Equal(at) {
			t.Errorf("%s: writer %q at %s", r.Host, r.Snapshot.Writer, r.Snapshot.WrittenAt)
		}
	}

	trails := f.AuditTrail(t.Context(), []string{"h1", "h2", "h3"}, 0)
	if trails[0].Err != nil || len(trails[0].Records) != 2 || len(trails[1].Records) != 1 || len(trails[2].Records) != 0 {
		t.Fatalf("trails = %+v", trails)
	}
	if diff := cmp.Diff(*rec, trails[1].Records[0]); diff != "" {
		t.Errorf("record changed on the way (-appended +listed):\n%s", diff)
	}
	merged := MergeAudit(trails)
	if len(merged) != 1 || !slicesEqual(merged[0].Hosts, []string{"h1", "h2"}) {
		t.Errorf("merged = %+v, want one record held by h1 and h2", merged)
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestStoredSnapshotRejectsCorruption(t *testing.T) {
	good, err := NewStoredSnapshot(testSnapshotOf(t, 2), "w", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := good.Snapshot(); err != nil {
		t.Fatalf("good snapshot: %v", err)
	}
	tests := map[string]func(s *StoredSnapshot){
		"checksum":   func(s *StoredSnapshot) { s.SHA256 = strings.Repeat("0", 64) },
		"size":       func(s *StoredSnapshot) { s.Size-- },
		"not gzip":   func(s *StoredSnapshot) { s.Data = []byte("x") },
		"generation": func(s *StoredSnapshot) { s.Generation = 3 },
	}
	for name, corrupt := range tests {
		s := good
		s.Data = bytes.Clone(good.Data)
		corrupt(&s)
		if _, err := s.Snapshot(); err == nil {
			t.Errorf("%s: corrupted snapshot decoded", name)
		}
	}
}

func TestChooseSnapshot(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	snap := func(gen int64, sha string, at time.Time) *StoredSnapshot {
		return &StoredSnapshot{Generation: gen, SHA256: sha, WrittenAt: at, Writer: "w"}
	}
	tests := []struct {
		name   string
		in     []SnapshotResult
		winner string
		agree  []string
		others int
	}{
		{"none", []SnapshotResult{{Host: "h1"}, {Host: "h2", Err: errors.New("down")}}, "", nil, 0},
		{"highest generation wins", []SnapshotResult{
			{Host: "h1", Snapshot: snap(3, "a", t0)}, {Host: "h2", Snapshot: snap(5, "b", t0)}, {Host: "h3", Snapshot: snap(5, "b", t0)}},
			"h2", []string{"h2", "h3"}, 1},
		{"same generation: latest written wins", []SnapshotResult{
			{Host: "h1", Snapshot: snap(5, "a", t0)}, {Host: "h2", Snapshot: snap(5, "b", t0.Add(time.Minute))}, {Host: "h3"}},
			"h2", []string{"h2"}, 2},
		{"a tie goes to the content most hosts hold", []SnapshotResult{
			{Host: "h1", Snapshot: snap(5, "a", t0)}, {Host: "h2", Snapshot: snap(5, "b", t0)}, {Host: "h3", Snapshot: snap(5, "b", t0)}},
			"h2", []string{"h2", "h3"}, 1},
	}
	for _, tt := range tests {
		c := ChooseSnapshot(tt.in)
		if tt.winner == "" {
			if c != nil {
				t.Errorf("%s: chose %+v", tt.name, c)
			}
			continue
		}
		if c == nil || c.Winner != tt.winner || !slicesEqual(c.Agree, tt.agree) || len(c.Others) != tt.others {
			t.Errorf("%s: got %+v, want winner %s agreeing %v with %d others", tt.name, c, tt.winner, tt.agree, tt.others)
		}
	}
}

func TestRedactCommand(t *testing.T) {
	tests := []struct{ in, want string }{
		{"clusterctl apply -f web.yaml", "clusterctl apply -f web.yaml"},
		{"clusterctl login --password hunter2 --user ann", "clusterctl login --password <redacted> --user ann"},
		{"clusterctl x --registry-password=hunter2 --token=abc", "clusterctl x --registry-password=<redacted> --token=<redacted>"},
		{"clusterctl create secret generic s --from-literal=key=val", "clusterctl create secret generic s --from-literal=<redacted>"},
		{"clusterctl x --password --yes", "clusterctl x --password --yes"},
		{"clusterctl exec p -- app --password pw", "clusterctl exec p -- app --password pw"},
	}
	for _, tt := range tests {
		if got := strings.Join(RedactCommand(strings.Fields(tt.in)), " "); got != tt.want {
			t.Errorf("RedactCommand(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestAuditRecordForLoopAndSummary(t *testing.T) {
	base := &AuditRecord{Command: []string{"clusterctl", "delete", "cm", "a"},
		Changes: []AuditChange{{Action: ActionDeleted, Kind: "ConfigMap", Namespace: "default", Name: "a"}}}
	now := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	rec := base.ForLoop(9, "ann@laptop", now, "seed", map[string]string{"default/p2": "h2", "default/p1": "h1"}, controllerChanges(),
		[]PushResult{{Host: "h2", Changed: true}, {Host: "h1", Changed: false}, {Host: "h3", Err: errors.New("x")}})
	want := []AuditChange{
		{Action: ActionDeleted, Kind: "ConfigMap", Namespace: "default", Name: "a"},
		{Action: ActionUpdated, Kind: "ConfigMap", Namespace: "default", Name: "c"},
		{Action: ActionRemoved, Kind: "Pod", Namespace: "default", Name: "old"},
		{Action: ActionBound, Kind: "Pod", Namespace: "default", Name: "p1", Node: "h1"},
		{Action: ActionBound, Kind: "Pod", Namespace: "default", Name: "p2", Node: "h2"},
	}
	if diff := cmp.Diff(want, rec.Changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if rec.Generation != 9 || rec.Writer != "ann@laptop" || !rec.Time.Equal(now) || rec.ID == "" || !slicesEqual(rec.Nodes, []string{"h2"}) {
		t.Errorf("record = %+v", rec)
	}
	if len(base.Changes) != 1 {
		t.Errorf("ForLoop changed the command's record: %+v", base)
	}
	if got := rec.Summary(); got != "1 deleted, 1 updated, 1 removed, 2 bound; 1 node updated" {
		t.Errorf("Summary = %q", got)
	}
	var nilRec *AuditRecord
	if nilRec.HasChanges() || !base.HasChanges() {
		t.Error("HasChanges")
	}
	big := &AuditRecord{}
	for i := 0; i < MaxAuditChanges+5; i++ {
		big.Add(AuditChange{Action: ActionCreated, Kind: "Pod", Name: fmt.Sprint(i)})
	}
	if len(big.Changes) != MaxAuditChanges || big.More != 5 {
		t.Errorf("capped record: %d changes, %d more", len(big.Changes), big.More)
	}
	data, _ := json.Marshal(big)
	if len(data) > 64<<10 {
		t.Errorf("a full record is %d bytes; agentlet accepts at most 256 KiB, keep it well below", len(data))
	}
}

func TestMergeAudit(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := func(gen int64, writer string, sec int) AuditRecord {
		return AuditRecord{Generation: gen, Writer: writer, Time: t0.Add(time.Duration(sec) * time.Second)}
	}
	trails := []HostAudit{
		{Host: "h1", Records: []AuditRecord{r(1, "ann", 0), r(2, "ann", 10), r(3, "bob", 20)}},
		{Host: "h2", Records: []AuditRecord{r(2, "ann", 10), r(3, "bob", 20), r(3, "bob", 25)}},
		{Host: "h3", Err: errors.New("unreachable")},
	}
	got := MergeAudit(trails)
	type row struct {
		Gen   int64
		Sec   int
		Hosts string
	}
	var rows []row
	for _, e := range got {
		rows = append(rows, row{e.Generation, int(e.Time.Sub(t0).Seconds()), strings.Join(e.Hosts, ",")})
	}
	want := []row{{3, 25, "h2"}, {3, 20, "h1,h2"}, {2, 10, "h1,h2"}, {1, 0, "h1"}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("merged (-want +got):\n%s", diff)
	}
}

func TestParseAuditTrailSkipsGarbage(t *testing.T) {
	recs, skipped := ParseAuditTrail([]byte("{\"generation\":1,\"writer\":\"a\"}\nnot json\n\n{\"generation\":2}\n"))
	if len(recs) != 2 || skipped != 1 || recs[1].Generation != 2 {
		t.Errorf("got %+v, skipped %d", recs, skipped)
	}
}

func controllerChanges() controller.Changes {
	return controller.Changes{
		Put:    []controller.Object{&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "c"}}},
		Delete: []controller.Ref{{Kind: "Pod", Namespace: "default", Name: "old"}},
	}
}

func TestPutSnapshotUnreachableHost(t *testing.T) {
	f, hosts := agentletFleet(t, "h1", "h2")
	hosts["h2"].down = true
	rec := &AuditRecord{Generation: 1, Writer: "w", Time: time.Now()}
	res := f.PutSnapshot(t.Context(), testSnapshotOf(t, 1), rec, []string{"h1", "h2"})
	if res[0].Err != nil || !res[0].Changed || res[1].Err == nil {
		t.Errorf("results = %+v, want h1 stored and h2 failed", res)
	}
	var se *StepError
	if !errors.As(res[1].Err, &se) || se.Host != "h2" || se.Step != "snapshot" {
		t.Errorf("h2 error = %#v, want a StepError naming the host", res[1].Err)
	}
}

func TestReachable(t *testing.T) {
	obs := []Observation{{Host: "h1", Status: &nodeapi.NodeStatus{}}, {Host: "h2"}, {Host: "h3", Status: &nodeapi.NodeStatus{}, Err: errors.New("x")}, {Host: "h4", Status: &nodeapi.NodeStatus{}}}
	if got := Reachable(obs); !slicesEqual(got, []string{"h1", "h4"}) {
		t.Errorf("Reachable = %v", got)
	}
}
