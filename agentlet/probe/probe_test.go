package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/nodeapi"
)

func TestTracker(t *testing.T) {
	tests := []struct {
		name     string
		kind     Kind
		p        Params
		outcomes string // s = success, f = failure
		want     string // result after each outcome: S, F, U
	}{
		{"readiness: one success is enough", Readiness, Params{SuccessThreshold: 1, FailureThreshold: 3}, "sffsfff", "SSSSSSF"},
		{"readiness: two successes needed", Readiness, Params{SuccessThreshold: 2, FailureThreshold: 1}, "ssfsfss", "USFFFFS"},
		{"liveness starts alive, fails after 3", Liveness, Params{SuccessThreshold: 1, FailureThreshold: 3}, "ffsfff", "SSSSSF"},
		{"startup unknown until success", Startup, Params{SuccessThreshold: 1, FailureThreshold: 2}, "fs", "US"},
		{"startup fails after the threshold", Startup, Params{SuccessThreshold: 1, FailureThreshold: 2}, "ff", "UF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(tt.kind)
			var got strings.Builder
			for _, o := range tt.outcomes {
				tr.Observe(o == 's', tt.p)
				got.WriteString(tr.Result.String()[:1])
			}
			if got.String() != tt.want {
				t.Errorf("results %s, want %s", got.String(), tt.want)
			}
		})
	}
}

func TestParamsOf(t *testing.T) {
	got := ParamsOf(nodeapi.Probe{}, Readiness)
	want := Params{Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	got = ParamsOf(nodeapi.Probe{InitialDelaySeconds: 5, PeriodSeconds: 2, TimeoutSeconds: 3, SuccessThreshold: 4, FailureThreshold: 1}, Liveness)
	want = Params{InitialDelay: 5 * time.Second, Period: 2 * time.Second, Timeout: 3 * time.Second, SuccessThreshold: 1, FailureThreshold: 1}
	if got != want {
		t.Errorf("liveness = %+v, want %+v (success threshold is 1)", got, want)
	}
}

// scripted is a Runner answering by kind, counting concurrency.
type scripted struct {
	mu       sync.Mutex
	ok       map[Kind]bool
	delay    time.Duration
	ran      []string
	inflight int
	peak     int
}

func (s *scripted) Run(ctx context.Context, t Target, _ time.Duration) (bool, string) {
	s.mu.Lock()
	s.ran = append(s.ran, t.Container+"/"+t.Kind.String())
	s.inflight++
	s.peak = max(s.peak, s.inflight)
	ok := s.ok[t.Kind]
	s.mu.Unlock()
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.inflight--
	s.mu.Unlock()
	return ok, "said " + t.Kind.String()
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestManagerStartupGatesAndResults(t *testing.T) {
	r := &scripted{ok: map[Kind]bool{Startup: true, Readiness: true, Liveness: false}}
	var mu sync.Mutex
	var outcomes []string
	m := NewManager(r, 4, time.Now, func(o Outcome) {
		mu.Lock()
		defer mu.Unlock()
		outcomes = append(outcomes, fmt.Sprintf("%s %v %s", o.Target.Kind, o.OK, o.Result))
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	p := nodeapi.Probe{PeriodSeconds: 1, FailureThreshold: 1}
	now := time.Now()
	m.Update([]Target{
		{ContainerID: "c1", Container: "app", Kind: Startup, Probe: p, StartedAt: now},
		{ContainerID: "c1", Container: "app", Kind: Liveness, Probe: p, StartedAt: now},
		{ContainerID: "c1", Container: "app", Kind: Readiness, Probe: p, StartedAt: now},
	})
	waitUntil(t, "liveness to fail", func() bool { return m.Results()[Key{"c1", Liveness}] == Failure })
	res := m.Results()
	if res[Key{"c1", Startup}] != Success || res[Key{"c1", Readiness}] != Success {
		t.Errorf("results: %v", res)
	}
	r.mu.Lock()
	if r.ran[0] != "app/Startup" {
		t.Errorf("startup did not run first: %v", r.ran)
	}
	r.mu.Unlock()
	mu.Lock()
	if !contains(outcomes, "Liveness false Failure") {
		t.Errorf("outcomes: %v", outcomes)
	}
	mu.Unlock()

	// A failed liveness probe is not run again; removed targets forget their results.
	time.Sleep(1200 * time.Millisecond)
	r.mu.Lock()
	lives := 0
	for _, x := range r.ran {
		if x == "app/Liveness" {
			lives++
		}
	}
	r.mu.Unlock()
	if lives != 1 {
		t.Errorf("liveness ran %d times after failing", lives)
	}
	m.Update(nil)
	waitUntil(t, "results to be forgotten", func() bool { return len(m.Results()) == 0 })
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestManagerBoundsConcurrency(t *testing.T) {
	r := &scripted{ok: map[Kind]bool{Readiness: true}, delay: 50 * time.Millisecond}
	m := NewManager(r, 2, time.Now, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var targets []Target
	for i := 0; i < 6; i++ {
		targets = append(targets, Target{ContainerID: strconv.Itoa(i), Kind: Readiness, Probe: nodeapi.Probe{PeriodSeconds: 10}})
	}
	m.Update(targets)
	waitUntil(t, "all probes to succeed", func() bool {
		for _, v := range m.Results() {
			if v != Success {
				return false
			}
		}
		return len(m.Results()) == 6
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.peak > 2 || len(r.ran) != 6 {
		t.Errorf("peak concurrency %d, runs %d", r.peak, len(r.ran))
	}
}

type fakeExec struct {
	res cri.ExecResult
	err error
	got []string
}

func (f *fakeExec) ExecSync(_ context.Context, id string, cmd []string, timeout time.Duration) (cri.ExecResult, error) {
	f.got = append(f.got, fmt.Sprintf("%s %v %s", id, cmd, timeout))
	return f.res, f.err
}

func TestHandlers(t *testing.T) {
	var hmu sync.Mutex
	var gotHeader string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.Lock()
		gotHeader = r.Header.Get("X-Probe")
		hmu.Unlock()
		switch r.URL.Path {
		case "/ok":
			fmt.Fprint(w, "fine")
		case "/slow":
			time.Sleep(time.Second)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()
	hostPort := func(u string) (string, int32) {
		h, p, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://"))
		n, _ := strconv.Atoi(p)
		return h, int32(n)
	}
	ip, port := hostPort(srv.URL)
	_, tlsPort := hostPort(tlsSrv.URL)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, open := hostPort("http://" + lis.Addr().String())
	closed := func() int32 {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		_, p := hostPort("http://" + l.Addr().String())
		l.Close()
		return p
	}()
	defer lis.Close()

	ex := &fakeExec{}
	h := Handlers{Exec: ex, UserAgent: "agentlet/test"}
	get := func(path string, port int32) nodeapi.Handler {
		return nodeapi.Handler{HTTPGet: &nodeapi.HTTPGetAction{Path: path, Port: port, Headers: []nodeapi.HTTPHeader{{Name: "X-Probe", Value: "1"}}}}
	}
	tests := []struct {
		name string
		h    nodeapi.Handler
		ok   bool
		out  string
	}{
		{"http 200", get("/ok", port), true, "fine"},
		{"http 500", get("/bad", port), false, "HTTP probe failed with statuscode: 500: broken"},
		{"http 302 counts as success", get("/redirect", port), true, ""},
		{"http timeout", get("/slow", port), false, "timed out after 200ms"},
		{"https without verification", nodeapi.Handler{HTTPGet: &nodeapi.HTTPGetAction{Path: "/", Port: tlsPort, Scheme: "HTTPS"}}, true, ""},
		{"tcp open", nodeapi.Handler{TCPSocket: &nodeapi.TCPSocketAction{Port: open}}, true, ""},
		{"tcp closed", nodeapi.Handler{TCPSocket: &nodeapi.TCPSocketAction{Port: closed}}, false, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, out := h.Do(context.Background(), "c1", ip, tt.h, 200*time.Millisecond)
			if ok != tt.ok || !strings.Contains(out, tt.out) {
				t.Errorf("Do = %v %q, want %v containing %q", ok, out, tt.ok, tt.out)
			}
		})
	}
	hmu.Lock()
	defer hmu.Unlock()
	if gotHeader != "1" {
		t.Errorf("header not sent: %q", gotHeader)
	}

	ex.res = cri.ExecResult{Stdout: []byte("no\n"), ExitCode: 1}
	if ok, out := h.Do(context.Background(), "c1", "", nodeapi.Handler{Exec: []string{"check"}}, 2*time.Second); ok || out != "no" {
		t.Errorf("exec failure = %v %q", ok, out)
	}
	ex.res = cri.ExecResult{}
	if ok, _ := h.Do(context.Background(), "c1", "", nodeapi.Handler{Exec: []string{"check"}}, 2*time.Second); !ok {
		t.Error("exec success reported as failure")
	}
	ex.err = status.Error(codes.DeadlineExceeded, "timeout 2s exceeded")
	if ok, out := h.Do(context.Background(), "c1", "", nodeapi.Handler{Exec: []string{"check"}}, 2*time.Second); ok || out != `command "check" timed out after 2s` {
		t.Errorf("exec timeout = %v %q", ok, out)
	}
	if diff := cmp.Diff([]string{"c1 [check] 2s", "c1 [check] 2s", "c1 [check] 2s"}, ex.got); diff != "" {
		t.Errorf("exec calls (-want +got):\n%s", diff)
	}
	if ok, out := h.Do(context.Background(), "c1", "", get("/ok", port), time.Second); ok || out != "pod has no IP yet" {
		t.Errorf("no pod IP: %v %q", ok, out)
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", MaxOutput)
	got := truncate(long)
	if len(got) > MaxOutput+len("…") || !strings.HasSuffix(got, "…") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("truncate: %d bytes", len(got))
	}
}
