package playbooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Fleet holds one connection per host for the length of a command, so that
// observing and pushing share a single SSH connection per host.
type Fleet struct {
	hosts    []string
	parallel int
	mu       sync.Mutex
	conns    map[string]Host
	errs     map[string]error
}

// Connect dials every host in parallel. Hosts that fail are remembered with
// their error and skipped by later calls.
func Connect(ctx context.Context, hosts []string, dial Dialer, parallel int) *Fleet {
	f := &Fleet{hosts: hosts, parallel: parallel, conns: map[string]Host{}, errs: map[string]error{}}
	forEach(ctx, hosts, parallel, func(ctx context.Context, _ int, name string) {
		h, err := dial(ctx, name)
		f.mu.Lock()
		defer f.mu.Unlock()
		if err != nil {
			f.errs[name] = err
			return
		}
		f.conns[name] = h
	})
	return f
}

// Err returns the connection error of a host, if any.
func (f *Fleet) Err(host string) error { return f.errs[host] }

// Close closes every connection.
func (f *Fleet) Close() {
	for _, h := range f.conns {
		h.Close()
	}
}

// Observe asks every connected host for its NodeStatus.
func (f *Fleet) Observe(ctx context.Context) []Observation {
	obs := make([]Observation, len(f.hosts))
	forEach(ctx, f.hosts, f.parallel, func(ctx context.Context, i int, name string) {
		start := time.Now()
		if err := f.errs[name]; err != nil {
			obs[i] = Observation{Host: name, Err: err}
		} else {
			obs[i] = observeConn(ctx, name, f.conns[name])
		}
		obs[i].Elapsed = time.Since(start)
	})
	return obs
}

// PushResult is the outcome of handing one host its NodeSpec.
type PushResult struct {
	Host    string
	Changed bool
	Err     error
}

// Push runs `agentlet apply` with each target host's spec, in parallel.
func (f *Fleet) Push(ctx context.Context, specs map[string]nodeapi.NodeSpec, targets []string) []PushResult {
	res := make([]PushResult, len(targets))
	forEach(ctx, targets, f.parallel, func(ctx context.Context, i int, name string) {
		res[i] = PushResult{Host: name}
		if err := f.errs[name]; err != nil {
			res[i].Err = err
			return
		}
		spec, ok := specs[name]
		if !ok {
			res[i].Err = fmt.Errorf("push %s: no node spec", name)
			return
		}
		data, err := json.Marshal(spec)
		if err != nil {
			res[i].Err = fmt.Errorf("encode node spec: %w", err)
			return
		}
		out, err := f.conns[name].Run(ctx, nodeapi.BinaryPath+" apply", bytes.NewReader(data))
		if err != nil {
			res[i].Err = &StepError{Host: name, Step: "push", Err: err}
			return
		}
		res[i].Changed = !strings.HasPrefix(strings.TrimSpace(string(out)), "unchanged")
	})
	return res
}

// Conn returns the connection to host, or its dial error.
func (f *Fleet) Conn(host string) (Host, error) {
	if err := f.errs[host]; err != nil {
		return nil, err
	}
	h, ok := f.conns[host]
	if !ok {
		return nil, fmt.Errorf("no connection to %s", host)
	}
	return h, nil
}
