package lab

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func testHosts(p netip.Prefix, n int) []hostState {
	var hs []hostState
	for i := 1; i <= n; i++ {
		hs = append(hs, hostState{Name: hostName(i), Index: i, Address: hostAddr(p, i).String()})
	}
	return hs
}

func TestRenderInventory(t *testing.T) {
	got := renderInventory("lab", "/var/tmp/clusterctl-lab/lab", testHosts(DefaultSubnet(), 2))
	want := `# written by clusterctl lab lab; removed by lab down
apiVersion: clusterctl.dev/v1alpha1
kind: Inventory
cluster:
  name: lab
ssh:
  user: root
  identityFile: /var/tmp/clusterctl-lab/lab/id_ed25519
  knownHosts: /var/tmp/clusterctl-lab/lab/known_hosts
  useAgent: false
  sshConfig: none
  connectTimeout: 3s
hosts:
  - name: h1
    address: 10.250.0.11
    labels: {clusterctl.dev/lab: lab}
  - name: h2
    address: 10.250.0.12
    labels: {clusterctl.dev/lab: lab}
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("renderInventory mismatch (-want +got):\n%s", diff)
	}
	if got := renderInventory("x", "/srv/my lab: x", nil); !strings.Contains(got, `identityFile: "/srv/my lab: x/id_ed25519"`) {
		t.Errorf("path needing quotes not quoted:\n%s", got)
	}
}

func TestMergeInventory(t *testing.T) {
	p := DefaultSubnet()
	marker := inventoryMarker("lab") + "\n"
	tests := []struct {
		name    string
		in      string
		hosts   int
		want    string
		wantErr string
	}{
		{
			name:  "adds hosts before a state section written by clusterctl",
			in:    renderInventory("lab", "/s", testHosts(p, 1)) + "state:\n  generation: 7\n  podCIDRs:\n    h1: 10.244.1.0/24\n",
			hosts: 2,
			want: renderInventory("lab", "/s", testHosts(p, 2)) +
				"state:\n  generation: 7\n  podCIDRs:\n    h1: 10.244.1.0/24\n",
		},
		{
			name:  "nothing to add",
			in:    renderInventory("lab", "/s", testHosts(p, 2)),
			hosts: 2,
			want:  renderInventory("lab", "/s", testHosts(p, 2)),
		},
		{
			name:  "re-encoded with 4-space indent and other key order",
			in:    marker + "hosts:\n    - address: 10.250.0.11\n      name: h1\n      labels:\n        clusterctl.dev/lab: lab\n\n# trailing comment\nstate: {}\n",
			hosts: 2,
			want: marker + "hosts:\n    - address: 10.250.0.11\n      name: h1\n      labels:\n        clusterctl.dev/lab: lab\n" +
				"    - name: h2\n      address: 10.250.0.12\n      labels: {clusterctl.dev/lab: lab}\n\n# trailing comment\nstate: {}\n",
		},
		{
			name:  "compact list style",
			in:    marker + "hosts:\n- name: h1\n  address: 10.250.0.11\nstate: {}\n",
			hosts: 2,
			want:  marker + "hosts:\n- name: h1\n  address: 10.250.0.11\n- name: h2\n  address: 10.250.0.12\n  labels: {clusterctl.dev/lab: lab}\nstate: {}\n",
		},
		{
			name:  "empty flow list",
			in:    marker + "hosts: []\n",
			hosts: 1,
			want:  marker + "hosts:\n  - name: h1\n    address: 10.250.0.11\n    labels: {clusterctl.dev/lab: lab}\n",
		},
		{
			name:  "no hosts key",
			in:    marker + "kind: Inventory\n",
			hosts: 1,
			want:  marker + "kind: Inventory\nhosts:\n  - name: h1\n    address: 10.250.0.11\n    labels: {clusterctl.dev/lab: lab}\n",
		},
		{
			name:  "comment added above the marker",
			in:    "# my note\n" + renderInventory("lab", "/s", testHosts(p, 1)),
			hosts: 2,
			want:  "# my note\n" + renderInventory("lab", "/s", testHosts(p, 2)),
		},
		{
			name:    "someone else's file",
			in:      "# my cluster\nhosts: []\n",
			hosts:   1,
			wantErr: "not written by clusterctl lab lab",
		},
		{
			name:    "another lab's file",
			in:      inventoryMarker("other") + "\nhosts: []\n",
			hosts:   1,
			wantErr: "not written by clusterctl lab lab",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mergeInventory(tt.in, "lab", testHosts(p, tt.hosts))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("mergeInventory error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("mergeInventory: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mergeInventory mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNamesAndAddresses(t *testing.T) {
	n := names{lab: "lab"}
	if got := n.rootLink(); got != "ccl-lab" {
		t.Errorf("rootLink = %q", got)
	}
	long := names{lab: "a-very-long-lab-name"}
	if got := long.rootLink(); len(got) > 15 || !strings.HasPrefix(got, "cclh") {
		t.Errorf("rootLink of a long name = %q, want cclh<hash> of at most 15 chars", got)
	}
	if long.rootLink() == (names{lab: "a-very-long-lab-namf"}).rootLink() {
		t.Errorf("rootLink collides for different long names")
	}
	re := n.hostObjectRE()
	for name, want := range map[string]string{"ccl-lab-h1": "h1", "ccl-lab-h12": "h12", "ccl-lab-sw": "", "ccl-lab-h1-sw": "", "ccl-lab-h0": "", "ccl-labx-h1": ""} {
		got := ""
		if m := re.FindStringSubmatch(name); m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("hostObjectRE(%q) = %q, want %q", name, got, want)
		}
	}
	p := netip.MustParsePrefix("10.250.3.0/24")
	if got := hostAddr(p, 1).String(); got != "10.250.3.11" {
		t.Errorf("hostAddr = %s", got)
	}
	if got := workstationAddr(p).String(); got != "10.250.3.1" {
		t.Errorf("workstationAddr = %s", got)
	}
	if got := maxHosts(p); got != 244 {
		t.Errorf("maxHosts(/24) = %d, want 244", got)
	}
	if got := hostAddr(netip.MustParsePrefix("10.0.0.0/16"), 300).String(); got != "10.0.1.54" {
		t.Errorf("hostAddr across an octet = %s", got)
	}
	for _, h := range []string{"h0", "h01", "x1", "h", "h-1"} {
		if _, err := hostIndex(h); err == nil {
			t.Errorf("hostIndex(%q) accepted", h)
		}
	}
}

func TestResolveOptions(t *testing.T) {
	bad := []Options{
		{Name: "Lab"},
		{Name: "-x"},
		{Name: strings.Repeat("a", 33)},
		{StateDir: "/etc/lab"},
		{StateDir: "/var/lib/clusterctl"},
		{StateDir: "/tmp/lab"},
		{StateDir: "/run/lab"},
		{StateDir: "/root/lab"},
		{StateDir: "/usr/local/bin/x"},
		{StateDir: "/lab"},
		{StateDir: "/var/tmp/a,b"},
		{Subnet: netip.MustParsePrefix("fd00::/64")},
		{Subnet: netip.MustParsePrefix("10.0.0.0/29")},
	}
	for _, o := range bad {
		if _, err := resolve(o); err == nil {
			t.Errorf("resolve(%+v) accepted", o)
		}
	}
	c, err := resolve(Options{})
	if err != nil {
		t.Fatalf("resolve defaults: %v", err)
	}
	if c.name != "lab" || c.stateDir != "/var/tmp/clusterctl-lab/lab" || c.subnet.IsValid() {
		t.Errorf("defaults = %q %q %v", c.name, c.stateDir, c.subnet)
	}
	c, err = resolve(Options{Name: "x", StateDir: "/srv/labs/x/", Subnet: netip.MustParsePrefix("10.9.9.9/24")})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if c.stateDir != "/srv/labs/x" || c.subnet.String() != "10.9.9.0/24" {
		t.Errorf("resolved = %q %v", c.stateDir, c.subnet)
	}
}

func TestPartitionRules(t *testing.T) {
	all := partitionRules("ccl_part_h1", "p1", nil)
	for _, want := range []string{"table bridge ccl_part_h1\ndelete table bridge ccl_part_h1\n", `iifname "p1" drop`, `oifname "p1" drop`, "hook forward"} {
		if !strings.Contains(all, want) {
			t.Errorf("partition from all lacks %q:\n%s", want, all)
		}
	}
	some := partitionRules("ccl_part_h1", "p1", []string{"p2", "up0"})
	for _, want := range []string{`iifname "p1" oifname { "p2", "up0" } drop`, `iifname { "p2", "up0" } oifname "p1" drop`} {
		if !strings.Contains(some, want) {
			t.Errorf("partition from peers lacks %q:\n%s", want, some)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	in := "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n" +
		"42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw\n" +
		"50 31 0:32 / /elsewhere/memory rw - cgroup cgroup rw,memory\n" +
		"51 27 254:0 /a\\040b /mnt/a\\040b rw - ext4 /dev/vda rw\n"
	mis := parseMountinfo([]byte(in))
	if len(mis) != 5 || mis[4].MountPoint != "/mnt/a b" || mis[2].Source != "/dev/vda" {
		t.Fatalf("parseMountinfo = %+v", mis)
	}
	if diff := cmp.Diff([]string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"}, cgroupMountsOf(mis)); diff != "" {
		t.Errorf("cgroupMountsOf mismatch (-want +got):\n%s", diff)
	}
}
