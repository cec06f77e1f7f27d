package inventory

import (
	"bytes"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// copyTestdata copies a testdata inventory into a fresh directory and
// returns its path there.
func copyTestdata(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(path, readTestdata(t, name), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, path string) *Inventory {
	t.Helper()
	inv, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return inv
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// comments returns the comment text of every line of a YAML file.
func comments(data []byte) []string {
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if i := strings.Index(l, "# "); i >= 0 {
			out = append(out, strings.TrimSpace(l[i:]))
		}
	}
	return out
}

// userPart is the JSON of everything in an inventory the user owns.
func userPart(t *testing.T, inv *Inventory) string {
	t.Helper()
	return string(toJSON(t, []any{inv.APIVersion, inv.Kind, inv.Cluster, inv.SSH, inv.Hosts}))
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestSavePreservesUserContent(t *testing.T) {
	joined := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	sha := strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		input  string
		golden string
		edit   func(*Inventory)
	}{
		{
			name:   "state appended to a commented file",
			input:  "valid-comments.yaml",
			golden: "save-comments.golden.yaml",
			edit: func(inv *Inventory) {
				inv.BumpGeneration()
				// Set out of order: the file lists them sorted.
				inv.SetHostState("h3", HostState{PodCIDR: pfx("10.244.2.0/24"), JoinedAt: joined, AgentletSHA256: sha})
				inv.SetHostState("h1", HostState{PodCIDR: pfx("10.244.0.0/24"), JoinedAt: joined, AgentletSHA256: sha})
				inv.SetHostState("h2", HostState{PodCIDR: pfx("10.244.1.0/24")})
			},
		},
		{
			name:   "existing state replaced",
			input:  "valid-full.yaml",
			golden: "save-full.golden.yaml",
			edit: func(inv *Inventory) {
				inv.BumpGeneration()
				inv.DeleteHostState("gone")
				inv.SetHostState("web-2", HostState{PodCIDR: pfx("10.200.0.128/26"), JoinedAt: joined})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := copyTestdata(t, tt.input)
			original := mustRead(t, path)
			inv := mustLoad(t, path)
			before := userPart(t, inv)
			tt.edit(inv)
			want := inv.State.clone()
			if err := Save(inv); err != nil {
				t.Fatalf("Save: %v", err)
			}
			saved := mustRead(t, path)
			golden(t, tt.golden, saved)

			// Every comment the user wrote is still there, in order.
			if got := comments(saved); !isSubsequence(comments(original), got) {
				t.Errorf("comments lost:\nbefore: %q\nafter:  %q", comments(original), got)
			}
			// The user's part means the same, the state is what was set.
			again := mustLoad(t, path)
			if diff := cmp.Diff(before, userPart(t, again)); diff != "" {
				t.Errorf("user content changed (-before +after):\n%s", diff)
			}
			if !again.State.equal(want) {
				t.Errorf("state after reload = %+v, want %+v", again.State, want)
			}
			// The user's text is unchanged up to yaml.v3's normalisation:
			// the saved file starts with the original re-encoded without
			// state changes.
			if idx := bytes.Index(saved, []byte("\nstate:")); idx < 0 || !strings.Contains(string(saved[:idx]), "hosts:") {
				t.Errorf("state: is not after the user's sections:\n%s", saved)
			}
			if !bytes.Contains(saved, []byte(StateComment+"\nstate:")) && tt.input == "valid-comments.yaml" {
				t.Errorf("appended state: lacks its head comment:\n%s", saved)
			}

			// Saving again without a change writes nothing; loading and
			// saving again yields the same bytes.
			st1, _ := os.Stat(path)
			if err := Save(inv); err != nil {
				t.Fatalf("second Save: %v", err)
			}
			st2, _ := os.Stat(path)
			if !os.SameFile(st1, st2) {
				t.Error("Save without a change replaced the file")
			}
			if got, err := again.Marshal(); err != nil || !bytes.Equal(got, saved) {
				t.Errorf("Load+Marshal is not byte-identical (%v):\n%s", err, cmp.Diff(string(saved), string(got)))
			}
			// A real change followed by its undo restores the bytes.
			inv2 := mustLoad(t, path)
			inv2.BumpGeneration()
			if err := Save(inv2); err != nil {
				t.Fatal(err)
			}
			inv2.State.Generation--
			if err := Save(inv2); err != nil {
				t.Fatal(err)
			}
			if got := mustRead(t, path); !bytes.Equal(got, saved) {
				t.Errorf("change and undo is not byte-identical:\n%s", cmp.Diff(string(saved), string(got)))
			}
		})
	}
}

// isSubsequence reports whether want appears in got in order.
func isSubsequence(want, got []string) bool {
	for _, g := range got {
		if len(want) > 0 && g == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

func TestSaveWithoutStateChangeKeepsFile(t *testing.T) {
	path := copyTestdata(t, "valid-comments.yaml")
	original := mustRead(t, path)
	inv := mustLoad(t, path)
	out, err := inv.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("state:")) {
		t.Errorf("Marshal added an empty state:\n%s", out)
	}
	if err := Update(t.Context(), path, 0, func(*Inventory) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); !bytes.Equal(got, original) {
		t.Errorf("an Update without changes rewrote the file")
	}
}

func TestMarshalDoesNotModifyTheDocument(t *testing.T) {
	inv := mustParse(t, head+"hosts: [{name: h1, address: 10.0.0.1}]\nstate: {generation: 1}\n")
	inv.State.Generation = 5
	first, _ := inv.Marshal()
	inv.State.Generation = 6
	second, _ := inv.Marshal()
	inv.State.Generation = 5
	third, _ := inv.Marshal()
	if bytes.Equal(first, second) || !bytes.Equal(first, third) {
		t.Errorf("Marshal is not a function of State:\n%s\n%s\n%s", first, second, third)
	}
}

func TestSaveKeepsMode(t *testing.T) {
	tests := []struct {
		name string
		mode os.FileMode // 0: the file does not exist yet
		want os.FileMode
	}{
		{"existing 0640", 0o640, 0o640},
		{"existing 0600", 0o600, 0o600},
		{"existing 0644", 0o644, 0o644},
		{"new file", 0, 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inv *Inventory
			path := filepath.Join(t.TempDir(), "cluster.yaml")
			if tt.mode != 0 {
				path = copyTestdata(t, "valid-minimal.yaml")
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
				inv = mustLoad(t, path)
			} else {
				inv = New(path, "lab")
				inv.Hosts = []Host{{Name: "h1", Address: "10.0.0.1"}}
			}
			inv.BumpGeneration()
			if err := Save(inv); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Mode().Perm(); got != tt.want {
				t.Errorf("mode = %v, want %v", got, tt.want)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only the inventory (temp files left?)", len(entries))
			}
		})
	}
}

func TestSaveFollowsSymlink(t *testing.T) {
	real := copyTestdata(t, "valid-minimal.yaml")
	link := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("cannot create symlinks here: %v", err)
	}
	inv := mustLoad(t, link)
	inv.BumpGeneration()
	if err := Save(inv); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", st, err)
	}
	if got := mustLoad(t, real).State.Generation; got != 1 {
		t.Errorf("generation in the link target = %d, want 1", got)
	}
}

func TestSaveDetectsConcurrentEdit(t *testing.T) {
	path := copyTestdata(t, "valid-minimal.yaml")
	inv := mustLoad(t, path)
	edited := append(mustRead(t, path), []byte("  - {name: h2, address: 10.250.0.12}\n")...)
	if err := os.WriteFile(path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	inv.BumpGeneration()
	err := Save(inv)
	if !errors.Is(err, ErrModified) {
		t.Fatalf("Save error = %v, want ErrModified", err)
	}
	if got := mustRead(t, path); !bytes.Equal(got, edited) {
		t.Error("Save overwrote the concurrent edit")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := Save(inv); !errors.Is(err, ErrModified) {
		t.Fatalf("Save over a deleted file: error = %v, want ErrModified", err)
	}
}

func TestSaveRefusesInvalidState(t *testing.T) {
	path := copyTestdata(t, "valid-minimal.yaml")
	original := mustRead(t, path)
	inv := mustLoad(t, path)
	inv.SetHostState("h1", HostState{PodCIDR: pfx("192.168.0.0/24"), AgentletSHA256: "nope"})
	err := Save(inv)
	if err == nil {
		t.Fatal("Save wrote an invalid inventory")
	}
	for _, want := range []string{
		"refuse to write an invalid inventory",
		"state.hosts.h1.podCIDR: 192.168.0.0/24 is not inside cluster.podCIDR 10.244.0.0/16",
		`state.hosts.h1.agentletSHA256: invalid SHA-256 "nope"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if got := mustRead(t, path); !bytes.Equal(got, original) {
		t.Error("the file changed")
	}
}

func TestSaveNewInventory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lab.yaml")
	inv := New(path, "lab")
	inv.Cluster.PodCIDR = pfx("10.200.0.0/16")
	inv.SSH.User = "vagrant"
	inv.SSH.IdentityFile = "./id_ed25519"
	inv.SSH.UseAgent = false
	inv.SSH.ConnectTimeout = 5 * time.Second
	inv.Hosts = []Host{
		{Name: "h1", Address: "10.250.0.11", Labels: map[string]string{"zone": "a", "example.com/rack": "r1"}},
		{Name: "h2", Address: "127.0.0.1", Port: 2222, User: "root",
			Taints: []Taint{{Key: "dedicated", Value: "db", Effect: TaintNoSchedule}, {Key: "gpu", Effect: TaintNoExecute}}},
	}
	inv.BumpGeneration()
	inv.SetHostState("h1", HostState{PodCIDR: pfx("10.200.0.0/24")})
	if err := Save(inv); err != nil {
		t.Fatal(err)
	}
	golden(t, "save-new.golden.yaml", mustRead(t, path))
	got := mustLoad(t, path)
	for _, x := range []*Inventory{inv, got} {
		x.HomeDir, x.Warnings = "", nil
	}
	if diff := cmp.Diff(string(toJSON(t, inv)), string(toJSON(t, got))); diff != "" {
		t.Errorf("New+Save+Load changed the inventory (-saved +loaded):\n%s", diff)
	}
	// A second new inventory does not replace the file.
	other := New(path, "other")
	other.Hosts = []Host{{Name: "h1", Address: "10.0.0.1"}}
	if err := Save(other); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Save of a new inventory over an existing file: error = %v, want fs.ErrExist", err)
	}
	// The reloaded inventory marshals back identically.
	saved := mustRead(t, path)
	if out, err := got.Marshal(); err != nil || !bytes.Equal(out, saved) {
		t.Errorf("Load+Marshal of a new inventory is not byte-identical (%v):\n%s", err, cmp.Diff(string(saved), string(out)))
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) ||
		!strings.HasPrefix(err.Error(), "read inventory: ") {
		t.Errorf("Load of a missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(head+"hosts: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var verr *ValidationError
	if _, err := Load(bad); !errors.As(err, &verr) || !slices.ContainsFunc(verr.Problems, func(p Problem) bool {
		return p.File == bad && p.Line == 4 && p.Field == "hosts"
	}) {
		t.Errorf("Load of an invalid file: %v", err)
	}
}

func TestLoadSetsHomeDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	inv := mustLoad(t, copyTestdata(t, "valid-minimal.yaml"))
	h, _ := inv.Host("h1")
	if got, want := inv.HostSSH(h).KnownHosts, filepath.Join(home, ".ssh/known_hosts"); got != want {
		t.Errorf("KnownHosts = %q, want %q", got, want)
	}
}

func TestMarshalQuotesAmbiguousHostNames(t *testing.T) {
	names := []string{"null", "true", "123", "0x1f", "1e3", "y", "off", "0o17", "2026-11-21"}
	var src strings.Builder
	src.WriteString(head + "hosts:\n")
	for i, n := range names {
		src.WriteString("  - {name: \"" + n + "\", address: 10.0.0." + strconv.Itoa(i+1) + "}\n")
	}
	inv := mustParse(t, src.String())
	for i, n := range names {
		inv.SetHostState(n, HostState{PodCIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24)})
	}
	out, err := inv.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("c.yaml", out)
	if err != nil {
		t.Fatalf("Parse(Marshal()): %v\n%s", err, out)
	}
	if !again.State.equal(inv.State) {
		t.Errorf("state changed through Marshal:\n%s", out)
	}
}
