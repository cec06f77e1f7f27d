package pods

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSelectImages(t *testing.T) {
	pol := ImageGCPolicy{HighPercent: 85, LowPercent: 80, MinAge: 2 * time.Minute}
	now := at(time.Hour)
	old := at(0)
	images := []ImageInfo{
		{ID: "pause", Size: 10, FirstSeen: old, Pinned: true},
		{ID: "used", Size: 100, FirstSeen: old, InUse: true, LastUsed: now},
		{ID: "lru", Size: 30, FirstSeen: old, LastUsed: at(time.Minute)},
		{ID: "recent", Size: 30, FirstSeen: old, LastUsed: at(30 * time.Minute)},
		{ID: "never-big", Size: 50, FirstSeen: old},
		{ID: "never-small", Size: 5, FirstSeen: old},
		{ID: "fresh", Size: 500, FirstSeen: now.Add(-time.Minute)},
	}
	ids := func(imgs []ImageInfo) []string {
		var out []string
		for _, i := range imgs {
			out = append(out, i.ID)
		}
		return out
	}
	tests := []struct {
		name           string
		used, capacity uint64
		want           []string
	}{
		{"below the high threshold", 840, 1000, nil},
		{"at the threshold: free down to 80%", 850, 1000, []string{"never-big"}},
		{"more to free: least recently used first", 900, 1000, []string{"never-big", "never-small", "lru", "recent"}},
		{"everything unused is not enough", 990, 1000, []string{"never-big", "never-small", "lru", "recent"}},
		{"unknown capacity", 10, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ids(SelectImages(images, tt.used, tt.capacity, pol, now))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
