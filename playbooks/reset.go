package playbooks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// ResetOptions configures the reset playbook.
type ResetOptions struct {
	Hosts    []string
	Dial     Dialer
	Parallel int
	Progress Progress
}

// Reset undoes what Up did on every host: the agentlet service, binary and
// state, clusterctl's iptables chains, CNI conflist and sysctl file, the
// registry hosts.toml files it wrote, and containerd's config (the original is
// restored). containerd stays installed.
func Reset(ctx context.Context, opts ResetOptions) []HostResult {
	results := make([]HostResult, len(opts.Hosts))
	forEach(ctx, opts.Hosts, opts.Parallel, func(ctx context.Context, i int, name string) {
		start := time.Now()
		r := &upRun{opts: &UpOptions{Progress: opts.Progress}, res: HostResult{Host: name}, name: name}
		r.reset(ctx, opts.Dial)
		r.res.Elapsed = time.Since(start)
		msg, st := "nothing to reset", HostDone
		if r.res.Err != nil {
			msg, st = r.res.Err.Error(), Failed
		} else if len(r.res.Changes) > 0 {
			msg = fmt.Sprintf("%d removed: %s", len(r.res.Changes), strings.Join(r.res.Changes, ", "))
		}
		opts.Progress.emit(Event{Host: name, Step: "done", State: st, Message: msg})
		results[i] = r.res
	})
	return results
}

func (r *upRun) reset(ctx context.Context, dial Dialer) {
	if !r.step("connect", func() (string, error) {
		h, err := dial(ctx, r.name)
		r.host = h
		return "", err
	}) {
		return
	}
	defer r.host.Close()
	h := r.host
	var f *Facts
	if !r.step("facts", func() (string, error) {
		var err error
		f, err = gatherFacts(ctx, h)
		return "", err
	}) {
		return
	}
	installed := f.Sums[nodeapi.BinaryPath] != ""
	if !r.step("service", func() (string, error) {
		if f.Sums[unitPath(f.Init)] == "" {
			return "", nil
		}
		if _, err := h.Run(ctx, serviceRemoveCmd(f.Init), nil); err != nil {
			return "", err
		}
		return "agentlet service", nil
	}) {
		return
	}
	if !r.step("iptables", func() (string, error) {
		if !installed {
			return "", nil
		}
		out, err := h.Run(ctx, nodeapi.BinaryPath+" teardown", nil)
		if err != nil {
			return "", err
		}
		if strings.TrimSpace(string(out)) == "" {
			return "", nil
		}
		return "iptables chains", nil
	}) {
		return
	}
	if !r.step("files", func() (string, error) {
		var present []string
		for _, p := range []string{nodeapi.BinaryPath, CNIConfPath, SysctlPath} {
			if f.Sums[p] != "" {
				present = append(present, p)
			}
		}
		cmd := fmt.Sprintf("if [ -e %[1]s ] || [ -e %[2]s ]; then echo state; fi; rm -rf %[1]s %[2]s %[3]s %[4]s %[5]s",
			nodeapi.StateDir, nodeapi.RunDir, nodeapi.BinaryPath, CNIConfPath, SysctlPath)
		out, err := h.Run(ctx, cmd, nil)
		if err != nil {
			return "", err
		}
		if strings.TrimSpace(string(out)) != "" {
			present = append(present, nodeapi.StateDir)
		}
		if len(present) == 0 {
			return "", nil
		}
		return strings.Join(present, " "), nil
	}) {
		return
	}
	if !r.step("registries", func() (string, error) {
		return syncRegistryHosts(ctx, h, f, nil) // removes clusterctl's hosts.toml files
	}) {
		return
	}
	r.step("containerd-config", func() (string, error) {
		var cmd, what string
		switch {
		case f.ContainerdBackup:
			cmd, what = fmt.Sprintf("mv -f %s %s", ContainerdConfigBackup, ContainerdConfigPath), "containerd config restored"
		case f.ContainerdManaged:
			cmd, what = "rm -f "+ContainerdConfigPath, "containerd config removed"
		default:
			return "", nil
		}
		if _, err := h.Run(ctx, cmd, nil); err != nil {
			return "", err
		}
		if f.Binaries["containerd"] != "" {
			if _, err := h.Run(ctx, containerdRestartCmd(f.Init), nil); err != nil {
				return "", err
			}
		}
		return what, nil
	})
}
