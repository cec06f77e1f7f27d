package images

// Tests against real software: Debian's docker-registry on loopback, and a
// private containerd (own root, state, socket, and a private mount namespace
// with its own /run) that imports and runs the busybox archive. The
// machine's own containerd is never touched.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const registryBinary = "/usr/bin/docker-registry"

// startRegistry runs docker-registry on a free loopback port with storage
// in a temp dir and returns its host:port. It is stopped when the test ends.
func startRegistry(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(registryBinary); err != nil {
		t.Skipf("docker-registry not installed (apt-get install docker-registry): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(registryBinary, "serve", filepath.Join(dir, "config.yml"))
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopProcess(t, cmd)
		log.Close()
		if t.Failed() {
			data, _ := os.ReadFile(log.Name())
			t.Logf("registry log:\n%s", data)
		}
	})
	waitUntil(t, "the registry to answer", 10*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

// stopProcess ends a process this test started: SIGTERM, SIGKILL after 10s.
func stopProcess(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("%s did not stop on SIGTERM within 10s", cmd.Path)
	}
}

func waitUntil(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPush(t *testing.T) {
	requireBusybox(t)
	addr := startRegistry(t)
	img, err := Busybox(runtime.GOARCH, addr+"/test/busybox:1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second push finds every blob present
		if err := PushContext(context.Background(), addr+"/test/busybox:1", img, true); err != nil {
			t.Fatalf("push %d: %v", i+1, err)
		}
	}
	want, _ := img.Digest()
	mt, _ := img.MediaType()
	req, _ := http.NewRequest(http.MethodHead, "http://"+addr+"/v2/test/busybox/manifests/1", nil)
	req.Header.Set("Accept", string(mt))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode != http.StatusOK || got != want.String() {
		t.Errorf("manifest: %s, digest %s, want %s", resp.Status, got, want)
	}
	// Not insecure: HTTPS against a plain-HTTP registry fails.
	if err := Push(addr+"/test/busybox:2", img, false); err == nil {
		t.Error("push over HTTPS to a plain-HTTP registry succeeded")
	}
	if err := Push("not a ref", img, true); err == nil || !strings.Contains(err.Error(), "parse reference") {
		t.Errorf("push to a bad reference: %v", err)
	}
}

const containerdConfig = `version = 2
root = "{{dir}}/root"
state = "{{dir}}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{{dir}}/containerd.sock"
[ttrpc]
  address = "{{dir}}/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{{dir}}/opt"
`

// privateContainerd is a containerd of this test's own.
type privateContainerd struct {
	dir, sock string
	pid       int
}

func startContainerd(t *testing.T) *privateContainerd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts a private containerd")
	}
	for _, tool := range []string{"containerd", "ctr", "runc", "nsenter", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir, err := os.MkdirTemp("", "ccimg-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	for _, d := range []string{"root", "state", "opt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := strings.ReplaceAll(containerdConfig, "{{dir}}", dir)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// A private mount namespace with a tmpfs on /run: shim sockets, runc
	// state and fifos never reach the machine's /run. unshare and sh exec:
	// the PID is containerd's.
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount -t tmpfs -o mode=0755 ccimg-run /run && exec containerd --config "$0"`, filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &privateContainerd{dir: dir, sock: filepath.Join(dir, "containerd.sock"), pid: cmd.Process.Pid}
	t.Cleanup(func() {
		stopProcess(t, cmd)
		log.Close()
		if t.Failed() {
			data, _ := os.ReadFile(log.Name())
			t.Logf("containerd log:\n%s", data)
		}
	})
	waitUntil(t, "containerd to answer", 20*time.Second, func() bool {
		_, err := c.ctr("version")
		return err == nil
	})
	return c
}

// ctr runs ctr against the private containerd, in its mount namespace (the
// fifos ctr creates must be the ones the shim opens).
func (c *privateContainerd) ctr(args ...string) (string, error) {
	full := append([]string{"-t", strconv.Itoa(c.pid), "-m", "--", "ctr", "--address", c.sock, "-n", "images-test"}, args...)
	out, err := exec.Command("nsenter", full...).CombinedOutput()
	return string(out), err
}

// TestBusyboxRunsInContainerd imports the archive with ctr and runs
// commands in a container from it.
func TestBusyboxRunsInContainerd(t *testing.T) {
	requireBusybox(t)
	c := startContainerd(t)
	const ref = "localhost/clusterctl/busybox:test"
	img, err := Busybox(runtime.GOARCH, ref)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(c.dir, "busybox.tar")
	if err := WriteArchive(archive, ref, img); err != nil {
		t.Fatal(err)
	}
	if out, err := c.ctr("images", "import", archive); err != nil || !strings.Contains(out, ref) {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	if out, err := c.ctr("images", "check", "-q"); err != nil || strings.TrimSpace(out) != ref {
		t.Errorf("ctr images check -q: %v\n%s", err, out)
	}
	id := fmt.Sprintf("ccimg-%d", os.Getpid())
	run := func(args ...string) string {
		t.Helper()
		// A one-level cgroup of our own, removed by runc with the container.
		full := append([]string{"run", "--rm", "--cgroup", "/" + id, ref, id}, args...)
		out, err := c.ctr(full...)
		if err != nil {
			t.Fatalf("ctr run %q: %v\n%s", args, err, out)
		}
		return out
	}
	t.Cleanup(func() {
		if left, _ := filepath.Glob("/sys/fs/cgroup/*/" + id); len(left) > 0 {
			t.Errorf("cgroups left behind: %v", left)
		}
	})
	if out := run("echo", "ok"); out != "ok\n" {
		t.Errorf("echo ok printed %q", out)
	}
	// Modes, owners and the user database the image promises.
	if out := run("/bin/sh", "-c", `stat -c '%a %U' /tmp /root; id -un; grep -c . /etc/passwd /etc/group`); out != "1777 root\n700 root\nroot\n/etc/passwd:2\n/etc/group:2\n" {
		t.Errorf("file system check printed %q", out)
	}
}
