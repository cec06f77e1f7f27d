package routes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
)

// Exec runs iproute2. The zero value uses "ip" from PATH.
type Exec struct {
	IPBin string
}

func (e Exec) bin() string {
	if e.IPBin == "" {
		return "ip"
	}
	return e.IPBin
}

type jsonRoute struct {
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Protocol string `json:"protocol"`
}

// Routes lists the IPv4 routes of the main table (`ip -j -4 route show`).
func (e Exec) Routes(ctx context.Context) ([]Route, error) {
	out, err := e.run(ctx, "-j", "-4", "route", "show", "table", "main")
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return ParseRoutes(out)
}

// ParseRoutes parses `ip -j -4 route show` output. Routes whose destination
// is not a prefix (default, broadcast) are kept out.
func ParseRoutes(data []byte) ([]Route, error) {
	var raw []jsonRoute
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse routes: %w", err)
	}
	var out []Route
	for _, r := range raw {
		dst := r.Dst
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		p, err := netip.ParsePrefix(dst)
		if err != nil {
			continue // "default" and friends
		}
		rt := Route{Dst: p, Dev: r.Dev, Ours: r.Protocol == strconv.Itoa(Proto)}
		if r.Gateway != "" {
			if rt.Via, err = netip.ParseAddr(r.Gateway); err != nil {
				return nil, fmt.Errorf("parse route %s: gateway %q: %w", r.Dst, r.Gateway, err)
			}
		}
		out = append(out, rt)
	}
	return out, nil
}

type jsonLink struct {
	Ifname   string `json:"ifname"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// Connected lists this node's IPv4 addresses (`ip -j -4 addr show`).
func (e Exec) Connected(ctx context.Context) ([]Subnet, error) {
	out, err := e.run(ctx, "-j", "-4", "addr", "show")
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	return ParseAddrs(out)
}

// ParseAddrs parses `ip -j -4 addr show` output.
func ParseAddrs(data []byte) ([]Subnet, error) {
	var raw []jsonLink
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse addresses: %w", err)
	}
	var out []Subnet
	for _, l := range raw {
		for _, a := range l.AddrInfo {
			if a.Family != "inet" {
				continue
			}
			addr, err := netip.ParseAddr(a.Local)
			if err != nil {
				return nil, fmt.Errorf("parse address of %s: %w", l.Ifname, err)
			}
			p, err := addr.Prefix(a.Prefixlen)
			if err != nil {
				return nil, fmt.Errorf("parse address of %s: %w", l.Ifname, err)
			}
			out = append(out, Subnet{Dev: l.Ifname, Prefix: netip.PrefixFrom(addr, p.Bits())})
		}
	}
	return out, nil
}

func routeArgs(r Route) []string {
	args := []string{r.Dst.String()}
	if r.Via.IsValid() {
		args = append(args, "via", r.Via.String())
	}
	if r.Dev != "" {
		args = append(args, "dev", r.Dev)
	}
	return append(args, "proto", strconv.Itoa(Proto))
}

// Replace adds or changes a route (`ip -4 route replace ... proto 108`).
func (e Exec) Replace(ctx context.Context, r Route) error {
	if _, err := e.run(ctx, append([]string{"-4", "route", "replace"}, routeArgs(r)...)...); err != nil {
		return fmt.Errorf("replace route %s: %w", r.Dst, err)
	}
	return nil
}

// Delete removes one of our routes (`ip -4 route del ... proto 108`: the
// kernel only deletes a route with our protocol). A route already gone is
// not an error.
func (e Exec) Delete(ctx context.Context, r Route) error {
	_, err := e.run(ctx, append([]string{"-4", "route", "del"}, routeArgs(r)...)...)
	var ee *ExitError
	if errors.As(err, &ee) && strings.Contains(ee.Stderr, "No such process") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete route %s: %w", r.Dst, err)
	}
	return nil
}

// ExitError is an ip command that ran and failed.
type ExitError struct {
	Args   string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("ip %s exited with status %d: %s", e.Args, e.Code, e.Stderr)
}

func (e Exec) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, e.bin(), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.Bytes(), nil
	case errors.As(err, &ee) && ee.Exited():
		return nil, &ExitError{Args: strings.Join(args, " "), Code: ee.ExitCode(), Stderr: strings.TrimSpace(stderr.String())}
	default:
		return nil, fmt.Errorf("run %s: %w", e.bin(), err)
	}
}
