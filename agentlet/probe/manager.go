package probe

import (
	"context"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Target is one probe of one running container instance.
type Target struct {
	PodUID      string
	Pod         string // namespace/name, for messages
	Container   string
	ContainerID string
	Kind        Kind
	Probe       nodeapi.Probe
	PodIP       string
	StartedAt   time.Time
}

// Key names a probe: a container instance and a kind.
type Key struct {
	ContainerID string
	Kind        Kind
}

// Key returns the target's key.
func (t Target) Key() Key { return Key{ContainerID: t.ContainerID, Kind: t.Kind} }

// Outcome is one finished probe run.
type Outcome struct {
	Target  Target
	OK      bool
	Output  string // what the probe said (command output, HTTP status, dial error)
	Result  Result // after this run
	Changed bool   // Result changed with this run
}

// Runner runs one probe once, within timeout.
type Runner interface {
	Run(ctx context.Context, t Target, timeout time.Duration) (ok bool, output string)
}

// Manager schedules and runs probes. Create it with NewManager, run Run in
// one goroutine, feed it with Update and read Results from anywhere.
type Manager struct {
	runner    Runner
	max       int
	now       func() time.Time
	onOutcome func(Outcome)

	mu      sync.Mutex
	pending []Target // latest Update not yet taken by Run
	updated bool
	results map[Key]Result
	kick    chan struct{}
}

// NewManager returns a manager running at most maxConcurrent probes at a
// time. onOutcome (may be nil) is called from Run's goroutine after every
// probe run; it must not block for long.
func NewManager(r Runner, maxConcurrent int, now func() time.Time, onOutcome func(Outcome)) *Manager {
	if maxConcurrent < 1 {
		maxConcurrent = 1
	}
	return &Manager{runner: r, max: maxConcurrent, now: now, onOutcome: onOutcome,
		results: map[Key]Result{}, kick: make(chan struct{}, 1)}
}

// Update replaces the set of probes to run: new targets start (after their
// initial delay), missing ones stop and forget their results, changed ones
// (e.g. a new pod IP) are updated in place. It never blocks.
func (m *Manager) Update(targets []Target) {
	m.mu.Lock()
	m.pending = append([]Target(nil), targets...)
	m.updated = true
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Results returns a copy of the current results.
func (m *Manager) Results() map[Key]Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[Key]Result, len(m.results))
	for k, v := range m.results {
		out[k] = v
	}
	return out
}

// entry is the state of one scheduled probe; only Run touches it.
type entry struct {
	t       Target
	p       Params
	tr      Tracker
	next    time.Time
	running bool
	hold    bool // done (startup succeeded) or failed for good (liveness, startup)
	gen     int  // bumped when the entry is replaced, to drop stale results
}

type runResult struct {
	key    Key
	gen    int
	ok     bool
	output string
}

// Run owns the probes until ctx is done, then waits for running probes.
func (m *Manager) Run(ctx context.Context) {
	entries := map[Key]*entry{}
	results := make(chan runResult, m.max)
	inflight := 0
	gen := 0
	var wg sync.WaitGroup
	defer wg.Wait()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	gated := func(e *entry) bool {
		if e.t.Kind == Startup {
			return false
		}
		s, ok := entries[Key{ContainerID: e.t.ContainerID, Kind: Startup}]
		return ok && s.tr.Result != Success
	}
	for {
		// Start what is due, soonest first, as far as the pool allows.
		now := m.now()
		var due []*entry
		var wake time.Time
		for _, e := range entries {
			if e.running || e.hold || gated(e) {
				continue
			}
			if !now.Before(e.next) {
				due = append(due, e)
			} else if wake.IsZero() || e.next.Before(wake) {
				wake = e.next
			}
		}
		sort.Slice(due, func(i, j int) bool { return due[i].next.Before(due[j].next) })
		for _, e := range due {
			if inflight >= m.max {
				break // a finishing probe brings us back here
			}
			e.running = true
			inflight++
			wg.Add(1)
			go func(t Target, p Params, g int) {
				defer wg.Done()
				ok, out := m.runner.Run(rctx, t, p.Timeout)
				select {
				case results <- runResult{key: t.Key(), gen: g, ok: ok, output: out}:
				case <-rctx.Done():
				}
			}(e.t, e.p, e.gen)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if !wake.IsZero() {
			timer.Reset(max(wake.Sub(now), time.Millisecond))
		}

		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.kick:
			m.mu.Lock()
			targets, updated := m.pending, m.updated
			m.pending, m.updated = nil, false
			m.mu.Unlock()
			if updated {
				gen++
				m.apply(entries, targets, gen)
			}
		case r := <-results:
			inflight--
			e := entries[r.key]
			if e == nil || e.gen != r.gen {
				continue // removed or replaced meanwhile
			}
			e.running = false
			e.next = m.now().Add(e.p.Period)
			changed := e.tr.Observe(r.ok, e.p)
			switch {
			case e.t.Kind == Startup && e.tr.Result == Success:
				e.hold = true // startup probes stop once they succeed
			case e.t.Kind != Readiness && e.tr.Result == Failure:
				e.hold = true // the container gets killed; its successor is probed afresh
			}
			m.mu.Lock()
			m.results[r.key] = e.tr.Result
			m.mu.Unlock()
			if m.onOutcome != nil {
				m.onOutcome(Outcome{Target: e.t, OK: r.ok, Output: r.output, Result: e.tr.Result, Changed: changed})
			}
		}
	}
}

// apply makes entries match targets.
func (m *Manager) apply(entries map[Key]*entry, targets []Target, gen int) {
	want := make(map[Key]Target, len(targets))
	for _, t := range targets {
		want[t.Key()] = t
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range entries {
		t, ok := want[k]
		if !ok {
			delete(entries, k)
			delete(m.results, k)
			continue
		}
		if !reflect.DeepEqual(t.Probe, e.t.Probe) || t.Container != e.t.Container {
			// Same instance, new probe definition: start over.
			delete(entries, k)
			continue
		}
		e.t.PodIP = t.PodIP
	}
	for k, t := range want {
		if _, ok := entries[k]; ok {
			continue
		}
		p := ParamsOf(t.Probe, t.Kind)
		start := t.StartedAt
		if start.IsZero() {
			start = m.now()
		}
		entries[k] = &entry{t: t, p: p, tr: NewTracker(t.Kind), next: start.Add(p.InitialDelay), gen: gen}
		m.results[k] = Initial(t.Kind)
	}
}
