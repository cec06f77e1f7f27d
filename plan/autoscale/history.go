package autoscale

import (
	"encoding/json"
	"fmt"
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
type history struct {
	Recommendations []sample `json:"r,omitempty"`
	ScaleUp         []sample `json:"u,omitempty"`
	ScaleDown       []sample `json:"d,omitempty"`
}

// loadHistory reads the annotation; a missing or unreadable one gives an
// empty history, as after a controller restart.
func loadHistory(annotations map[string]string) (history, error) {
	var h history
	s, ok := annotations[HistoryAnnotation]
	if !ok || s == "" {
		return h, nil
	}
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return history{}, fmt.Errorf("decode annotation %s: %w", HistoryAnnotation, err)
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
