package playbooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/version"
)

// UpOptions configures the up playbook.
type UpOptions struct {
	// Specs computes the NodeSpec of every host once all hosts have reported
	// their facts (or failed before): facts carry what each host's agentlet
	// reports now, so the specs can keep the endpoints of running pods.
	// Called at most once, with the facts of the hosts that got that far;
	// an error fails those hosts at the step "plan" and changes nothing.
	Specs func(facts map[string]*Facts) (map[string]nodeapi.NodeSpec, error)
	// Hosts are the hosts to bring up, in the order they are reported.
	Hosts []string
	Dial  Dialer
	// Agentlet returns the agentlet binary and its sha256 for an architecture.
	Agentlet func(arch string) ([]byte, string, error)
	// InstallMissing allows installing missing packages with the host's
	// package manager.
	InstallMissing bool
	// Registries get a hosts.toml each (and one per mirrored host) below
	// RegistryHostsDir; clusterctl's hosts.toml files for others are removed.
	Registries []RegistryHost
	// ReadyTimeout bounds the wait for agentlet to report Ready.
	ReadyTimeout time.Duration
	Parallel     int
	Progress     Progress
}

// HostResult is the outcome of a playbook on one host.
type HostResult struct {
	Host    string
	Changes []string
	// Warnings are problems that do not stop the host from joining, such
	// as a peer that host-gw routing cannot reach directly.
	Warnings []string
	Err      error // *StepError, nil on success
	Facts    *Facts
	Status   *nodeapi.NodeStatus
	Agentlet string // sha256 of the agentlet binary now installed
	Elapsed  time.Duration
}

// Up brings every host to the node contract: containerd configured for
// CRI, CNI conflist, sysctls, agentlet installed, running and Ready with its
// NodeSpec. Hosts run in parallel in two phases: connect, facts and
// preflight on every host; then, with the specs computed from all facts,
// the changes. One failing host does not stop the others.
func Up(ctx context.Context, opts UpOptions) []HostResult {
	runs := make([]*upRun, len(opts.Hosts))
	forEach(ctx, opts.Hosts, opts.Parallel, func(ctx context.Context, i int, name string) {
		r := &upRun{opts: &opts, res: HostResult{Host: name}, name: name, start: time.Now()}
		runs[i] = r
		r.prepare(ctx)
	})
	facts := map[string]*Facts{}
	for _, r := range runs {
		if r.res.Err == nil {
			facts[r.name] = r.res.Facts
		}
	}
	specs := map[string]nodeapi.NodeSpec{}
	var specErr error
	if len(facts) > 0 {
		specs, specErr = opts.Specs(facts)
	}
	results := make([]HostResult, len(opts.Hosts))
	forEach(ctx, opts.Hosts, opts.Parallel, func(ctx context.Context, i int, name string) {
		r := runs[i]
		if r.host != nil {
			defer r.host.Close()
		}
		spec, ok := specs[name]
		switch {
		case r.res.Err != nil:
		case specErr != nil:
			r.res.Err = &StepError{Host: name, Step: "plan", Err: specErr}
		case !ok:
			r.res.Err = &StepError{Host: name, Step: "plan", Err: fmt.Errorf("no node spec for %s", name)}
		default:
			r.converge(ctx, spec)
		}
		r.res.Elapsed = time.Since(r.start)
		msg := "no changes"
		st := HostDone
		if r.res.Err != nil {
			msg = r.res.Err.Error()
			st = Failed
		} else if len(r.res.Changes) > 0 {
			msg = fmt.Sprintf("%d changed: %s", len(r.res.Changes), strings.Join(r.res.Changes, ", "))
		}
		opts.Progress.emit(Event{Host: name, Step: "done", State: st, Message: msg})
		results[i] = r.res
	})
	return results
}

type upRun struct {
	opts  *UpOptions
	res   HostResult
	host  Host
	name  string
	start time.Time
}

// step runs one named step and records its outcome.
func (r *upRun) step(name string, fn func() (changed string, err error)) bool {
	r.opts.Progress.emit(Event{Host: r.name, Step: name, State: Running})
	changed, err := fn()
	if err != nil {
		r.res.Err = &StepError{Host: r.name, Step: name, Err: err}
		return false
	}
	if changed != "" {
		r.res.Changes = append(r.res.Changes, changed)
		r.opts.Progress.emit(Event{Host: r.name, Step: name, State: Changed, Message: changed})
	} else {
		r.opts.Progress.emit(Event{Host: r.name, Step: name, State: Unchanged})
	}
	return true
}

// prepare connects, gathers facts and runs preflight (installing what is
// missing when allowed). On success r.res.Facts is set and r.host is open.
func (r *upRun) prepare(ctx context.Context) {
	ok := r.step("connect", func() (string, error) {
		h, err := r.opts.Dial(ctx, r.name)
		if err == nil {
			r.host = h
		}
		return "", err
	})
	if !ok {
		return
	}
	h := r.host

	var f *Facts
	if !r.step("facts", func() (string, error) {
		var err error
		f, err = gatherFacts(ctx, h)
		return "", err
	}) {
		return
	}
	ok = r.step("preflight", func() (string, error) {
		pf := EvaluatePreflight(f)
		if pf.Err() == nil {
			return "", nil
		}
		if !r.opts.InstallMissing || len(pf.Problems) > 0 || len(pf.Packages) == 0 {
			return "", pf.Err()
		}
		cmd, err := installCommand(f.PackageManager, pf.Packages)
		if err != nil {
			return "", err
		}
		if _, err := h.Run(ctx, cmd, nil); err != nil {
			return "", err
		}
		if f, err = gatherFacts(ctx, h); err != nil {
			return "", err
		}
		if err := EvaluatePreflight(f).Err(); err != nil {
			return "", fmt.Errorf("still failing after installing %s: %w", strings.Join(pf.Packages, " "), err)
		}
		return "installed " + strings.Join(pf.Packages, " "), nil
	})
	if !ok {
		return
	}
	r.res.Facts = f
}

// converge makes the changes on a prepared host and hands agentlet its spec.
func (r *upRun) converge(ctx context.Context, spec nodeapi.NodeSpec) {
	h, f := r.host, r.res.Facts
	r.res.Warnings = append(r.res.Warnings, CheckL2(r.name, f.Addresses, spec.Peers)...)
	restartContainerd := !f.ContainerdUp
	var ok bool
	ok = r.step("containerd-config", func() (string, error) {
		want := RenderContainerdConfig(ContainerdParams{
			SandboxImage:        version.PauseImage,
			SystemdCgroup:       f.Init == "systemd",
			RestrictOOMScoreAdj: !f.CapSysResource,
			CNIBinDir:           f.CNIBinDir,
			CNIConfDir:          CNIConfDir,
		})
		if f.Sums[ContainerdConfigPath] == sha256Hex(want) {
			return "", nil
		}
		if f.Sums[ContainerdConfigPath] != "" && !f.ContainerdManaged && !f.ContainerdBackup {
			if _, err := h.Run(ctx, fmt.Sprintf("cp -p %s %s", ContainerdConfigPath, ContainerdConfigBackup), nil); err != nil {
				return "", fmt.Errorf("back up the original containerd config: %w", err)
			}
		}
		if err := writeFile(ctx, h, ContainerdConfigPath, want, 0o644); err != nil {
			return "", err
		}
		restartContainerd = true
		return "containerd config", nil
	})
	if !ok {
		return
	}
	ok = r.step("registries", func() (string, error) {
		return syncRegistryHosts(ctx, h, f, RenderRegistryHosts(r.opts.Registries))
	})
	if !ok {
		return
	}
	ok = r.step("cni", func() (string, error) {
		podCIDR, err := netip.ParsePrefix(spec.PodCIDR)
		if err != nil {
			return "", fmt.Errorf("parse pod CIDR %q: %w", spec.PodCIDR, err)
		}
		want, err := RenderCNIConflist(podCIDR)
		if err != nil {
			return "", err
		}
		if f.Sums[CNIConfPath] == sha256Hex(want) {
			return "", nil
		}
		if err := writeFile(ctx, h, CNIConfPath, want, 0o644); err != nil {
			return "", err
		}
		return "cni conflist " + spec.PodCIDR, nil
	})
	if !ok {
		return
	}
	ok = r.step("sysctl", func() (string, error) {
		want := RenderSysctl()
		var changed []string
		if f.Sums[SysctlPath] != sha256Hex(want) {
			if err := writeFile(ctx, h, SysctlPath, want, 0o644); err != nil {
				return "", err
			}
			changed = append(changed, SysctlPath)
		}
		var cmds []string
		for _, kv := range sysctls() {
			if f.Sysctl[kv[0]] == kv[1] {
				continue
			}
			if strings.HasPrefix(kv[0], "net.bridge.") && !f.BridgeNetfilter {
				continue
			}
			cmds = append(cmds, fmt.Sprintf("echo %s > /proc/sys/%s", kv[1], strings.ReplaceAll(kv[0], ".", "/")))
			changed = append(changed, kv[0])
		}
		if len(cmds) > 0 {
			if _, err := h.Run(ctx, strings.Join(cmds, " && "), nil); err != nil {
				return "", err
			}
		}
		if len(changed) == 0 {
			return "", nil
		}
		return "sysctls (" + strings.Join(changed, ", ") + ")", nil
	})
	if !ok {
		return
	}
	ok = r.step("containerd", func() (string, error) {
		if !restartContainerd {
			return "", nil
		}
		if _, err := h.Run(ctx, containerdRestartCmd(f.Init), nil); err != nil {
			return "", err
		}
		return "containerd restarted", nil
	})
	if !ok {
		return
	}
	binaryChanged := false
	ok = r.step("agentlet", func() (string, error) {
		arch, err := f.Arch()
		if err != nil {
			return "", err
		}
		bin, sum, err := r.opts.Agentlet(arch)
		if err != nil {
			return "", err
		}
		r.res.Agentlet = sum
		if f.Sums[nodeapi.BinaryPath] == sum {
			return "", nil
		}
		if err := writeFile(ctx, h, nodeapi.BinaryPath, bin, 0o755); err != nil {
			return "", err
		}
		binaryChanged = true
		if f.Sums[nodeapi.BinaryPath] == "" {
			return "agentlet installed", nil
		}
		return "agentlet upgraded", nil
	})
	if !ok {
		return
	}
	ok = r.step("service", func() (string, error) {
		path := unitPath(f.Init)
		want := RenderAgentletUnit(nodeapi.BinaryPath)
		unitChanged := f.Sums[path] != sha256Hex(want)
		if unitChanged {
			if err := writeFile(ctx, h, path, want, 0o644); err != nil {
				return "", err
			}
		}
		if !unitChanged && !binaryChanged && f.AgentletRunning {
			return "", nil
		}
		if _, err := h.Run(ctx, serviceActivateCmd(f.Init, unitChanged, binaryChanged), nil); err != nil {
			return "", err
		}
		switch {
		case unitChanged:
			return "agentlet service installed", nil
		case binaryChanged:
			return "agentlet restarted", nil
		}
		return "agentlet started", nil
	})
	if !ok {
		return
	}
	// One round trip: hand agentlet its NodeSpec, then wait for it to report.
	var status []byte
	timeout := r.opts.ReadyTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ok = r.step("node-spec", func() (string, error) {
		data, err := json.Marshal(spec)
		if err != nil {
			return "", fmt.Errorf("encode node spec: %w", err)
		}
		cmd := fmt.Sprintf("%[1]s apply && echo %[2]s && exec %[1]s status --wait %[3]s", nodeapi.BinaryPath, statusMarker, timeout)
		out, err := h.Run(ctx, cmd, bytes.NewReader(data))
		if err != nil {
			return "", err
		}
		applied, st, found := bytes.Cut(out, []byte(statusMarker+"\n"))
		if !found {
			return "", fmt.Errorf("no status after %q in output %q", statusMarker, out)
		}
		status = st
		if strings.HasPrefix(strings.TrimSpace(string(applied)), "unchanged") {
			return "", nil
		}
		return fmt.Sprintf("node spec generation %d", spec.Generation), nil
	})
	if !ok {
		return
	}
	r.step("ready", func() (string, error) {
		st, err := nodeapi.DecodeNodeStatus(status)
		if err != nil {
			return "", err
		}
		r.res.Status = st
		if !st.Ready() {
			return "", fmt.Errorf("agentlet not Ready after %s: %s", timeout, NotReadyReason(st))
		}
		return "", nil
	})
}

// statusMarker separates apply's output from status's in the combined command.
const statusMarker = "--- clusterctl: agentlet status ---"

// gatherFacts runs the facts script in one round trip.
func gatherFacts(ctx context.Context, h Host) (*Facts, error) {
	out, err := h.Run(ctx, "sh -s", strings.NewReader(factsScript()))
	if err != nil {
		return nil, err
	}
	return ParseFacts(out)
}

// NotReadyReason summarises why a node is not Ready: every condition that is
// not True, then the most recent error.
func NotReadyReason(st *nodeapi.NodeStatus) string {
	if !st.DaemonRunning {
		return "AgentletNotRunning: the agentlet daemon is not running"
	}
	var parts []string
	for _, c := range st.Conditions {
		if c.Type == nodeapi.ConditionReady || c.Status == nodeapi.True {
			continue
		}
		p := c.Type + "=" + c.Status
		if c.Reason != "" {
			p += " (" + c.Reason
			if c.Message != "" {
				p += ": " + c.Message
			}
			p += ")"
		}
		parts = append(parts, p)
	}
	if n := len(st.RecentErrors); n > 0 {
		parts = append(parts, "last error: "+st.RecentErrors[n-1].Message)
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, "; ")
}
