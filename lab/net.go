package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// inNetns runs fn on an OS thread that has joined the network namespace at
// nsPath. fn must only do blocking syscalls (files under /proc/sys): it
// must not start goroutines. The thread is discarded if it cannot return to
// its original namespace.
func inNetns(nsPath string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns: %w", err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", nsPath, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the runtime ends this thread with the goroutine.
			errc <- fmt.Errorf("leave netns %s: %w", nsPath, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// setSysctls writes net sysctls (keys relative to /proc/sys) inside the
// network namespace at nsPath.
func setSysctls(nsPath string, kv [][2]string) error {
	return inNetns(nsPath, func() error {
		for _, p := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys", p[0]), []byte(p[1]), 0o644); err != nil {
				return fmt.Errorf("set sysctl %s in %s: %w", p[0], nsPath, err)
			}
		}
		return nil
	})
}

// checkSubnetFree fails if an address of p is already on a link of the root
// netns (another lab or a real network), other than the lab's own link.
func checkSubnetFree(p netip.Prefix, own string) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, ifc := range ifs {
		if ifc.Name == own {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			other := netip.PrefixFrom(ip.Unmap(), ones).Masked()
			if other.Overlaps(p) {
				return fmt.Errorf("check subnet %s: overlaps %s on link %s (another lab?); choose another --subnet", p, a, ifc.Name)
			}
		}
	}
	return nil
}

// ensureSwitch creates the switch netns with its bridge and the workstation
// link, as far as they are missing.
func ensureSwitch(ctx context.Context, n names, p netip.Prefix) error {
	sw := n.switchNS()
	fresh := !exists(n.nsPath(sw))
	if fresh {
		if _, err := run(ctx, "", "ip", "netns", "add", sw); err != nil {
			return fmt.Errorf("create switch: %w", err)
		}
		batch := "link set lo up\nlink add " + bridgeName + " type bridge\nlink set " + bridgeName + " up\n"
		if _, err := run(ctx, batch, "ip", "-n", sw, "-batch", "-"); err != nil {
			return fmt.Errorf("create switch: %w", err)
		}
		// Bridged lab traffic must never meet the switch's own (empty) iptables.
		if err := setSysctls(n.nsPath(sw), [][2]string{
			{"net/bridge/bridge-nf-call-iptables", "0"},
			{"net/bridge/bridge-nf-call-ip6tables", "0"},
			{"net/bridge/bridge-nf-call-arptables", "0"},
		}); err != nil {
			return fmt.Errorf("create switch: %w", err)
		}
	}
	link := n.rootLink()
	if _, err := net.InterfaceByName(link); err == nil {
		if !fresh {
			if _, err := run(ctx, "", "ip", "-n", sw, "link", "show", uplinkName); err == nil {
				return nil
			}
		}
		// A link left from an earlier switch (whose netns the kernel may still
		// be dismantling): it leads nowhere.
		if _, err := run(ctx, "", "ip", "link", "del", link); err != nil {
			if _, still := net.InterfaceByName(link); still == nil {
				return fmt.Errorf("replace workstation link: %w", err)
			}
		}
	}
	batch := fmt.Sprintf("link add %s type veth peer name %s netns %s\naddr add %s/%d dev %s\nlink set %s up\n",
		link, uplinkName, sw, workstationAddr(p), p.Bits(), link, link)
	if _, err := run(ctx, batch, "ip", "-batch", "-"); err != nil {
		run(context.WithoutCancel(ctx), "", "ip", "link", "del", link)
		return fmt.Errorf("create workstation link: %w", err)
	}
	if _, err := run(ctx, "", "ip", "-n", sw, "link", "set", uplinkName, "master", bridgeName, "up"); err != nil {
		return fmt.Errorf("create workstation link: %w", err)
	}
	return nil
}

// ensureHostNet creates host h's netns and switch port unless they exist.
// The host must not be running.
func ensureHostNet(ctx context.Context, n names, p netip.Prefix, h hostState) error {
	ns := n.hostNS(h.Name)
	port := portName(h.Index)
	if exists(n.nsPath(ns)) {
		if _, err := run(ctx, "", "ip", "-n", n.switchNS(), "link", "show", port); err == nil {
			return nil
		}
		// The switch was made anew: the host's eth0 went with its old port.
		if err := deleteNetns(ctx, n, ns); err != nil {
			return fmt.Errorf("create network of %s: %w", h.Name, err)
		}
	}
	fail := func(err error) error {
		cctx := context.WithoutCancel(ctx)
		run(cctx, "", "ip", "-n", n.switchNS(), "link", "del", port)
		run(cctx, "", "ip", "netns", "del", ns)
		return fmt.Errorf("create network of %s: %w", h.Name, err)
	}
	if _, err := run(ctx, "", "ip", "netns", "add", ns); err != nil {
		return fmt.Errorf("create network of %s: %w", h.Name, err)
	}
	sw := fmt.Sprintf("link add %s type veth peer name %s netns %s\nlink set %s master %s up\n",
		port, hostIfName, ns, port, bridgeName)
	if _, err := run(ctx, sw, "ip", "-n", n.switchNS(), "-batch", "-"); err != nil {
		return fail(err)
	}
	host := fmt.Sprintf("link set lo up\naddr add %s/%d dev %s\nlink set %s up\nroute add %s dev %s\n",
		h.Address, p.Bits(), hostIfName, hostIfName, ServiceCIDR, hostIfName)
	if _, err := run(ctx, host, "ip", "-n", ns, "-batch", "-"); err != nil {
		return fail(err)
	}
	if err := setSysctls(n.nsPath(ns), [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/bridge/bridge-nf-call-iptables", "1"},
	}); err != nil {
		return fail(err)
	}
	return nil
}

// setPort puts host index's switch port up or down (a cable pull).
func setPort(ctx context.Context, n names, index int, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	if _, err := run(ctx, "", "ip", "-n", n.switchNS(), "link", "set", portName(index), state); err != nil {
		return fmt.Errorf("set port %s %s: %w", portName(index), state, err)
	}
	return nil
}

// portStates maps each switch port to "up" or "down".
func portStates(ctx context.Context, n names) map[string]string {
	out := map[string]string{}
	if !exists(n.nsPath(n.switchNS())) {
		return out
	}
	js, err := run(ctx, "", "ip", "-n", n.switchNS(), "-j", "link", "show")
	if err != nil {
		return out
	}
	var links []struct {
		Name  string   `json:"ifname"`
		Flags []string `json:"flags"`
	}
	if json.Unmarshal([]byte(js), &links) != nil {
		return out
	}
	for _, l := range links {
		if slices.Contains(l.Flags, "UP") {
			out[l.Name] = "up"
		} else {
			out[l.Name] = "down"
		}
	}
	return out
}

// deleteNetns removes a named netns; a missing one is fine.
func deleteNetns(ctx context.Context, n names, ns string) error {
	if !exists(n.nsPath(ns)) {
		return nil
	}
	if _, err := run(ctx, "", "ip", "netns", "del", ns); err != nil && exists(n.nsPath(ns)) {
		return fmt.Errorf("delete netns %s: %w", ns, err)
	}
	return nil
}

// labNetns lists the hosts that have a netns named by n.
func labNetns(n names) []string {
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	re := n.hostObjectRE()
	var out []string
	for _, e := range ents {
		if m := re.FindStringSubmatch(e.Name()); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// partitionRules renders the nft table that cuts host h (on port) off from
// peerPorts, or from every port when peerPorts is empty. It replaces any
// earlier table for h atomically.
func partitionRules(table, port string, peerPorts []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table bridge %s\ndelete table bridge %s\n", table, table)
	fmt.Fprintf(&b, "table bridge %s {\n  chain partition {\n    type filter hook forward priority 0; policy accept;\n", table)
	if len(peerPorts) == 0 {
		fmt.Fprintf(&b, "    iifname %q drop\n    oifname %q drop\n", port, port)
	} else {
		quoted := make([]string, len(peerPorts))
		for i, p := range peerPorts {
			quoted[i] = fmt.Sprintf("%q", p)
		}
		set := "{ " + strings.Join(quoted, ", ") + " }"
		fmt.Fprintf(&b, "    iifname %q oifname %s drop\n    iifname %s oifname %q drop\n", port, set, set, port)
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

func nftInSwitch(ctx context.Context, n names, script string) error {
	_, err := run(ctx, script, "nsenter", "--net="+n.nsPath(n.switchNS()), "--", "nft", "-f", "-")
	return err
}
