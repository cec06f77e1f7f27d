package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// requireLab skips tests that need to build real lab hosts.
func requireLab(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("lab tests need Linux (network, mount and PID namespaces)")
	}
	if os.Geteuid() != 0 {
		t.Skip("lab tests need root: run `sudo go test ./lab/...`")
	}
	for _, tool := range []string{"ip", "nsenter", "unshare", "setsid", "nft", "/usr/sbin/sshd", "/usr/bin/containerd", "ctr", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("lab tests need %s: %v", tool, err)
		}
	}
	if _, err := os.Stat(testExe()); err != nil {
		t.Skipf("lab tests need the clusterctl binary TestMain builds: %v", err)
	}
}

// testLab is a lab with a name and subnet unique to this test process, so
// parallel test packages (and other users of the machine) never collide.
type testLab struct {
	opts  Options
	out   *bytes.Buffer
	pidNS map[string]uint64 // host → PID namespace inode, for the cleanup check
}

func newTestLab(t testing.TB, k int) *testLab {
	t.Helper()
	pid := os.Getpid()
	name := fmt.Sprintf("t%d%c", pid%100000, 'a'+k)
	l := &testLab{
		opts: Options{
			Name:      name,
			StateDir:  "/var/tmp/clusterctl-labtest-" + name,
			Subnet:    freeSubnet(t, k),
			Inventory: filepath.Join(t.TempDir(), "cluster.yaml"),
			Exe:       testExe(),
		},
		out:   &bytes.Buffer{},
		pidNS: map[string]uint64{},
	}
	l.opts.Out = l.out
	return l
}

// freeSubnet picks a /24 in 10.(200+k).0.0/16, starting at one derived from
// the PID, that no link of the machine uses yet.
func freeSubnet(t testing.TB, k int) netip.Prefix {
	t.Helper()
	for j := range 250 {
		p := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 200+k, (os.Getpid()+j)%250))
		if checkSubnetFree(p, "") == nil {
			return p
		}
	}
	t.Fatalf("no free subnet in 10.%d.0.0/16", 200+k)
	return netip.Prefix{}
}

func (l *testLab) up(t testing.TB, n int) string {
	t.Helper()
	l.out.Reset()
	if err := Up(context.Background(), l.opts, n); err != nil {
		t.Fatalf("Up(%d): %v\n%s", n, err, l.out)
	}
	l.recordPIDNS(t)
	return l.out.String()
}

// recordPIDNS remembers every running host's PID namespace, and the
// registry's.
func (l *testLab) recordPIDNS(t testing.TB) {
	c, err := resolve(l.opts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := loadState(c.l)
	if err != nil || st == nil {
		t.Fatalf("load state: %v", err)
	}
	for _, h := range st.Hosts {
		if rec, ok := hostRunning(c, h.Name); ok {
			l.pidNS[h.Name+"@"+strconv.Itoa(rec.PID)] = rec.PIDNS
		}
	}
	if rec, ok := registryRunning(c); ok {
		l.pidNS["registry@"+strconv.Itoa(rec.PID)] = rec.PIDNS
	}
}

// exec runs argv in host h and returns its exit code and combined output.
func (l *testLab) exec(t testing.TB, h string, argv ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	o := l.opts
	o.Out, o.Err = &out, &out
	code, err := Exec(context.Background(), o, h, argv)
	if err != nil {
		t.Fatalf("Exec(%s, %q): %v", h, argv, err)
	}
	return code, out.String()
}

// down tears the lab down and checks that nothing of it is left.
func (l *testLab) down(t testing.TB) {
	t.Helper()
	l.recordPIDNS(t)
	c, err := resolve(l.opts)
	if err != nil {
		t.Fatal(err)
	}
	l.out.Reset()
	if err := Down(context.Background(), l.opts); err != nil {
		t.Errorf("Down: %v\n%s", err, l.out)
	}
	assertNothingLeft(t, c, l.opts.Inventory, l.pidNS)
	l.out.Reset()
	if err := Down(context.Background(), l.opts); err != nil || !strings.Contains(l.out.String(), "nothing to remove") {
		t.Errorf("second Down = %v, %q; want success with nothing to remove", err, l.out)
	}
}

func assertNothingLeft(t testing.TB, c *config, inventory string, pidNS map[string]uint64) {
	t.Helper()
	prefix := namePrefix + c.name + "-"
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Errorf("ip netns list: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, prefix) {
			t.Errorf("netns left: %s", line)
		}
	}
	if _, err := net.InterfaceByName(c.n.rootLink()); err == nil {
		t.Errorf("workstation link %s left", c.n.rootLink())
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, c.stateDir) || strings.Contains(line, prefix) {
			t.Errorf("mount left: %s", line)
		}
	}
	left := map[uint64]bool{}
	for _, ino := range pidNS {
		left[ino] = false
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if ino, err := nsInode(e.Name(), "pid"); err == nil {
			if _, ours := left[ino]; ours {
				comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
				t.Errorf("process %s (%s) left in a host's PID namespace", e.Name(), bytes.TrimSpace(comm))
			}
		}
	}
	if len(pidNS) == 0 {
		t.Errorf("no host PID namespaces were recorded: the process check proves nothing")
	}
	mounts, _ := cgroupMounts()
	for _, m := range mounts {
		matches, _ := filepath.Glob(filepath.Join(m, prefix+"*"))
		for _, d := range matches {
			t.Errorf("cgroup left: %s", d)
		}
	}
	for _, p := range []string{c.stateDir, inventory} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left (%v)", p, err)
		}
	}
}

// inventoryInfo is what the tests read back from the inventory.
type inventoryInfo struct {
	identity, knownHosts string
	hosts                map[string]string // name → address
}

func readInventory(t testing.TB, path string) inventoryInfo {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	inv := inventoryInfo{hosts: map[string]string{}}
	name := ""
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- ")), ": ")
		switch k {
		case "identityFile":
			inv.identity = v
		case "knownHosts":
			inv.knownHosts = v
		case "name":
			name = v
		case "address":
			inv.hosts[name] = v
		}
	}
	return inv
}

// sshRun runs cmd on addr as the inventory says: its key, its known_hosts
// (no trust on first use), connect timeout.
func sshRun(inv inventoryInfo, addr, cmd string, timeout time.Duration) (string, error) {
	key, err := os.ReadFile(inv.identity)
	if err != nil {
		return "", err
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return "", err
	}
	hk, err := knownhosts.New(inv.knownHosts)
	if err != nil {
		return "", err
	}
	client, err := ssh.Dial("tcp", net.JoinHostPort(addr, "22"), &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk, Timeout: timeout,
	})
	if err != nil {
		return "", err
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	return string(out), err
}

func mustSSH(t testing.TB, inv inventoryInfo, h, cmd string) string {
	t.Helper()
	out, err := sshRun(inv, inv.hosts[h], cmd, 5*time.Second)
	if err != nil {
		t.Fatalf("ssh %s %q: %v\n%s", h, cmd, err, out)
	}
	return strings.TrimSpace(out)
}

// sshTimesOut checks that connecting to h times out (no RST, no answer).
func sshTimesOut(t testing.TB, inv inventoryInfo, h string) {
	t.Helper()
	_, err := sshRun(inv, inv.hosts[h], "true", time.Second)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("ssh %s: err = %v, want a connect timeout", h, err)
	}
}

func TestLab(t *testing.T) {
	requireLab(t)
	l := newTestLab(t, 0)
	out := l.up(t, 2)
	t.Cleanup(func() { l.down(t) })
	t.Logf("lab up:\n%s", out)
	// With docker-registry installed the lab has a registry by default: the
	// cleanup check at the end then covers it too.
	if isExecutable(RegistryBinary) && !strings.Contains(out, "registry up "+registryAddr(l.opts.Subnet).String()) {
		t.Errorf("Up output lacks the default registry:\n%s", out)
	}
	inv := readInventory(t, l.opts.Inventory)
	for i, h := range []string{"h1", "h2"} {
		want := fmt.Sprintf("%s up %s (", h, hostAddr(l.opts.Subnet, i+1))
		if !strings.Contains(out, want) {
			t.Errorf("Up output lacks %q:\n%s", want, out)
		}
		if inv.hosts[h] != hostAddr(l.opts.Subnet, i+1).String() {
			t.Errorf("inventory address of %s = %q", h, inv.hosts[h])
		}
	}

	t.Run("ssh, labinit and containerd", func(t *testing.T) {
		for _, h := range []string{"h1", "h2"} {
			if got := mustSSH(t, inv, h, "hostname"); got != h {
				t.Errorf("hostname on %s = %q", h, got)
			}
			if got := mustSSH(t, inv, h, "cat /run/labinit/pid"); got != "1" {
				t.Errorf("/run/labinit/pid on %s = %q, want 1", h, got)
			}
			if code, out := l.exec(t, h, "ctr", "version"); code != 0 || !strings.Contains(out, "Server:") {
				t.Errorf("ctr version on %s: exit %d\n%s", h, code, out)
			}
		}
	})

	t.Run("isolation", func(t *testing.T) {
		mustSSH(t, inv, "h1", "echo h1 > /etc/ccl-isolation-test && echo h1 > /opt/ccl-isolation-test && echo h1 > /tmp/ccl-isolation-test")
		for _, f := range []string{"/etc/ccl-isolation-test", "/opt/ccl-isolation-test", "/tmp/ccl-isolation-test"} {
			if code, _ := l.exec(t, "h2", "test", "-e", f); code == 0 {
				t.Errorf("h1's %s is visible on h2", f)
			}
			if _, err := os.Stat(f); err == nil {
				t.Errorf("h1's %s is visible on the machine", f)
			}
		}
		if _, out := l.exec(t, "h1", "sh", "-c", "ls -A "+l.opts.StateDir+" 2>/dev/null"); strings.TrimSpace(out) != "" {
			t.Errorf("h1 sees the lab's state: %q", out)
		}
		if code, out := l.exec(t, "h1", "ip", "-4", "route", "show", "default"); code != 0 || strings.TrimSpace(out) != "" {
			t.Errorf("h1 has a default route: exit %d %q", code, out)
		}
		if code, out := l.exec(t, "h1", "ip", "-4", "route"); code != 0 || !strings.Contains(out, ServiceCIDR+" dev eth0") {
			t.Errorf("h1 lacks the service route: %q", out)
		}
		if code, out := l.exec(t, "h1", "sh", "-c", "cat /proc/self/cgroup; exit 3"); code != 3 || !strings.Contains(out, "/"+namePrefix+l.opts.Name+"-h1") {
			t.Errorf("exec: exit %d (want 3), cgroups:\n%s", code, out)
		}
	})

	t.Run("up again is a no-op, more hosts are added", func(t *testing.T) {
		if out := l.up(t, 2); !strings.Contains(out, "nothing to do") {
			t.Errorf("second Up output:\n%s", out)
		}
		f, err := os.OpenFile(l.opts.Inventory, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "state:\n  generation: 42\n")
		f.Close()
		out := l.up(t, 3)
		if !strings.Contains(out, "h1 already up") || !strings.Contains(out, "h3 up ") {
			t.Errorf("Up 3 output:\n%s", out)
		}
		data, _ := os.ReadFile(l.opts.Inventory)
		if !strings.HasSuffix(string(data), "state:\n  generation: 42\n") || strings.Count(string(data), "- name: h1\n") != 1 {
			t.Errorf("inventory after Up 3:\n%s", data)
		}
		inv = readInventory(t, l.opts.Inventory)
		if got := mustSSH(t, inv, "h3", "hostname"); got != "h3" {
			t.Errorf("hostname on h3 = %q", got)
		}
	})

	t.Run("kill and boot", func(t *testing.T) {
		mustSSH(t, inv, "h2", "echo disk > /root/persist && echo etc > /etc/persist && touch /run/volatile")
		khBefore, _ := os.ReadFile(inv.knownHosts)
		if err := Kill(context.Background(), l.opts, "h2"); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		sshTimesOut(t, inv, "h2")
		if code, out := l.exec(t, "h1", "timeout", "1", "bash", "-c", "echo > /dev/tcp/"+inv.hosts["h2"]+"/22"); code == 0 {
			t.Errorf("h1 reaches killed h2: %s", out)
		}
		if _, err := Exec(context.Background(), l.opts, "h2", []string{"true"}); err == nil {
			t.Errorf("Exec on a killed host succeeded")
		}
		st, err := Status(context.Background(), l.opts)
		if err != nil || st.Hosts[1].State != "stopped" || st.Hosts[1].Port != "down" {
			t.Errorf("Status after Kill = %+v, %v", st, err)
		}
		t0 := time.Now()
		if err := Boot(context.Background(), l.opts, "h2"); err != nil {
			t.Fatalf("Boot: %v", err)
		}
		t.Logf("boot h2: %s", time.Since(t0).Round(time.Millisecond))
		l.recordPIDNS(t)
		// known_hosts is unchanged and verifies the key: same host key.
		if got := mustSSH(t, inv, "h2", "cat /root/persist /etc/persist; test -e /run/volatile && echo volatile-survived; true"); got != "disk\netc" {
			t.Errorf("after reboot: %q", got)
		}
		if kh, _ := os.ReadFile(inv.knownHosts); !bytes.Equal(kh, khBefore) {
			t.Errorf("known_hosts changed across a reboot")
		}
		if code, out := l.exec(t, "h2", "ctr", "version"); code != 0 {
			t.Errorf("containerd after reboot: exit %d\n%s", code, out)
		}
		// Up boots hosts that were killed.
		if err := Kill(context.Background(), l.opts, "h2"); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if out := l.up(t, 3); !strings.Contains(out, "h2 up ") || !strings.Contains(out, "h3 already up") {
			t.Errorf("Up after Kill:\n%s", out)
		}
		mustSSH(t, inv, "h2", "true")
	})

	t.Run("cli", func(t *testing.T) {
		cli := func(args ...string) (int, string) {
			full := append([]string{"lab"}, args[0], "--name", l.opts.Name, "--state-dir", l.opts.StateDir)
			cmd := exec.Command(testExe(), append(full, args[1:]...)...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatalf("clusterctl %q: %v", full, err)
			}
			return cmd.ProcessState.ExitCode(), string(out)
		}
		if code, out := cli("exec", "h1", "--", "sh", "-c", "hostname; exit 3"); code != 3 || !strings.HasPrefix(out, "h1\n") {
			t.Errorf("lab exec: exit %d\n%s", code, out)
		}
		if code, out := cli("status", "-o", "json"); code != 0 || !json.Valid([]byte(out)) || !strings.Contains(out, `"state": "running"`) {
			t.Errorf("lab status -o json: exit %d\n%s", code, out)
		}
		if code, out := cli("partition", "h3", "--from", "h1,workstation"); code != 0 || !strings.Contains(out, "h3 partitioned from h1, workstation") {
			t.Errorf("lab partition h3 --from h1,workstation: exit %d\n%s", code, out)
		}
		sshTimesOut(t, inv, "h3")
		if code, out := cli("heal", "h3"); code != 0 {
			t.Errorf("lab heal: exit %d\n%s", code, out)
		}
		mustSSH(t, inv, "h3", "true")
		if code, out := cli("kill"); code != 2 {
			t.Errorf("lab kill without a host: exit %d (want 2)\n%s", code, out)
		}
		if code, out := cli("up", "--hosts", "3", "--subnet", "10.1.2.0/24"); code == 0 || !strings.Contains(out, "it uses subnet") {
			t.Errorf("lab up with another subnet: exit %d\n%s", code, out)
		}
	})

	t.Run("partition and heal", func(t *testing.T) {
		reach := func(from, to string) bool {
			code, _ := l.exec(t, from, "timeout", "0.5", "bash", "-c", "echo > /dev/tcp/"+inv.hosts[to]+"/22")
			return code == 0
		}
		if err := Partition(context.Background(), l.opts, "h1", nil); err != nil {
			t.Fatalf("Partition: %v", err)
		}
		sshTimesOut(t, inv, "h1")
		if reach("h2", "h1") || reach("h1", "h3") {
			t.Errorf("h1 partitioned from all is still reachable from h2 or reaches h3")
		}
		if !reach("h2", "h3") {
			t.Errorf("h2 cannot reach h3 while only h1 is partitioned")
		}
		if err := Partition(context.Background(), l.opts, "h1", []string{"h2"}); err != nil {
			t.Fatalf("Partition --from h2: %v", err)
		}
		if reach("h2", "h1") || reach("h1", "h2") {
			t.Errorf("h1 and h2 still talk after partition --from h2")
		}
		if !reach("h3", "h1") {
			t.Errorf("h3 cannot reach h1 after partition --from h2")
		}
		mustSSH(t, inv, "h1", "true")
		st, _ := Status(context.Background(), l.opts)
		if got := st.Hosts[0].PartitionedFrom; len(got) != 1 || got[0] != "h2" {
			t.Errorf("Status partitions of h1 = %q", got)
		}
		if err := Heal(context.Background(), l.opts, "h1"); err != nil {
			t.Fatalf("Heal: %v", err)
		}
		// h2's ARP entry for h1 failed during the partition: the next ARP
		// solicitation may be up to a second away.
		waitFor(t, "h2 to reach h1 after heal", func() bool { return reach("h2", "h1") })
		if err := Heal(context.Background(), l.opts, "h1"); err != nil {
			t.Errorf("second Heal: %v", err)
		}
	})

	t.Run("labinit in a host", func(t *testing.T) {
		unit := "[Service]\nExecStart=/bin/sleep 1000\nRestart=always\nRestartSec=100ms\n"
		if code, out := l.exec(t, "h3", "sh", "-c", `printf %s "$1" > /etc/labinit/sleeper.service && kill -HUP 1`, "sh", unit); code != 0 {
			t.Fatalf("install unit: %s", out)
		}
		pidOf := func() int {
			_, out := l.exec(t, "h3", "cat", "/run/labinit/sleeper.pid")
			p, _ := strconv.Atoi(strings.TrimSpace(out))
			return p
		}
		waitFor(t, "sleeper to start", func() bool { return pidOf() > 0 })
		for _, sig := range []string{"TERM", "KILL"} {
			old := pidOf()
			t0 := time.Now()
			mustSSH(t, inv, "h3", "kill -"+sig+" "+strconv.Itoa(old))
			waitFor(t, "sleeper to restart after SIG"+sig, func() bool { p := pidOf(); return p > 0 && p != old })
			t.Logf("SIG%s → restarted within %s (incl. ssh and exec round trips)", sig, time.Since(t0).Round(time.Millisecond))
		}
		if code, out := l.exec(t, "h3", "cat", "/run/labinit/sleeper.status"); code != 0 || !strings.Contains(out, `"restarts":2`) {
			t.Errorf("sleeper status: %s", out)
		}
		old := pidOf()
		l.exec(t, "h3", "sh", "-c", "rm /etc/labinit/sleeper.service && kill -HUP 1")
		waitFor(t, "sleeper to stop", func() bool {
			code, _ := l.exec(t, "h3", "sh", "-c", "test ! -e /run/labinit/sleeper.pid && ! kill -0 "+strconv.Itoa(old)+" 2>/dev/null")
			return code == 0
		})
		st, err := Status(context.Background(), l.opts)
		if err != nil || st.Hosts[2].Services["sshd"] != stateRunning || st.Hosts[2].Services["containerd"] != stateRunning {
			t.Errorf("Status services of h3 = %+v, %v", st.Hosts[2].Services, err)
		}
		if _, ok := st.Hosts[2].Services["sleeper"]; ok {
			t.Errorf("removed sleeper still listed: %+v", st.Hosts[2].Services)
		}
		var js bytes.Buffer
		if err := st.Write(&js, "json"); err != nil || !json.Valid(js.Bytes()) {
			t.Errorf("status json: %v\n%s", err, js.String())
		}
	})

	t.Run("containerd restart through labinit", func(t *testing.T) {
		_, before := l.exec(t, "h1", "cat", "/run/labinit/containerd.pid")
		if code, out := l.exec(t, "h1", "sh", "-c", "kill -TERM $(cat /run/labinit/containerd.pid)"); code != 0 {
			t.Fatalf("kill containerd: %s", out)
		}
		waitFor(t, "containerd to answer again", func() bool {
			code, out := l.exec(t, "h1", "sh", "-c", "cat /run/labinit/containerd.pid && ctr version >/dev/null")
			return code == 0 && out != before
		})
	})
}

func TestUpRefusesForeignInventory(t *testing.T) {
	requireLab(t)
	l := newTestLab(t, 1)
	foreign := "apiVersion: clusterctl.dev/v1alpha1\nkind: Inventory\n"
	if err := os.WriteFile(l.opts.Inventory, []byte(foreign), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Up(context.Background(), l.opts, 1)
	if err == nil || !strings.Contains(err.Error(), "refuse to overwrite inventory") {
		t.Fatalf("Up over a foreign inventory: %v", err)
	}
	if data, _ := os.ReadFile(l.opts.Inventory); string(data) != foreign {
		t.Errorf("foreign inventory changed:\n%s", data)
	}
	if _, err := os.Stat(l.opts.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused Up left its state dir: %v", err)
	}
}

func TestDownWithoutState(t *testing.T) {
	requireLab(t)
	l := newTestLab(t, 2)
	// Outside /var/tmp (which hosts bind over): hosts must still not see it.
	l.opts.StateDir = "/var/cache/clusterctl-labtest-" + l.opts.Name
	l.up(t, 1)
	if _, out := l.exec(t, "h1", "ls", "-A", l.opts.StateDir); strings.TrimSpace(out) != "" {
		t.Errorf("h1 sees the lab's state: %q", out)
	}
	// Lose the state file: down still finds the lab by its names.
	c, _ := resolve(l.opts)
	l.recordPIDNS(t)
	if err := os.Remove(c.l.stateFile()); err != nil {
		t.Fatal(err)
	}
	if err := Down(context.Background(), l.opts); err != nil {
		t.Fatalf("Down: %v", err)
	}
	os.Remove(l.opts.Inventory) // without state, down cannot know where the inventory went
	assertNothingLeft(t, c, l.opts.Inventory, l.pidNS)
}

func BenchmarkLabUp(b *testing.B) {
	requireLab(b)
	l := newTestLab(b, 3)
	var up, down time.Duration
	for b.Loop() {
		t0 := time.Now()
		l.up(b, 3)
		up += time.Since(t0)
		t0 = time.Now()
		if err := Down(context.Background(), l.opts); err != nil {
			b.Fatalf("Down: %v", err)
		}
		down += time.Since(t0)
	}
	b.ReportMetric(up.Seconds()/float64(b.N), "up-s/op")
	b.ReportMetric(down.Seconds()/float64(b.N), "down-s/op")
}
