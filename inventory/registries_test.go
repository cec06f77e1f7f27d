package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRegistryCredentials(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "reg.pass"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty.pass"), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := &Inventory{Path: filepath.Join(dir, "cluster.yaml")}
	env := map[string]string{"REG_PW": "from-env"}
	for _, tc := range []struct {
		name       string
		r          Registry
		user, pass string
		err        string
	}{
		{"none", Registry{Host: "r"}, "", "", ""},
		{"inline", Registry{Host: "r", Username: "u", Password: "p"}, "u", "p", ""},
		{"env", Registry{Host: "r", Username: "u", PasswordEnv: "REG_PW"}, "u", "from-env", ""},
		{"unset env", Registry{Host: "r", Username: "u", PasswordEnv: "NOPE"}, "", "", "NOPE is empty or unset"},
		{"file relative to the inventory", Registry{Host: "r", Username: "u", PasswordFile: "reg.pass"}, "u", "from-file", ""},
		{"empty file", Registry{Host: "r", Username: "u", PasswordFile: "empty.pass"}, "", "", "is empty"},
		{"missing file", Registry{Host: "r", Username: "u", PasswordFile: "missing"}, "", "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, p, err := inv.RegistryCredentials(tc.r, func(k string) string { return env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || u != tc.user || p != tc.pass {
				t.Errorf("= %q, %q, %v; want %q, %q", u, p, err, tc.user, tc.pass)
			}
		})
	}
}

func TestRegistryInlinePasswordWarns(t *testing.T) {
	const doc = `apiVersion: clusterctl.dev/v1alpha1
kind: Inventory
cluster:
  name: c
  registries:
    - host: reg.example:5000
      username: u
      password: hunter2
hosts:
  - {name: h1, address: 10.0.0.1}
`
	inv, err := Parse("c.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Warnings) != 1 || !strings.Contains(inv.Warnings[0].String(), "c.yaml:8: cluster.registries[0].password: password written in the inventory") {
		t.Errorf("warnings = %v", inv.Warnings)
	}
	if inv.Cluster.Registries[0].Password != "hunter2" {
		t.Errorf("password not parsed: %+v", inv.Cluster.Registries[0])
	}
	if js := string(toJSON(t, inv)); strings.Contains(js, "hunter2") {
		t.Errorf("the password appears in the JSON form:\n%s", js)
	}
}

// TestRegistriesMarshalNew checks that an inventory built in code writes its
// registries and reads them back.
func TestRegistriesMarshalNew(t *testing.T) {
	inv := New("c.yaml", "c")
	inv.Hosts = []Host{{Name: "h1", Address: "10.0.0.1"}}
	want := []Registry{
		{Host: "10.250.0.2:5000", Insecure: true, Mirrors: []string{"docker.io"}},
		{Host: "reg.example", Username: "u", PasswordFile: "./p"},
	}
	inv.Cluster.Registries = want
	out, err := inv.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "mirrors: [docker.io]") {
		t.Errorf("mirrors not in flow style:\n%s", out)
	}
	again, err := Parse("c.yaml", out)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	if diff := cmp.Diff(want, again.Cluster.Registries); diff != "" {
		t.Errorf("registries (-want +got):\n%s", diff)
	}
}

func TestValidateRegistryHost(t *testing.T) {
	for host, ok := range map[string]bool{
		"docker.io": true, "10.250.0.2:5000": true, "[::1]:5000": true, "[2001:db8::1]": true, "Registry.Example.COM": true,
		"localhost:5000": true, "": false, "https://x": false, "x/y": false, "u@x": false, "::1": false, "x:0": false,
		"[::1]5000": false, "[10.0.0.1]:5": false, "-x.example": false, "x:y": false,
	} {
		if err := validateRegistryHost(host); (err == nil) != ok {
			t.Errorf("validateRegistryHost(%q) = %v, want ok=%t", host, err, ok)
		}
	}
}
