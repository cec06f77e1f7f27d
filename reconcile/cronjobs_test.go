package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan/controller"
	"github.com/clusterctl/clusterctl/plan/jobs"
	"github.com/clusterctl/clusterctl/plan/workloads"
	"github.com/clusterctl/clusterctl/playbooks"
)

func cronFixture(name string, mutate ...func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: batchv1.CronJobSpec{Schedule: "*/1 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}},
	}
	for _, m := range mutate {
		m(cj)
	}
	return cj
}

func on(node string) func(*batchv1.CronJob) {
	return func(cj *batchv1.CronJob) {
		cj.Annotations = map[string]string{jobs.CronJobNodeAnnotation: node}
	}
}

func TestBindCronJobs(t *testing.T) {
	ready := func(name string, labels ...string) workloads.Node {
		n := workloads.Node{Name: name, Ready: true, Labels: map[string]string{"kubernetes.io/hostname": name}}
		for i := 0; i+1 < len(labels); i += 2 {
			n.Labels[labels[i]] = labels[i+1]
		}
		return n
	}
	notReady := func(name string) workloads.Node { n := ready(name); n.Ready = false; return n }
	cordoned := func(name string) workloads.Node { n := ready(name); n.Unschedulable = true; return n }
	tainted := func(name string) workloads.Node {
		n := ready(name)
		n.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
		return n
	}
	selector := func(k, v string) func(*batchv1.CronJob) {
		return func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.Template.Spec.NodeSelector = map[string]string{k: v}
		}
	}
	tests := []struct {
		name     string
		cronJobs []*batchv1.CronJob
		nodes    []workloads.Node
		want     map[string]string // CronJob → node after binding ("" unbound)
		changed  []string
	}{
		{"spread by count, then by name",
			[]*batchv1.CronJob{cronFixture("a"), cronFixture("b"), cronFixture("c")},
			[]workloads.Node{ready("h2"), ready("h1")},
			map[string]string{"a": "h1", "b": "h2", "c": "h1"}, []string{"a", "b", "c"}},
		{"existing bindings are kept and counted",
			[]*batchv1.CronJob{cronFixture("a", on("h2")), cronFixture("b", on("h2")), cronFixture("c")},
			[]workloads.Node{ready("h1"), ready("h2")},
			map[string]string{"a": "h2", "b": "h2", "c": "h1"}, []string{"c"}},
		{"a node not Ready loses its CronJobs",
			[]*batchv1.CronJob{cronFixture("a", on("h1"))},
			[]workloads.Node{notReady("h1"), ready("h2")},
			map[string]string{"a": "h2"}, []string{"a"}},
		{"a node gone from the inventory loses its CronJobs",
			[]*batchv1.CronJob{cronFixture("a", on("h9"))},
			[]workloads.Node{ready("h1")},
			map[string]string{"a": "h1"}, []string{"a"}},
		{"no Ready node: the binding is kept while its node exists",
			[]*batchv1.CronJob{cronFixture("a", on("h1")), cronFixture("b")},
			[]workloads.Node{notReady("h1")},
			map[string]string{"a": "h1", "b": ""}, nil},
		{"no node at all: unbound, the loop fires it",
			[]*batchv1.CronJob{cronFixture("a", on("h9"))},
			nil,
			map[string]string{"a": ""}, []string{"a"}},
		{"cordoned and tainted nodes take no CronJob",
			[]*batchv1.CronJob{cronFixture("a"), cronFixture("b", on("h1"))},
			[]workloads.Node{cordoned("h1"), tainted("h2"), ready("h3")},
			map[string]string{"a": "h3", "b": "h3"}, []string{"a", "b"}},
		{"the template's nodeSelector is honoured",
			[]*batchv1.CronJob{cronFixture("a", selector("disk", "ssd")), cronFixture("b", selector("disk", "ssd"), on("h1"))},
			[]workloads.Node{ready("h1"), ready("h2", "disk", "ssd")},
			map[string]string{"a": "h2", "b": "h2"}, []string{"a", "b"}},
		{"a template a node cannot fire stays with the loop",
			[]*batchv1.CronJob{cronFixture("a", on("h1"), func(cj *batchv1.CronJob) {
				s := true
				cj.Spec.JobTemplate.Spec.Suspend = &s
			})},
			[]workloads.Node{ready("h1")},
			map[string]string{"a": ""}, []string{"a"}},
		{"a CronJob not admitted yet waits",
			[]*batchv1.CronJob{cronFixture("a", func(cj *batchv1.CronJob) { cj.UID = "" })},
			[]workloads.Node{ready("h1")},
			map[string]string{"a": ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed := BindCronJobs(tt.cronJobs, tt.nodes)
			got := map[string]string{}
			for _, cj := range tt.cronJobs {
				got[cj.Name] = cj.Annotations[jobs.CronJobNodeAnnotation]
			}
			var names []string
			for _, cj := range changed {
				got[cj.Name] = cj.Annotations[jobs.CronJobNodeAnnotation]
				names = append(names, cj.Name)
				if cj.Kind != "CronJob" {
					t.Errorf("%s: kind %q not set", cj.Name, cj.Kind)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("bindings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.changed, names); diff != "" {
				t.Errorf("changed (-want +got):\n%s", diff)
			}
			// Stable: binding the result again changes nothing.
			var after []*batchv1.CronJob
			for _, cj := range tt.cronJobs {
				for _, c := range changed {
					if c.Name == cj.Name {
						cj = c
					}
				}
				after = append(after, cj)
			}
			if again := BindCronJobs(after, tt.nodes); len(again) != 0 {
				t.Errorf("a second binding changed %d CronJobs", len(again))
			}
		})
	}
}

const cronManifest = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: default}
data: {greeting: hello}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: default}
spec:
  schedule: "*/1 * * * *"
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 2
  jobTemplate:
    metadata: {labels: {team: a}}
    spec:
      template:
        metadata: {labels: {app: tick}}
        spec:
          restartPolicy: OnFailure
          containers:
          - name: c
            image: busybox:1
            command: [sh, -c, "echo $(POD_NAME) $(GREETING)"]
            env:
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
            - {name: POD_UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
            - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
            - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
            - {name: URL, value: "http://$(POD_NAME):80"}
            volumeMounts:
            - {name: info, mountPath: /info}
            - {name: scratch, mountPath: /scratch}
          volumes:
          - name: info
            projected:
              sources:
              - downwardAPI:
                  items:
                  - {path: name, fieldRef: {fieldPath: metadata.name}}
                  - {path: labels, fieldRef: {fieldPath: metadata.labels}}
              - configMap: {name: cfg}
          - {name: scratch, emptyDir: {}}
`

// storeManifest decodes and stores objects as apply would (with uids and
// creation times).
func storeManifest(t *testing.T, in *inventory.Inventory, body string, created time.Time) {
	t.Helper()
	objs, err := manifest.Decode("m.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		meta := o.Obj.(metav1.Object)
		meta.SetUID(types.UID(fmt.Sprintf("%08d-2222-4222-8222-222222222222", i)))
		meta.SetCreationTimestamp(metav1.NewTime(created))
		if err := Store(in, o); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNodeFiredPodLowersLikeTheAdoptedPod: the pod agentlet makes for a run
// from the lowered template (nodeapi.InstantiateCronPod) is exactly what the
// CLI lowers from the pod it stores when it adopts the run, so the spec pod
// takes the running pod over without restarting anything.
func TestNodeFiredPodLowersLikeTheAdoptedPod(t *testing.T) {
	in, err := inventory.Parse("c.yaml", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 21, 21, 59, 30, 0, time.UTC)
	storeManifest(t, in, cronManifest, created)
	cl, err := Load(in)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []workloads.Node{{Name: "h1", Ready: true}, {Name: "h2", Ready: true}}
	if err := cl.apply(in, controller.Changes{Put: toObjects(BindCronJobs(Typed[*batchv1.CronJob](cl, "CronJob"), nodes))}, false); err != nil {
		t.Fatal(err)
	}
	specs, errs := Desired(in, cl, DesiredInput{Generation: 1, Now: created})
	if len(errs) > 0 {
		t.Fatalf("Desired: %v", errs)
	}
	if len(specs["h1"].CronJobs) != 1 || len(specs["h2"].CronJobs) != 0 {
		t.Fatalf("CronJobs per node: h1 %d h2 %d, want the one on h1", len(specs["h1"].CronJobs), len(specs["h2"].CronJobs))
	}
	spec := specs["h1"]
	if err := spec.Validate(); err != nil {
		t.Fatalf("the node spec does not validate: %v", err)
	}
	cs := spec.CronJobs[0]
	if cs.ConcurrencyPolicy != nodeapi.ConcurrencyForbid || cs.SuccessfulJobsHistoryLimit != 2 || cs.FailedJobsHistoryLimit != 1 ||
		cs.PodsPerRun != 1 || cs.Schedule != "*/1 * * * *" || !cs.CreationTimestamp.Equal(created) {
		t.Errorf("lowered CronJob %+v", cs)
	}

	// agentlet fires a run at 22:00.
	scheduled := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	id := nodeapi.CronRunPodIdentity{PodName: nodeapi.CronRunName("tick", scheduled) + "-x2b4z", PodUID: "6f1c0c1e-0000-4000-8000-000000000001",
		JobName: nodeapi.CronRunName("tick", scheduled), JobUID: "6f1c0c1e-0000-4000-8000-000000000002"}
	nodePod, err := nodeapi.InstantiateCronPod(&cs.Templates[0], id)
	if err != nil {
		t.Fatal(err)
	}
	if nodePod.Containers[0].Command[2] != "echo "+id.PodName+" hello" {
		t.Errorf("command = %q", nodePod.Containers[0].Command)
	}

	// The CLI adopts it.
	status := &nodeapi.NodeStatus{CronJobs: []nodeapi.CronJobStatus{{UID: cs.UID, Namespace: "default", Name: "tick", LastScheduleTime: &scheduled,
		Runs: []nodeapi.CronRunStatus{{JobName: id.JobName, JobUID: id.JobUID, ScheduledTime: scheduled, StartedAt: scheduled.Add(time.Second),
			Pods: []nodeapi.CronRunPod{{Name: id.PodName, UID: id.PodUID, Phase: nodeapi.PodRunning}}}}}}}
	ch, err := syncNodeCronJobs(in, cl, ControllerInput{Now: scheduled.Add(5 * time.Second), Nodes: nodes,
		NodeStatuses: map[string]*nodeapi.NodeStatus{"h1": status}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Put) != 3 {
		t.Errorf("adoption put %d objects, want the CronJob, the Job and the pod", len(ch.Put))
	}
	specs, errs = Desired(in, cl, DesiredInput{Generation: 1, Now: created})
	if len(errs) > 0 {
		t.Fatalf("Desired: %v", errs)
	}
	var cliPod *nodeapi.PodSpec
	for i := range specs["h1"].Pods {
		if specs["h1"].Pods[i].UID == id.PodUID {
			cliPod = &specs["h1"].Pods[i]
		}
	}
	if cliPod == nil {
		t.Fatalf("the adopted pod is not in h1's spec: %+v", specs["h1"].Pods)
	}
	if diff := cmp.Diff(nodePod, *cliPod); diff != "" {
		t.Errorf("the adopted pod lowers differently from the node's run pod (-node +cli):\n%s", diff)
	}
	cs = specs["h1"].CronJobs[0]
	if cs.LastScheduleTime == nil || !cs.LastScheduleTime.Equal(scheduled) || len(cs.ActiveJobs) != 1 || cs.ActiveJobs[0] != id.JobName {
		t.Errorf("after adoption the node is told last %v active %v", cs.LastScheduleTime, cs.ActiveJobs)
	}
}

func toObjects(cjs []*batchv1.CronJob) []controller.Object {
	var out []controller.Object
	for _, cj := range cjs {
		out = append(out, cj)
	}
	return out
}

// cronNode is a Ready fake node that fires the CronJobs of its spec the
// simple way (one run per call to fire) and reports its runs' pods.
type cronNode struct {
	fakeNode
	runs    []nodeapi.CronJobStatus
	podDone map[string]bool
	down    bool
}

func (n *cronNode) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	if n.down {
		return nil, fmt.Errorf("ssh: connection lost")
	}
	out, err := n.fakeNode.Run(ctx, cmd, stdin)
	if err != nil || !strings.Contains(cmd, " status") {
		return out, err
	}
	var st nodeapi.NodeStatus
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, err
	}
	phase := func(uid string) string {
		if n.podDone[uid] {
			return nodeapi.PodSucceeded
		}
		return nodeapi.PodRunning
	}
	if n.held != nil {
		for _, p := range n.held.Pods {
			st.Pods = append(st.Pods, nodeapi.PodStatus{UID: p.UID, Namespace: p.Namespace, Name: p.Name, Phase: phase(p.UID)})
		}
	}
	for _, cs := range n.runs {
		for i, r := range cs.Runs {
			for j, p := range r.Pods {
				cs.Runs[i].Pods[j].Phase = phase(p.UID)
			}
		}
		st.CronJobs = append(st.CronJobs, cs)
	}
	return json.Marshal(st)
}

// fire makes the node report a run of the CronJob of its spec at scheduled.
func (n *cronNode) fire(t *testing.T, scheduled time.Time) nodeapi.CronRunStatus {
	t.Helper()
	if n.held == nil || len(n.held.CronJobs) != 1 {
		t.Fatalf("%s holds no CronJob to fire", n.name)
	}
	cj := n.held.CronJobs[0]
	name := nodeapi.CronRunName(cj.Name, scheduled)
	run := nodeapi.CronRunStatus{JobName: name, JobUID: "job-" + name, ScheduledTime: scheduled, StartedAt: scheduled.Add(time.Second),
		Pods: []nodeapi.CronRunPod{{Name: name + "-abcde", UID: "pod-" + name}}}
	last := scheduled
	n.runs = []nodeapi.CronJobStatus{{UID: cj.UID, Namespace: cj.Namespace, Name: cj.Name, LastScheduleTime: &last, Runs: []nodeapi.CronRunStatus{run}}}
	return run
}

// TestLoopAdoptsNodeFiredRuns drives the cluster loop against fake nodes:
// the CronJob is bound and lowered into one node's spec; the runs that node
// reports become Jobs whose pods come back in its spec, once; finished
// runs beyond the history limit are deleted; when the node stops
// answering the CronJob moves, carrying its last schedule time.
func TestLoopAdoptsNodeFiredRuns(t *testing.T) {
	in, err := inventory.Parse("c.yaml", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	storeManifest(t, in, `apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: default}
spec:
  schedule: "*/1 * * * *"
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox:1}]
`, t0.Add(-30*time.Second))
	nodes := map[string]*cronNode{"h1": {fakeNode: fakeNode{name: "h1"}, podDone: map[string]bool{}}, "h2": {fakeNode: fakeNode{name: "h2"}, podDone: map[string]bool{}}}
	dial := func(_ context.Context, name string) (playbooks.Host, error) { return nodes[name], nil }
	loop := func(now time.Time) *Result {
		t.Helper()
		fleet := playbooks.Connect(context.Background(), in.HostNames(), dial, 4)
		res, err := Run(context.Background(), in, fleet, Options{Writer: "me@test", Now: now, Seed: now.String()})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.PodErrors) > 0 {
			t.Fatalf("pod errors: %v", res.PodErrors)
		}
		return res
	}
	stored := func() (*batchv1.CronJob, []*batchv1.Job, *Cluster) {
		cl, err := Load(in)
		if err != nil {
			t.Fatal(err)
		}
		cjs := Typed[*batchv1.CronJob](cl, "CronJob")
		return cjs[0], Typed[*batchv1.Job](cl, "Job"), cl
	}

	loop(t0)
	cj, js, _ := stored()
	if got := cj.Annotations[jobs.CronJobNodeAnnotation]; got != "h1" || len(js) != 0 {
		t.Fatalf("after the first loop: bound to %q with %d Jobs; want h1 and none (the node fires)", got, len(js))
	}
	if len(nodes["h1"].held.CronJobs) != 1 || len(nodes["h2"].held.CronJobs) != 0 {
		t.Fatalf("CronJob not in h1's spec only")
	}

	// No loop fires anything, even when due: h1's agentlet does.
	loop(t0.Add(90 * time.Second))
	if _, js, _ := stored(); len(js) != 0 {
		t.Fatalf("the loop fired a node-bound CronJob: %d Jobs", len(js))
	}

	run1 := nodes["h1"].fire(t, t0)
	loop(t0.Add(100 * time.Second))
	cj, js, cl := stored()
	if len(js) != 1 || js[0].Name != run1.JobName || string(js[0].UID) != run1.JobUID {
		t.Fatalf("Jobs after the node reported %s: %+v", run1.JobName, js)
	}
	if p, ok := cl.Pod("default", run1.Pods[0].Name); !ok || string(p.UID) != run1.Pods[0].UID || p.Spec.NodeName != "h1" {
		t.Fatalf("the run's pod is not stored as the node named it: %+v", p)
	}
	if len(nodes["h1"].held.Pods) != 1 || nodes["h1"].held.Pods[0].UID != run1.Pods[0].UID {
		t.Fatalf("h1's spec does not carry the adopted pod: %+v", nodes["h1"].held.Pods)
	}
	if cj.Status.LastScheduleTime == nil || !cj.Status.LastScheduleTime.Time.Equal(t0) || len(cj.Status.Active) != 1 {
		t.Errorf("CronJob status %+v", cj.Status)
	}
	if held := nodes["h1"].held.CronJobs[0]; held.LastScheduleTime == nil || !held.LastScheduleTime.Equal(t0) {
		t.Errorf("h1 is not told the last schedule time: %v", held.LastScheduleTime)
	}

	// The node still reports the run (it forgets it once it sees its pod in
	// the spec): nothing is made twice.
	if res := loop(t0.Add(105 * time.Second)); len(res.Controllers.Put) != 0 {
		t.Errorf("a second loop over the same report changed: %+v", res.Controllers.Put)
	}

	// The run finishes, a second one runs and finishes: the older is
	// deleted with its pod (successfulJobsHistoryLimit 1).
	nodes["h1"].podDone[run1.Pods[0].UID] = true
	run2 := nodes["h1"].fire(t, t0.Add(time.Minute))
	nodes["h1"].podDone[run2.Pods[0].UID] = true
	loop(t0.Add(3 * time.Minute))
	loop(t0.Add(3*time.Minute + time.Second))
	cj, js, cl = stored()
	if len(js) != 1 || js[0].Name != run2.JobName {
		t.Errorf("Jobs after two finished runs with history limit 1: %v", jobNames(js))
	}
	if _, ok := cl.Pod("default", run1.Pods[0].Name); ok {
		t.Error("the deleted Job's pod is kept")
	}
	if cj.Status.LastSuccessfulTime == nil || len(cj.Status.Active) != 0 {
		t.Errorf("CronJob status %+v", cj.Status)
	}

	// h1 stops answering: within the pod eviction timeout the CronJob
	// stays (h1 may only be cut off, and still firing); after it, the
	// CronJob moves to h2 with what it knows.
	nodes["h1"].down = true
	loop(t0.Add(4 * time.Minute))
	cj, _, _ = stored()
	if got := cj.Annotations[jobs.CronJobNodeAnnotation]; got != "h1" {
		t.Fatalf("h1 down for less than the eviction timeout: the CronJob is on %q, want it kept on h1", got)
	}
	loop(t0.Add(4*time.Minute + inventory.DefaultPodEvictionTimeout))
	cj, _, _ = stored()
	if got := cj.Annotations[jobs.CronJobNodeAnnotation]; got != "h2" {
		t.Fatalf("with h1 down the CronJob is on %q, want h2", got)
	}
	held := nodes["h2"].held.CronJobs
	if len(held) != 1 || held[0].LastScheduleTime == nil || !held[0].LastScheduleTime.Equal(t0.Add(time.Minute)) {
		t.Errorf("h2 holds %+v, want the CronJob with its last schedule time", held)
	}
}

func jobNames(js []*batchv1.Job) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.Name)
	}
	return out
}
