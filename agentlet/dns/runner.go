package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Runner keeps one Server in line with the held NodeSpec: it starts the
// server when the spec asks for cluster DNS, swaps the zone when the spec
// changes, restarts it when the address changes and stops it when the spec
// drops DNS. Apply and Close must not be called concurrently.
type Runner struct {
	// Port is the port served on: 53 when 0, a free one when negative
	// (tests).
	Port int
	// Server configures the servers started (Addr is set by the runner).
	Server Config

	srv       *Server
	addr      string
	zoneGen   int64 // generation of the spec the zone was built from
	zoneDom   string
	upstreams []string // last upstreams set, nil until set
	// resolvStamp identifies the resolv.conf the upstreams were read from
	// (when the spec names none), so that a changed file is re-read.
	resolvStamp string
}

// Apply converges the server to spec; a nil spec changes nothing (an
// unreadable spec must not stop the DNS that was served). A failure to
// listen is returned and retried on the next Apply; so is a failure to set
// the upstreams, while the zone is served.
func (r *Runner) Apply(spec *nodeapi.NodeSpec) error {
	if spec == nil {
		return nil
	}
	if spec.DNS == nil {
		return r.Close()
	}
	port := r.Port
	switch {
	case port == 0:
		port = 53
	case port < 0:
		port = 0
	}
	addr := net.JoinHostPort(spec.DNS.Address, strconv.Itoa(port))
	if r.srv != nil && addr != r.addr {
		if err := r.Close(); err != nil {
			return err
		}
	}
	if r.srv == nil {
		cfg := r.Server
		cfg.Addr = addr
		srv := NewServer(cfg)
		srv.SetZone(BuildZone(spec.Cluster.Domain, spec.Services))
		if err := srv.Start(); err != nil {
			return fmt.Errorf("start cluster dns: %w", err)
		}
		r.srv, r.addr = srv, addr
		r.zoneGen, r.zoneDom, r.upstreams = spec.Generation, spec.Cluster.Domain, nil
	} else if spec.Generation != r.zoneGen || spec.Generation == 0 || spec.Cluster.Domain != r.zoneDom {
		r.srv.SetZone(BuildZone(spec.Cluster.Domain, spec.Services))
		r.zoneGen, r.zoneDom = spec.Generation, spec.Cluster.Domain
	}
	stamp := ""
	if len(spec.DNS.Upstreams) == 0 {
		stamp = fileStamp(r.resolvConf())
	}
	if r.upstreams == nil || !slices.Equal(r.upstreams, spec.DNS.Upstreams) || stamp != r.resolvStamp {
		if err := r.srv.SetUpstreams(spec.DNS.Upstreams); err != nil {
			r.upstreams = nil // retried on the next Apply
			return fmt.Errorf("configure cluster dns: %w", err)
		}
		r.upstreams = append([]string{}, spec.DNS.Upstreams...)
		r.resolvStamp = stamp
	}
	return nil
}

// Addr returns the address served on, "" when no server runs.
func (r *Runner) Addr() string {
	if r.srv == nil {
		return ""
	}
	return r.srv.Addr()
}

// Close stops the server, if one runs, waiting a few seconds at most for
// queries in flight.
func (r *Runner) Close() error {
	if r.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	r.srv, r.addr = nil, ""
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stop cluster dns: %w", err)
	}
	return nil
}

func (r *Runner) resolvConf() string {
	if r.Server.ResolvConf != "" {
		return r.Server.ResolvConf
	}
	return DefaultResolvConf
}

// fileStamp identifies a file's version by size, mtime and inode ("" when
// it cannot be read).
func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	ino := uint64(0)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d %d %d", fi.Size(), fi.ModTime().UnixNano(), ino)
}
