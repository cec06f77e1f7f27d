package sched

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// largeCluster is Kubernetes' scalability threshold: numNodes nodes and
// numApps ReplicaSets of numPods/numApps unbound pods each, as
// controllers make them (names <app>-<hash>-<suffix>, one template per
// ReplicaSet, created together, the apps a second apart). The mix:
//
//   - nodes: 32 cpus, 128 GiB, 110 pods, in 4 zones, half with disk=ssd;
//     every 10th tainted dedicated=db:NoSchedule, every 20th
//     spot:PreferNoSchedule, 1 in 100 cordoned, 1 in 250 not ready;
//   - pods: requests of 50m-1 cpu and 128Mi-4Gi per app; per app, by
//     index mod 10: a nodeSelector disk=ssd, a toleration of the db taint
//     (with a nodeSelector on it), preferred node affinity to a zone,
//     topology spread over zones (DoNotSchedule, maxSkew 1) and hosts
//     (ScheduleAnyway), required node affinity to two zones, or nothing
//     (the other five).
func largeCluster(numNodes, numApps, numPods int) ([]*corev1.Pod, []Node) {
	rng := rand.New(rand.NewPCG(150, 5))
	zones := []string{"zone-a", "zone-b", "zone-c", "zone-d"}
	nodes := make([]Node, numNodes)
	for i := range nodes {
		name := fmt.Sprintf("node-%05d", i)
		n := Node{Name: name, Ready: true, Allocatable: nodeapi.Resources{CPUMillis: 32000, MemoryBytes: 128 << 30, Pods: 110},
			Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
				"topology.kubernetes.io/zone": zones[i%len(zones)], "disk": []string{"ssd", "hdd"}[i/4%2]}}
		if i%10 == 3 {
			n.Taints = append(n.Taints, corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule})
			n.Labels["dedicated"] = "db"
		}
		if i%20 == 7 {
			n.Taints = append(n.Taints, corev1.Taint{Key: "spot", Effect: corev1.TaintEffectPreferNoSchedule})
		}
		n.Unschedulable = i%100 == 42
		n.Ready = i%250 != 99
		nodes[i] = n
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	perApp := numPods / numApps
	pods := make([]*corev1.Pod, 0, numPods)
	for a := range numApps {
		app := fmt.Sprintf("app-%04d", a)
		hash := fmt.Sprintf("%010x", rng.Uint64()&0xffffffffff)
		tmpl := corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.example/" + app + ":1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(fmt.Sprintf("%dm", 50*(1+rng.IntN(20)))),
				corev1.ResourceMemory: resource.MustParse(fmt.Sprintf("%dMi", 128*(1+rng.IntN(32)))),
			}}}}}
		if a%7 == 0 { // a sidecar without requests
			tmpl.Containers = append(tmpl.Containers, corev1.Container{Name: "log", Image: "registry.example/log:1"})
		}
		labels := map[string]string{"app": app, "pod-template-hash": hash}
		switch a % 10 {
		case 0:
			tmpl.NodeSelector = map[string]string{"disk": "ssd"}
		case 1:
			tmpl.NodeSelector = map[string]string{"dedicated": "db"}
			tmpl.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db", Effect: corev1.TaintEffectNoSchedule}}
		case 2:
			tmpl.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
				{Weight: 50, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
					{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{zones[a%4]}}}}}}}}
		case 3:
			sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
			tmpl.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{
				{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: sel,
					MatchLabelKeys: []string{"pod-template-hash"}},
				{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: sel},
			}
		case 4:
			tmpl.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
					{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{zones[a%4], zones[(a+1)%4]}}}}}}}}
		}
		created := metav1.NewTime(start.Add(time.Duration(a) * time.Second))
		for r := range perApp {
			p := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("team-%d", a%20), Name: fmt.Sprintf("%s-%s-%05x", app, hash, r),
					Labels: labels, CreationTimestamp: created},
				Spec: *tmpl.DeepCopy(),
			}
			pods = append(pods, p)
		}
	}
	return pods, nodes
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

// BenchmarkSchedule150kPods5kNodes places 150,000 unbound pods (1,500
// ReplicaSets of 100) on 5,000 nodes in one Schedule call: Kubernetes'
// scalability thresholds, with the mix largeCluster describes. It reports
// pods placed per second of wall time and of CPU time (all threads, the
// garbage collector included: the fairer figure on a loaded machine) and
// the peak live heap during the call, the input pods (input-heap-MiB)
// included. The boundary: placement
// decisions only, in memory; nothing is written anywhere (kube-scheduler's
// published 680-810 pods/s at 5,000 nodes include its API-server binds).
func BenchmarkSchedule150kPods5kNodes(b *testing.B) {
	benchmarkLarge(b, 5000, 1500, 150000)
}

// BenchmarkSchedule15kPods500Nodes is the same mix at a tenth of the size,
// quick enough to profile and compare often.
func BenchmarkSchedule15kPods500Nodes(b *testing.B) {
	benchmarkLarge(b, 500, 150, 15000)
}

// cpuTime is the CPU time the process has used, user and system, every
// thread (the garbage collector's included). On a shared machine it shows
// the cost of a run better than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchmarkLarge(b *testing.B, numNodes, numApps, numPods int) {
	pods, nodes := largeCluster(numNodes, numApps, numPods)
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	input := sample[0].Value.Uint64()
	var peak uint64
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		stop := peakHeap()
		before := cpuTime()
		res := Schedule(pods, nodes)
		cpu += cpuTime() - before
		peak = max(peak, stop())
		if len(res.Bindings) != numPods {
			n := 0
			for k, u := range res.Unschedulable {
				if n++; n < 5 {
					b.Logf("%s: %s", k, u.Message)
				}
			}
			b.Fatalf("%d of %d pods bound; %d unschedulable", len(res.Bindings), numPods, len(res.Unschedulable))
		}
	}
	b.ReportMetric(float64(numPods)*float64(b.N)/b.Elapsed().Seconds(), "pods/s")
	b.ReportMetric(float64(numPods)*float64(b.N)/cpu.Seconds(), "pods/cpu-s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(input)/(1<<20), "input-heap-MiB")
}
