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
	retry    map[string]backoff // Redial's schedule
	// held is what each host holds, from the last lease acquisition and
	// our own pushes since (HeldSpec).
	held map[string]HeldSpec
	// cached are the observations taken with the lease, returned once by
	// the next Observe if it comes within cacheFor.
	cached   []Observation
	cachedAt time.Time
}

// cacheFor is how long the observations taken with the lease stand in for
// a fresh Observe: the run that took the lease observes right after.
const cacheFor = 5 * time.Second

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

// Observe asks every connected host for its NodeStatus. Right after
// AcquireLease, it returns the observations taken in the same round trip.
func (f *Fleet) Observe(ctx context.Context) []Observation {
	f.mu.Lock()
	cached, at := f.cached, f.cachedAt
	f.cached = nil
	f.mu.Unlock()
	if cached != nil && time.Since(at) < cacheFor {
		return cached
	}
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
	f.mu.Lock()
	f.cached = nil // the hosts change: observe them again
	f.mu.Unlock()
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
		f.mu.Lock()
		if f.held == nil {
			f.held = map[string]HeldSpec{}
		}
		f.held[name] = HeldSpec{Generation: spec.Generation, Writer: spec.Writer, WrittenAt: spec.WrittenAt, ContentSHA256: nodeapi.ContentSHA256(&spec)}
		f.mu.Unlock()
	})
	return res
}

// HeldSpec is the NodeSpec host holds as the last lease acquisition read
// it from the host's disk, or as this fleet pushed it since.
func (f *Fleet) HeldSpec(host string) (HeldSpec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.held[host]
	return h, ok
}

// Hosts are the fleet's hosts, in inventory order.
func (f *Fleet) Hosts() []string { return append([]string(nil), f.hosts...) }

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

// Redial reconnects the hosts whose connection failed or whose last
// observation failed (a dropped connection), each no sooner than its
// back-off allows: 1 s after the first failure, doubling up to max. A host
// that observes cleanly resets its back-off. It is for loops that keep a
// Fleet across ticks (`clusterctl watch`).
func (f *Fleet) Redial(ctx context.Context, dial Dialer, obs []Observation, now time.Time, max time.Duration) []string {
	f.mu.Lock()
	if f.retry == nil {
		f.retry = map[string]backoff{}
	}
	var due []string
	for _, o := range obs {
		if o.Err == nil && f.errs[o.Host] == nil {
			delete(f.retry, o.Host)
			continue
		}
		b := f.retry[o.Host]
		if now.Before(b.next) {
			continue
		}
		switch {
		case b.delay == 0:
			b.delay = time.Second
		case b.delay < max:
			b.delay = min(2*b.delay, max)
		}
		b.next = now.Add(b.delay)
		f.retry[o.Host] = b
		due = append(due, o.Host)
	}
	f.mu.Unlock()
	forEach(ctx, due, f.parallel, func(ctx context.Context, _ int, name string) {
		h, err := dial(ctx, name)
		f.mu.Lock()
		defer f.mu.Unlock()
		if old := f.conns[name]; old != nil {
			old.Close()
			delete(f.conns, name)
		}
		if err != nil {
			f.errs[name] = err
			return
		}
		delete(f.errs, name)
		f.conns[name] = h
	})
	return due
}

// backoff is one host's reconnect schedule.
type backoff struct {
	delay time.Duration
	next  time.Time
}
