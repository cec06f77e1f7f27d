package reconcile

import (
	"fmt"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan/sched"
	"github.com/clusterctl/clusterctl/playbooks"
)

// steadyCluster is an inventory whose loop has nothing to do: apps
// Deployments of replicas pods each over hosts hosts, every pod bound,
// running and ready on its node, every controller's status up to date and
// every host's spec checksum recorded.
type steadyCluster struct {
	inv      *inventory.Inventory
	obs      []playbooks.Observation
	statuses map[string]*nodeapi.NodeStatus
	now      time.Time
}

// newSteadyCluster builds the cluster the way the CLI would: apply the
// Deployments, then run loops (controllers, scheduler, bindings, specs)
// with every bound pod reported Running and Ready, until a loop changes
// nothing.
func newSteadyCluster(tb testing.TB, hosts, apps, replicas int) *steadyCluster {
	tb.Helper()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var y strings.Builder
	y.WriteString("apiVersion: clusterctl.dev/v1alpha1\nkind: Inventory\ncluster: {name: bench, podCIDR: 10.128.0.0/9}\nhosts:\n")
	zones := []string{"zone-a", "zone-b", "zone-c", "zone-d"}
	for i := range hosts {
		fmt.Fprintf(&y, "  - {name: h%05d, address: 100.64.%d.%d, labels: {topology.kubernetes.io/zone: %s}}\n", i, i/250, 1+i%250, zones[i%4])
	}
	y.WriteString("state:\n  generation: 1\n  hosts:\n")
	for i := range hosts {
		fmt.Fprintf(&y, "    h%05d: {podCIDR: 10.%d.%d.0/24}\n", i, 128+i/256, i%256)
	}
	inv, err := inventory.Parse("bench.yaml", []byte(y.String()))
	if err != nil {
		tb.Fatal(err)
	}

	var m strings.Builder
	for n := range 20 {
		fmt.Fprintf(&m, "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-%d}\n---\n", n)
	}
	for a := range apps {
		cpu, mem := 50*(1+a%20), 128*(1+a%16)
		fmt.Fprintf(&m, `apiVersion: apps/v1
kind: Deployment
metadata: {name: app-%04d, namespace: team-%d}
spec:
  replicas: %d
  selector: {matchLabels: {app: app-%04d}}
  template:
    metadata: {labels: {app: app-%04d}}
    spec:
      containers:
      - name: main
        image: registry.example/app-%04d:1
        ports: [{containerPort: 8080}]
        env: [{name: APP, value: app-%04d}]
        resources: {requests: {cpu: %dm, memory: %dMi}}
---
`, a, a%20, replicas, a, a, a, a, cpu, mem)
	}
	objs, err := manifest.Decode("apps.yaml", []byte(m.String()))
	if err != nil {
		tb.Fatal(err)
	}
	for i, o := range objs {
		meta := o.Obj.(metav1.Object)
		meta.SetUID(types.UID(fmt.Sprintf("%08x-0000-4000-8000-000000000000", i)))
		meta.SetCreationTimestamp(metav1.NewTime(now))
		meta.SetGeneration(1)
		if err := Store(inv, o); err != nil {
			tb.Fatal(err)
		}
	}

	sc := &steadyCluster{inv: inv, now: now}
	sc.observe(nil)
	for round := range 10 {
		cl, err := Load(inv)
		if err != nil {
			tb.Fatal(err)
		}
		nodes := SchedNodes(inv, sc.obs)
		observed := ObservedPods(sc.statuses)
		ch, err := RunControllers(inv, cl, ControllerInput{Now: now, Seed: fmt.Sprintf("setup-%d", round), Observed: observed,
			Nodes: workloadNodes(nodes)}, false)
		if err != nil {
			tb.Fatal(err)
		}
		schedPods, _ := cl.schedulingPods()
		c := cl.SchedCluster(nodes)
		c.Pods = schedPods
		s := sched.ScheduleCluster(c)
		if len(s.Unschedulable) > 0 {
			tb.Fatalf("round %d: %d pods unschedulable", round, len(s.Unschedulable))
		}
		for _, p := range cl.Pods {
			if node, ok := s.Bindings[Key(p.Namespace, p.Name)]; ok {
				p.Spec.NodeName = node
				if err := store(inv, p); err != nil {
					tb.Fatal(err)
				}
			}
		}
		sc.observe(cl.Pods)
		specs, podErrs := Desired(inv, cl, DesiredInput{Generation: inv.State.Generation, Writer: "bench", Now: now,
			Observed: ObservedPods(sc.statuses)})
		if len(podErrs) > 0 {
			tb.Fatalf("round %d: pod errors: %v", round, podErrs)
		}
		changed := 0
		for h, spec := range specs {
			hs := inv.HostState(h)
			if sum := nodeapi.ContentSHA256(&spec); hs.SpecSHA256 != sum {
				hs.SpecSHA256 = sum
				inv.SetHostState(h, hs)
				changed++
			}
		}
		if ch.Empty() && len(s.Bindings) == 0 && changed == 0 {
			if len(cl.Pods) != apps*replicas {
				tb.Fatalf("steady with %d pods, want %d", len(cl.Pods), apps*replicas)
			}
			return sc
		}
	}
	tb.Fatal("the cluster did not settle in 10 loops")
	return nil
}

// observe makes every host report Ready with the given pods (those bound
// to it) Running and Ready.
func (sc *steadyCluster) observe(pods []*corev1.Pod) {
	sc.statuses = map[string]*nodeapi.NodeStatus{}
	sc.obs = nil
	ip := map[string]netip.Addr{}
	for _, h := range sc.inv.HostNames() {
		st := &nodeapi.NodeStatus{APIVersion: nodeapi.APIVersion, NodeName: h, DaemonRunning: true,
			Conditions:  []nodeapi.Condition{{Type: nodeapi.ConditionReady, Status: nodeapi.True, LastTransitionTime: sc.now}},
			Allocatable: nodeapi.Resources{CPUMillis: 32000, MemoryBytes: 128 << 30, Pods: 110}, SpecGeneration: sc.inv.State.Generation}
		sc.statuses[h] = st
		sc.obs = append(sc.obs, playbooks.Observation{Host: h, Status: st, Installed: true})
		ip[h] = sc.inv.HostState(h).PodCIDR.Addr().Next()
	}
	start := sc.now.Add(-time.Minute)
	for _, p := range pods {
		st, ok := sc.statuses[p.Spec.NodeName]
		if !ok {
			continue
		}
		a := ip[p.Spec.NodeName].Next()
		ip[p.Spec.NodeName] = a
		cs := []nodeapi.ContainerStatus{}
		for _, c := range p.Spec.Containers {
			cs = append(cs, nodeapi.ContainerStatus{Name: c.Name, Image: c.Image, Ready: true, Started: true,
				State: nodeapi.ContainerState{Running: &nodeapi.StateRunning{StartedAt: start}}})
		}
		st.Pods = append(st.Pods, nodeapi.PodStatus{UID: string(p.UID), Namespace: p.Namespace, Name: p.Name, Phase: string(corev1.PodRunning),
			PodIP: a.String(), StartTime: &start, ContainerStatuses: cs,
			Conditions: []nodeapi.Condition{{Type: string(corev1.PodReady), Status: nodeapi.True, LastTransitionTime: start}}})
	}
}

// noopPhases is the time one no-op loop spends in each of its steps.
type noopPhases struct {
	load, controllers, schedule, desired, checksums time.Duration
}

// noopLoop is one loop of Run without SSH (the observations are given):
// load the objects, run the controllers, schedule, bind claims, lower and
// assemble the specs, compare their checksums with the recorded ones. It
// fails unless nothing changes.
func (sc *steadyCluster) noopLoop(tb testing.TB, ph *noopPhases) {
	t0 := time.Now()
	cl, err := Load(sc.inv)
	if err != nil {
		tb.Fatal(err)
	}
	t1 := time.Now()
	nodes := SchedNodes(sc.inv, sc.obs)
	observed := ObservedPods(sc.statuses)
	ch, err := RunControllers(sc.inv, cl, ControllerInput{Now: sc.now, Seed: "noop", Observed: observed, Nodes: workloadNodes(nodes)}, false)
	if err != nil {
		tb.Fatal(err)
	}
	if !ch.Empty() {
		tb.Fatalf("controllers changed %d objects, deleted %d", len(ch.Put), len(ch.Delete))
	}
	t2 := time.Now()
	schedPods, _ := cl.schedulingPods()
	c := cl.SchedCluster(nodes)
	c.Pods = schedPods
	s := sched.ScheduleCluster(c)
	if len(s.Bindings) > 0 || len(s.Unschedulable) > 0 {
		tb.Fatalf("scheduler bound %d pods, %d unschedulable", len(s.Bindings), len(s.Unschedulable))
	}
	if err := cl.bindClaims(sc.inv, s.Bindings, metav1.NewTime(sc.now), false); err != nil {
		tb.Fatal(err)
	}
	t3 := time.Now()
	specs, podErrs := Desired(sc.inv, cl, DesiredInput{Generation: sc.inv.State.Generation, Writer: "bench", Now: sc.now, Observed: observed})
	if len(podErrs) > 0 {
		tb.Fatalf("pod errors: %v", podErrs)
	}
	t4 := time.Now()
	for _, h := range sc.inv.HostNames() {
		spec := specs[h]
		if sc.inv.HostState(h).SpecSHA256 != nodeapi.ContentSHA256(&spec) {
			tb.Fatalf("%s: spec changed", h)
		}
	}
	t5 := time.Now()
	ph.load += t1.Sub(t0)
	ph.controllers += t2.Sub(t1)
	ph.schedule += t3.Sub(t2)
	ph.desired += t4.Sub(t3)
	ph.checksums += t5.Sub(t4)
}

// BenchmarkNoopPlan150kPods is one cluster loop with nothing to do over
// 150,000 running pods (1,500 Deployments of 100) on 5,000 hosts, minus
// SSH: Load, RunControllers, ScheduleCluster, Desired and the checksum
// comparison, in memory. Goal: under 1 s. It reports the seconds of each
// step per loop, the CPU time per loop and the peak live heap (the
// inventory and the observations included). Building the steady cluster
// takes minutes.
func BenchmarkNoopPlan150kPods(b *testing.B) {
	benchmarkNoop(b, 5000, 1500, 100)
}

// BenchmarkNoopPlan15kPods is the same at a tenth of the size (15,000
// pods, 500 hosts).
func BenchmarkNoopPlan15kPods(b *testing.B) {
	benchmarkNoop(b, 500, 150, 100)
}

func benchmarkNoop(b *testing.B, hosts, apps, replicas int) {
	sc := newSteadyCluster(b, hosts, apps, replicas)
	runtime.GC()
	var ph noopPhases
	var cpu time.Duration
	var peak uint64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		stop := peakHeap()
		before := cpuTime()
		sc.noopLoop(b, &ph)
		cpu += cpuTime() - before
		peak = max(peak, stop())
	}
	n := float64(b.N)
	b.ReportMetric(ph.load.Seconds()/n, "load-s")
	b.ReportMetric(ph.controllers.Seconds()/n, "controllers-s")
	b.ReportMetric(ph.schedule.Seconds()/n, "schedule-s")
	b.ReportMetric(ph.desired.Seconds()/n, "desired-s")
	b.ReportMetric(ph.checksums.Seconds()/n, "checksums-s")
	b.ReportMetric(cpu.Seconds()/n, "cpu-s/op")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// TestNoopLoopIsNoop builds a small steady cluster and checks that a loop
// over it changes nothing (what the benchmarks rely on), and that the
// steady state is real: every pod bound, every Deployment available.
func TestNoopLoopIsNoop(t *testing.T) {
	sc := newSteadyCluster(t, 6, 4, 5)
	var ph noopPhases
	sc.noopLoop(t, &ph)
	cl, err := Load(sc.inv)
	if err != nil {
		t.Fatal(err)
	}
	bound := 0
	for _, p := range cl.Pods {
		if p.Spec.NodeName != "" {
			bound++
		}
	}
	if bound != 20 {
		t.Errorf("%d of 20 pods bound", bound)
	}
	deps := Typed[*appsv1.Deployment](cl, "Deployment")
	if len(deps) != 4 {
		t.Fatalf("%d deployments, want 4", len(deps))
	}
	for _, d := range deps {
		if d.Status.AvailableReplicas != 5 || d.Status.UpdatedReplicas != 5 || d.Status.ObservedGeneration != 1 {
			t.Errorf("%s: status %+v, want 5 available and updated, generation 1 observed", d.Name, d.Status)
		}
	}
	for _, h := range sc.inv.HostNames() {
		if sc.inv.HostState(h).SpecSHA256 == "" {
			t.Errorf("%s: no spec checksum", h)
		}
	}
}

// peakHeap samples the live heap every few milliseconds until stopped and
// returns the largest value seen, in bytes.
func peakHeap() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// cpuTime is the CPU time the process has used, every thread included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
