package cli

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/playbooks"
)

func TestSelectHosts(t *testing.T) {
	inv := inventory.New("c.yaml", "c")
	inv.Hosts = []inventory.Host{{Name: "h1"}, {Name: "h2"}, {Name: "h3"}}
	for _, tc := range []struct {
		name string
		only []string
		want []string
		bad  bool
	}{
		{"all", nil, []string{"h1", "h2", "h3"}, false},
		{"comma list, inventory order", []string{"h3,h1"}, []string{"h1", "h3"}, false},
		{"repeated flag", []string{"h2", " h3 "}, []string{"h2", "h3"}, false},
		{"unknown", []string{"h1,h9"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := selectHosts(inv, tc.only)
			if tc.bad {
				var ee *exitError
				if err == nil || !errors.As(err, &ee) || ee.code != ExitUsage {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRegistryHosts(t *testing.T) {
	inv := inventory.New("c.yaml", "c")
	inv.Cluster.Registries = []inventory.Registry{
		{Host: "10.250.0.2:5000", Insecure: true, Mirrors: []string{"docker.io"}},
		{Host: "reg.example", Username: "u", Password: "secret"},
	}
	want := []playbooks.RegistryHost{
		{Host: "10.250.0.2:5000", Insecure: true, Mirrors: []string{"docker.io"}},
		{Host: "reg.example"},
	}
	if diff := cmp.Diff(want, registryHosts(inv)); diff != "" {
		t.Errorf("registry hosts (-want +got):\n%s", diff)
	}
}
