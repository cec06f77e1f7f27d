package pods

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/agentlet/probe"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// render writes plans compactly: "uid: Action ...; Action ... wake=+10s".
func render(plans []PodPlan) []string {
	var out []string
	for _, p := range plans {
		var acts []string
		for _, a := range p.Actions {
			s := a.Kind.String()
			switch a.Kind {
			case CreateSandbox:
				s += fmt.Sprintf(" #%d", a.Attempt)
			case StartContainer:
				s += fmt.Sprintf(" %s#%d", a.Container, a.Attempt)
				if a.SandboxID != "" {
					s += " in " + a.SandboxID
				}
				if a.ContainerID != "" {
					s += " id=" + a.ContainerID
				}
				if a.Init {
					s += " init"
				}
				if a.Backoff != nil {
					s += fmt.Sprintf(" backoff=%s", a.Backoff.Delay)
				}
			case KillContainer:
				s += " " + a.ContainerID + ": " + a.Message
			case RemoveContainer:
				s += " " + a.ContainerID
			case KillSandbox, StopSandbox:
				s += " " + a.SandboxID
			}
			acts = append(acts, s)
		}
		line := p.UID + ": " + strings.Join(acts, "; ")
		if !p.Wake.IsZero() {
			line += fmt.Sprintf(" wake=+%s", p.Wake.Sub(t0))
		}
		out = append(out, strings.TrimSpace(line))
	}
	return out
}

func TestPlan(t *testing.T) {
	web := podOf("web", nodeapi.RestartAlways, "web", "side")
	job := podOf("job", nodeapi.RestartOnFailure, "main")
	once := podOf("once", nodeapi.RestartNever, "main")
	initPod := withInit(podOf("ini", nodeapi.RestartAlways, "app"), "i1", "i2")
	initNever := withInit(podOf("ini", nodeapi.RestartNever, "app"), "i1", "i2")
	replaced := web
	replaced.UID = "uid-web-2"
	live := podOf("live", nodeapi.RestartAlways, "app")
	live.Containers[0].LivenessProbe = &nodeapi.Probe{Handler: nodeapi.Handler{Exec: []string{"true"}}}
	withFiles := podOf("web", nodeapi.RestartAlways, "web", "side")
	withFiles.Volumes = []nodeapi.VolumeSpec{{Name: "cfg", Files: &nodeapi.FilesVolume{Items: []nodeapi.FileItem{{Path: "a", Data: []byte("2")}}}}}
	changed := podOf("web", nodeapi.RestartAlways, "web", "side")
	changed.Containers[0].Image = "busybox:2"
	open := Gate{SandboxOK: true}

	tests := []struct {
		name    string
		desired []nodeapi.PodSpec
		obs     Observed
		books   map[string]*Book
		probes  Probes
		gate    Gate
		now     time.Time
		skip    map[string]bool
		want    []string
	}{
		{
			name:    "new pod: sandbox and all containers in one pass",
			desired: []nodeapi.PodSpec{web},
			gate:    open,
			want:    []string{"uid-web: CreateSandbox #0; StartContainer web#0; StartContainer side#0"},
		},
		{
			name:    "new pod waits for the node (no sandbox image or network)",
			desired: []nodeapi.PodSpec{web},
			gate:    Gate{Reason: "network not ready"},
			want:    nil,
		},
		{
			name:    "sandbox creation failed: back-off",
			desired: []nodeapi.PodSpec{web},
			gate:    open,
			books: map[string]*Book{"uid-web": func() *Book {
				b := bookOf(web, nil)
				b.Sandbox = Retry{}.Fail(testPolicy, "FailedCreatePodSandBox", "boom", at(0))
				return b
			}()},
			now:  at(5 * time.Second),
			want: []string{"uid-web:  wake=+10s"},
		},
		{
			name:    "sandbox creation back-off over: retried",
			desired: []nodeapi.PodSpec{web},
			gate:    open,
			books: map[string]*Book{"uid-web": func() *Book {
				b := bookOf(web, nil)
				b.Sandbox = Retry{}.Fail(testPolicy, "FailedCreatePodSandBox", "boom", at(0))
				return b
			}()},
			now:  at(10 * time.Second),
			want: []string{"uid-web: CreateSandbox #0; StartContainer web#0; StartContainer side#0"},
		},
		{
			name:    "running pod: nothing to do",
			desired: []nodeapi.PodSpec{web},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 0, true)},
				Containers: []cri.ContainerStatus{ctr(web, "s1", "web", 0, cri.ContainerRunning), ctr(web, "s1", "side", 0, cri.ContainerRunning)}},
			books: map[string]*Book{"uid-web": bookOf(web, map[string]uint32{"web": 1, "side": 1})},
			gate:  open,
			want:  nil,
		},
		{
			name:    "a missing container is started in the running sandbox",
			desired: []nodeapi.PodSpec{web},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 0, true)},
				Containers: []cri.ContainerStatus{ctr(web, "s1", "web", 0, cri.ContainerRunning)}},
			books: map[string]*Book{"uid-web": bookOf(web, map[string]uint32{"web": 1})},
			gate:  Gate{}, // the gate only holds back new sandboxes
			want:  []string{"uid-web: StartContainer side#0 in s1"},
		},
		{
			name:    "first crash restarts at once",
			desired: []nodeapi.PodSpec{web},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 0, true)},
				Containers: []cri.ContainerStatus{exited(ctr(web, "s1", "web", 0, 0), 1, at(0), at(time.Second)),
					ctr(web, "s1", "side", 0, cri.ContainerRunning)}},
			books: map[string]*Book{"uid-web": bookOf(web, map[string]uint32{"web": 1, "side": 1})},
			now:   at(time.Second),
			want:  []string{"uid-web: StartContainer web#1 in s1 backoff=10s"},
		},
		{
			name:    "second crash waits for the back-off",
			desired: []nodeapi.PodSpec{web},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 0, true)},
				Containers: []cri.ContainerStatus{
					exited(ctr(web, "s1", "web", 0, 0), 1, at(0), at(time.Second)),
					exited(ctr(web, "s1", "web", 1, 0), 1, at(2*time.Second), at(3*time.Second)),
					ctr(web, "s1", "side", 0, cri.ContainerRunning)}},
			books: map[string]*Book{"uid-web": func() *Book {
				b := bookOf(web, map[string]uint32{"web": 2, "side": 1})
				b.Container("web").Backoff = Backoff{Delay: 10 * time.Second, Since: at(time.Second)}
				return b
			}()},
			now:  at(5 * time.Second),
			want: []string{"uid-web:  wake=+13s"},
		},
		{
			name:    "back-off over: restart with the doubled delay kept; older instances collected",
			desired: []nodeapi.PodSpec{web},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 0, true)},
				Containers: []cri.ContainerStatus{
					exited(ctr(web, "s1", "web", 0, 0), 1, at(0), at(time.Second)),
					exited(ctr(web, "s1", "web", 1, 0), 1, at(2*time.Second), at(3*time.Second)),
					exited(ctr(web, "s1", "web", 2, 0), 1, at(14*time.Second), at(15*time.Second)),
					ctr(web, "s1", "side", 0, cri.ContainerRunning)}},
			books: map[string]*Book{"uid-web": func() *Book {
				b := bookOf(web, map[string]uint32{"web": 3, "side": 1})
				b.Container("web").Backoff = Backoff{Delay: 20 * time.Second, Since: at(3 * time.Second)}
				return b
			}()},
			now:  at(35 * time.Second),
			want: []string{"uid-web: RemoveContainer s1-web-0; StartContainer web#3 in s1 backoff=40s"},
		},
		{
			name:    "a container that ran 10 minutes restarts at once with a fresh back-off",
			desired: []nodeapi.PodSpec{web},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 0, true)},
				Containers: []cri.ContainerStatus{
					exited(ctr(web, "s1", "web", 4, 0), 1, at(0), at(11*time.Minute)),
					ctr(web, "s1", "side", 0, cri.ContainerRunning)}},
			books: map[string]*Book{"uid-web": func() *Book {
				b := bookOf(web, map[string]uint32{"web": 5, "side": 1})
				b.Container("web").Backoff = Backoff{Delay: 5 * time.Minute, Since: at(-time.Minute)}
				return b
			}()},
			now:  at(11 * time.Minute),
			want: []string{"uid-web: StartContainer web#5 in s1 backoff=10s"},
		},
		{
			name:    "OnFailure: success is not restarted, failure is",
			desired: []nodeapi.PodSpec{job, func() nodeapi.PodSpec { p := job; p.UID = "uid-job2"; p.Name = "job2"; return p }()},
			obs: Observed{
				Sandboxes: []cri.SandboxStatus{sb(job, "s1", 0, true),
					sb(func() nodeapi.PodSpec { p := job; p.UID = "uid-job2"; p.Name = "job2"; return p }(), "s2", 0, true)},
				Containers: []cri.ContainerStatus{
					exited(ctr(job, "s1", "main", 0, 0), 0, at(0), at(time.Second)),
					exited(ctr(func() nodeapi.PodSpec { p := job; p.UID = "uid-job2"; return p }(), "s2", "main", 0, 0), 2, at(0), at(time.Second))}},
			now:  at(2 * time.Second),
			want: []string{"uid-job2: StartContainer main#1 in s2 backoff=10s"},
		},
		{
			name:    "Never: an exited container stays exited",
			desired: []nodeapi.PodSpec{once},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(once, "s1", 0, true)},
				Containers: []cri.ContainerStatus{exited(ctr(once, "s1", "main", 0, 0), 1, at(0), at(time.Second))}},
			now:  at(2 * time.Second),
			want: nil,
		},
		{
			name:    "terminal pod: its sandbox is stopped, containers kept",
			desired: []nodeapi.PodSpec{once},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(once, "s1", 0, true)},
				Containers: []cri.ContainerStatus{exited(ctr(once, "s1", "main", 0, 0), 1, at(0), at(time.Second))}},
			books: map[string]*Book{"uid-once": func() *Book { b := bookOf(once, nil); b.Terminal = nodeapi.PodFailed; return b }()},
			now:   at(2 * time.Second),
			want:  []string{"uid-once: StopSandbox s1"},
		},
		{
			name:    "init containers: the first one starts alone",
			desired: []nodeapi.PodSpec{initPod},
			gate:    open,
			want:    []string{"uid-ini: CreateSandbox #0; StartContainer i1#0 init"},
		},
		{
			name:    "init containers: wait while one runs",
			desired: []nodeapi.PodSpec{initPod},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(initPod, "s1", 0, true)},
				Containers: []cri.ContainerStatus{ctr(initPod, "s1", "i1", 0, cri.ContainerRunning)}},
			want: nil,
		},
		{
			name:    "init containers: in order, then the app",
			desired: []nodeapi.PodSpec{initPod},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(initPod, "s1", 0, true)},
				Containers: []cri.ContainerStatus{exited(ctr(initPod, "s1", "i1", 0, 0), 0, at(0), at(time.Second))}},
			want: []string{"uid-ini: StartContainer i2#0 in s1 init"},
		},
		{
			name:    "init containers done: the app starts",
			desired: []nodeapi.PodSpec{initPod},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(initPod, "s1", 0, true)},
				Containers: []cri.ContainerStatus{exited(ctr(initPod, "s1", "i1", 0, 0), 0, at(0), at(time.Second)),
					exited(ctr(initPod, "s1", "i2", 0, 0), 0, at(time.Second), at(2*time.Second))}},
			want: []string{"uid-ini: StartContainer app#0 in s1"},
		},
		{
			name:    "failed init container is restarted (Always)",
			desired: []nodeapi.PodSpec{initPod},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(initPod, "s1", 0, true)},
				Containers: []cri.ContainerStatus{exited(ctr(initPod, "s1", "i1", 0, 0), 3, at(0), at(time.Second))}},
			books: map[string]*Book{"uid-ini": bookOf(initPod, map[string]uint32{"i1": 1})},
			now:   at(time.Second),
			want:  []string{"uid-ini: StartContainer i1#1 in s1 init backoff=10s"},
		},
		{
			name:    "failed init container with Never: the pod failed, nothing runs",
			desired: []nodeapi.PodSpec{initNever},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(initNever, "s1", 0, true)},
				Containers: []cri.ContainerStatus{exited(ctr(initNever, "s1", "i1", 0, 0), 3, at(0), at(time.Second))}},
			want: nil,
		},
		{
			name:    "init is not rerun once the app ran in the sandbox",
			desired: []nodeapi.PodSpec{initPod},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(initPod, "s1", 0, true)},
				Containers: []cri.ContainerStatus{ctr(initPod, "s1", "app", 0, cri.ContainerRunning)}},
			want: nil,
		},
		{
			name:    "liveness failure kills the container",
			desired: []nodeapi.PodSpec{live},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(live, "s1", 0, true)},
				Containers: []cri.ContainerStatus{ctr(live, "s1", "app", 0, cri.ContainerRunning)}},
			probes: Probes{{ContainerID: "s1-app-0", Kind: probe.Liveness}: probe.Failure},
			want:   []string{"uid-live: KillContainer s1-app-0: Container app failed liveness probe, will be restarted"},
		},
		{
			name:    "a changed container definition restarts the container",
			desired: []nodeapi.PodSpec{changed},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 0, true)},
				Containers: []cri.ContainerStatus{ctr(web, "s1", "web", 0, cri.ContainerRunning), ctr(web, "s1", "side", 0, cri.ContainerRunning)}},
			want: []string{"uid-web: KillContainer s1-web-0: Container web definition changed, will be restarted"},
		},
		{
			name:    "a container no longer in the spec is stopped",
			desired: []nodeapi.PodSpec{podOf("web", nodeapi.RestartAlways, "web")},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 0, true)},
				Containers: []cri.ContainerStatus{ctr(web, "s1", "web", 0, cri.ContainerRunning), ctr(web, "s1", "side", 0, cri.ContainerRunning)}},
			want: []string{"uid-web: KillContainer s1-side-0: Container side is no longer in the pod spec"},
		},
		{
			name:    "a dead sandbox is replaced and the containers start again",
			desired: []nodeapi.PodSpec{web},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 2, false)},
				Containers: []cri.ContainerStatus{exited(ctr(web, "s1", "web", 3, 0), 255, at(0), at(time.Second))}},
			books: map[string]*Book{"uid-web": bookOf(web, map[string]uint32{"web": 4})},
			gate:  open,
			want:  []string{"uid-web: KillSandbox s1; CreateSandbox #3; StartContainer web#4; StartContainer side#0"},
		},
		{
			name:    "Never: a dead sandbox whose containers ran is not replaced",
			desired: []nodeapi.PodSpec{once},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(once, "s1", 0, false)},
				Containers: []cri.ContainerStatus{exited(ctr(once, "s1", "main", 0, 0), 255, at(0), at(time.Second))}},
			gate: open,
			want: nil,
		},
		{
			name: "a pod no longer desired is deleted",
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 0, true)},
				Containers: []cri.ContainerStatus{ctr(web, "s1", "web", 0, cri.ContainerRunning)}},
			want: []string{"uid-web: DeletePod"},
		},
		{
			name:  "a pod known only from its state file is cleaned up",
			books: map[string]*Book{"uid-gone": {UID: "uid-gone"}},
			want:  []string{"uid-gone: DeletePod"},
		},
		{
			name: "a failing deletion backs off",
			books: map[string]*Book{"uid-gone": {UID: "uid-gone",
				Delete: Retry{}.Fail(testPolicy, "FailedDelete", "busy", at(0))}},
			now:  at(time.Second),
			want: []string{"uid-gone:  wake=+10s"},
		},
		{
			name:    "new UID for the same name: the old pod goes first, the new one waits",
			desired: []nodeapi.PodSpec{replaced},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 0, true)},
				Containers: []cri.ContainerStatus{ctr(web, "s1", "web", 0, cri.ContainerRunning)}},
			gate: open,
			want: []string{"uid-web: DeletePod"},
		},
		{
			name:    "new UID: created once the old one is gone",
			desired: []nodeapi.PodSpec{replaced},
			gate:    open,
			want:    []string{"uid-web-2: CreateSandbox #0; StartContainer web#0; StartContainer side#0"},
		},
		{
			name:    "pods with work in flight are not planned",
			desired: []nodeapi.PodSpec{web},
			gate:    open,
			skip:    map[string]bool{"uid-web": true},
			want:    nil,
		},
		{
			name:    "image pull failing: back-off before the next try",
			desired: []nodeapi.PodSpec{web},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 0, true)},
				Containers: []cri.ContainerStatus{ctr(web, "s1", "side", 0, cri.ContainerRunning)}},
			books: map[string]*Book{"uid-web": func() *Book {
				b := bookOf(web, map[string]uint32{"side": 1})
				b.Container("web").Pull = Retry{}.Fail(testPolicy, nodeapi.ReasonErrImagePull, "not found", at(0))
				return b
			}()},
			now:  at(3 * time.Second),
			want: []string{"uid-web:  wake=+10s"},
		},
		{
			name:    "a created but never started container is started",
			desired: []nodeapi.PodSpec{once},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(once, "s1", 0, true)},
				Containers: []cri.ContainerStatus{ctr(once, "s1", "main", 0, cri.ContainerCreated)}},
			want: []string{"uid-once: StartContainer main#0 in s1 id=s1-main-0"},
		},
		{
			name:    "containers of a vanished sandbox are removed; an older sandbox is killed",
			desired: []nodeapi.PodSpec{once},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(once, "s0", 0, false), sb(once, "s1", 1, true)},
				Containers: []cri.ContainerStatus{ctr(once, "s1", "main", 0, cri.ContainerRunning),
					exited(ctr(once, "gone", "main", 0, 0), 0, at(0), at(time.Second))}},
			want: []string{"uid-once: KillSandbox s0; RemoveContainer gone-main-0"},
		},
		{
			name:    "changed files volumes are synced",
			desired: []nodeapi.PodSpec{withFiles},
			obs: Observed{Sandboxes: []cri.SandboxStatus{sb(web, "s1", 0, true)},
				Containers: []cri.ContainerStatus{ctr(web, "s1", "web", 0, cri.ContainerRunning), ctr(web, "s1", "side", 0, cri.ContainerRunning)}},
			books: map[string]*Book{"uid-web": func() *Book { b := bookOf(withFiles, nil); b.volumesHash = "old"; return b }()},
			want:  []string{"uid-web: SyncVolumes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			books := tt.books
			if books == nil {
				books = map[string]*Book{}
			}
			for _, p := range tt.desired {
				if books[p.UID] == nil {
					books[p.UID] = bookOf(p, nil)
				}
			}
			for uid, o := range groupByUID(tt.obs) {
				if b := books[uid]; b != nil {
					updateBook(b, o)
				}
			}
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			got := render(Plan(Input{Desired: tt.desired, Observed: tt.obs, Books: books, Probes: tt.probes, Gate: tt.gate,
				Now: now, Backoff: testPolicy, Skip: tt.skip}))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	p := BackoffPolicy{Base: 10 * time.Second, Max: 40 * time.Second, Reset: 10 * time.Minute}
	var b Backoff
	failed := at(0)
	var delays []time.Duration
	for i := 0; i < 6; i++ {
		due, next := p.RestartAt(b, failed.Add(-time.Second), failed)
		delays = append(delays, due.Sub(failed))
		b = next
		failed = due.Add(2 * time.Second) // runs 2s, crashes again
	}
	if diff := cmp.Diff([]time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 40 * time.Second, 40 * time.Second}, delays); diff != "" {
		t.Errorf("restart delays (-want +got):\n%s", diff)
	}
	// A long run starts over: immediate restart, then Base.
	due, next := p.RestartAt(b, failed, failed.Add(10*time.Minute))
	if !due.Equal(failed.Add(10*time.Minute)) || next.Delay != p.Base {
		t.Errorf("after a 10-minute run: due %s next %+v", due.Sub(failed), next)
	}
	// So does a failure long after the previous one.
	due, next = p.RestartAt(b, time.Time{}, b.Since.Add(11*time.Minute))
	if !due.Equal(b.Since.Add(11*time.Minute)) || next.Delay != p.Base {
		t.Errorf("after a quiet spell: due %s next %+v", due.Sub(b.Since), next)
	}

	// Retries (pulls, sandboxes) wait from the first failure on.
	var r Retry
	var waits []time.Duration
	now := at(0)
	for i := 0; i < 4; i++ {
		r = r.Fail(p, nodeapi.ReasonErrImagePull, "nope", now)
		waits = append(waits, r.Due().Sub(now))
		now = r.Due()
	}
	if diff := cmp.Diff([]time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 40 * time.Second}, waits); diff != "" {
		t.Errorf("retry waits (-want +got):\n%s", diff)
	}
	if r = r.Succeed(); r.Failing() || !r.Due().IsZero() || r.Backoff.Delay != 40*time.Second {
		t.Errorf("after success: %+v", r)
	}
}

func TestSafeUID(t *testing.T) {
	for uid, ok := range map[string]bool{"2f9c-11": true, "..": false, "a/b": false, ".": false, "": false, "../../etc": false} {
		if SafeUID(uid) != ok {
			t.Errorf("SafeUID(%q) = %v", uid, !ok)
		}
		// The node contract refuses such UIDs in the first place.
		p := nodeapi.PodSpec{UID: uid, Namespace: "default", Name: "web", RestartPolicy: nodeapi.RestartAlways,
			Containers: []nodeapi.ContainerSpec{{Name: "c", Image: "busybox"}}}
		if err := p.Validate(); (err == nil) != ok {
			t.Errorf("Validate with uid %q: %v", uid, err)
		}
	}
	// Sandboxes with unsafe UID labels are not ours: never planned.
	evil := podOf("evil", nodeapi.RestartAlways, "c")
	evil.UID = "../../etc"
	if got := Plan(Input{Observed: Observed{Sandboxes: []cri.SandboxStatus{sb(evil, "s1", 0, true)}}, Now: t0}); len(got) != 0 {
		t.Errorf("planned %v", render(got))
	}
}
