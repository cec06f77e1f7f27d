package playbooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/agentlet"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/remote"
)

func TestTallyLease(t *testing.T) {
	g := func(h string) HostLease { return HostLease{Host: h, Granted: true} }
	refused := func(h string) HostLease {
		return HostLease{Host: h, Lease: &LeaseRecord{Holder: "bob"}, ExpiresIn: time.Minute}
	}
	down := func(h string) HostLease { return HostLease{Host: h, Err: errors.New("connect: timeout")} }
	missing := func(h string) HostLease { return HostLease{Host: h, NoAgentlet: true} }
	old := func(h string) HostLease { return HostLease{Host: h, Unsupported: true} }
	tests := []struct {
		name     string
		results  []HostLease
		skip     bool
		won      bool
		eligible int
		needed   int
	}{
		{"one host granted", []HostLease{g("h1")}, false, true, 1, 1},
		{"one host refused", []HostLease{refused("h1")}, false, false, 1, 1},
		{"2 of 3", []HostLease{g("h1"), g("h2"), refused("h3")}, false, true, 3, 2},
		{"1 of 3, two down", []HostLease{g("h1"), down("h2"), down("h3")}, false, false, 3, 2},
		{"half of 2 is not a majority", []HostLease{g("h1"), refused("h2")}, false, false, 2, 2},
		{"half of 4 is not a majority", []HostLease{g("h1"), g("h2"), refused("h3"), down("h4")}, false, false, 4, 3},
		{"3 of 5", []HostLease{g("h1"), g("h2"), g("h3"), refused("h4"), refused("h5")}, false, true, 5, 3},
		{"hosts without agentlet count against", []HostLease{g("h1"), missing("h2"), old("h3")}, false, false, 3, 2},
		{"skipped for up", []HostLease{g("h1"), missing("h2"), old("h3")}, true, true, 1, 1},
		{"unreachable hosts are never skipped", []HostLease{g("h1"), down("h2"), missing("h3")}, true, false, 2, 2},
		{"fresh cluster for up: nothing to hold", []HostLease{missing("h1"), missing("h2")}, true, true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TallyLease(tt.results, tt.skip)
			if got.Won() != tt.won || got.Eligible != tt.eligible || got.Needed != tt.needed {
				t.Errorf("tally = %+v won %v; want won %v eligible %d needed %d", got, got.Won(), tt.won, tt.eligible, tt.needed)
			}
		})
	}
}

func TestLeaseBackoff(t *testing.T) {
	var got []time.Duration
	for attempt := 0; attempt < 7; attempt++ {
		got = append(got, LeaseBackoff(attempt, 1))
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 2 * time.Second, 2 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("back-off (-want +got):\n%s", diff)
	}
	if lo, hi := LeaseBackoff(3, 0.5), LeaseBackoff(3, 1.499); lo != 400*time.Millisecond || hi <= lo || hi >= 1200*time.Millisecond {
		t.Errorf("jittered 800ms: %s..%s, want [400ms, 1.2s)", lo, hi)
	}
}

// fakeClock advances only when slept on.
type fakeClock struct {
	now    time.Time
	slept  []time.Duration
	jitter float64
}

func (c *fakeClock) Now() time.Time  { return c.now }
func (c *fakeClock) Jitter() float64 { return c.jitter }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return nil
}

func TestRetryLease(t *testing.T) {
	lost := LeaseTally{Eligible: 3, Needed: 2, Granted: []string{"h1"}}
	won := LeaseTally{Eligible: 3, Needed: 2, Granted: []string{"h1", "h2"}}
	tests := []struct {
		name      string
		wait      time.Duration
		winAt     int // the round that wins (-1: never)
		otherErr  bool
		rounds    int
		slept     []time.Duration
		wantWon   bool
		wantWaits []time.Duration // waited as passed to the rounds
	}{
		{"no wait: one round", 0, -1, false, 1, nil, false, []time.Duration{0}},
		{"won at once", 10 * time.Second, 0, false, 1, nil, true, []time.Duration{0}},
		{"won after back-off", 10 * time.Second, 3, false, 4,
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}, true,
			[]time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond}},
		{"wait runs out: last round at the deadline", time.Second, -1, false, 5,
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 300 * time.Millisecond}, false,
			[]time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond, time.Second}},
		{"other errors are not retried", 10 * time.Second, -1, true, 1, nil, false, []time.Duration{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1000, 0), jitter: 1}
			var waits []time.Duration
			round := 0
			got, err := retryLease(context.Background(), tt.wait, clock, func(_ context.Context, waited time.Duration) (LeaseTally, error) {
				defer func() { round++ }()
				waits = append(waits, waited)
				switch {
				case round == tt.winAt:
					return won, nil
				case tt.otherErr:
					return lost, errors.New("boom")
				}
				return lost, &LeaseError{Tally: lost}
			})
			if (err == nil) != tt.wantWon || got.Won() != tt.wantWon || round != tt.rounds {
				t.Fatalf("won %v (%v) after %d rounds, want won %v after %d", got.Won(), err, round, tt.wantWon, tt.rounds)
			}
			if diff := cmp.Diff(tt.slept, clock.slept); diff != "" {
				t.Errorf("sleeps (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantWaits, waits); diff != "" {
				t.Errorf("waited (-want +got):\n%s", diff)
			}
		})
	}
	// A context that ends stops the waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rounds := 0
	_, err := retryLease(ctx, -1, &fakeClock{jitter: 1}, func(context.Context, time.Duration) (LeaseTally, error) {
		rounds++
		return lost, &LeaseError{Tally: lost}
	})
	if rounds != 1 || err == nil {
		t.Errorf("cancelled wait: %d rounds, err %v", rounds, err)
	}
}

func TestLeaseErrorNamesTheHolder(t *testing.T) {
	since := time.Now().Add(-time.Minute)
	bob := &LeaseRecord{Holder: "bob@desk (pid 123, run x)", AcquiredAt: since}
	carol := &LeaseRecord{Holder: "carol@ci (pid 9, run y)", AcquiredAt: since}
	results := []HostLease{
		{Host: "h1", Granted: true},
		{Host: "h2", Lease: bob, ExpiresIn: 41 * time.Second},
		{Host: "h3", Lease: bob, ExpiresIn: 30 * time.Second},
		{Host: "h4", Lease: carol, ExpiresIn: 50 * time.Second},
		{Host: "h5", Lease: &LeaseRecord{Holder: "dave"}, ExpiresIn: -time.Second}, // lapsed: free
		{Host: "h6", Err: errors.New("connect: no route to host")},
	}
	tally := TallyLease(results, false)
	e := leaseError(results, tally, 10*time.Second)
	if e.Holder != bob.Holder || strings.Join(e.HeldOn, ",") != "h2,h3" || e.ExpiresIn != 41*time.Second {
		t.Errorf("error = %+v, want bob on h2 and h3", e)
	}
	want := "cluster lease held by bob@desk (pid 123, run x) since " + since.Format(time.TimeOnly) +
		", expires in 41s (on h2, h3); waited 10s; h6: connect: no route to host"
	if e.Error() != want {
		t.Errorf("message\n got %q\nwant %q", e.Error(), want)
	}
	free := []HostLease{{Host: "h1", Granted: true}, {Host: "h2", NoAgentlet: true}, {Host: "h3", Unsupported: true}}
	if msg := leaseError(free, TallyLease(free, false), 0).Error(); !strings.Contains(msg, "1 of 3 hosts granted it, 2 needed") ||
		!strings.Contains(msg, "h2: agentlet is not installed") || !strings.Contains(msg, "h3: agentlet predates the cluster lease") {
		t.Errorf("message without a holder: %q", msg)
	}
}

// leaseHost is a host whose agentlet is the real `agentlet` command
// line in-process, on a state directory of its own: the lease commands go
// through the same code and flock as on a real host, only not over SSH.
type leaseHost struct {
	root string
	down bool
	mu   sync.Mutex
	cmds []string
}

func (h *leaseHost) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	h.mu.Lock()
	h.cmds = append(h.cmds, cmd)
	h.mu.Unlock()
	if h.down {
		return nil, errors.New("connection lost")
	}
	inner, ok := strings.CutPrefix(cmd, fmt.Sprintf("if [ -x %s ]; then exec %s ", nodeapi.BinaryPath, nodeapi.BinaryPath))
	if ok {
		inner, ok = strings.CutSuffix(inner, "; else exit 127; fi")
	} else {
		inner, ok = strings.CutPrefix(cmd, nodeapi.BinaryPath+" ")
	}
	if !ok {
		return nil, fmt.Errorf("unexpected command %q", cmd)
	}
	args := append(leaseShellWords(inner), "--root", h.root)
	var out, errb bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	if code := agentlet.Main(ctx, agentlet.Env{In: stdin, Out: &out, Err: &errb}, args); code != 0 {
		return nil, &remote.CommandError{Cmd: cmd, ExitCode: code, Stderr: errb.String()}
	}
	return out.Bytes(), nil
}
func (h *leaseHost) Upload(context.Context, io.Reader, string, os.FileMode) error { return nil }
func (h *leaseHost) TempPath(string) string                                       { return "/tmp/x" }
func (h *leaseHost) Close() error                                                 { return nil }

// leaseShellWords splits what shellQuote produced.
func leaseShellWords(s string) []string {
	var words []string
	var cur strings.Builder
	in, quoted := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'' && !in:
			in, quoted = true, true
		case c == '\'' && in:
			if strings.HasPrefix(s[i:], `'\''`) {
				cur.WriteByte('\'')
				i += 3
				continue
			}
			in = false
		case c == ' ' && !in:
			if cur.Len() > 0 || quoted {
				words = append(words, cur.String())
			}
			cur.Reset()
			quoted = false
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 || quoted {
		words = append(words, cur.String())
	}
	return words
}

func leaseFleet(t *testing.T, hosts map[string]*leaseHost, names ...string) *Fleet {
	t.Helper()
	dial := func(_ context.Context, name string) (Host, error) { return hosts[name], nil }
	return Connect(context.Background(), names, dial, 8)
}

func TestClusterLeaseOnAgentlets(t *testing.T) {
	names := []string{"h1", "h2", "h3"}
	hosts := map[string]*leaseHost{}
	for _, n := range names {
		hosts[n] = &leaseHost{root: t.TempDir()}
	}
	// h2 holds a spec: the acquisition reads it.
	spec := nodeapi.NodeSpec{APIVersion: nodeapi.APIVersion, NodeName: "h2", Generation: 4, Writer: "bob@desk",
		WrittenAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Cluster:   nodeapi.ClusterInfo{Name: "t", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}, PodCIDR: "10.244.1.0/24"}
	a := leaseFleet(t, hosts, names...)
	if res := a.Push(context.Background(), map[string]nodeapi.NodeSpec{"h2": spec}, []string{"h2"}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}

	// Alice takes it: every host grants, observations come with it.
	alice, err := a.AcquireLease(context.Background(), LeaseOptions{Holder: "alice@laptop (pid 1, run a)", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if got := alice.Hosts(); strings.Join(got, ",") != "h1,h2,h3" {
		t.Errorf("alice holds %v", got)
	}
	held, ok := a.HeldSpec("h2")
	if !ok || held.Generation != 4 || held.Writer != "bob@desk" || held.ContentSHA256 != nodeapi.ContentSHA256(&spec) {
		t.Errorf("h2 held = %+v", held)
	}
	if _, ok := a.HeldSpec("h1"); ok {
		t.Error("h1 holds no spec")
	}
	before := len(hosts["h1"].cmds)
	obs := a.Observe(context.Background())
	if len(hosts["h1"].cmds) != before || len(obs) != 3 || !obs[0].Installed || obs[0].Status == nil || obs[1].Status.SpecGeneration != 4 {
		t.Fatalf("first Observe after the lease: %d new commands, %+v", len(hosts["h1"].cmds)-before, obs)
	}
	if a.Observe(context.Background()); len(hosts["h1"].cmds) != before+1 {
		t.Error("second Observe did not ask the host")
	}

	// Bob, from another fleet, is refused at once, naming alice.
	b := leaseFleet(t, hosts, names...)
	_, err = b.AcquireLease(context.Background(), LeaseOptions{Holder: "bob@desk (pid 2, run b)", TTL: time.Minute})
	var le *LeaseError
	if !errors.As(err, &le) || le.Holder != "alice@laptop (pid 1, run a)" || len(le.HeldOn) != 3 || le.ExpiresIn <= 50*time.Second {
		t.Fatalf("bob's acquire: %v", err)
	}

	// Renewal keeps it; alice releases; bob, waiting, gets it.
	if err := alice.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		alice.Release(context.Background())
	}()
	bob, err := b.AcquireLease(context.Background(), LeaseOptions{Holder: "bob@desk (pid 2, run b)", TTL: time.Minute, Wait: 10 * time.Second})
	if err != nil {
		t.Fatalf("bob waiting for alice: %v", err)
	}
	if err := alice.Release(context.Background()); err != nil {
		t.Errorf("second release: %v", err)
	}

	// Breaking bob's lease on two hosts loses it at the next renewal.
	lost := make(chan error, 1)
	bob.opts.OnLost = func(err error) { lost <- err }
	a.ReleaseLeases(context.Background(), []string{"h1", "h3"}, "", true)
	err = bob.Renew(context.Background())
	var le2 *LostError
	if !errors.As(err, &le2) || len(le2.Renewed) != 1 || bob.Lost() == nil || strings.Join(bob.Hosts(), ",") != "h2" {
		t.Fatalf("renew after a forced release: %v, hosts %v", err, bob.Hosts())
	}
	if err := bob.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, l := range b.ShowLeases(context.Background()) {
		if l.Lease != nil || l.Err != nil {
			t.Errorf("%s after release: %+v", l.Host, l)
		}
	}
}

// TestClusterLeaseRace: two runs race for the lease on three hosts, many
// times over; each time exactly one holds it, and the other gets it once
// the first lets go.
func TestClusterLeaseRace(t *testing.T) {
	names := []string{"h1", "h2", "h3"}
	for round := 0; round < 10; round++ {
		hosts := map[string]*leaseHost{}
		for _, n := range names {
			hosts[n] = &leaseHost{root: t.TempDir()}
		}
		var mu sync.Mutex
		holding, maxHolding, wins := 0, 0, 0
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f := leaseFleet(t, hosts, names...)
				l, err := f.AcquireLease(context.Background(), LeaseOptions{Holder: fmt.Sprintf("cli-%d", i), TTL: time.Minute, Wait: 20 * time.Second})
				if err != nil {
					t.Errorf("round %d: cli-%d: %v", round, i, err)
					return
				}
				mu.Lock()
				holding++
				wins++
				maxHolding = max(maxHolding, holding)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
				mu.Lock()
				holding--
				mu.Unlock()
				if err := l.Release(context.Background()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if maxHolding != 1 || wins != 2 {
			t.Fatalf("round %d: %d held at once, %d wins; want 1 and 2", round, maxHolding, wins)
		}
	}
}

func TestClusterLeaseSkipsHostsWithoutAgentlet(t *testing.T) {
	hosts := map[string]*leaseHost{"h1": {root: t.TempDir()}, "h2": {root: t.TempDir(), down: true}}
	f := leaseFleet(t, hosts, "h1", "h2")
	// h2's connection fails: 1 of 2 is no majority, skipped or not.
	for _, skip := range []bool{false, true} {
		if _, err := f.AcquireLease(context.Background(), LeaseOptions{Holder: "me", SkipMissing: skip}); !errors.As(err, new(*LeaseError)) {
			t.Errorf("skip %v: err = %v, want a LeaseError", skip, err)
		}
	}
	// What was taken in a lost round is given back.
	if l := f.ShowLeases(context.Background())[0]; l.Lease != nil {
		t.Errorf("h1 still leased after a lost round: %+v", l.Lease)
	}
}
