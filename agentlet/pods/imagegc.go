package pods

import (
	"sort"
	"time"
)

// ImageGCPolicy is kubelet's image garbage collection: when the image file
// system is more than HighPercent full, unused images are removed, least
// recently used first, until it is at most LowPercent full. Images younger
// than MinAge (first seen by this agentlet) are spared, so a pull is not
// undone before its container starts.
type ImageGCPolicy struct {
	HighPercent int
	LowPercent  int
	MinAge      time.Duration
	Interval    time.Duration // how often usage is checked
}

// DefaultImageGC is kubelet's: 85% high, 80% low, 2 minutes minimum age,
// checked every minute.
func DefaultImageGC() ImageGCPolicy {
	return ImageGCPolicy{HighPercent: 85, LowPercent: 80, MinAge: 2 * time.Minute, Interval: time.Minute}
}

// ImageInfo is one image as image GC sees it.
type ImageInfo struct {
	ID        string
	Size      uint64
	FirstSeen time.Time
	LastUsed  time.Time // last time a container used it (zero: never seen in use)
	InUse     bool      // used by a container or wanted by a desired pod
	Pinned    bool      // the sandbox image, or pinned by the runtime
}

// SelectImages picks the images to remove, in order: none while used is
// below HighPercent of capacity; otherwise unused, unpinned images old
// enough, least recently used (then largest) first, until the bytes freed
// bring usage to LowPercent.
func SelectImages(images []ImageInfo, used, capacity uint64, p ImageGCPolicy, now time.Time) []ImageInfo {
	if capacity == 0 || used*100 < uint64(p.HighPercent)*capacity {
		return nil
	}
	target := uint64(p.LowPercent) * capacity / 100
	if used <= target {
		return nil
	}
	need := used - target
	var cands []ImageInfo
	for _, img := range images {
		if img.InUse || img.Pinned || now.Sub(img.FirstSeen) < p.MinAge {
			continue
		}
		cands = append(cands, img)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if !a.LastUsed.Equal(b.LastUsed) {
			return a.LastUsed.Before(b.LastUsed)
		}
		if a.Size != b.Size {
			return a.Size > b.Size
		}
		return a.ID < b.ID
	})
	var out []ImageInfo
	var freed uint64
	for _, img := range cands {
		if freed >= need {
			break
		}
		out = append(out, img)
		freed += img.Size
	}
	return out
}
