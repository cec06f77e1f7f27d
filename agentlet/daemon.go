package agentlet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/agentlet/cron"
	"github.com/clusterctl/clusterctl/agentlet/netfilter"
	"github.com/clusterctl/clusterctl/agentlet/pods"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/version"
)

// pauseRef is the sandbox image agentlet keeps in the runtime.
const pauseRef = version.PauseImage

// DefaultInterval is the daemon's tick interval.
const DefaultInterval = 2 * time.Second

// DefaultUsageInterval is the time between two resource usage samples:
// the window CPU rates are averaged over (kubelet's cAdvisor samples every
// 10 s, metrics-server scrapes every 15 s).
const DefaultUsageInterval = 10 * time.Second

// DefaultCNIConfDir is where containerd's CRI looks for CNI network configs.
const DefaultCNIConfDir = "/etc/cni/net.d"

// maxMessage caps event and condition messages; they come from errors of
// the runtime and tools, never from spec contents.
const maxMessage = 400

// Runtime is the container runtime as agentlet uses it (CRI). *cri.Client is
// the real one, *cri.Fake the fake.
type Runtime interface {
	Version(ctx context.Context) (cri.Version, error)
	Status(ctx context.Context) (cri.Status, error)
	ImageStatus(ctx context.Context, ref string) (cri.Image, error)
	Close() error
}

// ImageImporter loads an image archive into the runtime's image store (CRI
// has no import call). CtrImporter is the real one.
type ImageImporter interface {
	Import(ctx context.Context, archive []byte) error
}

// Iptables runs the host's iptables tools. *iptables.Exec is the real one,
// *iptables.Fake the fake.
type Iptables interface {
	Restore(ctx context.Context, payload []byte) error
	Save(ctx context.Context, table string) ([]byte, error)
	Check(ctx context.Context, table, chain string, rule []string) (bool, error)
	Insert(ctx context.Context, table, chain string, rule []string) error
}

// PodRuntime runs the NodeSpec's pods. *pods.Manager is the real one.
type PodRuntime interface {
	// Sync converges the pods to desired and returns their statuses.
	Sync(ctx context.Context, desired []nodeapi.PodSpec, gate pods.Gate) ([]nodeapi.PodStatus, error)
	// Run runs the background work (probes) until ctx is done.
	Run(ctx context.Context)
}

// ReasonDNSFailed is the event reason of cluster DNS errors.
const ReasonDNSFailed = "DNSFailed"

// DNSServer converges the node's cluster DNS server to the held spec.
// *dns.Runner is the real one.
type DNSServer interface {
	Apply(spec *nodeapi.NodeSpec) error
	Close() error
}

// ReasonUsageFailed is the event reason of resource usage sampling errors.
const ReasonUsageFailed = "UsageSampleFailed"

// UsageSampler measures the host's and the pods' resource usage.
// *usage.Sampler is the real one.
type UsageSampler interface {
	// SampleNode returns the host's usage since the last call (nil for the first).
	SampleNode(now time.Time) (*nodeapi.NodeUsage, error)
	// SamplePods returns the usage of the pods, by UID, whose running
	// containers all have two samples (one CRI call).
	SamplePods(ctx context.Context, now time.Time) (map[string]*nodeapi.PodUsage, error)
}

// Event reasons of host-gw route and service rule errors.
const (
	ReasonRoutesFailed   = "RoutesFailed"
	ReasonServicesFailed = "ServiceRulesFailed"
)

// NetSyncer converges one part of the node's network to the held spec:
// routes.Syncer (host-gw routes), iptables.ServiceSyncer (service rules).
type NetSyncer interface {
	Sync(ctx context.Context, spec *nodeapi.NodeSpec, unready map[string]bool) error
}

// Daemon is the node loop: every Interval (and on Wake) it observes the
// runtime, converges the host to the held NodeSpec and publishes a
// NodeStatus. Fill every exported field; Run and Tick must not be called
// concurrently.
type Daemon struct {
	Paths      Paths
	CNIConfDir string
	Endpoint   string // runtime endpoint, reported in the status
	Interval   time.Duration
	Arch       string // GOARCH of the sandbox image to import

	Runtime  Runtime
	Importer ImageImporter
	Iptables Iptables
	// Archive returns the sandbox image archive for an architecture
	// (pause.Archive in production).
	Archive func(arch string) ([]byte, error)
	// Facts reads the host's facts (ReadHostFacts in production).
	Facts func() (HostFacts, error)
	Now   func() time.Time
	Log   *Logger
	// Pods runs the spec's pods (nil: pods are not run, as in tests of
	// the node conditions).
	Pods PodRuntime
	// DNS serves the spec's cluster DNS (*dns.Runner in production; nil:
	// none is served).
	DNS DNSServer
	// Routes and Services converge host-gw routes and service rules (nil:
	// not managed).
	Routes, Services NetSyncer
	// Usage measures resource usage (*usage.Sampler in production; nil:
	// none is reported), every UsageInterval and at most once per tick
	// (0: every tick).
	Usage         UsageSampler
	UsageInterval time.Duration
	// LoadLocation resolves CronJob time zones (nil: time.LoadLocation,
	// the host's time zone database).
	LoadLocation func(name string) (*time.Location, error)

	state daemonState
}

// daemonState is what the loop remembers between ticks.
type daemonState struct {
	started     time.Time
	last        *nodeapi.NodeStatus
	events      []nodeapi.Event
	importFails int
	importErr   error
	nextImport  time.Time
	rulesFor    string // cluster pod CIDR whose base rules were last seen in place
	specGen     int64
	specErr     string
	ticked      bool
	pods        []nodeapi.PodStatus // last pod statuses
	usageAt     time.Time           // when usage was last sampled
	podUsage    map[string]*nodeapi.PodUsage
	nodeUsage   *nodeapi.NodeUsage
	cron        cron.State // CronJob runs fired here (agentlet/cron)
	cronLoaded  bool
}

// restore picks up the status a previous daemon published (the run
// directory survives daemon restarts, not reboots), so a restart keeps the
// conditions' transition times and the recent errors.
func (d *Daemon) restore() {
	data, err := os.ReadFile(d.Paths.StatusPath())
	if err != nil {
		return
	}
	prev, err := nodeapi.DecodeNodeStatus(data)
	if err != nil {
		return
	}
	d.state.last = prev
	d.state.events = prev.RecentErrors
	d.state.pods = prev.Pods
}

// Run ticks until ctx is done. A value on wake triggers a tick at once.
func (d *Daemon) Run(ctx context.Context, wake <-chan struct{}) error {
	d.state.started = d.Now()
	d.restore()
	d.Log.Info("daemon started", "version", version.Version, "pid", os.Getpid(),
		"endpoint", d.Endpoint, "interval", d.Interval, "root", d.Paths.Root)
	if d.Pods != nil {
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.Pods.Run(pctx)
		}()
		defer func() {
			cancel()
			<-done
		}()
	}
	if d.DNS != nil {
		defer d.DNS.Close() //nolint:errcheck // shutting down
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-wake:
		}
		if _, err := d.Tick(ctx); err != nil && ctx.Err() == nil {
			d.Log.Error("tick failed", "err", err)
		}
		timer.Reset(d.Interval)
	}
}

// Tick runs one pass of the node loop and publishes the resulting status.
// The error is only about publishing; everything else is in the status.
func (d *Daemon) Tick(ctx context.Context) (*nodeapi.NodeStatus, error) {
	if d.state.started.IsZero() {
		d.state.started = d.Now()
	}
	var o observation
	var problems []problem
	report := func(reason string, err error) {
		if err != nil {
			problems = append(problems, problem{reason: reason, message: clip(err.Error())})
		}
	}

	// The held spec.
	o.spec, _, o.specErr = loadSpec(d.Paths.SpecPath())
	report(ReasonSpecInvalid, o.specErr)
	d.logSpec(o)

	// The runtime: one deadline for all CRI calls of the tick, so a hung
	// runtime cannot stall the heartbeat for more than an interval.
	cctx, cancel := context.WithTimeout(ctx, max(d.Interval, time.Second))
	o.version, o.versionErr = d.Runtime.Version(cctx)
	report(ReasonRuntimeUnreachable, o.versionErr)
	if o.versionErr == nil {
		o.status, o.statusErr = d.Runtime.Status(cctx)
		report(ReasonRuntimeStatus, o.statusErr)
		d.ensureSandboxImage(ctx, cctx, &o)
		if o.imageChecked {
			report(ReasonImageImportFailed, o.imageErr)
		} else {
			report(ReasonImageStatusFailed, o.imageErr)
		}
	}
	cancel()

	o.cniConf, o.cniConfErr = findCNIConf(d.CNIConfDir)
	report(ReasonCNIConfigUnreadable, o.cniConfErr)

	// Pods, only with a valid spec and a reachable runtime: a spec that
	// cannot be read must not stop the pods it ran.
	if d.Pods != nil && o.spec != nil && o.versionErr == nil {
		statuses, err := d.Pods.Sync(ctx, d.cronPods(o.spec, report), podGate(o))
		report(ReasonPodSyncFailed, err)
		d.state.pods = statuses
	}
	if d.Usage != nil {
		d.sampleUsage(ctx, o, report)
	}

	if o.spec != nil {
		o.rulesErr = d.ensureBaseRules(ctx, o.spec)
		report(ReasonRulesFailed, o.rulesErr)
	}
	if d.DNS != nil {
		report(ReasonDNSFailed, d.DNS.Apply(o.spec)) // a nil spec keeps the server
	}
	for _, n := range []struct {
		syncer NetSyncer
		reason string
	}{{d.Routes, ReasonRoutesFailed}, {d.Services, ReasonServicesFailed}} {
		if n.syncer != nil && o.spec != nil {
			report(n.reason, n.syncer.Sync(ctx, o.spec, unreadyPods(d.state.pods)))
		}
	}

	facts, err := d.Facts()
	report(ReasonHostFactsFailed, err)

	now := d.Now()
	st := d.buildStatus(o, facts, now)

	var fresh []problem
	d.state.events, fresh = recordEvents(d.state.events, problems, now)
	st.RecentErrors = d.state.events
	werr := d.publish(st)
	if werr != nil {
		// Kept for the next status that can be published.
		var more []problem
		d.state.events, more = recordEvents(d.state.events,
			[]problem{{reason: ReasonStatusWriteFailed, message: clip(werr.Error())}}, now)
		fresh = append(fresh, more...)
	}
	for _, p := range fresh {
		d.Log.Error("error", "reason", p.reason, "msg", p.message)
	}
	var prev []nodeapi.Condition
	if d.state.last != nil && d.state.ticked {
		prev = d.state.last.Conditions // the first tick logs every condition
	}
	d.state.ticked = true
	for _, c := range conditionChanges(prev, st.Conditions) {
		log := d.Log.Info
		if c.Status != nodeapi.True {
			log = d.Log.Warn
		}
		log("condition", "type", c.Type, "status", c.Status, "reason", c.Reason, "msg", c.Message)
	}
	d.state.last = st
	return st, werr
}

func (d *Daemon) buildStatus(o observation, facts HostFacts, now time.Time) *nodeapi.NodeStatus {
	capacity, allocatable := Capacity(facts)
	st := &nodeapi.NodeStatus{
		APIVersion:      nodeapi.APIVersion,
		Hostname:        facts.Hostname,
		AgentletVersion: version.Version,
		Kernel:          facts.Kernel,
		OS:              facts.OS,
		Arch:            d.Arch,
		CgroupVersion:   facts.CgroupVersion,
		Runtime: nodeapi.RuntimeInfo{
			Endpoint:   d.Endpoint,
			Name:       o.version.RuntimeName,
			Version:    o.version.RuntimeVersion,
			APIVersion: o.version.RuntimeAPIVersion,
			Reachable:  o.versionErr == nil,
		},
		Capacity:                capacity,
		Allocatable:             allocatable,
		StartedAt:               d.state.started,
		HeartbeatAt:             now,
		HeartbeatIntervalMillis: d.Interval.Milliseconds(),
		DaemonRunning:           true,
	}
	if o.versionErr != nil {
		st.Runtime.Error = clip(o.versionErr.Error())
	}
	if o.spec != nil {
		st.NodeName = o.spec.NodeName
		st.PodCIDR = o.spec.PodCIDR
		st.SpecGeneration = o.spec.Generation
		st.SpecWriter = o.spec.Writer
	}
	var prev []nodeapi.Condition
	if d.state.last != nil {
		prev = d.state.last.Conditions
	}
	conds := buildConditions(o)
	for i := range conds {
		conds[i].Message = clip(conds[i].Message)
	}
	st.Conditions = mergeConditions(prev, conds, now)
	st.RecentErrors = d.state.events
	st.Pods = withUsage(d.state.pods, d.state.podUsage)
	st.Usage = d.state.nodeUsage
	if d.state.cronLoaded {
		st.CronJobs = d.state.cron.Status(podsByUID(d.state.pods))
	}
	return st
}

// ReasonCronStateFailed is the event reason of CronJob state errors.
const ReasonCronStateFailed = "CronJobStateFailed"

// cronPods fires the spec's CronJobs that are due (agentlet/cron) and
// returns the pods to run: the spec's and the held runs'. A changed cron
// state is saved before its new runs are handed to the pod runtime; when
// the save fails nothing new starts (the times stay due) and the runs held
// before keep running.
func (d *Daemon) cronPods(spec *nodeapi.NodeSpec, report func(string, error)) []nodeapi.PodSpec {
	path := d.Paths.join(nodeapi.CronStatePath)
	if !d.state.cronLoaded {
		st, err := cron.Load(path)
		report(ReasonCronStateFailed, err)
		d.state.cron, d.state.cronLoaded = st, true
	}
	load := d.LoadLocation
	if load == nil {
		load = time.LoadLocation
	}
	res := cron.Plan(d.state.cron, cron.Input{Now: d.Now(), CronJobs: spec.CronJobs, SpecPods: spec.Pods,
		Pods: podsByUID(d.state.pods), LoadLocation: load})
	if res.Changed {
		if err := cron.Save(path, res.State); err != nil {
			report(ReasonCronStateFailed, err)
			return d.state.cron.Pods(spec.Pods)
		}
		d.state.cron = res.State
	}
	for _, r := range res.Started {
		d.Log.Info("cronjob run started", "cronjob", r.Namespace+"/"+r.CronJobName, "run", r.String(),
			"scheduled", r.ScheduledTime.Format(time.RFC3339))
	}
	for _, dr := range res.Dropped {
		d.Log.Info("cronjob run released", "run", dr.Run.String(), "reason", dr.Reason)
	}
	return d.state.cron.Pods(spec.Pods)
}

// podsByUID indexes pod statuses by uid.
func podsByUID(pods []nodeapi.PodStatus) map[string]*nodeapi.PodStatus {
	out := make(map[string]*nodeapi.PodStatus, len(pods))
	for i := range pods {
		out[pods[i].UID] = &pods[i]
	}
	return out
}

// sampleUsage measures resource usage when a sample is due: the host's
// from /proc, the pods' with one CRI call when the runtime answers. What
// cannot be measured is reported as absent, never as a stale number.
func (d *Daemon) sampleUsage(ctx context.Context, o observation, report func(string, error)) {
	now := d.Now()
	// A tick a little early (a wake) still samples, rather than one interval late.
	if !d.state.usageAt.IsZero() && now.Sub(d.state.usageAt) < d.UsageInterval*9/10 {
		return
	}
	d.state.usageAt = now
	d.state.nodeUsage, d.state.podUsage = nil, nil
	node, err := d.Usage.SampleNode(now)
	report(ReasonUsageFailed, err)
	if err == nil {
		d.state.nodeUsage = node
	}
	if d.Pods == nil || o.versionErr != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, max(d.Interval, time.Second))
	defer cancel()
	pods, err := d.Usage.SamplePods(cctx, now)
	report(ReasonUsageFailed, err)
	if err == nil {
		d.state.podUsage = pods
	}
}

// withUsage returns a copy of the pod statuses (the pod runtime keeps the
// slice it returned) with each pod's last measured usage, nil for none.
func withUsage(pods []nodeapi.PodStatus, usage map[string]*nodeapi.PodUsage) []nodeapi.PodStatus {
	if len(pods) == 0 {
		return pods
	}
	out := make([]nodeapi.PodStatus, len(pods))
	copy(out, pods)
	for i := range out {
		out[i].Usage = usage[out[i].UID]
	}
	return out
}

// podGate says whether pod sandboxes can be created: the sandbox image is
// present and the runtime's network is ready.
func podGate(o observation) pods.Gate {
	c, ok := o.status.Condition(cri.ConditionNetworkReady)
	switch {
	case !o.imagePresent:
		return pods.Gate{Reason: "the sandbox image " + pauseRef + " is not present"}
	case o.cniConf == "":
		return pods.Gate{Reason: "no CNI network config"}
	case o.statusErr != nil || !ok || !c.Status:
		return pods.Gate{Reason: "the runtime's network is not ready"}
	}
	return pods.Gate{SandboxOK: true}
}

// ensureSandboxImage checks the pause image and imports the embedded archive
// when it is missing. Failed imports back off (interval × 2^failures, at most
// two minutes) so a broken host is not hammered with ctr runs.
func (d *Daemon) ensureSandboxImage(ctx, cctx context.Context, o *observation) {
	img, err := d.Runtime.ImageStatus(cctx, pauseRef)
	if err != nil {
		o.imageErr = err
		return
	}
	o.imageChecked = true
	if img.Present {
		o.imagePresent = true
		d.state.importFails = 0
		return
	}
	now := d.Now()
	if now.Before(d.state.nextImport) && d.state.importErr != nil {
		o.imageErr = d.state.importErr // backing off: report the last failure
		return
	}
	err = d.importSandboxImage(ctx)
	if err == nil {
		var ictx context.Context
		var cancel context.CancelFunc
		ictx, cancel = context.WithTimeout(ctx, max(d.Interval, time.Second))
		img, err = d.Runtime.ImageStatus(ictx, pauseRef)
		cancel()
		if err == nil && !img.Present {
			err = fmt.Errorf("import sandbox image %s: imported, but the runtime does not report it", pauseRef)
		}
	}
	if err != nil {
		d.state.importFails++
		backoff := min(d.Interval<<min(d.state.importFails-1, 10), 2*time.Minute)
		d.state.nextImport = now.Add(backoff)
		d.state.importErr = err
		o.imageErr = err
		return
	}
	d.state.importFails, d.state.importErr = 0, nil
	o.imagePresent = true
	d.Log.Info("imported sandbox image", "image", pauseRef, "arch", d.Arch)
}

func (d *Daemon) importSandboxImage(ctx context.Context) error {
	archive, err := d.Archive(d.Arch)
	if err != nil {
		return err
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return d.Importer.Import(ictx, archive)
}

// ensureBaseRules makes sure the base iptables rules of spec are in place:
// one iptables-save to look, and only when they differ one iptables-restore
// plus the idempotent jumps.
func (d *Daemon) ensureBaseRules(ctx context.Context, spec *nodeapi.NodeSpec) error {
	base, err := netfilter.BaseFromSpec(spec)
	if err != nil {
		return fmt.Errorf("ensure base rules: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	save, err := d.Iptables.Save(ctx, netfilter.TableFilter)
	if err != nil {
		return fmt.Errorf("ensure base rules: %w", err)
	}
	ok, err := netfilter.BaseInPlace(save, base)
	if err != nil {
		return fmt.Errorf("ensure base rules: %w", err)
	}
	if ok {
		d.state.rulesFor = base.ClusterPodCIDR.String()
		return nil
	}
	if err := EnsureBaseRules(ctx, d.Iptables, base); err != nil {
		d.state.rulesFor = ""
		return err
	}
	msg := "loaded base rules"
	if d.state.rulesFor == base.ClusterPodCIDR.String() {
		msg = "restored base rules (they had been changed or removed)"
	}
	d.state.rulesFor = base.ClusterPodCIDR.String()
	d.Log.Info(msg, "chain", netfilter.ForwardChain, "podCIDR", base.ClusterPodCIDR)
	return nil
}

// EnsureBaseRules loads the base rules with one iptables-restore --noflush
// payload and then ensures each jump from a built-in chain (check, insert
// when missing). Running it again changes nothing.
func EnsureBaseRules(ctx context.Context, ipt Iptables, base netfilter.Base) error {
	if err := ipt.Restore(ctx, netfilter.RenderBase(base)); err != nil {
		return fmt.Errorf("ensure base rules: %w", err)
	}
	for _, j := range netfilter.BaseJumps() {
		ok, err := ipt.Check(ctx, j.Table, j.Chain, j.Rule)
		if err != nil {
			return fmt.Errorf("ensure jump to %s: %w", netfilter.ForwardChain, err)
		}
		if ok {
			continue
		}
		if err := ipt.Insert(ctx, j.Table, j.Chain, j.Rule); err != nil {
			return fmt.Errorf("ensure jump to %s: %w", netfilter.ForwardChain, err)
		}
	}
	return nil
}

// unreadyPods are the UIDs of this node's pods last seen not ready: their
// service endpoints are dropped at once (readiness fast path).
func unreadyPods(pods []nodeapi.PodStatus) map[string]bool {
	out := map[string]bool{}
	for _, p := range pods {
		ready := false
		for _, c := range p.Conditions {
			if c.Type == nodeapi.PodReady {
				ready = c.Status == "True"
			}
		}
		if !ready {
			out[p.UID] = true
		}
	}
	return out
}

// publish writes the status atomically (temp file, fsync, rename, 0644).
func (d *Daemon) publish(st *nodeapi.NodeStatus) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	if err := os.MkdirAll(d.Paths.RunDir(), 0o755); err != nil {
		return fmt.Errorf("publish status: %w", err)
	}
	if err := writeAtomic(d.Paths.StatusPath(), append(data, '\n'), 0o644, false); err != nil {
		return fmt.Errorf("publish status: %w", err)
	}
	return nil
}

func (d *Daemon) logSpec(o observation) {
	switch {
	case o.specErr != nil:
		if msg := o.specErr.Error(); msg != d.state.specErr {
			d.state.specErr = msg
			d.Log.Error("held node spec is invalid", "err", msg)
		}
	case o.spec != nil && o.spec.Generation != d.state.specGen:
		d.state.specErr = ""
		d.Log.Info("node spec", "generation", o.spec.Generation, "node", o.spec.NodeName, "writer", o.spec.Writer)
		d.state.specGen = o.spec.Generation
	}
}

// findCNIConf returns the first CNI network config in dir (by name, as
// libcni orders them), or "" when there is none.
func findCNIConf(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read CNI config directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".conflist", ".conf", ".json":
			if !e.IsDir() {
				names = append(names, e.Name())
			}
		}
	}
	if len(names) == 0 {
		return "", nil
	}
	sort.Strings(names)
	return filepath.Join(dir, names[0]), nil
}

// clip shortens a message to maxMessage bytes on a rune boundary.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// encodeStatus renders a status as the JSON `agentlet status` prints.
func encodeStatus(st *nodeapi.NodeStatus) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	return buf.Bytes(), nil
}
