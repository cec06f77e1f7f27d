package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The lab registry: Debian's docker-registry (the distribution v2 server),
// plain HTTP on port RegistryPort at the subnet's .2 address, in a network
// namespace ccl-NAME-reg of its own plugged into the switch (port preg).
// Like a host it runs in fresh mount, UTS, IPC and PID namespaces under
// labinit (`lab __init --registry`), which restarts it if it dies; its PID 1
// is recorded with the same identity (start time, PID namespace) as a
// host's, so a recycled PID is never signalled. Everything it stores lives in
// STATE/registry, which its mount namespace shows at registryMount:
//
//	config.yml         docker-registry's configuration
//	data/              the registry's blobs and manifests
//	labinit/           registry.service, the unit labinit runs
//	log/registry.log   docker-registry's output; init.log is labinit's
//	pid1.json          the identity of its PID 1

// RegistryMode says whether `lab up` gives the lab a registry.
type RegistryMode string

// Registry modes.
const (
	// RegistryAuto (the default) makes a registry when docker-registry is
	// installed and says so when it is not.
	RegistryAuto RegistryMode = ""
	// RegistryOn makes a registry and fails if docker-registry is missing.
	RegistryOn RegistryMode = "on"
	// RegistryOff makes none; a lab that has one must go down first.
	RegistryOff RegistryMode = "off"
)

// registryMount is where STATE/registry appears in the registry's mount
// namespace (a bind on its private /run): fixed paths, nothing to quote.
const registryMount = "/run/registry"

const registryService = `# written by clusterctl lab
[Unit]
Description=container registry (docker-registry)

[Service]
ExecStart=` + RegistryBinary + ` serve ` + registryMount + `/config.yml
Restart=always
`

func registryConfig() string {
	return `# written by clusterctl lab: the lab registry, plain HTTP
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: ` + registryMount + `/data
  delete:
    enabled: true
http:
  addr: :` + strconv.Itoa(RegistryPort) + `
  headers:
    X-Content-Type-Options: [nosniff]
`
}

// planRegistry decides whether the lab gets (or keeps) a registry and
// records it in st. It returns a note for the user when a registry is
// skipped.
func planRegistry(c *config, st *labState, mode RegistryMode) (string, error) {
	installed := isExecutable(RegistryBinary)
	switch {
	case mode == RegistryOff && st.Registry != nil:
		return "", fmt.Errorf("bring lab %s up: it has a registry (lab down first to drop it)", c.name)
	case mode == RegistryOff:
		return "", nil
	case !installed && (mode == RegistryOn || st.Registry != nil):
		return "", fmt.Errorf("bring lab %s up: its registry needs %s (apt-get install docker-registry)", c.name, RegistryBinary)
	case !installed:
		return fmt.Sprintf("registry skipped: %s not installed (apt-get install docker-registry)", RegistryBinary), nil
	}
	if st.Registry == nil {
		st.Registry = &registryState{Address: registryAddr(st.prefix()).String(), Port: RegistryPort}
	}
	return "", nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// prepareRegistryDisk creates the registry's directories and, where
// missing, its configuration and unit.
func prepareRegistryDisk(l layout) error {
	for _, d := range []string{"data", "labinit", "log"} {
		if err := os.MkdirAll(filepath.Join(l.registry(), d), 0o755); err != nil {
			return fmt.Errorf("create registry dir: %w", err)
		}
	}
	if err := writeFileIfMissing(filepath.Join(l.registry(), "config.yml"), []byte(registryConfig()), 0o644); err != nil {
		return err
	}
	return writeFileIfMissing(filepath.Join(l.registry(), "labinit", "registry.service"), []byte(registryService), 0o644)
}

// ensureRegistryNet creates the registry's netns and switch port unless
// they exist. The registry must not be running.
func ensureRegistryNet(ctx context.Context, n names, p netip.Prefix, r registryState) error {
	ns := n.registryNS()
	if exists(n.nsPath(ns)) {
		if _, err := run(ctx, "", "ip", "-n", n.switchNS(), "link", "show", registryPort); err == nil {
			return nil
		}
		if err := deleteNetns(ctx, n, ns); err != nil { // the switch was made anew
			return fmt.Errorf("create network of the registry: %w", err)
		}
	}
	fail := func(err error) error {
		cctx := context.WithoutCancel(ctx)
		run(cctx, "", "ip", "-n", n.switchNS(), "link", "del", registryPort)
		run(cctx, "", "ip", "netns", "del", ns)
		return fmt.Errorf("create network of the registry: %w", err)
	}
	if _, err := run(ctx, "", "ip", "netns", "add", ns); err != nil {
		return fmt.Errorf("create network of the registry: %w", err)
	}
	sw := fmt.Sprintf("link add %s type veth peer name %s netns %s\nlink set %s master %s up\n",
		registryPort, hostIfName, ns, registryPort, bridgeName)
	if _, err := run(ctx, sw, "ip", "-n", n.switchNS(), "-batch", "-"); err != nil {
		return fail(err)
	}
	reg := fmt.Sprintf("link set lo up\naddr add %s/%d dev %s\nlink set %s up\n", r.Address, p.Bits(), hostIfName, hostIfName)
	if _, err := run(ctx, reg, "ip", "-n", ns, "-batch", "-"); err != nil {
		return fail(err)
	}
	return nil
}

// bootRegistry starts the registry (its disk and network are created where
// missing) and waits until it answers HTTP from the workstation.
func bootRegistry(ctx context.Context, c *config, st *labState, exe string) error {
	r := *st.Registry
	if err := prepareRegistryDisk(c.l); err != nil {
		return fmt.Errorf("boot registry: %w", err)
	}
	if err := ensureRegistryNet(ctx, c.n, st.prefix(), r); err != nil {
		return fmt.Errorf("boot registry: %w", err)
	}
	if err := os.Remove(c.l.registryPid1()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("boot registry: %w", err)
	}
	logf, err := os.OpenFile(c.l.registryInitLog(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("boot registry: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- boot registry at %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.CommandContext(ctx, "setsid", "-f",
		"nsenter", "--net="+c.n.nsPath(c.n.registryNS()), "--",
		"unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child", "--propagation", "private",
		exe, "lab", "__init", "--name", c.name, "--state-dir", c.stateDir, "--registry")
	cmd.Env = []string{"PATH=" + servicePath}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	// As for hosts: EOF on alive means init died while booting.
	alive, initEnd, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("boot registry: %w", err)
	}
	defer alive.Close()
	cmd.ExtraFiles = []*os.File{initEnd}
	closeOnExecAbove(2)
	err = cmd.Run()
	initEnd.Close()
	if err != nil {
		return fmt.Errorf("boot registry: start init: %w", err)
	}
	return waitRegistryReady(ctx, c, r, alive)
}

// waitRegistryReady waits until the registry's PID 1 recorded itself,
// labinit runs and docker-registry answers GET /v2/ from the workstation.
func waitRegistryReady(ctx context.Context, c *config, r registryState, alive *os.File) error {
	start := time.Now()
	waiting := "init"
	logs := func() string {
		return fmt.Sprintf("%s:\n%s\n%s:\n%s", c.l.registryInitLog(), tail(c.l.registryInitLog(), 10),
			filepath.Join(c.l.registry(), "log", "registry.log"), tail(filepath.Join(c.l.registry(), "log", "registry.log"), 10))
	}
	var buf [1]byte
	for {
		alive.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := alive.Read(buf[:]); errors.Is(err, io.EOF) {
			return fmt.Errorf("boot registry: init exited; %s", logs())
		}
		if rec, err := readPid1(c.l.registryPid1()); err == nil {
			if !rec.alive() {
				return fmt.Errorf("boot registry: init exited; %s", logs())
			}
			switch {
			case !exists(fmt.Sprintf("/proc/%d/root/run/labinit/%s", rec.PID, labinitPIDKey)):
				waiting = "labinit"
			case !tcpListening(rec.PID, r.Port):
				waiting = "docker-registry"
			default:
				err := pingRegistry(ctx, r.host())
				if err == nil {
					return nil
				}
				waiting = "docker-registry (" + err.Error() + ")"
			}
		}
		if time.Since(start) > bootTimeout {
			return fmt.Errorf("boot registry: %s not ready after %s; %s", waiting, bootTimeout, logs())
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("boot registry: %w", err)
		}
	}
}

// pingRegistry sends GET /v2/ to host:port over plain HTTP, directly (no
// proxy), and wants 200 OK.
func pingRegistry(ctx context.Context, hostPort string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostPort+"/v2/", nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v2/: %s", resp.Status)
	}
	return nil
}

// registryRunning returns the registry's PID 1 record if that process
// still lives.
func registryRunning(c *config) (pid1Record, bool) {
	rec, err := readPid1(c.l.registryPid1())
	if err != nil || !rec.alive() {
		return pid1Record{}, false
	}
	return rec, true
}

// killRegistry stops the registry like killHost stops a host: SIGKILL to
// its verified PID 1 (its PID namespace dies with it), then to anything
// left in its netns. It reports whether anything was killed.
func killRegistry(c *config) (bool, error) {
	killed := false
	var errs []error
	if rec, ok := registryRunning(c); ok {
		k, err := killVerified(rec.PID, rec.alive, killTimeout)
		killed = killed || k
		errs = append(errs, err)
	}
	if ino, err := fileInode(c.n.nsPath(c.n.registryNS())); err == nil {
		for _, pid := range pidsInNetns(ino) {
			check := func() bool {
				i, err := nsInode(strconv.Itoa(pid), "net")
				return err == nil && i == ino
			}
			k, err := killVerified(pid, check, killTimeout)
			killed = killed || k
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return killed, fmt.Errorf("kill registry: %w", err)
	}
	return killed, nil
}

// registryInit is `lab __init --registry`: PID 1 of the registry. It
// records its identity, makes its mounts and runs labinit on
// STATE/registry/labinit until killed.
func registryInit(c *config) error {
	logger := log.New(os.Stderr, "registry ", log.LstdFlags|log.Lmicroseconds)
	if err := recordPid1(c.l.registryPid1()); err != nil {
		return err
	}
	closeOnExecAbove(2) // fd 3 is for the booting `lab up` only
	if err := mountRegistry(c); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte("registry")); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return fmt.Errorf("change to /: %w", err)
	}
	unix.Umask(0o022)
	logger.Printf("registry of lab %s booted", c.name)
	return runLabinit(labinitConfig{
		UnitDir:     registryMount + "/labinit",
		RunDir:      "/run/labinit",
		LogDir:      registryMount + "/log",
		Env:         []string{"PATH=" + servicePath},
		StopTimeout: stopTimeout,
		Log:         logger,
	})
}

// mountRegistry builds the registry's file system view, in its private
// mount namespace: the machine's, with a fresh /proc, a tmpfs /run (without
// the copies of /run/netns, which would pin other labs' namespaces) holding
// labinit's run dir and STATE/registry at registryMount.
func mountRegistry(c *config) error {
	mount := func(src, target, fstype string, flags uintptr, data string) error {
		if err := unix.Mount(src, target, fstype, flags, data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", fstype+src, target, err)
		}
		return nil
	}
	if err := mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	mis, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for i := len(mis) - 1; i >= 0; i-- {
		if under(mis[i].MountPoint, "/run/netns") {
			if err := unix.Unmount(mis[i].MountPoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("unmount %s: %w", mis[i].MountPoint, err)
			}
		}
	}
	if err := mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	if err := mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return err
	}
	for _, d := range []string{"/run/labinit", registryMount} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return mount(c.l.registry(), registryMount, "", unix.MS_BIND, "")
}

// RegistryStatus describes the lab registry.
type RegistryStatus struct {
	// Host is host:port, as image references name it.
	Host string `json:"host"`
	// State is "running" or "stopped".
	State string `json:"state"`
	// PID is the registry's PID 1 (labinit) in the root PID namespace.
	PID int `json:"pid,omitempty"`
	// Port is the switch port: "up", "down" or "missing".
	Port string `json:"port"`
	// Services maps each labinit service to its state.
	Services map[string]string `json:"services,omitempty"`
}

func registryStatus(c *config, r registryState, ports map[string]string) *RegistryStatus {
	rs := &RegistryStatus{Host: r.host(), State: "stopped", Port: "missing"}
	if p, ok := ports[registryPort]; ok {
		rs.Port = p
	}
	if rec, ok := registryRunning(c); ok {
		rs.State, rs.PID = "running", rec.PID
		rs.Services = labinitServices(rec.PID)
	}
	return rs
}
