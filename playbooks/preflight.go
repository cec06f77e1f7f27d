package playbooks

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Preflight is the verdict on a host's facts.
type Preflight struct {
	// Problems cannot be fixed by installing packages.
	Problems []string
	// Missing lists missing binaries or plugins.
	Missing []string
	// Packages would provide what is missing with the host's package manager.
	Packages []string
}

// Err returns nil when the host is fit for `up`.
func (p *Preflight) Err() error {
	var msgs []string
	msgs = append(msgs, p.Problems...)
	if len(p.Missing) > 0 {
		m := "missing: " + strings.Join(p.Missing, ", ")
		if len(p.Packages) > 0 {
			m += fmt.Sprintf(" (install %s, or re-run with --install-missing)", strings.Join(p.Packages, " "))
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// packageFor maps a missing binary or plugin to a package per package manager.
func packageFor(pm, what string) string {
	switch what {
	case "containerd", "ctr":
		return "containerd"
	case "runc":
		return "runc"
	case "iptables", "iptables-restore", "iptables-save":
		return "iptables"
	case "sha256sum", "install", "base64":
		return "coreutils"
	case "ip":
		if pm == "dnf" || pm == "yum" {
			return "iproute"
		}
		return "iproute2"
	case "cni-plugins":
		switch pm {
		case "apk":
			return "cni-plugins"
		default:
			return "containernetworking-plugins"
		}
	}
	return ""
}

// EvaluatePreflight checks facts against what a node needs.
func EvaluatePreflight(f *Facts) *Preflight {
	p := &Preflight{}
	if _, err := f.Arch(); err != nil {
		p.Problems = append(p.Problems, err.Error())
	}
	if f.CgroupVersion == 0 {
		p.Problems = append(p.Problems, "no cgroup filesystem mounted at /sys/fs/cgroup")
	}
	if !f.Overlay {
		p.Problems = append(p.Problems, "kernel lacks overlayfs (needed by containerd's overlayfs snapshotter)")
	}
	if !f.BridgeNetfilter {
		p.Problems = append(p.Problems, "kernel lacks bridge netfilter (/proc/sys/net/bridge missing; load br_netfilter)")
	}
	if f.Init != "systemd" && f.Init != "labinit" {
		p.Problems = append(p.Problems, "no supported init system: need systemd (or the clusterctl lab's labinit)")
	}
	pkgs := map[string]bool{}
	for _, b := range requiredBinaries() {
		if f.Binaries[b] == "" {
			p.Missing = append(p.Missing, b)
			if pkg := packageFor(f.PackageManager, b); pkg != "" {
				pkgs[pkg] = true
			}
		}
	}
	if f.CNIBinDir == "" {
		p.Missing = append(p.Missing, "CNI plugins ("+strings.Join(cniPlugins(), ", ")+")")
		pkgs[packageFor(f.PackageManager, "cni-plugins")] = true
	}
	for pkg := range pkgs {
		p.Packages = append(p.Packages, pkg)
	}
	sort.Strings(p.Packages)
	if len(p.Missing) > 0 && f.PackageManager == "" {
		p.Problems = append(p.Problems, "no known package manager (apt-get, dnf, yum, apk, zypper) to install what is missing")
	}
	return p
}

// installCommand returns the shell command that installs pkgs with pm.
func installCommand(pm string, pkgs []string) (string, error) {
	list := strings.Join(pkgs, " ")
	switch pm {
	case "apt-get":
		return "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends " + list, nil
	case "dnf", "yum":
		return pm + " install -y " + list, nil
	case "apk":
		return "apk add --no-cache " + list, nil
	case "zypper":
		return "zypper --non-interactive install " + list, nil
	}
	return "", fmt.Errorf("install packages: unsupported package manager %q", pm)
}
