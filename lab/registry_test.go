package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/images"
	"github.com/clusterctl/clusterctl/inventory"
)

func TestAddRegistry(t *testing.T) {
	base := renderInventory("lab", "/s", testHosts(DefaultSubnet(), 1))
	withReg := strings.Replace(base, "  name: lab\n", "  name: lab\n  registries:\n    - host: 10.250.0.2:5000\n      insecure: true  # the lab registry: plain HTTP\n", 1)
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{name: "new list at the end of cluster", in: base, want: withReg},
		{name: "already listed", in: withReg, want: withReg},
		{name: "appended to the user's registries",
			in: strings.Replace(base, "  name: lab\n", "  registries:\n    # mine\n    - host: reg.example\n  name: lab\n", 1),
			want: strings.Replace(base, "  name: lab\n",
				"  registries:\n    - host: 10.250.0.2:5000\n      insecure: true  # the lab registry: plain HTTP\n    # mine\n    - host: reg.example\n  name: lab\n", 1)},
		{name: "listed by the user, compact list",
			in:   strings.Replace(base, "  name: lab\n", "  registries:\n  - {host: 10.250.0.2:5000, insecure: true}\n  name: lab\n", 1),
			want: strings.Replace(base, "  name: lab\n", "  registries:\n  - {host: 10.250.0.2:5000, insecure: true}\n  name: lab\n", 1)},
		{name: "after a compact list of others",
			in: strings.Replace(base, "  name: lab\n", "  registries:\n  - host: reg.example\n  name: lab\n", 1),
			want: strings.Replace(base, "  name: lab\n",
				"  registries:\n  - host: 10.250.0.2:5000\n    insecure: true  # the lab registry: plain HTTP\n  - host: reg.example\n  name: lab\n", 1)},
		{name: "flow style", in: strings.Replace(base, "  name: lab\n", "  name: lab\n  registries: []\n", 1), err: "flow style"},
		{name: "no cluster", in: "hosts: []\n", err: "no cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := addRegistry(tc.in, "10.250.0.2:5000")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("addRegistry (-want +got):\n%s", diff)
			}
			inv, err := inventory.Parse("cluster.yaml", []byte(got))
			if err != nil {
				t.Fatalf("the result does not parse: %v\n%s", err, got)
			}
			if r := inv.Cluster.Registries[0]; r.Host != "10.250.0.2:5000" || !r.Insecure {
				t.Errorf("registries = %+v", inv.Cluster.Registries)
			}
		})
	}
}

func TestPlanRegistry(t *testing.T) {
	c := &config{name: "lab"}
	installed := isExecutable(RegistryBinary)
	for _, tc := range []struct {
		name      string
		mode      RegistryMode
		has       bool
		want      bool // st.Registry set afterwards
		note, err string
	}{
		{name: "off", mode: RegistryOff},
		{name: "off with a registry", mode: RegistryOff, has: true, err: "has a registry"},
		{name: "auto", mode: RegistryAuto, want: installed, note: map[bool]string{false: "registry skipped"}[installed]},
		{name: "on", mode: RegistryOn, want: installed, err: map[bool]string{false: "needs " + RegistryBinary}[installed]},
		{name: "auto keeps one", mode: RegistryAuto, has: true, want: true, err: map[bool]string{false: "needs " + RegistryBinary}[installed]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &labState{Subnet: "10.250.3.0/24"}
			if tc.has {
				st.Registry = &registryState{Address: "10.250.3.2", Port: RegistryPort}
			}
			note, err := planRegistry(c, st, tc.mode)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (st.Registry != nil) != tc.want || !strings.Contains(note, tc.note) || (tc.note == "") != (note == "") {
				t.Errorf("registry %+v, note %q", st.Registry, note)
			}
			if st.Registry != nil && st.Registry.host() != "10.250.3.2:5000" {
				t.Errorf("registry host = %s", st.Registry.host())
			}
		})
	}
	if _, err := resolve(Options{Registry: "maybe"}); err == nil {
		t.Error("resolve accepted registry mode maybe")
	}
}

func TestRegistryNames(t *testing.T) {
	n := names{lab: "lab"}
	if got := n.registryNS(); got != "ccl-lab-reg" || n.hostObjectRE().MatchString(got) {
		t.Errorf("registryNS = %q (must not look like a host's)", got)
	}
	if got := registryAddr(netip.MustParsePrefix("10.250.3.0/24")).String(); got != "10.250.3.2" {
		t.Errorf("registryAddr = %s", got)
	}
	if !strings.Contains(registryService, "ExecStart="+RegistryBinary+" serve "+registryMount+"/config.yml") {
		t.Errorf("registry unit:\n%s", registryService)
	}
}

// requireRegistry skips unless docker-registry and busybox-static are there.
func requireRegistry(t *testing.T) {
	t.Helper()
	if !isExecutable(RegistryBinary) {
		t.Skipf("lab registry tests need %s (apt-get install docker-registry)", RegistryBinary)
	}
}

// TestLabRegistry pushes an image from the workstation to the lab registry
// and pulls it inside a host, then checks status, a restart by labinit and
// that down leaves nothing (the registry's PID namespace included).
func TestLabRegistry(t *testing.T) {
	requireLab(t)
	requireRegistry(t)
	l := newTestLab(t, 4)
	l.opts.Registry = RegistryOn
	out := l.up(t, 1)
	t.Cleanup(func() { l.down(t) })
	t.Logf("lab up:\n%s", out)
	reg := registryAddr(l.opts.Subnet).String() + ":5000"
	if !strings.Contains(out, "registry up "+reg) {
		t.Errorf("Up output lacks the registry:\n%s", out)
	}
	data, _ := os.ReadFile(l.opts.Inventory)
	inv, err := inventory.Parse(l.opts.Inventory, data)
	if err != nil {
		t.Fatalf("lab inventory: %v\n%s", err, data)
	}
	if got := inv.Cluster.Registries; len(got) != 1 || got[0].Host != reg || !got[0].Insecure {
		t.Errorf("inventory registries = %+v", got)
	}

	img, err := images.Busybox(runtime.GOARCH, reg+"/lab/busybox:1")
	if err != nil {
		t.Skipf("no busybox image: %v", err)
	}
	if err := images.Push(reg+"/lab/busybox:1", img, true); err != nil {
		t.Fatalf("push from the workstation: %v", err)
	}
	code, pull := l.exec(t, "h1", "ctr", "-n", "k8s.io", "images", "pull", "--plain-http", reg+"/lab/busybox:1")
	if code != 0 {
		t.Fatalf("pull in h1: exit %d\n%s", code, pull)
	}
	t.Logf("pull in h1:\n%s", pull)
	digest, _ := img.Digest()
	if code, ls := l.exec(t, "h1", "ctr", "-n", "k8s.io", "images", "ls"); code != 0 || !strings.Contains(ls, reg+"/lab/busybox:1") || !strings.Contains(ls, digest.String()) {
		t.Errorf("h1 images (want digest %s): exit %d\n%s", digest, code, ls)
	}

	st, err := Status(context.Background(), l.opts)
	if err != nil || st.Registry == nil || st.Registry.State != "running" || st.Registry.Port != "up" || st.Registry.Services["registry"] != stateRunning {
		t.Fatalf("Status registry = %+v, %v", st.Registry, err)
	}
	var text bytes.Buffer
	st.Write(&text, "text")
	t.Logf("lab status:\n%s", text.String())
	if !strings.Contains(text.String(), "registry "+reg+" (plain HTTP): running (pid ") {
		t.Errorf("status text:\n%s", text.String())
	}
	var js bytes.Buffer
	st.Write(&js, "json")
	if !json.Valid(js.Bytes()) || !strings.Contains(js.String(), `"registry": {`) {
		t.Errorf("status json:\n%s", js.String())
	}

	// labinit restarts docker-registry; the blobs survive on the lab's disk.
	regPID := func() string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/root/run/labinit/registry.pid", st.Registry.PID))
		return strings.TrimSpace(string(b))
	}
	old := regPID()
	// The PID is the registry's PID namespace's: kill from inside it.
	kill := exec.Command("nsenter", "-t", strconv.Itoa(st.Registry.PID), "-p", "--", "kill", "-TERM", old)
	if out, err := kill.CombinedOutput(); err != nil || old == "" {
		t.Fatalf("kill the registry process %q: %v %s", old, err, out)
	}
	waitFor(t, "docker-registry to be restarted", func() bool {
		p := regPID()
		return p != "" && p != old && pingRegistry(context.Background(), reg) == nil
	})
	l.exec(t, "h1", "ctr", "-n", "k8s.io", "images", "rm", "--sync", reg+"/lab/busybox:1")
	if code, pull := l.exec(t, "h1", "ctr", "-n", "k8s.io", "images", "pull", "--plain-http", reg+"/lab/busybox:1"); code != 0 {
		t.Errorf("pull after the registry's restart: exit %d\n%s", code, pull)
	}

	// A second up leaves the running registry alone.
	if out := l.up(t, 1); !strings.Contains(out, "nothing to do") {
		t.Errorf("second Up:\n%s", out)
	}
}
