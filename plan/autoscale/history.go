package autoscale

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// HistoryAnnotation holds the HPA controller's recommendation history and
// scale events between passes (see the package documentation).
const HistoryAnnotation = "autoscaling.clusterctl.io/history"

// sample is a timestamped value: [unix seconds, value].
type sample [2]int64

func (s sample) at() time.Time              { return time.Unix(s[0], 0).UTC() }
func (s sample) value() int32               { return int32(s[1]) }
func newSample(t time.Time, v int32) sample { return sample{t.Unix(), int64(v)} }

// history is what Kubernetes keeps per HPA in memory: the unstabilized
// recommendations and the scale-up and scale-down events.
//
// Kubernetes records one timestamped recommendation per sync. Here a
// recommendation is recorded when it changes: Current is the one in force
// ([since, replicas]) and Ended the earlier ones ([until, replicas]), each
// in force until the pass that replaced it. A steady recommendation thus
// leaves the history, and the HPA, unchanged.
type history struct {
	Current *sample  `json:"c,omitempty"`
	Ended   []sample `json:"e,omitempty"`
	// Recommendations is the format written before: one [time, replicas]
	// per pass. loadHistory migrates it into Ended; it is never written.
	Recommendations []sample `json:"r,omitempty"`
	ScaleUp         []sample `json:"u,omitempty"`
	ScaleDown       []sample `json:"d,omitempty"`
}

// loadHistory reads the annotation; a missing or unreadable one gives an
// empty history, as after a controller restart. The per-pass format is
// migrated: each of its samples becomes a recommendation in force until
// its own time, which is how Kubernetes counts it.
func loadHistory(annotations map[string]string) (history, error) {
	var h history
	s, ok := annotations[HistoryAnnotation]
	if !ok || s == "" {
		return h, nil
	}
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return history{}, fmt.Errorf("decode annotation %s: %w", HistoryAnnotation, err)
	}
	if len(h.Recommendations) > 0 {
		h.Ended = append(h.Ended, h.Recommendations...)
		h.Recommendations = nil
		h.Ended = latestPerValue(h.Ended)
	}
	return h, nil
}

func (h history) encode() string {
	b, err := json.Marshal(h)
	if err != nil {
		// Slices of int64 pairs always marshal.
		panic(fmt.Sprintf("encode hpa history: %v", err))
	}
	return string(b)
}

// empty reports a history with no recommendation: a new HPA, or one whose
// history was lost.
func (h history) empty() bool { return h.Current == nil && len(h.Ended) == 0 }

// window is a stabilization window ending at the pass: a recommendation
// counts if it was in force at a time the window contains.
type window struct {
	start time.Time
	// open leaves start itself out: Kubernetes' behavior path counts the
	// samples after the cutoff, its classic path those not before it.
	open bool
}

func (w window) contains(t time.Time) bool {
	if w.open {
		return t.After(w.start)
	}
	return !t.Before(w.start)
}

// each calls f with every recorded recommendation and the last time it was
// in force; the current one is in force until now.
func (h history) each(now time.Time, f func(until time.Time, replicas int32)) {
	for _, e := range h.Ended {
		f(e.at(), e.value())
	}
	if h.Current != nil {
		f(now, h.Current.value())
	}
}

// lowest is the lowest of desired and the recommendations in force during w.
func (h history) lowest(now time.Time, desired int32, w window) int32 {
	out := desired
	h.each(now, func(until time.Time, v int32) {
		if w.contains(until) {
			out = min(out, v)
		}
	})
	return out
}

// highest is the highest of desired and the recommendations in force
// during w.
func (h history) highest(now time.Time, desired int32, w window) int32 {
	out := desired
	h.each(now, func(until time.Time, v int32) {
		if w.contains(until) {
			out = max(out, v)
		}
	})
	return out
}

// record makes desired the recommendation in force from now on. Nothing
// changes if it already is; otherwise the one it replaces ends now.
// Entries that can no longer decide a window are dropped: of equal values
// only the latest end counts, and one equal to the new current one ends no
// later than it will.
func (h *history) record(now time.Time, desired int32) {
	if h.Current != nil && h.Current.value() == desired {
		return
	}
	if h.Current != nil {
		h.Ended = append(h.Ended, newSample(now, h.Current.value()))
	}
	c := newSample(now, desired)
	h.Current = &c
	h.Ended = slices.DeleteFunc(latestPerValue(h.Ended), func(e sample) bool {
		return e.value() == desired && !e.at().After(now)
	})
}

// forget drops the ended recommendations that none of the pass's windows
// contains: windows only move forward, so they will never count again.
// Without windows (the pass did not stabilize) it keeps everything.
func (h *history) forget(windows []window) {
	if len(windows) == 0 {
		return
	}
	h.Ended = slices.DeleteFunc(h.Ended, func(e sample) bool {
		return !slices.ContainsFunc(windows, func(w window) bool { return w.contains(e.at()) })
	})
	if len(h.Ended) == 0 {
		h.Ended = nil
	}
}

// latestPerValue keeps, for each value, the entry that ends last, ordered
// by end and value.
func latestPerValue(list []sample) []sample {
	last := map[int64]int64{}
	for _, e := range list {
		if t, ok := last[e[1]]; !ok || e[0] > t {
			last[e[1]] = e[0]
		}
	}
	out := make([]sample, 0, len(last))
	for v, t := range last {
		out = append(out, sample{t, v})
	}
	slices.SortFunc(out, func(a, b sample) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	if len(out) == 0 {
		return nil
	}
	return out
}

// add appends s unless the same sample is already there (a second pass at
// the same second), after dropping the samples old reports as outdated.
func add(list []sample, s sample, old func(sample) bool) []sample {
	kept := prune(list, old)
	for _, x := range kept {
		if x == s {
			return kept
		}
	}
	return append(kept, s)
}

// prune returns the samples that are not old, in order.
func prune(list []sample, old func(sample) bool) []sample {
	var kept []sample
	for _, x := range list {
		if !old(x) {
			kept = append(kept, x)
		}
	}
	return kept
}
