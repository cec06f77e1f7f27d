package playbooks

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRenderRegistryHosts(t *testing.T) {
	files := RenderRegistryHosts([]RegistryHost{
		{Host: "10.250.0.2:5000", Insecure: true, Mirrors: []string{"docker.io", "registry.k8s.io"}},
		{Host: "registry.example.com"},
		{Host: "mirror.example.com", Mirrors: []string{"docker.io"}},
	})
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(&b, "==> %s <==\n%s\n", p, files[p])
	}
	golden(t, "registry-hosts.toml", []byte(b.String()))
	if got := RenderRegistryHosts(nil); len(got) != 0 {
		t.Errorf("no registries rendered %d files", len(got))
	}
}

func TestParseFactsRegistryHosts(t *testing.T) {
	out := sampleFacts(map[string]string{
		"regsum:/etc/containerd/certs.d/10.250.0.2:5000/hosts.toml": "abc",
		"regforeign": "/etc/containerd/certs.d/quay.io/hosts.toml",
	})
	f, err := ParseFacts([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"/etc/containerd/certs.d/10.250.0.2:5000/hosts.toml": "abc"}, f.RegistryHosts); diff != "" {
		t.Errorf("RegistryHosts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/etc/containerd/certs.d/quay.io/hosts.toml"}, f.ForeignRegistryHosts); diff != "" {
		t.Errorf("ForeignRegistryHosts (-want +got):\n%s", diff)
	}
	if !strings.Contains(factsScript(), RegistryHostsDir+"/*/hosts.toml") {
		t.Error("the facts script does not look at the registry hosts")
	}
}

func TestSyncRegistryHosts(t *testing.T) {
	lab := RegistryHost{Host: "10.250.0.2:5000", Insecure: true, Mirrors: []string{"docker.io"}}
	want := RenderRegistryHosts([]RegistryHost{lab})
	labPath, hubPath := registryHostsPath(lab.Host), registryHostsPath("docker.io")
	stalePath := registryHostsPath("old.example:5000")
	for _, tc := range []struct {
		name     string
		managed  map[string]string // path → sum on the host
		foreign  []string
		want     map[string][]byte
		uploads  int
		removes  []string
		changed  string
		errMatch string
	}{
		{name: "converged", managed: map[string]string{labPath: sha256Hex(want[labPath]), hubPath: sha256Hex(want[hubPath])}, want: want},
		{name: "fresh host", want: want, uploads: 2, changed: "registry hosts 10.250.0.2:5000 docker.io"},
		{name: "changed and stale", managed: map[string]string{labPath: "old", hubPath: sha256Hex(want[hubPath]), stalePath: "x"}, want: want,
			uploads: 1, removes: []string{stalePath}, changed: "registry hosts 10.250.0.2:5000; removed registry hosts old.example:5000"},
		{name: "registry dropped", managed: map[string]string{labPath: "x", hubPath: "y"}, removes: []string{labPath, hubPath},
			changed: "removed registry hosts 10.250.0.2:5000 docker.io"},
		{name: "foreign file in the way", foreign: []string{hubPath}, want: want, errMatch: "refuse to replace " + hubPath},
		{name: "foreign files are left alone", foreign: []string{registryHostsPath("quay.io")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &fakeHost{answer: func(string, []byte) ([]byte, error) { return nil, nil }}
			f := &Facts{RegistryHosts: tc.managed, ForeignRegistryHosts: tc.foreign}
			if f.RegistryHosts == nil {
				f.RegistryHosts = map[string]string{}
			}
			changed, err := syncRegistryHosts(context.Background(), h, f, tc.want)
			if tc.errMatch != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errMatch) {
					t.Fatalf("err = %v, want %q", err, tc.errMatch)
				}
				if len(h.uploads)+len(h.cmds) != 0 {
					t.Errorf("a refused sync still changed the host: %v %v", h.uploads, h.cmds)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.changed {
				t.Errorf("changed = %q, want %q", changed, tc.changed)
			}
			if len(h.uploads) != tc.uploads {
				t.Errorf("uploads = %d, want %d", len(h.uploads), tc.uploads)
			}
			var rm []string
			for _, c := range h.cmds {
				for _, p := range []string{labPath, hubPath, stalePath} {
					if strings.Contains(c, "rm -f "+shellQuote(p)) {
						rm = append(rm, p)
					}
				}
			}
			slices.Sort(rm)
			wantRm := slices.Sorted(slices.Values(tc.removes))
			if diff := cmp.Diff(wantRm, rm); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
		})
	}
}
