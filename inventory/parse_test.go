package inventory

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// head is the part of an inventory most test cases share.
const head = "apiVersion: clusterctl.dev/v1alpha1\nkind: Inventory\ncluster: {name: lab}\n"

// mustParse parses src as c.yaml and fails the test on error.
func mustParse(t *testing.T, src string) *Inventory {
	t.Helper()
	inv, err := Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return inv
}

// problems parses src and returns the problem lines.
func problems(t *testing.T, src string) []string {
	t.Helper()
	_, err := Parse("c.yaml", []byte(src))
	if err == nil {
		return nil
	}
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error is %T, want *ValidationError: %v", err, err)
	}
	return strings.Split(err.Error(), "\n")
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // nil: valid
	}{
		{
			name: "valid with CRLF line endings",
			src:  strings.ReplaceAll(head+"hosts:\n  - {name: h1, address: 10.0.0.1}\n", "\n", "\r\n"),
		},
		{
			name: "unquoted and quoted joinedAt",
			src: head + "hosts: [{name: h1, address: 10.0.0.1}, {name: h2, address: 10.0.0.2}]\n" +
				"state: {hosts: {h1: {joinedAt: 2026-11-21T22:00:00Z}, h2: {joinedAt: '2026-11-21T22:00:00.5+02:00'}}}\n",
		},
		{
			name: "null sections are absent",
			src:  head + "ssh:\nstate:\nhosts:\n  - name: h1\n    address: 10.0.0.1\n    labels:\n    taints:\n",
		},
		{
			name: "empty mapping is the empty inventory",
			src:  "{}\n",
			want: []string{
				"c.yaml:1: apiVersion: missing required field",
				"c.yaml:1: kind: missing required field",
				"c.yaml:1: cluster: missing required field",
				"c.yaml:1: hosts: missing required field",
			},
		},
		{
			name: "document of null",
			src:  "---\n~\n",
			want: []string{"c.yaml: empty inventory: expected a mapping with apiVersion, kind, cluster and hosts"},
		},
		{
			name: "scalar document",
			src:  "hello\n",
			want: []string{"c.yaml:1: expected a mapping at the top level, got a string"},
		},
		{
			name: "tab indentation",
			src:  head + "hosts:\n\t- name: h1\n",
			want: []string{"c.yaml:5: invalid YAML: found character that cannot start any token"},
		},
		{
			name: "no suggestion for a distant name",
			src:  head + "hosts: [{name: h1, address: 10.0.0.1, flavour: big}]\n",
			want: []string{"c.yaml:4: hosts[0].flavour: unknown field"},
		},
		{
			name: "case-only typo",
			src:  head + "hosts: [{name: h1, Address: 10.0.0.1}]\n",
			want: []string{
				`c.yaml:4: hosts[0].Address: unknown field (did you mean "address"?)`,
				"c.yaml:4: hosts[0].address: missing required field",
			},
		},
		{
			name: "non-scalar key",
			src:  head + "hosts: [{name: h1, address: 10.0.0.1}]\n? [a, b]\n: x\n",
			want: []string{"c.yaml:5: expected a string key, got a sequence"},
		},
		{
			name: "custom tag",
			src:  head + "hosts: [{name: !secret h1, address: 10.0.0.1}]\n",
			want: []string{"c.yaml:4: hosts[0].name: expected a string, got a value tagged !secret"},
		},
		{
			name: "explicit string tag is a string",
			src:  head + "hosts: [{name: !!str 123, address: 10.0.0.1}]\n",
		},
		{
			name: "alias reused in a label value points at the alias",
			src:  head + "hosts:\n  - name: h1\n    address: &a 10.0.0.1\n    labels:\n      ip: *a\n      bad: &b [1]\n      worse: *b\n",
			want: []string{
				"c.yaml:9: hosts[0].labels.bad: expected a string, got a sequence",
				"c.yaml:10: hosts[0].labels.worse: expected a string, got a sequence",
			},
		},
		{
			name: "hosts is a mapping",
			src:  head + "hosts: {h1: {address: 10.0.0.1}}\n",
			want: []string{"c.yaml:4: hosts: expected a sequence, got a mapping"},
		},
		{
			name: "hosts is null",
			src:  head + "hosts:\n",
			want: []string{"c.yaml:4: hosts: required field is empty"},
		},
		{
			name: "integer overflow",
			src:  head + "hosts: [{name: h1, address: 10.0.0.1}]\nstate: {generation: 99999999999999999999}\n",
			want: []string{"c.yaml:5: state.generation: expected an integer, got a number"},
		},
		{
			name: "state host that is null is allowed",
			src:  head + "hosts: [{name: h1, address: 10.0.0.1}]\nstate: {hosts: {h1: }}\n",
		},
		{
			name: "state host key that is not a label is quoted in the path",
			src:  head + "hosts: [{name: h1, address: 10.0.0.1}]\nstate:\n  hosts:\n    h1.example: {}\n",
			want: []string{`c.yaml:7: state.hosts["h1.example"]: invalid name "h1.example": a DNS-1123 label consists of lowercase letters, digits and '-', and starts and ends with a letter or digit`},
		},
		{
			name: "duplicate pod CIDR among unlisted hosts",
			src: head + "hosts: [{name: h1, address: 10.0.0.1}]\nstate:\n  hosts:\n" +
				"    a: {podCIDR: 10.244.3.0/24}\n    b: {podCIDR: 10.244.3.0/24}\n",
			want: []string{`c.yaml:8: state.hosts.b.podCIDR: duplicate pod CIDR 10.244.3.0/24 (first at line 7, host "a")`},
		},
		{
			name: "bad podCIDR does not cascade into state checks",
			src: "apiVersion: clusterctl.dev/v1alpha1\nkind: Inventory\ncluster: {name: lab, podCIDR: nope}\n" +
				"hosts: [{name: h1, address: 10.0.0.1}]\nstate: {hosts: {h1: {podCIDR: 10.244.0.0/24}}}\n",
			want: []string{`c.yaml:3: cluster.podCIDR: invalid CIDR "nope"`},
		},
		{
			name: "same address on different ports is fine, same port is not",
			src: head + "ssh: {port: 2200}\nhosts:\n  - {name: h1, address: 127.0.0.1, port: 2222}\n" +
				"  - {name: h2, address: 127.0.0.1}\n  - {name: h3, address: 127.0.0.1, port: 2200}\n",
			want: []string{`c.yaml:8: hosts[2].address: duplicate address 127.0.0.1 port 2200 (first at line 7, host "h2")`},
		},
		{
			name: "exactly as many hosts as subnets",
			src: "apiVersion: clusterctl.dev/v1alpha1\nkind: Inventory\ncluster: {name: lab, podCIDR: 10.244.0.0/23}\n" +
				"hosts: [{name: h1, address: 10.0.0.1}, {name: h2, address: 10.0.0.2}]\n",
		},
		{
			name: "proxyJump forms",
			src:  head + "ssh: {proxyJump: 'a,u@b,c:2,u@[::1]:3,[fe80::1]'}\nhosts: [{name: h1, address: 10.0.0.1}]\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.src)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	inv := mustParse(t, head+"hosts: [{name: h1, address: 10.0.0.1}, {name: h2, address: 10.0.0.2}]\n"+
		"state: {generation: 3, hosts: {h1: {joinedAt: 2026-11-21T22:00:00Z, internalIP: 10.0.0.1}, h2: {joinedAt: '2026-11-21T23:00:00.5+01:00', unschedulable: true}}}\n")
	want := map[string]HostState{
		"h1": {JoinedAt: time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC), InternalIP: netip.MustParseAddr("10.0.0.1")},
		"h2": {JoinedAt: time.Date(2026, 11, 21, 22, 0, 0, 5e8, time.UTC), Unschedulable: true},
	}
	if diff := cmp.Diff(want, inv.State.Hosts, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
		t.Errorf("state mismatch (-want +got):\n%s", diff)
	}
	if inv.State.Generation != 3 {
		t.Errorf("generation = %d, want 3", inv.State.Generation)
	}
	if inv.SSH.ConnectTimeout != DefaultConnectTimeout || !inv.SSH.UseAgent || inv.SSH.Sudo != SudoAuto {
		t.Errorf("ssh defaults not applied: %+v", inv.SSH)
	}
	if inv.Cluster.PodCIDR != netip.MustParsePrefix(DefaultPodCIDR) || inv.Cluster.NodeCIDRMaskSize != 24 {
		t.Errorf("cluster defaults not applied: %+v", inv.Cluster)
	}
}

func TestParseIsPure(t *testing.T) {
	// Parse must not touch the file system: a path that does not exist is
	// only used in messages.
	inv := mustParse(t, head+"ssh: {identityFile: key}\nhosts: [{name: h1, address: 10.0.0.1}]\n")
	if inv.HomeDir != "" {
		t.Errorf("Parse set HomeDir to %q", inv.HomeDir)
	}
}

func TestHostSSH(t *testing.T) {
	src := "apiVersion: clusterctl.dev/v1alpha1\nkind: Inventory\ncluster: {name: lab}\n" +
		"ssh:\n  user: ops\n  port: 2200\n  identityFile: keys/id\n  knownHosts: /etc/ssh/kh\n  proxyJump: bastion\n  connectTimeout: 3s\n" +
		"hosts:\n  - {name: a, address: 10.0.0.1}\n  - {name: b, address: b.example, user: root, port: 22}\n"
	tests := []struct {
		name    string
		path    string
		home    string
		edit    func(*Inventory)
		host    string
		want    HostSSH
		wantErr bool
	}{
		{
			name: "inherited settings, relative paths against the inventory directory",
			path: "/work/lab/cluster.yaml", home: "/home/ops", host: "a",
			want: HostSSH{Host: "a", Address: "10.0.0.1", User: "ops", Port: 2200, IdentityFile: "/work/lab/keys/id",
				KnownHosts: "/etc/ssh/kh", SSHConfig: "/home/ops/.ssh/config", UseAgent: true, ProxyJump: "bastion",
				Sudo: true, SudoMode: SudoAuto, UserSet: true, PortSet: true, ConnectTimeout: 3 * time.Second},
		},
		{
			name: "per-host user and port; root needs no sudo",
			path: "cluster.yaml", home: "/home/ops", host: "b",
			want: HostSSH{Host: "b", Address: "b.example", User: "root", Port: 22, IdentityFile: "keys/id",
				KnownHosts: "/etc/ssh/kh", SSHConfig: "/home/ops/.ssh/config", UseAgent: true, ProxyJump: "bastion",
				Sudo: false, SudoMode: SudoAuto, UserSet: true, PortSet: true, ConnectTimeout: 3 * time.Second},
		},
		{
			name: "sudo never, sshConfig none, no home directory",
			path: "/x/c.yaml", host: "a",
			edit: func(inv *Inventory) { inv.SSH.Sudo, inv.SSH.SSHConfig = SudoNever, SSHConfigNone },
			want: HostSSH{Host: "a", Address: "10.0.0.1", User: "ops", Port: 2200, IdentityFile: "/x/keys/id",
				KnownHosts: "/etc/ssh/kh", UseAgent: true, ProxyJump: "bastion", SudoMode: SudoNever, UserSet: true, PortSet: true,
				ConnectTimeout: 3 * time.Second},
		},
		{
			name: "sudo always for root",
			path: "/x/c.yaml", host: "b", home: "/root",
			edit: func(inv *Inventory) { inv.SSH.Sudo, inv.SSH.IdentityFile = SudoAlways, "~/.ssh/id_ed25519" },
			want: HostSSH{Host: "b", Address: "b.example", User: "root", Port: 22, IdentityFile: "/root/.ssh/id_ed25519",
				KnownHosts: "/etc/ssh/kh", SSHConfig: "/root/.ssh/config", UseAgent: true, ProxyJump: "bastion",
				Sudo: true, SudoMode: SudoAlways, UserSet: true, PortSet: true, ConnectTimeout: 3 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := Parse(tt.path, []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			inv.HomeDir = tt.home
			if tt.edit != nil {
				tt.edit(inv)
			}
			h, ok := inv.Host(tt.host)
			if !ok {
				t.Fatalf("host %s not found", tt.host)
			}
			if diff := cmp.Diff(tt.want, inv.HostSSH(h)); diff != "" {
				t.Errorf("HostSSH mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHostSSHUnsetUserPort: defaults fill user and port, but they are marked
// unset so an ssh_config entry may supply them.
func TestHostSSHUnsetUserPort(t *testing.T) {
	inv := mustParse(t, head+"hosts:\n  - {name: a, address: alias}\n  - {name: b, address: b, port: 2222}\n")
	for _, tc := range []struct {
		host             string
		userSet, portSet bool
		port             int
	}{{"a", false, false, 22}, {"b", false, true, 2222}} {
		h, _ := inv.Host(tc.host)
		s := inv.HostSSH(h)
		if s.User != "root" || s.Port != tc.port || s.UserSet != tc.userSet || s.PortSet != tc.portSet {
			t.Errorf("%s: HostSSH = %+v", tc.host, s)
		}
	}
}

func TestResolvePath(t *testing.T) {
	tests := []struct {
		path, home, in, want string
	}{
		{"/a/b/cluster.yaml", "/home/u", "", ""},
		{"/a/b/cluster.yaml", "/home/u", "~", "/home/u"},
		{"/a/b/cluster.yaml", "/home/u", "~/.ssh/id", "/home/u/.ssh/id"},
		{"/a/b/cluster.yaml", "", "~/.ssh/id", "~/.ssh/id"},
		{"/a/b/cluster.yaml", "/home/u", "/etc//kh", "/etc/kh"},
		{"/a/b/cluster.yaml", "/home/u", "./id", "/a/b/id"},
		{"/a/b/cluster.yaml", "/home/u", "../keys/id", "/a/keys/id"},
		{"cluster.yaml", "/home/u", "./id", "id"},
		{"lab/cluster.yaml", "/home/u", "id", "lab/id"},
	}
	for _, tt := range tests {
		inv := &Inventory{Path: tt.path, HomeDir: tt.home}
		if got := inv.ResolvePath(tt.in); got != tt.want {
			t.Errorf("ResolvePath(%q) with Path %q, HomeDir %q = %q, want %q", tt.in, tt.path, tt.home, got, tt.want)
		}
	}
}

func TestStateHelpers(t *testing.T) {
	inv := mustParse(t, head+"hosts: [{name: h1, address: 10.0.0.1}, {name: h2, address: 10.0.0.2}]\n")
	if got := inv.HostNames(); !cmp.Equal(got, []string{"h1", "h2"}) {
		t.Errorf("HostNames = %v", got)
	}
	if _, ok := inv.Host("nope"); ok {
		t.Error("Host(nope) found a host")
	}
	if !inv.HostState("h1").IsZero() {
		t.Error("HostState of an unknown host is not zero")
	}
	if g := inv.BumpGeneration(); g != 1 {
		t.Errorf("BumpGeneration = %d, want 1", g)
	}
	if g := inv.BumpGeneration(); g != 2 || inv.State.Generation != 2 {
		t.Errorf("BumpGeneration = %d, generation %d, want 2", g, inv.State.Generation)
	}
	joined := time.Date(2026, 11, 21, 23, 0, 0, 123, time.FixedZone("CET", 3600))
	inv.SetHostState("h1", HostState{PodCIDR: netip.MustParsePrefix("10.244.0.0/24"), JoinedAt: joined})
	got := inv.HostState("h1")
	if got.JoinedAt != time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC) {
		t.Errorf("JoinedAt stored as %v, want UTC to the second", got.JoinedAt)
	}
	if diff := cmp.Diff(map[string]netip.Prefix{"h1": netip.MustParsePrefix("10.244.0.0/24")}, inv.PodCIDRs(),
		cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("PodCIDRs mismatch (-want +got):\n%s", diff)
	}
	inv.DeleteHostState("h1")
	inv.DeleteHostState("never-there")
	if !inv.HostState("h1").IsZero() || len(inv.State.Hosts) != 0 {
		t.Errorf("DeleteHostState left %v", inv.State.Hosts)
	}
}

func TestDefaultPath(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{nil, "cluster.yaml"},
		{map[string]string{"CLUSTERCTL_INVENTORY": "/srv/lab.yaml"}, "/srv/lab.yaml"},
		{map[string]string{"CLUSTERCTL_INVENTORY": ""}, "cluster.yaml"},
	}
	for _, tt := range tests {
		if got := DefaultPath(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("DefaultPath with %v = %q, want %q", tt.env, got, tt.want)
		}
	}
}

func TestValidators(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) error
		ok   []string
		bad  []string
	}{
		{"DNS label", validateDNSLabel,
			[]string{"a", "h1", "a-b", "0", strings.Repeat("a", 63)},
			[]string{"", "-a", "a-", "A", "a_b", "a.b", strings.Repeat("a", 64)}},
		{"DNS subdomain", validateDNSSubdomain,
			[]string{"cluster.local", "a", "a.b-c.d"},
			[]string{"", ".a", "a.", "a..b", "A.b", strings.Repeat("a.", 127) + "aa"}},
		{"label key", func(s string) error { return validateQualifiedName("label key", s) },
			[]string{"zone", "Zone", "a.b_c-d", "example.com/x", "kubernetes.io/hostname", strings.Repeat("x", 63)},
			[]string{"", "/x", "x/", "-x", "x-", "a/b/c", "EXAMPLE.com/x", strings.Repeat("x", 64), "a b"}},
		{"label value", validateLabelValue,
			[]string{"", "a", "A.b_c-1", strings.Repeat("v", 63)},
			[]string{"-a", "a-", "a/b", "a b", strings.Repeat("v", 64)}},
		{"user", validateUser,
			[]string{"root", "deploy_1", "a.b", "Admin-2"},
			[]string{"", "-l", ".x", "a b", "a@b", "a:b", strings.Repeat("u", 33)}},
		{"address", validateAddress,
			[]string{"10.0.0.1", "2001:db8::1", "fe80::1%eth0", "host.example", "my_alias", "H1"},
			[]string{"", "-oX", "u@h", "h:22", "[::1]", "a b", "a/b", "a;b"}},
		{"proxyJump", validateProxyJump,
			[]string{"", "b", "u@b", "b:22", "u@b:22,c", "[::1]", "[::1]:22", "u@[2001:db8::1]:2222"},
			[]string{",", "b,", "b:0", "b:x", "u@", "@b", "[::1", "[x]:22", "b:22:33", "-b", "a b"}},
		{"path", validatePath,
			[]string{"~", "~/x", "/x", "x", "./x"},
			[]string{"", "~bob/x", "a\x00b"}},
		{"SHA-256", validateSHA256,
			[]string{strings.Repeat("0a", 32)},
			[]string{"", strings.Repeat("0A", 32), strings.Repeat("0", 63), strings.Repeat("g", 64)}},
	}
	for _, tt := range tests {
		for _, s := range tt.ok {
			if err := tt.fn(s); err != nil {
				t.Errorf("%s %q: unexpected error %v", tt.name, s, err)
			}
		}
		for _, s := range tt.bad {
			if err := tt.fn(s); err == nil {
				t.Errorf("%s %q: no error", tt.name, s)
			}
		}
	}
}

func TestParseCIDR(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "10.244.0.0/16", want: "10.244.0.0/16"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "10.244.0.0/33", wantErr: `invalid CIDR "10.244.0.0/33"`},
		{in: "10.244.0.0", wantErr: `invalid CIDR "10.244.0.0"`},
		{in: "10.244.1.0/16", wantErr: `"10.244.1.0/16" is not a network address (did you mean "10.244.0.0/16"?)`},
		{in: "fd00::/64", wantErr: `IPv6 CIDR "fd00::/64" is not supported yet`},
		{in: "::ffff:10.0.0.0/104", wantErr: `IPv6 CIDR "::ffff:10.0.0.0/104" is not supported yet`},
	}
	for _, tt := range tests {
		got, err := parseCIDR(tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("parseCIDR(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
		case err != nil || got.String() != tt.want:
			t.Errorf("parseCIDR(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	fields := []field{{name: "address"}, {name: "name"}, {name: "labels"}, {name: "taints"}, {name: "port"}, {name: "user"}}
	tests := map[string]string{
		"adress":   ` (did you mean "address"?)`,
		"Address":  ` (did you mean "address"?)`,
		"nmae":     ` (did you mean "name"?)`,
		"label":    ` (did you mean "labels"?)`,
		"taint":    ` (did you mean "taints"?)`,
		"prot":     ` (did you mean "port"?)`,
		"hostname": "",
		"x":        "",
	}
	for in, want := range tests {
		if got := suggest(in, fields); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
