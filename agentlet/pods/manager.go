package pods

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/agentlet/probe"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// Runtime is the container runtime as the pod manager uses it (CRI).
// *cri.Client is the real one, *cri.Fake the fake.
type Runtime interface {
	RunPodSandbox(ctx context.Context, cfg *cri.SandboxConfig) (string, error)
	StopPodSandbox(ctx context.Context, id string) error
	RemovePodSandbox(ctx context.Context, id string) error
	PodSandboxStatus(ctx context.Context, id string) (cri.SandboxStatus, error)
	ListPodSandbox(ctx context.Context) ([]cri.Sandbox, error)
	CreateContainer(ctx context.Context, sandboxID string, cfg *cri.ContainerConfig, sandbox *cri.SandboxConfig) (string, error)
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, timeout time.Duration) error
	RemoveContainer(ctx context.Context, id string) error
	ListContainers(ctx context.Context) ([]cri.Container, error)
	ContainerStatus(ctx context.Context, id string) (cri.ContainerStatus, error)
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (cri.ExecResult, error)
	ImageStatus(ctx context.Context, ref string) (cri.Image, error)
	PullImage(ctx context.Context, ref string, auth *cri.Auth, sandbox *cri.SandboxConfig) (string, error)
	ListImages(ctx context.Context) ([]cri.Image, error)
	RemoveImage(ctx context.Context, ref string) error
	ImageFsInfo(ctx context.Context) ([]cri.FsUsage, error)
}

// HookRunner runs lifecycle handlers (preStop); probe.Handlers is the real one.
type HookRunner interface {
	Do(ctx context.Context, containerID, podIP string, h nodeapi.Handler, timeout time.Duration) (bool, string)
}

// Logger is the daemon's log.
type Logger interface {
	Info(msg string, kv ...any)
	Warn(msg string, kv ...any)
	Error(msg string, kv ...any)
}

// Config wires a Manager. Runtime, Layout, Mounter, Now and Log are required.
type Config struct {
	Runtime Runtime
	// ProbeRunner runs probes (nil: probes never run, readiness stays false).
	ProbeRunner probe.Runner
	// MaxProbes is how many probes run at once (default 16).
	MaxProbes int
	Hooks     HookRunner
	Mounter   Mounter
	Layout    Layout
	Cgroups   Cgroups
	// RemoveCgroup removes a pod's cgroup once the pod is gone (nil: left alone).
	RemoveCgroup func(ctx context.Context, cgroup string) error
	Backoff      BackoffPolicy
	ImageGC      ImageGCPolicy
	// Statfs reports the capacity and free bytes of a file system (image GC).
	Statfs     func(path string) (capacity, available uint64, err error)
	PauseImage string
	// MaxParallel is how many pods are worked on at once (default 8).
	MaxParallel int
	Now         func() time.Time
	Log         Logger
	// Wake asks the daemon for a Sync soon: work finished, a probe
	// changed, a back-off expires. Nil: Sync runs on its own schedule.
	Wake func()
}

// Manager runs the pods of a NodeSpec: each Sync observes the runtime,
// plans (pure), hands each pod's actions to a worker goroutine (one per
// pod at a time, at most MaxParallel at once) and returns the pods'
// statuses. Probes run on their own timers in Run.
type Manager struct {
	cfg    Config
	prober *probe.Manager
	ctx    context.Context // workers' context, cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}

	mu       sync.Mutex
	loaded   bool
	books    map[string]*Book
	dirty    map[string]bool
	specs    map[string]*nodeapi.PodSpec // the last desired spec of each pod
	busy     map[string]bool
	done     map[string]uint64 // seq when a pod's last worker finished
	seq      uint64
	ips      map[string]string // sandbox ID → IP
	statuses map[string]cri.ContainerStatus
	timer    *time.Timer
	last     []nodeapi.PodStatus
	images   map[string]*imageSeen
	lastGC   time.Time
	noted    map[string]bool               // back-offs already reported as events
	cancels  map[string]context.CancelFunc // of the running workers, by pod
	deleting map[string]bool               // workers of pods deleted: not cancelled
}

type imageSeen struct {
	first, used time.Time
}

// NewManager returns a manager; run Run in a goroutine for probes, and
// call Close (or cancel Run's context) to stop its workers.
func NewManager(cfg Config) *Manager {
	if cfg.MaxParallel <= 0 {
		cfg.MaxParallel = 8
	}
	if cfg.MaxProbes <= 0 {
		cfg.MaxProbes = 16
	}
	if cfg.Backoff == (BackoffPolicy{}) {
		cfg.Backoff = DefaultBackoff()
	}
	if cfg.ImageGC == (ImageGCPolicy{}) {
		cfg.ImageGC = DefaultImageGC()
	}
	if cfg.Statfs == nil {
		cfg.Statfs = Statfs
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{cfg: cfg, ctx: ctx, cancel: cancel, sem: make(chan struct{}, cfg.MaxParallel),
		books: map[string]*Book{}, dirty: map[string]bool{}, specs: map[string]*nodeapi.PodSpec{},
		busy: map[string]bool{}, done: map[string]uint64{}, ips: map[string]string{},
		statuses: map[string]cri.ContainerStatus{}, images: map[string]*imageSeen{}, noted: map[string]bool{},
		cancels: map[string]context.CancelFunc{}, deleting: map[string]bool{}}
	if cfg.ProbeRunner != nil {
		m.prober = probe.NewManager(cfg.ProbeRunner, cfg.MaxProbes, cfg.Now, m.probeOutcome)
	}
	return m
}

// Run runs the probes until ctx is done, then stops the workers (pods keep
// running: they belong to the runtime) and returns once all have ended.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if m.prober != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.prober.Run(ctx)
		}()
	}
	<-ctx.Done()
	m.Close()
	wg.Wait()
}

// Close cancels the workers and waits for them.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	if m.timer != nil {
		m.timer.Stop()
	}
	m.mu.Unlock()
}

// Wait waits until no worker runs (tests).
func (m *Manager) Wait() { m.wg.Wait() }

func (m *Manager) wake() {
	if m.cfg.Wake != nil {
		m.cfg.Wake()
	}
}

// Sync converges the node's pods to desired (nil runtime errors only stop
// this pass) and returns their statuses, sorted by namespace/name. Pods
// being removed are reported with reason Terminating until they are gone.
func (m *Manager) Sync(ctx context.Context, desired []nodeapi.PodSpec, gate Gate) ([]nodeapi.PodStatus, error) {
	m.load()
	m.mu.Lock()
	seqStart := m.seq
	m.mu.Unlock()

	obs, err := m.observe(ctx)
	if err != nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.last, err
	}
	now := m.cfg.Now()
	grouped := groupByUID(obs)
	var probes Probes
	if m.prober != nil {
		probes = Probes{}
		for k, v := range m.prober.Results() {
			probes[ProbeKey{ContainerID: k.ContainerID, Kind: k.Kind}] = v
		}
	}

	m.mu.Lock()
	for i := range desired {
		spec := &desired[i]
		b := m.books[spec.UID]
		if b == nil {
			b = NewBook(spec, now)
			m.books[spec.UID] = b
			m.dirty[spec.UID] = true
		} else if b.Namespace == "" || b.Grace != spec.TerminationGracePeriodSeconds || len(b.PreStop) != countPreStop(spec) {
			b.UID, b.Namespace, b.Name = spec.UID, spec.Namespace, spec.Name
			b.Remember(spec)
			m.dirty[spec.UID] = true
		}
		if b.StartTime.IsZero() {
			b.StartTime = now
		}
		m.specs[spec.UID] = spec
	}
	for uid, b := range m.books {
		if updateBook(b, grouped[uid]) {
			m.dirty[uid] = true
		}
	}
	for uid, seq := range m.done {
		if seq <= seqStart && m.books[uid] == nil && grouped[uid] == nil {
			delete(m.done, uid) // gone, and observed gone
		}
	}
	for uid, busy := range m.busy {
		if !busy {
			delete(m.busy, uid)
		}
	}
	// A pod that left the spec stops whatever its worker was doing (a long
	// pull, a start); its deletion follows once the worker is done.
	for uid, cancel := range m.cancels {
		if !isDesired(desired, uid) && !m.deleting[uid] {
			cancel()
		}
	}
	skip := map[string]bool{}
	for uid := range m.books {
		if m.busy[uid] || m.done[uid] > seqStart {
			skip[uid] = true
		}
	}
	for uid := range grouped {
		if m.busy[uid] || m.done[uid] > seqStart {
			skip[uid] = true
		}
	}
	if len(m.noted) > 1024 {
		m.noted = map[string]bool{} // at worst a back-off is reported twice
	}
	plans := Plan(Input{Desired: desired, Observed: obs, Books: m.books, Probes: probes, Gate: gate, Now: now,
		Backoff: m.cfg.Backoff, Skip: skip})
	var wake time.Time
	for _, p := range plans {
		if !p.Wake.IsZero() && (wake.IsZero() || p.Wake.Before(wake)) {
			wake = p.Wake
		}
		if len(p.Actions) > 0 {
			m.dispatch(p, grouped[p.UID])
		}
	}

	// Statuses.
	desiredKeys := map[string]bool{}
	var out []nodeapi.PodStatus
	for i := range desired {
		spec := &desired[i]
		desiredKeys[spec.Key()] = true
		b := m.books[spec.UID]
		st := buildStatus(statusInput{Spec: spec, obs: grouped[spec.UID], Book: b, Probes: probes, Gate: gate,
			BlockedBy: blockedBy(spec, grouped, m.books, m.busy), Now: now, Backoff: m.cfg.Backoff})
		// One BackOff event per crashed instance and per failed pull.
		for _, cs := range append(append([]nodeapi.ContainerStatus{}, st.InitContainerStatuses...), st.ContainerStatuses...) {
			w := cs.State.Waiting
			if w == nil {
				continue
			}
			var note, msg string
			switch w.Reason {
			case nodeapi.ReasonCrashLoopBackOff:
				note = cs.ContainerID
				msg = fmt.Sprintf("Back-off restarting failed container %s in pod %s", cs.Name, spec.Key())
			case nodeapi.ReasonImagePullBackOff:
				note = fmt.Sprintf("%s/%s/%s", spec.UID, cs.Name, b.peek(cs.Name).Pull.Backoff.Since)
				msg = fmt.Sprintf("Back-off pulling image %q", cs.Image)
			default:
				continue
			}
			if !m.noted[note] {
				m.noted[note] = true
				b.Event(now, "BackOff", msg)
				m.dirty[spec.UID] = true
			}
		}
		if !conditionsEqual(b.Conditions, st.Conditions) {
			b.Conditions = st.Conditions
			m.dirty[spec.UID] = true
		}
		if b.Terminal == "" && spec.RestartPolicy != nodeapi.RestartAlways &&
			(st.Phase == nodeapi.PodSucceeded || st.Phase == nodeapi.PodFailed) {
			b.Terminal = st.Phase
			b.Event(now, "Completed", "pod "+strings.ToLower(st.Phase))
			m.dirty[spec.UID] = true
			m.wake() // stop its sandbox
		}
		out = append(out, st)
	}
	for uid, b := range m.books {
		if isDesired(desired, uid) {
			continue
		}
		key := b.Namespace + "/" + b.Name
		if b.Namespace == "" || desiredKeys[key] {
			continue
		}
		out = append(out, terminatingStatus(b, grouped[uid], now))
	}
	sortStatuses(out)
	m.last = out

	// Probes follow the running containers.
	if m.prober != nil {
		m.prober.Update(probeTargets(desired, grouped))
	}
	m.scheduleWake(wake, now)
	save := map[string]*Book{}
	for uid := range m.dirty {
		if b := m.books[uid]; b != nil && !m.busy[uid] {
			save[uid] = b.Clone()
			delete(m.dirty, uid)
		}
	}
	m.mu.Unlock()

	var errs []error
	for uid, b := range save {
		if err := saveBook(m.cfg.Layout.PodDir(uid), b); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.imageGC(ctx, obs, desired, now); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

func isDesired(desired []nodeapi.PodSpec, uid string) bool {
	for i := range desired {
		if desired[i].UID == uid {
			return true
		}
	}
	return false
}

func countPreStop(spec *nodeapi.PodSpec) int {
	n := 0
	for _, c := range spec.Containers {
		if c.PreStop != nil {
			n++
		}
	}
	return n
}

func conditionsEqual(a, b []nodeapi.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Status != b[i].Status || a[i].Reason != b[i].Reason ||
			a[i].Message != b[i].Message || !a[i].LastTransitionTime.Equal(b[i].LastTransitionTime) {
			return false
		}
	}
	return true
}

// terminatingStatus reports a pod that is no longer desired but not yet gone.
func terminatingStatus(b *Book, o *podObs, now time.Time) nodeapi.PodStatus {
	st := nodeapi.PodStatus{UID: b.UID, Namespace: b.Namespace, Name: b.Name, Phase: nodeapi.PodRunning,
		Reason: "Terminating", Message: "the pod is no longer in the node spec and is being stopped"}
	if b.Terminal != "" {
		st.Phase = b.Terminal
	}
	if sb := o.latestSandbox(); sb != nil && sb.State == cri.SandboxReady {
		st.PodIP = sb.IP
	}
	st.Conditions = mergeConditions(b.Conditions, []nodeapi.Condition{
		{Type: nodeapi.PodScheduled, Status: nodeapi.True},
		{Type: nodeapi.PodReady, Status: nodeapi.False, Reason: "Terminating"},
	}, now)
	st.Events = append([]nodeapi.Event(nil), b.Events...)
	return st
}

// probeTargets are the probes of every running container of a desired pod.
func probeTargets(desired []nodeapi.PodSpec, grouped map[string]*podObs) []probe.Target {
	var out []probe.Target
	for i := range desired {
		spec := &desired[i]
		o := grouped[spec.UID]
		sb := o.latestSandbox()
		if sb == nil || sb.State != cri.SandboxReady {
			continue
		}
		for _, c := range spec.Containers {
			l := o.latest(sb.ID, c.Name)
			if l == nil || l.State != cri.ContainerRunning {
				continue
			}
			for _, k := range []struct {
				kind probe.Kind
				p    *nodeapi.Probe
			}{{probe.Startup, c.StartupProbe}, {probe.Liveness, c.LivenessProbe}, {probe.Readiness, c.ReadinessProbe}} {
				if k.p == nil {
					continue
				}
				out = append(out, probe.Target{PodUID: spec.UID, Pod: spec.Key(), Container: c.Name, ContainerID: l.ID,
					Kind: k.kind, Probe: *k.p, PodIP: sb.IP, StartedAt: l.StartedAt})
			}
		}
	}
	return out
}

// probeOutcome records probe failures as events and wakes the daemon when
// a result changed (readiness flips, liveness kills).
func (m *Manager) probeOutcome(o probe.Outcome) {
	if !o.OK {
		m.mu.Lock()
		if b := m.books[o.Target.PodUID]; b != nil {
			b.Event(m.cfg.Now(), "Unhealthy", fmt.Sprintf("%s probe failed: %s", o.Target.Kind, o.Output))
			m.dirty[o.Target.PodUID] = true
		}
		m.mu.Unlock()
	}
	if o.Changed {
		m.wake()
	}
}

// scheduleWake arranges a Wake at t (the earliest back-off expiry).
func (m *Manager) scheduleWake(t, now time.Time) {
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	if t.IsZero() || m.cfg.Wake == nil {
		return
	}
	m.timer = time.AfterFunc(max(t.Sub(now), time.Millisecond), m.cfg.Wake)
}

// load reads the books of the pods a previous agentlet ran, once.
func (m *Manager) load() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loaded {
		return
	}
	m.loaded = true
	books, err := loadBooks(m.cfg.Layout.PodsDir)
	if err != nil {
		m.cfg.Log.Warn("load pod state", "err", err)
	}
	for uid, b := range books {
		if m.books[uid] == nil {
			m.books[uid] = b
		}
	}
	if len(books) > 0 {
		m.cfg.Log.Info("loaded pod state", "pods", len(books))
	}
}

// observe lists agentlet's sandboxes and containers, asking for details
// only about what is new or changed since the last pass.
func (m *Manager) observe(ctx context.Context) (Observed, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rt := m.cfg.Runtime
	sbs, err := rt.ListPodSandbox(ctx)
	if err != nil {
		return Observed{}, fmt.Errorf("observe pods: %w", err)
	}
	ctrs, err := rt.ListContainers(ctx)
	if err != nil {
		return Observed{}, fmt.Errorf("observe pods: %w", err)
	}
	var o Observed
	m.mu.Lock()
	ips := m.ips
	cache := m.statuses
	m.mu.Unlock()
	freshIPs := map[string]string{}
	fresh := map[string]cri.ContainerStatus{}
	for _, s := range sbs {
		if !SafeUID(s.Labels[nodeapi.LabelPodUID]) {
			continue
		}
		st := cri.SandboxStatus{Sandbox: s}
		if s.State == cri.SandboxReady {
			ip, ok := ips[s.ID]
			if !ok {
				ss, err := rt.PodSandboxStatus(ctx, s.ID)
				if cri.IsNotFound(err) {
					continue
				}
				if err != nil {
					return Observed{}, fmt.Errorf("observe pods: %w", err)
				}
				ip = ss.IP
			}
			st.IP = ip
			freshIPs[s.ID] = ip
		}
		o.Sandboxes = append(o.Sandboxes, st)
	}
	for _, c := range ctrs {
		if !SafeUID(c.Labels[nodeapi.LabelPodUID]) {
			continue
		}
		cs, ok := cache[c.ID]
		if !ok || cs.State != c.State || c.State == cri.ContainerCreated || c.State == cri.ContainerUnknown {
			cs, err = rt.ContainerStatus(ctx, c.ID)
			if cri.IsNotFound(err) {
				continue
			}
			if err != nil {
				return Observed{}, fmt.Errorf("observe pods: %w", err)
			}
			cs.SandboxID = c.SandboxID
			if cs.Labels == nil {
				cs.Labels = c.Labels
			}
			if cs.Annotations == nil {
				cs.Annotations = c.Annotations
			}
			if cs.State == cri.ContainerExited {
				if msg := readTerminationMessage(cs.Annotations[AnnotationTerminationFile]); msg != "" {
					cs.Message = msg
				}
			}
		}
		fresh[c.ID] = cs
		o.Containers = append(o.Containers, cs)
	}
	m.mu.Lock()
	m.ips, m.statuses = freshIPs, fresh
	m.mu.Unlock()
	return o, nil
}

// MaxTerminationMessage is how much of a termination message file is read.
const MaxTerminationMessage = 4096

func readTerminationMessage(path string) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	data, _ := io.ReadAll(io.LimitReader(f, MaxTerminationMessage))
	return strings.TrimSpace(string(data))
}

// dispatch hands a pod's actions to a worker. Callers hold m.mu.
func (m *Manager) dispatch(p PodPlan, o *podObs) {
	uid := p.UID
	m.busy[uid] = true
	var spec *nodeapi.PodSpec
	if s := m.specs[uid]; s != nil {
		c := *s
		spec = &c
	}
	m.deleting[uid] = p.Actions[0].Kind == DeletePod
	if m.deleting[uid] {
		spec = nil
	}
	ctx, cancel := context.WithCancel(m.ctx)
	m.cancels[uid] = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer m.finish(uid)
		defer cancel()
		select {
		case m.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-m.sem }()
		w := &worker{ctx: ctx, m: m, uid: uid, spec: spec, o: o}
		w.run(p.Actions)
	}()
}

// finish saves a pod's book (still marked busy, so no Sync writes it at
// the same time), marks its worker done and asks for a Sync to see the result.
func (m *Manager) finish(uid string) {
	m.mu.Lock()
	var save *Book
	if b := m.books[uid]; b != nil && m.dirty[uid] {
		save = b.Clone()
		delete(m.dirty, uid)
	}
	m.mu.Unlock()
	if save != nil {
		if err := saveBook(m.cfg.Layout.PodDir(uid), save); err != nil {
			m.cfg.Log.Warn("save pod state", "uid", uid, "err", err)
		}
	}
	m.mu.Lock()
	m.busy[uid] = false
	delete(m.cancels, uid)
	delete(m.deleting, uid)
	m.seq++
	m.done[uid] = m.seq
	m.mu.Unlock()
	m.wake()
}

// withBook runs fn on a pod's book under the lock and marks it dirty.
func (m *Manager) withBook(uid string, fn func(b *Book)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.books[uid]
	if b == nil {
		return
	}
	fn(b)
	m.dirty[uid] = true
}

// event records a pod event.
func (m *Manager) event(uid, reason, message string) {
	now := m.cfg.Now()
	m.withBook(uid, func(b *Book) { b.Event(now, reason, message) })
}

// imageGC removes unused images when the image file system is too full.
func (m *Manager) imageGC(ctx context.Context, o Observed, desired []nodeapi.PodSpec, now time.Time) error {
	pol := m.cfg.ImageGC
	if pol.HighPercent <= 0 || pol.HighPercent > 100 || now.Sub(m.lastGC) < pol.Interval {
		return nil
	}
	m.lastGC = now
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rt := m.cfg.Runtime
	fsInfo, err := rt.ImageFsInfo(ctx)
	if err != nil {
		return fmt.Errorf("image gc: %w", err)
	}
	var capacity, used uint64
	for _, f := range fsInfo {
		if f.Mountpoint == "" {
			continue
		}
		c, avail, err := m.cfg.Statfs(f.Mountpoint)
		if err != nil {
			return fmt.Errorf("image gc: %w", err)
		}
		capacity, used = c, c-avail
		break
	}
	images, err := rt.ListImages(ctx)
	if err != nil {
		return fmt.Errorf("image gc: %w", err)
	}
	inUse := map[string]bool{}
	for _, c := range o.Containers {
		inUse[c.ImageRef] = true
		inUse[c.Image] = true
	}
	for i := range desired {
		for _, c := range append(append([]nodeapi.ContainerSpec{}, desired[i].InitContainers...), desired[i].Containers...) {
			inUse[c.Image] = true
		}
	}
	var infos []ImageInfo
	seen := map[string]bool{}
	for _, img := range images {
		seen[img.ID] = true
		s := m.images[img.ID]
		if s == nil {
			s = &imageSeen{first: now}
			m.images[img.ID] = s
		}
		info := ImageInfo{ID: img.ID, Size: img.Size, FirstSeen: s.first, Pinned: img.Pinned, InUse: inUse[img.ID]}
		for _, ref := range append(append([]string{}, img.RepoTags...), img.RepoDigests...) {
			if inUse[ref] || inUse[strings.TrimPrefix(ref, "docker.io/library/")] || inUse[strings.TrimPrefix(ref, "docker.io/")] {
				info.InUse = true
			}
			if ref == m.cfg.PauseImage {
				info.Pinned = true
			}
		}
		if info.InUse {
			s.used = now
		}
		info.LastUsed = s.used
		infos = append(infos, info)
	}
	for id := range m.images {
		if !seen[id] {
			delete(m.images, id)
		}
	}
	var errs []error
	for _, img := range SelectImages(infos, used, capacity, pol, now) {
		if err := rt.RemoveImage(ctx, img.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		m.cfg.Log.Info("removed unused image", "image", img.ID, "bytes", img.Size,
			"usage", fmt.Sprintf("%d%%", used*100/max(capacity, 1)))
	}
	if len(errs) > 0 {
		return fmt.Errorf("image gc: %w", errors.Join(errs...))
	}
	return nil
}

// sandboxRef is the sandbox a worker starts containers in.
type sandboxRef struct {
	id  string
	ip  string
	cfg *cri.SandboxConfig
}

// worker carries out one pod's actions.
type worker struct {
	ctx  context.Context // cancelled when the manager closes or the pod leaves the spec
	m    *Manager
	uid  string
	spec *nodeapi.PodSpec // nil when deleting
	o    *podObs
	sb   *sandboxRef
	vols map[string]VolumePath
}

func (w *worker) run(actions []Action) {
	log := w.m.cfg.Log
	for _, a := range actions {
		if w.ctx.Err() != nil {
			return
		}
		var err error
		switch a.Kind {
		case CreateSandbox:
			err = w.createSandbox(a.Attempt)
			if err != nil {
				log.Warn("create pod sandbox", "pod", w.key(), "err", err)
				return // the containers need it
			}
		case SyncVolumes:
			err = w.prepareVolumes()
		case StartContainer:
			err = w.startContainer(a)
		case KillContainer:
			err = w.killContainer(a.ContainerID, a.Container, a.Reason, a.Message)
		case RemoveContainer:
			err = w.removeContainer(a.ContainerID)
		case KillSandbox:
			err = w.killSandbox(a.SandboxID)
		case StopSandbox:
			ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
			err = w.m.cfg.Runtime.StopPodSandbox(ctx, a.SandboxID)
			cancel()
		case DeletePod:
			err = w.deletePod()
		}
		if err != nil {
			log.Warn("pod action failed", "pod", w.key(), "action", a.String(), "err", err)
		}
	}
}

func (w *worker) key() string {
	if w.spec != nil {
		return w.spec.Key()
	}
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if b := w.m.books[w.uid]; b != nil && b.Namespace != "" {
		return b.Namespace + "/" + b.Name
	}
	return w.uid
}

func (w *worker) book(fn func(b *Book)) { w.m.withBook(w.uid, fn) }

func (w *worker) event(reason, msg string) { w.m.event(w.uid, reason, msg) }

// sandbox returns the ready sandbox to start containers in.
func (w *worker) sandbox(id string) (*sandboxRef, error) {
	if w.sb != nil && (id == "" || id == w.sb.id) {
		return w.sb, nil
	}
	if id == "" {
		return nil, errors.New("no sandbox to start the container in")
	}
	ip := ""
	attempt := uint32(0)
	for _, s := range w.o.sandboxes {
		if s.ID == id {
			ip, attempt = s.IP, s.Attempt
		}
	}
	w.sb = &sandboxRef{id: id, ip: ip, cfg: SandboxConfig(w.spec, attempt, w.m.cfg.Layout, w.m.cfg.Cgroups.PodParent(w.uid))}
	return w.sb, nil
}

func (w *worker) prepareVolumes() error {
	if w.vols != nil {
		return nil
	}
	vols, warnings, err := prepareVolumes(w.spec, w.m.cfg.Layout, w.m.cfg.Mounter)
	for _, warn := range warnings {
		w.event("VolumeWarning", warn)
	}
	if err != nil {
		w.event("FailedMount", "Unable to prepare volumes: "+err.Error())
		return err
	}
	w.vols = vols
	hash := VolumesHash(w.spec)
	w.book(func(b *Book) { b.volumesHash = hash })
	return nil
}

func (w *worker) createSandbox(attempt uint32) error {
	m := w.m
	now := m.cfg.Now()
	if err := os.MkdirAll(m.cfg.Layout.PodDir(w.uid), 0o700); err != nil {
		return fmt.Errorf("create pod directory: %w", err)
	}
	if err := w.prepareVolumes(); err != nil {
		w.book(func(b *Book) { b.Sandbox = b.Sandbox.Fail(m.cfg.Backoff, "FailedMount", err.Error(), now) })
		return err
	}
	logDir := m.cfg.Layout.LogDir(w.spec.Namespace, w.spec.Name, w.uid)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("create pod log directory: %w", err)
	}
	cfg := SandboxConfig(w.spec, attempt, m.cfg.Layout, m.cfg.Cgroups.PodParent(w.uid))
	ctx, cancel := context.WithTimeout(w.ctx, 4*time.Minute)
	defer cancel()
	id, err := m.cfg.Runtime.RunPodSandbox(ctx, cfg)
	if err != nil {
		w.event("FailedCreatePodSandBox", "Failed to create pod sandbox: "+err.Error())
		w.book(func(b *Book) {
			b.Sandbox = b.Sandbox.Fail(m.cfg.Backoff, "FailedCreatePodSandBox", err.Error(), m.cfg.Now())
		})
		return err
	}
	st, err := m.cfg.Runtime.PodSandboxStatus(ctx, id)
	if err != nil {
		return err
	}
	w.sb = &sandboxRef{id: id, ip: st.IP, cfg: cfg}
	host := cfg.Hostname
	if err := writeAtomic(m.cfg.Layout.HostsFile(w.uid), HostsFileContent(host, st.IP), 0o644); err != nil {
		return err
	}
	w.book(func(b *Book) { b.Sandbox = b.Sandbox.Succeed() })
	m.cfg.Log.Info("started pod sandbox", "pod", w.key(), "sandbox", shortID(id), "ip", st.IP, "attempt", attempt)
	return nil
}

// containerSpec finds a container of the pod by name.
func (w *worker) containerSpec(name string) (*nodeapi.ContainerSpec, bool) {
	for i := range w.spec.InitContainers {
		if w.spec.InitContainers[i].Name == name {
			return &w.spec.InitContainers[i], true
		}
	}
	for i := range w.spec.Containers {
		if w.spec.Containers[i].Name == name {
			return &w.spec.Containers[i], false
		}
	}
	return nil, false
}

func (w *worker) startContainer(a Action) error {
	m := w.m
	rt := m.cfg.Runtime
	c, init := w.containerSpec(a.Container)
	if c == nil {
		return fmt.Errorf("container %s is not in the pod spec", a.Container)
	}
	ctx, cancel := context.WithTimeout(w.ctx, 2*time.Minute)
	defer cancel()
	if a.ContainerID != "" {
		if err := rt.StartContainer(ctx, a.ContainerID); err != nil {
			w.event("Failed", "Error: "+err.Error())
			return err
		}
		w.event("Started", "Started container "+c.Name)
		return nil
	}
	sb, err := w.sandbox(a.SandboxID)
	if err != nil {
		return err
	}
	if err := w.ensureImage(c, sb); err != nil {
		return err
	}
	fail := func(reason string, err error) error {
		w.event("Failed", "Error: "+err.Error())
		w.book(func(b *Book) {
			cb := b.Container(c.Name)
			cb.Create = cb.Create.Fail(m.cfg.Backoff, reason, err.Error(), m.cfg.Now())
		})
		return err
	}
	if err := w.prepareVolumes(); err != nil {
		return fail(nodeapi.ReasonCreateContainerConfigError, err)
	}
	cfg, err := ContainerConfig(w.spec, c, ContainerInput{Attempt: a.Attempt, Init: init, PodIP: sb.ip, Volumes: w.vols,
		HostsFile: m.cfg.Layout.HostsFile(w.uid)}, m.cfg.Layout)
	if err != nil {
		return fail(nodeapi.ReasonCreateContainerConfigError, err)
	}
	if err := w.prepareContainerFiles(c, cfg); err != nil {
		return fail(nodeapi.ReasonCreateContainerConfigError, err)
	}
	id, err := rt.CreateContainer(ctx, sb.id, cfg, sb.cfg)
	if err != nil {
		return fail(nodeapi.ReasonCreateContainerError, err)
	}
	w.book(func(b *Book) {
		cb := b.Container(c.Name)
		cb.Attempts = max(cb.Attempts, a.Attempt+1)
		cb.Create = cb.Create.Succeed()
		if a.Backoff != nil {
			cb.Backoff = *a.Backoff
		}
	})
	w.event("Created", "Created container "+c.Name)
	if err := rt.StartContainer(ctx, id); err != nil {
		w.event("Failed", "Error: "+err.Error())
		return err
	}
	w.event("Started", "Started container "+c.Name)
	if a.Attempt > 0 {
		m.cfg.Log.Info("restarted container", "pod", w.key(), "container", c.Name, "restartCount", a.Attempt)
	}
	return nil
}

// prepareContainerFiles makes the log directory, the termination message
// file and emptyDir subPath directories of a container instance.
func (w *worker) prepareContainerFiles(c *nodeapi.ContainerSpec, cfg *cri.ContainerConfig) error {
	l := w.m.cfg.Layout
	if err := os.MkdirAll(filepath.Join(l.LogDir(w.spec.Namespace, w.spec.Name, w.uid), c.Name), 0o755); err != nil {
		return fmt.Errorf("create container log directory: %w", err)
	}
	if f := cfg.Annotations[AnnotationTerminationFile]; f != "" {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return fmt.Errorf("create termination message file: %w", err)
		}
		if err := os.WriteFile(f, nil, 0o666); err != nil {
			return fmt.Errorf("create termination message file: %w", err)
		}
		if err := os.Chmod(f, 0o666); err != nil { // writable by any container user
			return fmt.Errorf("create termination message file: %w", err)
		}
	}
	for _, vm := range c.VolumeMounts {
		if v := w.vols[vm.Name]; v.Dir && vm.SubPath != "" {
			p, err := SubPath(v.Path, vm.SubPath)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(p, 0o777); err != nil {
				return fmt.Errorf("create subPath %s: %w", vm.SubPath, err)
			}
		}
	}
	return nil
}

// ensureImage applies the pull policy, with registry credentials.
func (w *worker) ensureImage(c *nodeapi.ContainerSpec, sb *sandboxRef) error {
	m := w.m
	rt := m.cfg.Runtime
	fail := func(reason, msg string, err error) error {
		w.event("Failed", msg)
		w.book(func(b *Book) {
			cb := b.Container(c.Name)
			cb.Pull = cb.Pull.Fail(m.cfg.Backoff, reason, msg, m.cfg.Now())
		})
		return err
	}
	present := false
	if c.ImagePullPolicy != nodeapi.PullAlways {
		ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
		img, err := rt.ImageStatus(ctx, c.Image)
		cancel()
		if err != nil {
			return fail(nodeapi.ReasonErrImagePull, err.Error(), err)
		}
		present = img.Present
	}
	pull, never := PullPolicy(c.ImagePullPolicy, present)
	switch {
	case never:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
		return fail(nodeapi.ReasonErrImageNeverPull, msg, errors.New(msg))
	case pull:
		w.event("Pulling", fmt.Sprintf("Pulling image %q", c.Image))
		start := time.Now()
		ctx, cancel := context.WithTimeout(w.ctx, 10*time.Minute)
		_, err := rt.PullImage(ctx, c.Image, AuthFor(c.Image, w.spec.RegistryAuth), sb.cfg)
		cancel()
		if err != nil {
			return fail(nodeapi.ReasonErrImagePull, fmt.Sprintf("Failed to pull image %q: %v", c.Image, err), err)
		}
		w.event("Pulled", fmt.Sprintf("Successfully pulled image %q in %s", c.Image, time.Since(start).Round(time.Millisecond)))
	default:
		w.event("Pulled", fmt.Sprintf("Container image %q already present on machine", c.Image))
	}
	w.book(func(b *Book) {
		cb := b.Container(c.Name)
		cb.Pull = cb.Pull.Succeed()
	})
	return nil
}

// grace is the pod's termination grace period (at least 2 seconds, as kubelet).
func (w *worker) grace() (time.Duration, map[string]nodeapi.Handler) {
	var secs int64
	var hooks map[string]nodeapi.Handler
	w.book(func(b *Book) { secs, hooks = b.Grace, b.PreStop })
	if w.spec != nil {
		secs = w.spec.TerminationGracePeriodSeconds
		hooks = map[string]nodeapi.Handler{}
		for _, c := range w.spec.Containers {
			if c.PreStop != nil {
				hooks[c.Name] = *c.PreStop
			}
		}
	}
	return max(time.Duration(secs)*time.Second, 2*time.Second), hooks
}

// podIP is the IP of the pod's ready sandbox, "" for none.
func (w *worker) podIP() string {
	if sb := w.o.latestSandbox(); sb != nil && sb.State == cri.SandboxReady {
		return sb.IP
	}
	return ""
}

// killContainer runs the preStop hook, then stops the container with what
// is left of the grace period.
func (w *worker) killContainer(id, name, reason, message string) error {
	m := w.m
	grace, hooks := w.grace()
	if message == "" {
		message = "Stopping container " + name
	}
	if reason == "" {
		reason = "Killing"
	}
	w.event(reason, message)
	if w.spec != nil {
		m.cfg.Log.Info("killing container", "pod", w.key(), "container", name, "reason", message)
	}
	start := time.Now()
	if h, ok := hooks[name]; ok && m.cfg.Hooks != nil {
		ctx, cancel := context.WithTimeout(w.ctx, grace)
		ok, out := m.cfg.Hooks.Do(ctx, id, w.podIP(), h, grace)
		cancel()
		if !ok {
			w.event("FailedPreStopHook", fmt.Sprintf("PreStopHook failed: %s", out))
		}
	}
	// What is left of the grace period, in the whole seconds CRI takes.
	left := max(grace-time.Since(start), 2*time.Second)
	left = (left + time.Second - 1).Truncate(time.Second)
	ctx, cancel := context.WithTimeout(w.ctx, left+time.Minute)
	defer cancel()
	if err := m.cfg.Runtime.StopContainer(ctx, id, left); err != nil && !cri.IsNotFound(err) {
		return err
	}
	return nil
}

// removeContainer removes an exited container and its log file.
func (w *worker) removeContainer(id string) error {
	var logPath string
	for _, c := range w.o.containers {
		if c.ID == id {
			logPath = c.LogPath
		}
	}
	ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
	defer cancel()
	if err := w.m.cfg.Runtime.RemoveContainer(ctx, id); err != nil && !cri.IsNotFound(err) {
		return err
	}
	if logPath != "" {
		if err := os.Remove(logPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove container log: %w", err)
		}
	}
	return nil
}

// killAll stops the running containers of the sandboxes in ids (all when
// nil) gracefully, in parallel.
func (w *worker) killAll(ids map[string]bool) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, c := range w.o.containers {
		if c.State != cri.ContainerRunning || ids != nil && !ids[c.SandboxID] {
			continue
		}
		wg.Add(1)
		go func(c cri.ContainerStatus) {
			defer wg.Done()
			if err := w.killContainer(c.ID, c.Name, "Killing", "Stopping container "+c.Name); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// killSandbox stops a sandbox's containers gracefully, then removes it.
func (w *worker) killSandbox(id string) error {
	if err := w.killAll(map[string]bool{id: true}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(w.ctx, 2*time.Minute)
	defer cancel()
	rt := w.m.cfg.Runtime
	if err := rt.StopPodSandbox(ctx, id); err != nil && !cri.IsNotFound(err) {
		return err
	}
	if err := rt.RemovePodSandbox(ctx, id); err != nil && !cri.IsNotFound(err) {
		return err
	}
	return nil
}

// deletePod removes everything of a pod no longer desired.
func (w *worker) deletePod() error {
	m := w.m
	err := w.removeAll()
	if err != nil {
		now := m.cfg.Now()
		w.book(func(b *Book) { b.Delete = b.Delete.Fail(m.cfg.Backoff, "FailedDelete", err.Error(), now) })
		return err
	}
	m.mu.Lock()
	b := m.books[w.uid]
	delete(m.books, w.uid)
	delete(m.dirty, w.uid)
	delete(m.specs, w.uid)
	m.mu.Unlock()
	key := w.uid
	if b != nil && b.Namespace != "" {
		key = b.Namespace + "/" + b.Name
	}
	m.cfg.Log.Info("removed pod", "pod", key, "uid", w.uid)
	return nil
}

func (w *worker) removeAll() error {
	m := w.m
	rt := m.cfg.Runtime
	if len(w.o.containers) > 0 {
		m.cfg.Log.Info("stopping pod", "pod", w.key(), "uid", w.uid)
	}
	if err := w.killAll(nil); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(w.ctx, 2*time.Minute)
	defer cancel()
	for _, s := range w.o.sandboxes {
		if err := rt.StopPodSandbox(ctx, s.ID); err != nil && !cri.IsNotFound(err) {
			return err
		}
		if err := rt.RemovePodSandbox(ctx, s.ID); err != nil && !cri.IsNotFound(err) {
			return err
		}
	}
	for _, c := range w.o.containers {
		if err := rt.RemoveContainer(ctx, c.ID); err != nil && !cri.IsNotFound(err) {
			return err
		}
	}
	l := m.cfg.Layout
	dir := l.PodDir(w.uid)
	if err := m.cfg.Mounter.UnmountAll(dir); err != nil {
		return err
	}
	var ns, name string
	w.book(func(b *Book) { ns, name = b.Namespace, b.Name })
	if ns != "" {
		if err := os.RemoveAll(l.LogDir(ns, name, w.uid)); err != nil {
			return fmt.Errorf("remove pod logs: %w", err)
		}
	} else if dirs, _ := filepath.Glob(filepath.Join(l.LogsDir, "*_"+w.uid)); len(dirs) > 0 {
		for _, d := range dirs {
			if err := os.RemoveAll(d); err != nil {
				return fmt.Errorf("remove pod logs: %w", err)
			}
		}
	}
	if m.cfg.RemoveCgroup != nil {
		cctx, ccancel := context.WithTimeout(w.ctx, 10*time.Second)
		err := m.cfg.RemoveCgroup(cctx, m.cfg.Cgroups.PodParent(w.uid))
		ccancel()
		if err != nil {
			m.cfg.Log.Warn("remove pod cgroup", "uid", w.uid, "err", err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove pod directory: %w", err)
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}
