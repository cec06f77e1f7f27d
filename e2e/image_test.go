package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/clusterctl/clusterctl/images"
)

// busyboxArchive writes the project's busybox test image, tagged ref, as a
// docker archive.
func busyboxArchive(t *testing.T, ref string) string {
	t.Helper()
	img, err := images.Busybox(runtime.GOARCH, ref)
	if err != nil {
		t.Skipf("skipping: cannot build the busybox image (install busybox-static): %v", err)
	}
	p := filepath.Join(t.TempDir(), strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	if err := images.WriteArchive(p, ref, img); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestImageLoad side-loads an archive onto a 2-host lab after up: every
// host (or only --hosts) gets the image, imported into CRI's namespace and
// unpacked; bad input is a usage error, a dead host a partial failure.
func TestImageLoad(t *testing.T) {
	l := newLab(t, 2)
	const ref1, ref2 = "localhost/e2e/busybox:1", "localhost/e2e/busybox:2"
	archive1 := busyboxArchive(t, ref1)
	archive2 := busyboxArchive(t, ref2)
	mustOK(t, "up", "-i", l.inv)

	r := mustOK(t, "image", "load", archive1, "-i", l.inv)
	t.Logf("image load:\n%s", r.stdout)
	for _, h := range []string{"h1", "h2"} {
		if !regexp.MustCompile(`(?m)^` + h + `\s+done: imported ` + regexp.QuoteMeta(ref1) + `$`).MatchString(r.stdout) {
			t.Errorf("image load: no result line for %s:\n%s", h, r)
		}
		ls := l.exec(t, h, "ctr -n k8s.io images ls -q")
		ready := l.exec(t, h, "ctr -n k8s.io images check -q")
		if !strings.Contains(ls, ref1+"\n") || !strings.Contains(ready, ref1+"\n") {
			t.Errorf("%s: %s not listed and ready:\nimages ls:\n%s\nimages check -q:\n%s", h, ref1, ls, ready)
		}
		if left := l.exec(t, h, "ls /tmp | grep -c clusterctl-image || true"); strings.TrimSpace(left) != "0" {
			t.Errorf("%s: temp files left in /tmp: %s", h, left)
		}
	}
	if !strings.Contains(r.stdout, "2 hosts: 2 ok (2 loaded)") {
		t.Errorf("image load summary:\n%s", r)
	}

	// Trailing --hosts, only h2.
	r = mustOK(t, "image", "load", archive2, "-i", l.inv, "--hosts", "h2")
	if strings.Contains(r.stdout, "h1 ") || !strings.Contains(r.stdout, "imported "+ref2) {
		t.Errorf("image load --hosts h2:\n%s", r)
	}
	if ls := l.exec(t, "h1", "ctr -n k8s.io images ls -q"); strings.Contains(ls, ref2) {
		t.Errorf("h1 got %s although only h2 was asked for:\n%s", ref2, ls)
	}
	if ls := l.exec(t, "h2", "ctr -n k8s.io images ls -q"); !strings.Contains(ls, ref2+"\n") {
		t.Errorf("h2 lacks %s:\n%s", ref2, ls)
	}

	// Usage errors change nothing.
	notArchive := filepath.Join(t.TempDir(), "x.tar")
	os.WriteFile(notArchive, []byte("not a tar"), 0o644)
	for _, args := range [][]string{
		{"image", "load", archive1, "-i", l.inv, "--hosts", "h9"},
		{"image", "load", notArchive, "-i", l.inv},
		{"image", "load", "-i", l.inv},
	} {
		if r := clusterctl(t, args...); r.code != 2 {
			t.Errorf("want exit 2: %s", r)
		}
	}

	// One dead host: the other still loads, exit code 3.
	mustOK(t, l.labArgs("kill", "h2")...)
	r = clusterctl(t, "image", "load", archive1, "-i", l.inv)
	if r.code != 3 || !regexp.MustCompile(`(?m)^h1\s+done: imported `).MatchString(r.stdout) || !strings.Contains(r.stderr, "h2: FAILED") {
		t.Errorf("image load with h2 down: want exit 3, h1 done, h2 failed: %s", r)
	}
	t.Logf("image load with h2 down:\n%s", r)
}

// TestRegistryPull pushes to the lab registry from the workstation and
// pulls on a host through the containerd registry configuration `up` wrote:
// the registry's own hosts.toml (no --plain-http needed) and, once the
// inventory says it mirrors docker.io, docker.io's.
func TestRegistryPull(t *testing.T) {
	if _, err := os.Stat("/usr/bin/docker-registry"); err != nil {
		t.Skip("skipping: the lab registry needs docker-registry (apt-get install docker-registry)")
	}
	l := newLab(t, 1)
	reg := strings.TrimSuffix(l.subnet, "0/24") + "2:5000"
	data, err := os.ReadFile(l.inv)
	if err != nil {
		t.Fatal(err)
	}
	const regLine = "      insecure: true  # the lab registry: plain HTTP\n"
	if !strings.Contains(string(data), "  registries:\n    - host: "+reg+"\n"+regLine) {
		t.Fatalf("lab inventory lacks its registry %s:\n%s", reg, data)
	}
	withMirror := strings.Replace(string(data), regLine, regLine+"      mirrors: [docker.io]\n", 1)
	if err := os.WriteFile(l.inv, []byte(withMirror), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("up with the registry mirroring docker.io:\n%s", mustOK(t, "up", "-i", l.inv).stdout)
	conf := l.exec(t, "h1", "grep -A1 'cri\".registry]' /etc/containerd/config.toml; cat /etc/containerd/certs.d/"+reg+"/hosts.toml /etc/containerd/certs.d/docker.io/hosts.toml")
	for _, want := range []string{`config_path = "/etc/containerd/certs.d"`, `server = "http://` + reg + `"`, `[host."http://` + reg + `"]`,
		`server = "https://registry-1.docker.io"`, `capabilities = ["pull", "resolve"]`} {
		if !strings.Contains(conf, want) {
			t.Errorf("containerd registry config lacks %q:\n%s", want, conf)
		}
	}

	img, err := images.Busybox(runtime.GOARCH, reg+"/e2e/busybox:1")
	if err != nil {
		t.Skipf("skipping: cannot build the busybox image: %v", err)
	}
	for _, ref := range []string{reg + "/e2e/busybox:1", reg + "/library/busybox:e2e"} {
		if err := images.Push(ref, img, true); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	// No --plain-http: the hosts.toml says how to reach the registry.
	l.exec(t, "h1", "ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d "+reg+"/e2e/busybox:1 >/dev/null")
	// docker.io through the mirror; the host has no route off the lab, so
	// the lab registry is the only place it can come from.
	l.exec(t, "h1", "ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d docker.io/library/busybox:e2e >/dev/null")
	digest, _ := img.Digest()
	ls := l.exec(t, "h1", "ctr -n k8s.io images ls")
	for _, ref := range []string{reg + "/e2e/busybox:1", "docker.io/library/busybox:e2e"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(ref) + `\s.*` + regexp.QuoteMeta(digest.String())).MatchString(ls) {
			t.Errorf("h1 lacks %s at %s:\n%s", ref, digest, ls)
		}
	}

	// Dropping the mirror removes docker.io's hosts.toml; then nothing changes.
	if err := os.WriteFile(l.inv, []byte(strings.Replace(mustRead(t, l.inv), "      mirrors: [docker.io]\n", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := mustOK(t, "up", "-i", l.inv); !regexp.MustCompile(`(?m)^h1\s+done: .*removed registry hosts docker\.io`).MatchString(r.stdout) {
		t.Errorf("up without the mirror:\n%s", r)
	}
	if out := l.exec(t, "h1", "ls /etc/containerd/certs.d"); strings.TrimSpace(out) != reg {
		t.Errorf("certs.d after dropping the mirror: %q", out)
	}
	if r := mustOK(t, "up", "-i", l.inv); !regexp.MustCompile(`(?m)^h1\s+done: no changes`).MatchString(r.stdout) {
		t.Errorf("second up changed something:\n%s", r)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
