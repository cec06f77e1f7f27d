package reconcile

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/playbooks"
)

// Fencing, on the CLI's side: before a run changes anything, every host's
// held NodeSpec is compared with the inventory. A host holding a newer
// generation, or the inventory's own generation with other content written
// by someone else, means another copy of the inventory changed the cluster
// since this one was saved; pushing now would undo that work (agentlet
// refuses older and diverging specs too, but only host by host, after
// other hosts may already have taken the change).

// FencedError is a run refused because a host holds newer state than the
// inventory. Nothing was changed.
type FencedError struct {
	Host string
	Held playbooks.HeldSpec
	// Generation is the inventory's generation; Path its file.
	Generation int64
	Path       string
	// Diverged: the host holds Generation itself, with other content than
	// the inventory recorded for it, written by someone else.
	Diverged bool
}

func (e *FencedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refuse to change the cluster: %s holds ", e.Host)
	if e.Diverged {
		fmt.Fprintf(&b, "other content under generation %d", e.Held.Generation)
	} else {
		fmt.Fprintf(&b, "generation %d", e.Held.Generation)
	}
	if e.Held.Writer != "" {
		fmt.Fprintf(&b, ", written by %s", e.Held.Writer)
	}
	if !e.Held.WrittenAt.IsZero() {
		fmt.Fprintf(&b, " at %s", e.Held.WrittenAt.Local().Format(time.DateTime))
	}
	if e.Diverged {
		fmt.Fprintf(&b, ", than %s recorded for it: another copy of the inventory changed the cluster from the same generation. ", e.Path)
	} else {
		fmt.Fprintf(&b, ", newer than generation %d in %s: another copy of the inventory changed the cluster since this one was saved. ", e.Generation, e.Path)
	}
	fmt.Fprintf(&b, "Nothing was changed. Rebuild the inventory from the hosts with `clusterctl recover --from %s`, "+
		"or use the copy that made the change, then repeat yours", e.Host)
	return b.String()
}

// CheckFencing compares what each host holds with the inventory
// (FenceOf(inv).Check).
func CheckFencing(inv *inventory.Inventory, held map[string]playbooks.HeldSpec, self string) error {
	return FenceOf(inv).Check(held, self)
}

// Fence is what fencing compares the hosts with: the inventory's
// generation and the content it recorded for each host, taken when the
// inventory was loaded (a loop bumps both in memory before it pushes).
type Fence struct {
	Generation int64
	Recorded   map[string]string // host → state.hosts.H.specSHA256
	Path       string
}

// FenceOf takes the inventory's fence now.
func FenceOf(inv *inventory.Inventory) Fence {
	f := Fence{Generation: inv.State.Generation, Recorded: map[string]string{}, Path: inv.Path}
	for _, h := range inv.HostNames() {
		f.Recorded[h] = inv.HostState(h).SpecSHA256
	}
	return f
}

// Check returns a *FencedError for the host holding the newest state that
// the inventory does not know: a generation above the inventory's, or the
// inventory's generation with content other than recorded for the host
// written by a writer other than self. Equal content, older generations,
// and hosts the inventory recorded nothing for pass; so does this writer's
// own spec at the inventory's generation (a push that succeeded although
// its answer was lost).
func (f Fence) Check(held map[string]playbooks.HeldSpec, self string) error {
	gen := f.Generation
	var worst *FencedError
	hosts := make([]string, 0, len(held))
	for h := range held {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		s := held[h]
		var e *FencedError
		switch rec := f.Recorded[h]; {
		case s.Generation > gen:
			e = &FencedError{Host: h, Held: s, Generation: gen, Path: f.Path}
		case s.Generation == gen && gen > 0 && rec != "" && s.ContentSHA256 != "" && s.ContentSHA256 != rec && s.Writer != self:
			e = &FencedError{Host: h, Held: s, Generation: gen, Path: f.Path, Diverged: true}
		}
		if e != nil && (worst == nil || e.Held.Generation > worst.Held.Generation) {
			worst = e
		}
	}
	if worst == nil {
		return nil
	}
	return worst
}

// HeldSpecs is what each host holds as far as this run knows: the spec
// read with the cluster lease (or pushed by this run since), unless the
// host's status reports a newer generation (then its generation and
// writer). fleet may be nil.
func HeldSpecs(fleet *playbooks.Fleet, obs []playbooks.Observation) map[string]playbooks.HeldSpec {
	out := map[string]playbooks.HeldSpec{}
	var hosts []string
	if fleet != nil {
		hosts = fleet.Hosts()
	}
	for _, o := range obs {
		hosts = append(hosts, o.Host)
	}
	status := map[string]playbooks.Observation{}
	for _, o := range obs {
		status[o.Host] = o
	}
	for _, h := range hosts {
		var s playbooks.HeldSpec
		if fleet != nil {
			s, _ = fleet.HeldSpec(h)
		}
		if st := status[h].Status; st != nil && st.SpecGeneration > s.Generation {
			s = playbooks.HeldSpec{Generation: st.SpecGeneration, Writer: st.SpecWriter}
		}
		if s.Generation > 0 {
			out[h] = s
		}
	}
	return out
}
