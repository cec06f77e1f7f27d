package agentlet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func TestGrantLease(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ttl := time.Minute
	alice := &Lease{Holder: "alice", AcquiredAt: t0, RenewedAt: t0, TTLMillis: ttl.Milliseconds()}
	renewed := &Lease{Holder: "alice", AcquiredAt: t0.Add(-time.Hour), RenewedAt: t0, TTLMillis: ttl.Milliseconds()}
	tests := []struct {
		name        string
		cur         *Lease
		holder      string
		now         time.Time
		renew       bool
		granted     bool
		wantHolder  string
		wantAcq     time.Time
		wantRenewed time.Time
	}{
		{"free", nil, "bob", t0, false, true, "bob", t0, t0},
		{"held by another", alice, "bob", t0.Add(59 * time.Second), false, false, "alice", t0, t0},
		{"expires exactly now", alice, "bob", t0.Add(time.Minute), false, true, "bob", t0.Add(time.Minute), t0.Add(time.Minute)},
		{"expired", alice, "bob", t0.Add(2 * time.Minute), false, true, "bob", t0.Add(2 * time.Minute), t0.Add(2 * time.Minute)},
		{"re-acquire own keeps acquiredAt", renewed, "alice", t0.Add(10 * time.Second), false, true, "alice", t0.Add(-time.Hour), t0.Add(10 * time.Second)},
		{"own expired lease re-acquired", alice, "alice", t0.Add(5 * time.Minute), false, true, "alice", t0, t0.Add(5 * time.Minute)},
		{"renew own", alice, "alice", t0.Add(30 * time.Second), true, true, "alice", t0, t0.Add(30 * time.Second)},
		{"renew own after expiry (nobody took it)", alice, "alice", t0.Add(5 * time.Minute), true, true, "alice", t0, t0.Add(5 * time.Minute)},
		{"renew a free lease: broken, not re-taken", nil, "alice", t0, true, false, "", time.Time{}, time.Time{}},
		{"renew another's lease", alice, "bob", t0.Add(5 * time.Minute), true, false, "alice", t0, t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, granted := GrantLease(tt.cur, tt.holder, ttl, tt.now, tt.renew)
			if granted != tt.granted {
				t.Fatalf("granted = %v, want %v", granted, tt.granted)
			}
			if tt.wantHolder == "" {
				if next != nil {
					t.Fatalf("next = %+v, want none", next)
				}
				return
			}
			if next == nil || next.Holder != tt.wantHolder || !next.AcquiredAt.Equal(tt.wantAcq) || !next.RenewedAt.Equal(tt.wantRenewed) {
				t.Fatalf("next = %+v, want holder %s acquired %s renewed %s", next, tt.wantHolder, tt.wantAcq, tt.wantRenewed)
			}
			if granted && next.TTLMillis != ttl.Milliseconds() {
				t.Errorf("ttl = %dms", next.TTLMillis)
			}
		})
	}
}

func TestRevokeLease(t *testing.T) {
	alice := &Lease{Holder: "alice"}
	tests := []struct {
		name     string
		cur      *Lease
		holder   string
		force    bool
		released bool
		refused  bool
	}{
		{"free", nil, "alice", false, false, false},
		{"own", alice, "alice", false, true, false},
		{"another's", alice, "bob", false, false, true},
		{"another's, forced", alice, "bob", true, true, false},
		{"forced without a holder", alice, "", true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, released, err := RevokeLease(tt.cur, tt.holder, tt.force)
			var nh *NotHolderError
			if released != tt.released || errors.As(err, &nh) != tt.refused {
				t.Fatalf("released %v err %v; want released %v refused %v", released, err, tt.released, tt.refused)
			}
			if tt.refused && (next != tt.cur || nh.Holder != "alice") {
				t.Errorf("refused release: next %+v, error %v", next, err)
			}
			if released && next != nil {
				t.Errorf("released but next = %+v", next)
			}
		})
	}
}

// clock is a settable clock for the store.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLeaseStore(t *testing.T) {
	paths := Paths{Root: t.TempDir()}
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := LeaseStore{Paths: paths, Now: c.now}

	// No state directory, no spec: granted, spec nil.
	rep, err := s.Acquire("alice", time.Minute, false)
	if err != nil || !rep.Granted || rep.Lease.Holder != "alice" || rep.Spec != nil || !rep.Now.Equal(c.t) {
		t.Fatalf("first acquire = %+v, %v", rep, err)
	}
	if fi, err := os.Stat(paths.LeasePath()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lease file: %v %v", fi, err)
	}

	// With a held spec the report identifies it as the CLI computes it.
	if _, err := (Applier{Paths: paths}).Apply(specJSON(t, testSpec(7))); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(20 * time.Second)
	rep, err = s.Acquire("bob", time.Minute, false)
	var held *LeaseHeldError
	if !errors.As(err, &held) || rep.Granted || rep.Lease.Holder != "alice" {
		t.Fatalf("bob's acquire = %+v, %v; want refused naming alice", rep, err)
	}
	want := HeldSpec{Generation: 7, Writer: "alice@laptop", WrittenAt: testSpec(7).WrittenAt, ContentSHA256: nodeapi.ContentSHA256(testSpec(7))}
	if rep.Spec == nil || *rep.Spec != want {
		t.Errorf("held spec = %+v, want %+v", rep.Spec, want)
	}
	if msg := err.Error(); !strings.Contains(msg, "held by alice since 2026-03-01T12:00:00Z, expires in 40s") {
		t.Errorf("refusal = %q", msg)
	}

	// Renewal by the holder moves the expiry, keeps acquiredAt.
	rep, err = s.Acquire("alice", time.Minute, true)
	if err != nil || !rep.Granted || !rep.Lease.RenewedAt.Equal(c.t) || !rep.Lease.AcquiredAt.Equal(c.t.Add(-20*time.Second)) {
		t.Fatalf("renew = %+v, %v", rep, err)
	}

	// Release: not by bob, by alice; then the lease is free and a renewal
	// by alice fails (a broken lease stays broken).
	if _, err := s.Release("bob", false); !errors.As(err, new(*NotHolderError)) {
		t.Fatalf("bob's release: %v", err)
	}
	if rep, err := s.Show(); err != nil || rep.Lease == nil || rep.Lease.Holder != "alice" {
		t.Fatalf("show after refused release = %+v, %v", rep, err)
	}
	if rep, err := s.Release("alice", false); err != nil || !rep.Released || rep.Lease != nil {
		t.Fatalf("alice's release = %+v, %v", rep, err)
	}
	if _, err := os.Stat(paths.LeasePath()); !os.IsNotExist(err) {
		t.Errorf("lease file after release: %v", err)
	}
	if rep, err := s.Release("alice", false); err != nil || rep.Released {
		t.Errorf("release of a free lease = %+v, %v; want a no-op", rep, err)
	}
	if _, err := s.Acquire("alice", time.Minute, true); !errors.As(err, new(*LeaseHeldError)) {
		t.Errorf("renewal of a released lease: %v, want refused", err)
	}

	// Expiry: bob takes alice's lapsed lease; --force breaks bob's.
	if _, err := s.Acquire("alice", time.Minute, false); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(61 * time.Second)
	if rep, err := s.Acquire("bob", time.Minute, false); err != nil || rep.Lease.Holder != "bob" || !rep.Lease.AcquiredAt.Equal(c.t) {
		t.Fatalf("acquire of an expired lease = %+v, %v", rep, err)
	}
	if rep, err := s.Release("carol", true); err != nil || !rep.Released {
		t.Fatalf("forced release = %+v, %v", rep, err)
	}

	// A torn record counts as free.
	if err := os.WriteFile(paths.LeasePath(), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Acquire("dave", time.Minute, false); err != nil || !rep.Granted {
		t.Errorf("acquire over a torn record = %+v, %v", rep, err)
	}
}

// TestLeaseStoreConcurrent races many holders for one free lease: the
// state directory's flock lets exactly one win.
func TestLeaseStoreConcurrent(t *testing.T) {
	for round := 0; round < 20; round++ {
		s := LeaseStore{Paths: Paths{Root: t.TempDir()}, Now: time.Now}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				holder := fmt.Sprintf("cli-%d", i)
				rep, err := s.Acquire(holder, time.Minute, false)
				if err != nil && !errors.As(err, new(*LeaseHeldError)) {
					t.Error(err)
					return
				}
				if rep.Granted {
					mu.Lock()
					winners = append(winners, holder)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		rep, err := s.Show()
		if len(winners) != 1 || err != nil || rep.Lease == nil || rep.Lease.Holder != winners[0] {
			t.Fatalf("round %d: winners %v, lease %+v %v; want exactly one, recorded", round, winners, rep.Lease, err)
		}
	}
}

func TestMainLease(t *testing.T) {
	root := t.TempDir()
	report := func(out string) LeaseReport {
		t.Helper()
		var rep LeaseReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("decode report %q: %v", out, err)
		}
		return rep
	}
	code, out, _ := run(t, "", "lease", "acquire", "--root", root, "--holder", "alice (pid 1, run a)", "--ttl", "1m")
	if rep := report(out); code != ExitOK || !rep.Granted || rep.Lease.TTLMillis != 60000 {
		t.Fatalf("acquire = %d %q", code, out)
	}
	code, out, errs := run(t, "", "lease", "acquire", "--root", root, "--holder", "bob", "--ttl", "1m")
	if rep := report(out); code != ExitLeaseHeld || rep.Granted || rep.Lease.Holder != "alice (pid 1, run a)" || !strings.Contains(errs, "held by alice (pid 1, run a)") {
		t.Fatalf("refused acquire = %d %q %q", code, out, errs)
	}
	// --status: exit 0, the report says refused and carries the status.
	code, out, _ = run(t, "", "lease", "acquire", "--root", root, "--holder", "bob", "--ttl", "1m", "--status")
	rep := report(out)
	if code != ExitOK || rep.Granted || rep.Lease.Holder != "alice (pid 1, run a)" {
		t.Fatalf("acquire --status = %d %q", code, out)
	}
	if st, err := nodeapi.DecodeNodeStatus(rep.Status); err != nil || st.DaemonRunning {
		t.Errorf("status in the report: %+v, %v", st, err)
	}
	if code, out, _ := run(t, "", "lease", "release", "--root", root, "--holder", "bob"); code != ExitLeaseHeld || report(out).Lease == nil {
		t.Errorf("release by bob = %d %q", code, out)
	}
	if code, out, _ := run(t, "", "lease", "show", "--root", root); code != ExitOK || report(out).Lease.Holder != "alice (pid 1, run a)" {
		t.Errorf("show = %d %q", code, out)
	}
	if code, out, _ := run(t, "", "lease", "release", "--root", root, "--force"); code != ExitOK || !report(out).Released {
		t.Errorf("release --force = %d %q", code, out)
	}
	if code, out, _ := run(t, "", "lease", "show", "--root", root); code != ExitOK || report(out).Lease != nil {
		t.Errorf("show after release = %d %q", code, out)
	}
	for _, args := range [][]string{
		{"lease"},
		{"lease", "steal"},
		{"lease", "acquire", "--root", root, "--ttl", "1m"},
		{"lease", "acquire", "--root", root, "--holder", "x"},
		{"lease", "release", "--root", root},
		{"lease", "show", "extra"},
	} {
		if code, _, _ := run(t, "", args...); code != ExitUsage {
			t.Errorf("agentlet %v = %d, want %d", args, code, ExitUsage)
		}
	}
	// A diverged apply exits like a stale one.
	code, _, _ = run(t, string(mustJSON(t, testSpec(3))), "apply", "--root", root)
	if code != ExitOK {
		t.Fatalf("apply = %d", code)
	}
	other := testSpec(3)
	other.PodCIDR = "10.244.2.0/24"
	if code, _, errs := run(t, string(mustJSON(t, other)), "apply", "--root", root); code != ExitStale || !strings.Contains(errs, "another spec of generation 3") {
		t.Errorf("diverged apply = %d %q", code, errs)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
