package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

func requireRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("run lab: need root (e.g. sudo clusterctl lab ...)")
	}
	return nil
}

func hostCount(n int) string {
	if n == 1 {
		return "1 host"
	}
	return strconv.Itoa(n) + " hosts"
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s" }

// Up makes sure the lab has n running hosts: it creates the switch and any
// missing host, boots hosts that are down, and writes the inventory. Hosts
// already up are left alone, so a second Up with the same n does nothing.
func Up(ctx context.Context, opts Options, n int) error {
	if err := requireRoot(); err != nil {
		return err
	}
	c, err := resolve(opts)
	if err != nil {
		return err
	}
	start := time.Now()
	exe, err := c.executable()
	if err != nil {
		return err
	}
	if st, err := os.Stat(exe); err != nil || st.Mode()&0o111 == 0 {
		return fmt.Errorf("check clusterctl executable %s: not an executable file", exe)
	}
	if n < 1 {
		return fmt.Errorf("bring lab up: want at least 1 host, got %d", n)
	}
	if err := prepareStateDir(c); err != nil {
		return err
	}
	unlock, err := lockDir(ctx, c.stateDir)
	if err != nil {
		return err
	}
	defer unlock()

	st, err := loadState(c.l)
	if err != nil {
		return err
	}
	fresh := st == nil
	regNote := ""
	if st, err = planUp(c, st, n); err == nil {
		regNote, err = planRegistry(c, st, c.registry)
	}
	if err != nil {
		if fresh { // leave no empty state dir behind
			os.Remove(c.stateDir)
			if filepath.Dir(c.stateDir) == DefaultStateRoot {
				os.Remove(DefaultStateRoot)
			}
		}
		return err
	}
	p := st.prefix()
	// Recorded before anything is created: down must know all of it.
	if err := saveState(c.l, st); err != nil {
		return err
	}
	wsKey, err := ensureKey(c.l.key(), "clusterctl-lab-"+c.name)
	if err != nil {
		return err
	}
	if err := ensureSwitch(ctx, c.n, p); err != nil {
		return err
	}

	type result struct {
		boot bool
		dur  time.Duration
		err  error
	}
	results := make([]result, len(st.Hosts))
	var wg sync.WaitGroup
	for i, h := range st.Hosts {
		if _, ok := hostRunning(c, h.Name); ok {
			continue
		}
		results[i].boot = true
		wg.Go(func() {
			t0 := time.Now()
			err := bootHost(ctx, c, st, h, exe, authorizedLine(wsKey, "clusterctl-lab-"+c.name))
			results[i].dur, results[i].err = time.Since(t0), err
		})
	}
	var reg result
	if st.Registry != nil {
		if _, ok := registryRunning(c); !ok {
			reg.boot = true
			wg.Go(func() {
				t0 := time.Now()
				err := bootRegistry(ctx, c, st, exe)
				reg.dur, reg.err = time.Since(t0), err
			})
		}
	}
	wg.Wait()

	var errs []error
	booted := 0
	anyBoot := reg.boot || slices.ContainsFunc(results, func(r result) bool { return r.boot })
	for i, h := range st.Hosts {
		r := results[i]
		switch {
		case !r.boot:
			if anyBoot {
				fmt.Fprintf(c.out, "%s already up %s\n", h.Name, h.Address)
			}
		case r.err != nil:
			fmt.Fprintf(c.out, "%s failed %s (%s)\n", h.Name, h.Address, seconds(r.dur))
			errs = append(errs, r.err)
		default:
			booted++
			fmt.Fprintf(c.out, "%s up %s (%s)\n", h.Name, h.Address, seconds(r.dur))
		}
	}
	regHost := ""
	if st.Registry != nil {
		regHost = st.Registry.host()
		switch {
		case !reg.boot:
			if anyBoot {
				fmt.Fprintf(c.out, "registry already up %s\n", regHost)
			}
		case reg.err != nil:
			fmt.Fprintf(c.out, "registry failed %s (%s)\n", regHost, seconds(reg.dur))
			errs = append(errs, reg.err)
		default:
			booted++
			fmt.Fprintf(c.out, "registry up %s (%s)\n", regHost, seconds(reg.dur))
		}
	}
	if regNote != "" {
		fmt.Fprintln(c.out, regNote)
	}
	if err := writeKnownHosts(c, st); err != nil {
		errs = append(errs, err)
	}
	changed, err := writeInventory(st.Inventory, c.name, c.stateDir, st.Hosts, regHost)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bring lab %s up: %w", c.name, err)
	}
	switch {
	case booted == 0 && !changed:
		fmt.Fprintf(c.out, "lab %s: %s already up, nothing to do (inventory %s)\n", c.name, hostCount(len(st.Hosts)), st.Inventory)
	case booted == 0:
		fmt.Fprintf(c.out, "lab %s: %s already up; inventory %s rewritten\n", c.name, hostCount(len(st.Hosts)), st.Inventory)
	default:
		fmt.Fprintf(c.out, "lab %s: %s up in %s; inventory %s\n", c.name, hostCount(len(st.Hosts)), seconds(time.Since(start)), st.Inventory)
	}
	return nil
}

// planUp checks that the lab can grow to n hosts and adds the missing ones
// to its state (st is nil for a new lab). Nothing is created yet.
func planUp(c *config, st *labState, n int) (*labState, error) {
	if st == nil {
		var err error
		if st, err = newState(c); err != nil {
			return nil, err
		}
	} else if err := checkSameLab(c, st); err != nil {
		return nil, err
	}
	p := st.prefix()
	if n > maxHosts(p) {
		return nil, fmt.Errorf("bring lab up: subnet %s holds at most %d hosts", p, maxHosts(p))
	}
	if n < len(st.Hosts) {
		return nil, fmt.Errorf("bring lab up: lab %s already has %s; up never removes hosts (lab down, then up)", c.name, hostCount(len(st.Hosts)))
	}
	if err := checkInventory(st.Inventory, c.name); err != nil {
		return nil, err
	}
	if _, err := net.InterfaceByName(st.RootLink); err != nil {
		if err := checkSubnetFree(p, st.RootLink); err != nil {
			return nil, err
		}
	}
	for i := len(st.Hosts) + 1; i <= n; i++ {
		st.Hosts = append(st.Hosts, hostState{Name: hostName(i), Index: i, Address: hostAddr(p, i).String()})
	}
	return st, nil
}

// prepareStateDir creates the state directory, or checks that an existing
// one belongs to a lab: down removes what it finds there.
func prepareStateDir(c *config) error {
	if err := os.MkdirAll(filepath.Dir(c.stateDir), 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	err := os.Mkdir(c.stateDir, 0o700)
	if err == nil {
		return os.Chmod(c.stateDir, 0o700)
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create state dir: %w", err)
	}
	ents, err := os.ReadDir(c.stateDir)
	if err != nil {
		return fmt.Errorf("read state dir: %w", err)
	}
	if len(ents) > 0 && !exists(c.l.stateFile()) {
		return fmt.Errorf("use state dir %s: it is not empty and holds no lab.json; choose another --state-dir", c.stateDir)
	}
	return nil
}

func newState(c *config) (*labState, error) {
	p := c.subnet
	if !p.IsValid() {
		p = DefaultSubnet()
	}
	inv := c.inv
	if inv == "" {
		abs, err := filepath.Abs(DefaultInventory)
		if err != nil {
			return nil, fmt.Errorf("resolve inventory path: %w", err)
		}
		inv = abs
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	if len(mounts) == 0 {
		return nil, errors.New("find cgroup hierarchies: none mounted")
	}
	return &labState{Version: stateVersion, Name: c.name, Subnet: p.String(), Inventory: inv,
		RootLink: c.n.rootLink(), Cgroups: mounts}, nil
}

// checkSameLab fails if explicit options contradict the recorded lab.
func checkSameLab(c *config, st *labState) error {
	if st.Name != c.name {
		return fmt.Errorf("use state dir %s: it belongs to lab %s, not %s", c.stateDir, st.Name, c.name)
	}
	if c.subnet.IsValid() && c.subnet.String() != st.Subnet {
		return fmt.Errorf("bring lab %s up: it uses subnet %s, not %s (lab down first to change it)", c.name, st.Subnet, c.subnet)
	}
	if c.inv != "" && c.inv != st.Inventory {
		return fmt.Errorf("bring lab %s up: its inventory is %s, not %s (lab down first to move it)", c.name, st.Inventory, c.inv)
	}
	return nil
}

func writeKnownHosts(c *config, st *labState) error {
	keys := map[string][]byte{}
	for _, h := range st.Hosts {
		if b, err := os.ReadFile(c.l.hostKey(h.Name)); err == nil {
			keys[h.Name] = b
		}
	}
	data := knownHostsFile(st.Hosts, keys)
	if old, err := os.ReadFile(c.l.knownHosts()); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return writeFileAtomic(c.l.knownHosts(), data, 0o644)
}

// openLab resolves opts, loads the lab's state and finds host (unless
// host is "").
func openLab(opts Options, host string) (*config, *labState, hostState, error) {
	if err := requireRoot(); err != nil {
		return nil, nil, hostState{}, err
	}
	c, err := resolve(opts)
	if err != nil {
		return nil, nil, hostState{}, err
	}
	st, h, err := c.loadLab(host)
	if err != nil {
		return nil, nil, hostState{}, err
	}
	return c, st, h, nil
}

// openLocked is openLab for commands that change the lab: it takes the
// state directory's lock before reading the state, so two concurrent lab
// commands never act on a stale view. The caller defers unlock.
func openLocked(ctx context.Context, opts Options, host string) (*config, *labState, hostState, func(), error) {
	if err := requireRoot(); err != nil {
		return nil, nil, hostState{}, nil, err
	}
	c, err := resolve(opts)
	if err != nil {
		return nil, nil, hostState{}, nil, err
	}
	unlock, err := lockDir(ctx, c.stateDir)
	if err != nil {
		return nil, nil, hostState{}, nil, err
	}
	st, h, err := c.loadLab(host)
	if err != nil {
		unlock()
		return nil, nil, hostState{}, nil, err
	}
	return c, st, h, unlock, nil
}

// loadLab reads the lab's state and finds host in it ("" for none).
func (c *config) loadLab(host string) (*labState, hostState, error) {
	st, err := loadState(c.l)
	if err != nil {
		return nil, hostState{}, err
	}
	if st == nil {
		return nil, hostState{}, fmt.Errorf("find lab %s in %s: %w; run lab up", c.name, c.stateDir, ErrNoLab)
	}
	if st.Name != c.name {
		return nil, hostState{}, fmt.Errorf("use state dir %s: it belongs to lab %s, not %s", c.stateDir, st.Name, c.name)
	}
	if host == "" {
		return st, hostState{}, nil
	}
	if _, err := hostIndex(host); err != nil {
		return nil, hostState{}, err
	}
	h, ok := st.host(host)
	if !ok {
		return nil, hostState{}, fmt.Errorf("find host %s: lab %s has %s", host, c.name, hostCount(len(st.Hosts)))
	}
	return st, h, nil
}

// Kill powers host off: SIGKILL to its PID 1 (every process of the host
// dies with it) and its switch port down, so its address times out instead
// of refusing connections. Its disk is kept for Boot.
func Kill(ctx context.Context, opts Options, host string) error {
	c, st, h, unlock, err := openLocked(ctx, opts, host)
	if err != nil {
		return err
	}
	defer unlock()
	// Port first: from now on peers see timeouts, never a reset.
	if exists(c.n.nsPath(c.n.hostNS(h.Name))) {
		if err := setPort(ctx, c.n, h.Index, false); err != nil {
			return fmt.Errorf("kill %s: %w", h.Name, err)
		}
	}
	killed, err := killHost(c, st.Cgroups, h.Name)
	if err != nil {
		return err
	}
	if killed {
		fmt.Fprintf(c.out, "%s killed (port down)\n", h.Name)
	} else {
		fmt.Fprintf(c.out, "%s was not running (port down)\n", h.Name)
	}
	return nil
}

// Boot (re)boots host with the same disk: fresh namespaces and /run, same
// per-host directories, switch port up. A running host is killed first.
func Boot(ctx context.Context, opts Options, host string) error {
	c, st, h, unlock, err := openLocked(ctx, opts, host)
	if err != nil {
		return err
	}
	defer unlock()
	exe, err := c.executable()
	if err != nil {
		return err
	}
	if _, err := killHost(c, st.Cgroups, h.Name); err != nil {
		return err
	}
	wsKey, err := ensureKey(c.l.key(), "clusterctl-lab-"+c.name)
	if err != nil {
		return err
	}
	if err := ensureSwitch(ctx, c.n, st.prefix()); err != nil {
		return err
	}
	t0 := time.Now()
	if err := bootHost(ctx, c, st, h, exe, authorizedLine(wsKey, "clusterctl-lab-"+c.name)); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%s booted %s (%s)\n", h.Name, h.Address, seconds(time.Since(t0)))
	return nil
}

// Partition cuts host off the lab network: from every other port (the
// workstation included) or, with from, only from those hosts ("workstation"
// names the workstation's port). It replaces an earlier partition of host.
func Partition(ctx context.Context, opts Options, host string, from []string) error {
	c, st, h, unlock, err := openLocked(ctx, opts, host)
	if err != nil {
		return err
	}
	defer unlock()
	var ports, peers []string
	for _, f := range from {
		f = strings.TrimSpace(f)
		if f == "" || slices.Contains(peers, f) {
			continue
		}
		if f == workstation {
			ports, peers = append(ports, uplinkName), append(peers, f)
			continue
		}
		if f == h.Name {
			return fmt.Errorf("partition %s: cannot partition a host from itself", h.Name)
		}
		if _, err := hostIndex(f); err != nil {
			return fmt.Errorf("partition %s: %w", h.Name, err)
		}
		p, ok := st.host(f)
		if !ok {
			return fmt.Errorf("partition %s: lab %s has no host %s", h.Name, c.name, f)
		}
		ports, peers = append(ports, portName(p.Index)), append(peers, f)
	}
	if err := nftInSwitch(ctx, c.n, partitionRules(c.n.partTable(h.Name), portName(h.Index), ports)); err != nil {
		return fmt.Errorf("partition %s: %w", h.Name, err)
	}
	if st.Partitions == nil {
		st.Partitions = map[string][]string{}
	}
	if len(peers) == 0 {
		st.Partitions[h.Name] = []string{"*"}
		fmt.Fprintf(c.out, "%s partitioned from everyone (hosts and workstation)\n", h.Name)
	} else {
		st.Partitions[h.Name] = peers
		fmt.Fprintf(c.out, "%s partitioned from %s\n", h.Name, strings.Join(peers, ", "))
	}
	return saveState(c.l, st)
}

// Heal removes host's partition.
func Heal(ctx context.Context, opts Options, host string) error {
	c, st, h, unlock, err := openLocked(ctx, opts, host)
	if err != nil {
		return err
	}
	defer unlock()
	t := c.n.partTable(h.Name)
	if err := nftInSwitch(ctx, c.n, "table bridge "+t+"\ndelete table bridge "+t+"\n"); err != nil {
		return fmt.Errorf("heal %s: %w", h.Name, err)
	}
	delete(st.Partitions, h.Name)
	fmt.Fprintf(c.out, "%s healed\n", h.Name)
	return saveState(c.l, st)
}

// LabStatus describes a lab as Status found it.
type LabStatus struct {
	Name        string       `json:"name"`
	Up          bool         `json:"up"`
	StateDir    string       `json:"stateDir"`
	Subnet      string       `json:"subnet,omitempty"`
	Workstation string       `json:"workstation,omitempty"`
	Inventory   string       `json:"inventory,omitempty"`
	Hosts       []HostStatus `json:"hosts"`
	// Registry is the lab registry, if the lab has one.
	Registry *RegistryStatus `json:"registry,omitempty"`
}

// HostStatus describes one host.
type HostStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// State is "running" or "stopped".
	State string `json:"state"`
	// PID is the host's PID 1 in the root PID namespace.
	PID int `json:"pid,omitempty"`
	// Port is the switch port: "up", "down" or "missing".
	Port string `json:"port"`
	// PartitionedFrom lists the peers the host is cut from; "*" is everyone.
	PartitionedFrom []string `json:"partitionedFrom,omitempty"`
	// Services maps each labinit service to its state.
	Services map[string]string `json:"services,omitempty"`
}

// Status reports the lab's hosts: running or not, switch port, partitions
// and labinit services.
func Status(ctx context.Context, opts Options) (LabStatus, error) {
	if err := requireRoot(); err != nil {
		return LabStatus{}, err
	}
	c, err := resolve(opts)
	if err != nil {
		return LabStatus{}, err
	}
	out := LabStatus{Name: c.name, StateDir: c.stateDir, Hosts: []HostStatus{}}
	st, err := loadState(c.l)
	if err != nil || st == nil {
		return out, err
	}
	out.Up = true
	out.Subnet, out.Inventory = st.Subnet, st.Inventory
	out.Workstation = workstationAddr(st.prefix()).String()
	ports := portStates(ctx, c.n)
	for _, h := range st.Hosts {
		hs := HostStatus{Name: h.Name, Address: h.Address, State: "stopped", Port: "missing", PartitionedFrom: st.Partitions[h.Name]}
		if p, ok := ports[portName(h.Index)]; ok {
			hs.Port = p
		}
		if rec, ok := hostRunning(c, h.Name); ok {
			hs.State, hs.PID = "running", rec.PID
			hs.Services = labinitServices(rec.PID)
		}
		out.Hosts = append(out.Hosts, hs)
	}
	if st.Registry != nil {
		out.Registry = registryStatus(c, *st.Registry, ports)
	}
	return out, nil
}

// labinitServices reads the service states of the labinit running as pid.
func labinitServices(pid int) map[string]string {
	dir := fmt.Sprintf("/proc/%d/root/run/labinit", pid)
	ents, _ := os.ReadDir(dir)
	out := map[string]string{}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".status")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		var s serviceStatus
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && json.Unmarshal(b, &s) == nil {
			out[name] = s.State
		}
	}
	return out
}

// Write prints the status as "text" (a table) or "json".
func (s LabStatus) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	case "", "text":
	default:
		return fmt.Errorf("write status: unknown format %q (want text or json)", format)
	}
	if !s.Up {
		_, err := fmt.Fprintf(w, "lab %s is not up (state dir %s)\n", s.Name, s.StateDir)
		return err
	}
	fmt.Fprintf(w, "lab %s: subnet %s, workstation %s, inventory %s\n", s.Name, s.Subnet, s.Workstation, s.Inventory)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDRESS\tSTATE\tPID\tPORT\tPARTITIONED FROM\tSERVICES")
	for _, h := range s.Hosts {
		pid, part, svcs := "-", "-", "-"
		if h.PID > 0 {
			pid = strconv.Itoa(h.PID)
		}
		if len(h.PartitionedFrom) > 0 {
			part = strings.Join(h.PartitionedFrom, ",")
		}
		if len(h.Services) > 0 {
			var parts []string
			for _, k := range slices.Sorted(func(yield func(string) bool) {
				for k := range h.Services {
					if !yield(k) {
						return
					}
				}
			}) {
				parts = append(parts, k+"="+h.Services[k])
			}
			svcs = strings.Join(parts, " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Address, h.State, pid, h.Port, part, svcs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r := s.Registry; r != nil {
		detail := "port " + r.Port
		if r.PID > 0 {
			detail = "pid " + strconv.Itoa(r.PID) + ", " + detail
		}
		for _, k := range slices.Sorted(maps.Keys(r.Services)) {
			detail += ", " + k + "=" + r.Services[k]
		}
		_, err := fmt.Fprintf(w, "registry %s (plain HTTP): %s (%s)\n", r.Host, r.State, detail)
		return err
	}
	return nil
}

// Exec runs argv inside host: in its mount, UTS, IPC, network and PID
// namespaces and its cgroups, with opts.In, Out and Err as stdio. It returns
// the command's exit status (128+N for signal N); err is set only when the
// command could not be run at all.
func Exec(ctx context.Context, opts Options, host string, argv []string) (int, error) {
	c, st, h, err := openLab(opts, host)
	if err != nil {
		return -1, err
	}
	if len(argv) == 0 {
		return -1, fmt.Errorf("exec on %s: no command", h.Name)
	}
	rec, ok := hostRunning(c, h.Name)
	if !ok {
		return -1, fmt.Errorf("exec on %s: host is not running (lab boot %s)", h.Name, h.Name)
	}
	// Hold the namespaces open, then check the PID still is the host's
	// PID 1: the fds cannot be recycled, the PID can.
	nsFlags := []struct{ flag, ns string }{{"mount", "mnt"}, {"uts", "uts"}, {"ipc", "ipc"}, {"net", "net"}, {"pid", "pid"}}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	args := make([]string, 0, len(nsFlags)+len(argv)+16)
	for i, ns := range nsFlags {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", rec.PID, ns.ns))
		if err != nil {
			return -1, fmt.Errorf("exec on %s: %w", h.Name, err)
		}
		files = append(files, f)
		args = append(args, fmt.Sprintf("--%s=/proc/self/fd/%d", ns.flag, 3+i))
	}
	if !rec.alive() {
		return -1, fmt.Errorf("exec on %s: host is not running (lab boot %s)", h.Name, h.Name)
	}
	// nsenter does not change cgroups: a shell in the host joins them before
	// it execs the command, so freezing or accounting the host covers it.
	const joinAndExec = `for f do shift; [ "$f" = -- ] && break; echo 0 > "$f" || exit 126; done; exec "$@"`
	args = append(args, "--", "/bin/sh", "-c", joinAndExec, "sh")
	args = append(args, cgroupProcs(st.Cgroups, c.n.cgroup(h.Name))...)
	args = append(args, "--")
	args = append(args, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.ExtraFiles = files
	cmd.Env = []string{"PATH=" + servicePath, "HOME=/root", "LANG=C.UTF-8"}
	if term := os.Getenv("TERM"); term != "" {
		cmd.Env = append(cmd.Env, "TERM="+term)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.in, c.out, c.errw
	closeOnExecAbove(2)
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	default:
		return -1, fmt.Errorf("exec on %s: %w", h.Name, err)
	}
}

// Down removes everything the lab made: host processes, network
// namespaces, links, cgroups, mounts, the inventory it wrote and the state
// directory. Down of a lab that is not up succeeds.
func Down(ctx context.Context, opts Options) error {
	if err := requireRoot(); err != nil {
		return err
	}
	c, err := resolve(opts)
	if err != nil {
		return err
	}
	start := time.Now()
	var errs []error
	var st *labState
	if exists(c.stateDir) {
		unlock, err := lockDir(ctx, c.stateDir)
		if err != nil {
			return err
		}
		defer unlock()
		if st, err = loadState(c.l); err != nil {
			errs = append(errs, err) // clean up by name anyway
		}
		if st != nil && st.Name != c.name {
			return fmt.Errorf("use state dir %s: it belongs to lab %s, not %s", c.stateDir, st.Name, c.name)
		}
	}
	mounts, err := cgroupMounts()
	if err != nil {
		errs = append(errs, err)
	}
	var hosts []string
	addHost := func(h string) {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	inventory := ""
	if st != nil {
		for _, m := range st.Cgroups {
			if !slices.Contains(mounts, m) {
				mounts = append(mounts, m)
			}
		}
		for _, h := range st.Hosts {
			addHost(h.Name)
		}
		inventory = st.Inventory
	}
	for _, h := range labNetns(c.n) {
		addHost(h)
	}
	for _, h := range cgroupHosts(mounts, c.n) {
		addHost(h)
	}
	if ents, err := os.ReadDir(c.l.hostsDir()); err == nil {
		for _, e := range ents {
			if _, err := hostIndex(e.Name()); err == nil {
				addHost(e.Name())
			}
		}
	}
	found := len(hosts) > 0 || st != nil || exists(c.n.nsPath(c.n.switchNS())) || exists(c.n.nsPath(c.n.registryNS()))

	killErrs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { _, killErrs[i] = killHost(c, mounts, h) })
	}
	var regErr error
	wg.Go(func() { _, regErr = killRegistry(c) })
	wg.Wait()
	errs = append(errs, killErrs...)
	errs = append(errs, regErr)
	for _, h := range hosts {
		errs = append(errs, deleteNetns(ctx, c.n, c.n.hostNS(h)))
	}
	errs = append(errs, deleteNetns(ctx, c.n, c.n.registryNS()))
	errs = append(errs, deleteNetns(ctx, c.n, c.n.switchNS()))
	links := []string{c.n.rootLink()}
	if st != nil && st.RootLink != "" && st.RootLink != links[0] {
		links = append(links, st.RootLink)
	}
	for _, l := range links {
		if _, err := net.InterfaceByName(l); err == nil {
			if _, err := run(ctx, "", "ip", "link", "del", l); err != nil {
				errs = append(errs, fmt.Errorf("delete workstation link: %w", err))
			}
		}
	}
	for _, h := range hosts {
		errs = append(errs, removeCgroup(ctx, mounts, c.n.cgroup(h)))
	}
	errs = append(errs, unmountUnder(c.stateDir))
	invNote, err := removeInventory(inventory, c.name)
	errs = append(errs, err)
	errs = append(errs, removeStateDir(c))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear lab %s down: %w", c.name, err)
	}
	if !found && invNote == "" {
		fmt.Fprintf(c.out, "lab %s: nothing to remove\n", c.name)
		return nil
	}
	if invNote != "" {
		invNote = "; " + invNote
	}
	fmt.Fprintf(c.out, "lab %s down: removed %s in %s%s\n", c.name, hostCount(len(hosts)), seconds(time.Since(start)), invNote)
	return nil
}

// unmountUnder detaches mounts below dir in the root mount namespace. The
// lab makes none there; this guards the removal of dir against a bug or a
// manual mount ever reaching outside it.
func unmountUnder(dir string) error {
	mis, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for i := len(mis) - 1; i >= 0; i-- {
		if under(mis[i].MountPoint, dir) {
			if err := unix.Unmount(mis[i].MountPoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %s: %w", mis[i].MountPoint, err)
			}
		}
	}
	return nil
}

// removeStateDir removes the entries the lab creates in its state dir, then
// the dir itself (and the default parent) if nothing else is left.
func removeStateDir(c *config) error {
	if !exists(c.stateDir) {
		return nil
	}
	leftovers, _ := filepath.Glob(filepath.Join(c.stateDir, ".*.tmp")) // of interrupted atomic writes
	for _, e := range c.l.entries() {
		leftovers = append(leftovers, filepath.Join(c.stateDir, e))
	}
	for _, p := range leftovers {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove state: %w", err)
		}
	}
	if err := os.Remove(c.stateDir); err != nil {
		return fmt.Errorf("remove state dir (left files that are not the lab's): %w", err)
	}
	if filepath.Dir(c.stateDir) == DefaultStateRoot {
		os.Remove(DefaultStateRoot) // fails while other labs exist
	}
	return nil
}
