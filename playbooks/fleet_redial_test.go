package playbooks

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFleetRedialBacksOff(t *testing.T) {
	up := map[string]bool{"h1": true, "h2": false}
	dials := map[string]int{}
	dial := func(_ context.Context, name string) (Host, error) {
		dials[name]++
		if !up[name] {
			return nil, errors.New("connection refused")
		}
		return &fakeHost{answer: func(string, []byte) ([]byte, error) { return nil, nil }}, nil
	}
	f := Connect(context.Background(), []string{"h1", "h2"}, dial, 1)
	defer f.Close()
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	obs := func() []Observation {
		return []Observation{{Host: "h1"}, {Host: "h2", Err: f.Err("h2")}}
	}
	var got [][]string
	for _, dt := range []time.Duration{0, 500 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second, 5 * time.Second} {
		got = append(got, f.Redial(context.Background(), dial, obs(), t0.Add(dt), 4*time.Second))
	}
	// Back-off 1 s, 2 s, 4 s (the max): attempts at 0, 1 s and 3 s, the next at 7 s.
	want := [][]string{{"h2"}, nil, {"h2"}, nil, {"h2"}, nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("redials (-want +got):\n%s", diff)
	}
	if dials["h1"] != 1 {
		t.Errorf("h1 dialed %d times; a healthy host is never redialed", dials["h1"])
	}
	up["h2"] = true
	if again := f.Redial(context.Background(), dial, obs(), t0.Add(7*time.Second), 4*time.Second); len(again) != 1 || f.Err("h2") != nil {
		t.Fatalf("h2 back: redialed %v, err %v", again, f.Err("h2"))
	}
	if again := f.Redial(context.Background(), dial, obs(), t0.Add(8*time.Second), 4*time.Second); again != nil {
		t.Errorf("a reconnected host is redialed again: %v", again)
	}
}
