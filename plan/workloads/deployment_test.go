package workloads

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// rollOut alternates invocations with pods becoming ready until the
// Deployment reports a complete rollout.
func rollOut(t *testing.T, c *cluster, name string) {
	t.Helper()
	for range 12 {
		c.settle()
		d := c.deployment(name)
		if _, done, err := DeploymentRolloutStatus(d, 0); err != nil {
			t.Fatalf("rollout status: %v", err)
		} else if done {
			return
		}
		c.readyAll()
	}
	t.Fatalf("deployment %s did not finish rolling out", name)
}

func condition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType) appsv1.DeploymentCondition {
	if c := getDeploymentCondition(d.Status, typ); c != nil {
		return *c
	}
	return appsv1.DeploymentCondition{}
}

type rsState struct {
	Name     string
	Replicas int32
	Revision string
}

func rsStates(rss []*appsv1.ReplicaSet) []rsState {
	var out []rsState
	for _, rs := range rss {
		out = append(out, rsState{rs.Name, rsReplicas(rs), rs.Annotations[RevisionAnnotation]})
	}
	return out
}

func TestDeploymentCreate(t *testing.T) {
	c := newCluster(t)
	c.add(newDeployment("web", 3))
	if n := c.settle(); n > 3 {
		t.Errorf("creation took %d passes, want at most 3", n)
	}
	hash := ComputeHash(&c.deployment("web").Spec.Template, nil)
	rss := c.replicaSetsOf("web")
	if diff := cmp.Diff([]rsState{{"web-" + hash, 3, "1"}}, rsStates(rss)); diff != "" {
		t.Fatalf("replica sets (-want +got):\n%s", diff)
	}
	rs := rss[0]
	if rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
		rs.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
		rs.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
		t.Errorf("pod-template-hash missing from the replica set's labels, selector or template: %+v", rs.ObjectMeta)
	}
	if got := rs.Annotations; got[DesiredReplicasAnnotation] != "3" || got[MaxReplicasAnnotation] != "4" {
		t.Errorf("replica annotations = %v, want desired 3 and max 4 (25%% surge rounds up)", got)
	}
	ref := rs.OwnerReferences[0]
	if ref.Kind != "Deployment" || ref.Name != "web" || ref.UID != "uid-web" || !*ref.Controller || !*ref.BlockOwnerDeletion {
		t.Errorf("owner reference = %+v", ref)
	}
	if rs.UID == "" || !strings.Contains(string(rs.UID), "-8") || len(rs.UID) != 36 || !rs.CreationTimestamp.Time.Equal(t0) {
		t.Errorf("uid %q / creationTimestamp %v not derived", rs.UID, rs.CreationTimestamp)
	}
	pods := c.podsOf("ReplicaSet", rs.Name)
	if len(pods) != 3 {
		t.Fatalf("pods = %v, want 3", pods)
	}
	for _, name := range pods {
		p := c.pods[nsName{"default", name}]
		suffix := strings.TrimPrefix(name, rs.Name+"-")
		if len(suffix) != 5 || strings.Trim(suffix, alphanums) != "" || p.GenerateName != rs.Name+"-" {
			t.Errorf("pod name %q is not <rs>-<5 safe characters>", name)
		}
		if p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || p.Labels["app"] != "web" || p.Status.Phase != corev1.PodPending {
			t.Errorf("pod %s labels %v phase %s", name, p.Labels, p.Status.Phase)
		}
	}
	d := c.deployment("web")
	if d.Annotations[RevisionAnnotation] != "1" || d.Status.ObservedGeneration != 1 || d.Status.Replicas != 3 || d.Status.UpdatedReplicas != 3 || d.Status.UnavailableReplicas != 3 {
		t.Errorf("deployment revision %q status %+v", d.Annotations[RevisionAnnotation], d.Status)
	}
	if got := condition(d, appsv1.DeploymentAvailable); got.Status != corev1.ConditionFalse || got.Reason != ReasonMinimumUnavailable {
		t.Errorf("Available = %+v", got)
	}
	if diff := cmp.Diff([]string{"ScalingReplicaSet: Scaled up replica set web-" + hash + " from 0 to 3"}, c.eventsFor("Deployment", "web")); diff != "" {
		t.Errorf("deployment events (-want +got):\n%s", diff)
	}
	if got := len(c.eventsFor("ReplicaSet", rs.Name)); got != 3 {
		t.Errorf("%d replica set events, want 3 SuccessfulCreate", got)
	}

	c.readyAll()
	c.settle()
	d = c.deployment("web")
	if d.Status.AvailableReplicas != 3 || d.Status.ReadyReplicas != 3 || d.Status.UnavailableReplicas != 0 || *d.Status.TerminatingReplicas != 0 {
		t.Errorf("status after ready = %+v", d.Status)
	}
	if got := condition(d, appsv1.DeploymentProgressing); got.Reason != ReasonNewRSAvailable || got.Message != `ReplicaSet "web-`+hash+`" has successfully progressed.` {
		t.Errorf("Progressing = %+v", got)
	}
	if msg, done, err := DeploymentRolloutStatus(d, 1); err != nil || !done || msg != "deployment \"web\" successfully rolled out\n" {
		t.Errorf("rollout status = %q, %v, %v", msg, done, err)
	}
}

// TestDeploymentRollingUpdate steps a rolling update of 3 replicas with
// maxSurge 1 and maxUnavailable 0, flipping readiness between invocations:
// there are never more than 4 pods nor fewer than 3 available ones.
func TestDeploymentRollingUpdate(t *testing.T) {
	c := newCluster(t)
	c.add(newDeployment("web", 3, rolling(intstr.FromInt32(1), intstr.FromInt32(0))))
	rollOut(t, c, "web")
	oldRS := c.replicaSetsOf("web")[0].Name

	c.editDeployment("web", image("nginx:2.0"))
	c.clearEvents()
	c.settle()
	newHash := ComputeHash(&c.deployment("web").Spec.Template, nil)
	newRS := "web-" + newHash
	want := []rsState{{oldRS, 3, "1"}, {newRS, 1, "2"}}
	if diff := cmp.Diff(want, rsStates(c.replicaSetsOf("web"))); diff != "" {
		t.Fatalf("after the template change (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ScalingReplicaSet: Scaled up replica set " + newRS + " from 0 to 1"}, c.eventsFor("Deployment", "web")); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if msg, done, _ := DeploymentRolloutStatus(c.deployment("web"), 0); done || msg != "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...\n" {
		t.Errorf("rollout status = %q", msg)
	}

	// Without readiness nothing moves, however often it runs.
	c.settle()
	if diff := cmp.Diff(want, rsStates(c.replicaSetsOf("web"))); diff != "" {
		t.Fatalf("progress without readiness (-want +got):\n%s", diff)
	}

	steps := []struct{ old, new int32 }{{2, 2}, {1, 3}, {0, 3}}
	for i, step := range steps {
		c.readyAll()
		c.settle()
		got := rsStates(c.replicaSetsOf("web"))
		if got[0].Replicas != step.old || got[1].Replicas != step.new {
			t.Fatalf("step %d: replica sets %+v, want old %d new %d", i, got, step.old, step.new)
		}
		live, available := 0, 0
		for _, p := range c.pods {
			live++
			if isPodAvailable(p, 0, c.now) {
				available++
			}
		}
		if live > 4 || available < 3 {
			t.Errorf("step %d: %d pods, %d available; want at most 4 and at least 3", i, live, available)
		}
	}
	c.readyAll()
	c.settle()
	d := c.deployment("web")
	if msg, done, _ := DeploymentRolloutStatus(d, 2); !done {
		t.Errorf("rollout not done: %s", msg)
	}
	if len(c.podsOf("ReplicaSet", oldRS)) != 0 || len(c.podsOf("ReplicaSet", newRS)) != 3 {
		t.Errorf("pods: old %v new %v", c.podsOf("ReplicaSet", oldRS), c.podsOf("ReplicaSet", newRS))
	}
	if d.Annotations[RevisionAnnotation] != "2" || d.Status.ObservedGeneration != 2 {
		t.Errorf("revision %q observedGeneration %d", d.Annotations[RevisionAnnotation], d.Status.ObservedGeneration)
	}
	if got := condition(d, appsv1.DeploymentAvailable); got.Status != corev1.ConditionTrue || got.Reason != ReasonMinimumAvailable {
		t.Errorf("Available = %+v", got)
	}
}

// TestDeploymentDefaultStrategy: with the default 25%/25% on 4 replicas
// the update may run 5 pods of which 3 available: it surges one new pod,
// takes one old pod away and adds another new one, without readiness.
func TestDeploymentDefaultStrategy(t *testing.T) {
	c := newCluster(t)
	c.add(newDeployment("web", 4))
	rollOut(t, c, "web")
	c.editDeployment("web", image("nginx:2.0"))
	c.settle()
	got := rsStates(c.replicaSetsOf("web"))
	if got[0].Replicas != 3 || got[1].Replicas != 2 {
		t.Errorf("first step = %+v, want old 3 (maxUnavailable 1) and new 2 (maxSurge 1)", got)
	}
	rollOut(t, c, "web")
}

func TestDeploymentRecreate(t *testing.T) {
	c := newCluster(t)
	c.graceful = true
	c.add(newDeployment("web", 2, recreate))
	rollOut(t, c, "web")
	oldRS := c.replicaSetsOf("web")[0].Name

	c.editDeployment("web", image("nginx:2.0"))
	c.clearEvents()
	c.settle()
	if diff := cmp.Diff([]rsState{{oldRS, 0, "1"}}, rsStates(c.replicaSetsOf("web"))); diff != "" {
		t.Fatalf("while old pods terminate (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ScalingReplicaSet: Scaled down replica set " + oldRS + " from 2 to 0"}, c.eventsFor("Deployment", "web")); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	terminating := 0
	for _, p := range c.pods {
		if p.DeletionTimestamp != nil {
			terminating++
		}
	}
	if terminating != 2 {
		t.Fatalf("%d terminating pods, want 2", terminating)
	}
	if d := c.deployment("web"); d.Status.TerminatingReplicas == nil || *d.Status.TerminatingReplicas != 2 {
		t.Errorf("terminatingReplicas = %v, want 2", d.Status.TerminatingReplicas)
	}
	// Still terminating at the next invocation: no new ReplicaSet.
	c.settle()
	if n := len(c.replicaSetsOf("web")); n != 1 {
		t.Fatalf("%d replica sets while old pods terminate, want 1", n)
	}

	c.finishTermination()
	c.settle()
	got := rsStates(c.replicaSetsOf("web"))
	if len(got) != 2 || got[1].Replicas != 2 || got[1].Revision != "2" {
		t.Fatalf("after termination: %+v, want a new replica set with all 2 replicas", got)
	}
	if n := len(c.podsOf("ReplicaSet", got[1].Name)); n != 2 {
		t.Errorf("%d new pods, want 2", n)
	}
	rollOut(t, c, "web")
}

func TestDeploymentPaused(t *testing.T) {
	c := newCluster(t)
	c.add(newDeployment("web", 2))
	rollOut(t, c, "web")
	oldRS := c.replicaSetsOf("web")[0].Name

	c.editDeployment("web", func(d *appsv1.Deployment) {
		d.Spec.Paused = true
		d.Spec.Template.Spec.Containers[0].Image = "nginx:2.0"
	})
	c.settle()
	if n := len(c.replicaSetsOf("web")); n != 1 {
		t.Fatalf("paused deployment rolled out: %d replica sets", n)
	}
	d := c.deployment("web")
	if got := condition(d, appsv1.DeploymentProgressing); got.Status != corev1.ConditionUnknown || got.Reason != ReasonDeploymentPaused || got.Message != "Deployment is paused" {
		t.Errorf("Progressing = %+v", got)
	}
	if _, err := RestartDeployment(d, c.now); !errors.Is(err, ErrPaused) || err.Error() != "can't restart paused deployment (run rollout resume first)" {
		t.Errorf("restarting a paused deployment: %v", err)
	}
	if _, _, err := RollbackDeployment(d, values(c.rss), 0); !errors.Is(err, ErrPaused) {
		t.Errorf("rolling back a paused deployment: %v", err)
	}

	// Scaling still applies while paused.
	c.editDeployment("web", func(d *appsv1.Deployment) { d.Spec.Replicas = int32Ptr(4) })
	c.settle()
	if diff := cmp.Diff([]rsState{{oldRS, 4, "1"}}, rsStates(c.replicaSetsOf("web"))); diff != "" {
		t.Errorf("scaling while paused (-want +got):\n%s", diff)
	}

	c.editDeployment("web", func(d *appsv1.Deployment) { d.Spec.Paused = false })
	c.settle()
	if n := len(c.replicaSetsOf("web")); n != 2 {
		t.Fatalf("resumed deployment: %d replica sets, want 2", n)
	}
	if got := condition(c.deployment("web"), appsv1.DeploymentProgressing); got.Status != corev1.ConditionTrue {
		t.Errorf("Progressing after resume = %+v", got)
	}
	rollOut(t, c, "web")
}

func TestDeploymentProgressDeadline(t *testing.T) {
	c := newCluster(t)
	c.add(newDeployment("web", 1, func(d *appsv1.Deployment) { d.Spec.ProgressDeadlineSeconds = int32Ptr(30) }))
	c.settle()
	rs := c.replicaSetsOf("web")[0].Name

	c.now = c.now.Add(29 * time.Second)
	c.settle()
	if got := condition(c.deployment("web"), appsv1.DeploymentProgressing); got.Status != corev1.ConditionTrue {
		t.Fatalf("before the deadline Progressing = %+v", got)
	}
	c.now = c.now.Add(2 * time.Second)
	c.settle()
	d := c.deployment("web")
	want := appsv1.DeploymentCondition{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: ReasonProgressDeadline,
		Message: `ReplicaSet "` + rs + `" has timed out progressing.`,
	}
	got := condition(d, appsv1.DeploymentProgressing)
	got.LastUpdateTime, got.LastTransitionTime = want.LastUpdateTime, want.LastTransitionTime
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Progressing (-want +got):\n%s", diff)
	}
	if _, _, err := DeploymentRolloutStatus(d, 0); err == nil || err.Error() != `deployment "web" exceeded its progress deadline` {
		t.Errorf("rollout status error = %v", err)
	}
	// Readiness later does not undo the verdict until the next rollout
	// completes it.
	c.readyAll()
	c.settle()
	if got := condition(c.deployment("web"), appsv1.DeploymentProgressing); got.Reason != ReasonNewRSAvailable {
		t.Errorf("after pods became ready Progressing = %+v, want NewReplicaSetAvailable", got)
	}
}

func TestDeploymentRollbackAndHistory(t *testing.T) {
	c := newCluster(t)
	c.add(newDeployment("web", 2))
	rollOut(t, c, "web")
	c.editDeployment("web", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "nginx:2.0"
		d.Annotations = map[string]string{ChangeCauseAnnotation: "kubectl set image deployment/web main=nginx:2.0"}
	})
	rollOut(t, c, "web")
	rss := values(c.rss)
	d := c.deployment("web")

	hist := DeploymentHistory(d, rss)
	var got []string
	for _, h := range hist {
		got = append(got, h.ChangeCause+"|"+h.Template.Spec.Containers[0].Image)
	}
	if diff := cmp.Diff([]string{"|nginx:1.0", "kubectl set image deployment/web main=nginx:2.0|nginx:2.0"}, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if hist[0].Revision != 1 || hist[1].Revision != 2 {
		t.Errorf("revisions %d, %d", hist[0].Revision, hist[1].Revision)
	}

	if _, _, err := RollbackDeployment(d, rss, 7); err == nil || err.Error() != "unable to find specified revision 7 in history" {
		t.Errorf("rollback to a missing revision: %v", err)
	}
	rolled, msg, err := RollbackDeployment(d, rss, 0)
	if err != nil || msg != "rolled back" {
		t.Fatalf("rollback: %q, %v", msg, err)
	}
	if img := rolled.Spec.Template.Spec.Containers[0].Image; img != "nginx:1.0" {
		t.Errorf("rolled back image %s", img)
	}
	if _, ok := rolled.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; ok {
		t.Error("rolled back template kept the pod-template-hash label")
	}
	if _, ok := rolled.Annotations[ChangeCauseAnnotation]; ok || rolled.Annotations[RevisionAnnotation] != "2" {
		t.Errorf("rolled back annotations %v", rolled.Annotations)
	}
	c.store(rolled)
	rollOut(t, c, "web")
	if diff := cmp.Diff([]rsState{{hist[1].ReplicaSet, 0, "2"}, {hist[0].ReplicaSet, 2, "3"}}, rsStates(c.replicaSetsOf("web"))); diff != "" {
		t.Errorf("after rollback (-want +got):\n%s", diff)
	}
	if rs := c.rss[nsName{"default", hist[0].ReplicaSet}]; rs.Annotations[RevisionHistoryAnnotation] != "1" {
		t.Errorf("revision-history = %q, want 1", rs.Annotations[RevisionHistoryAnnotation])
	}
	if got := c.deployment("web").Annotations[RevisionAnnotation]; got != "3" {
		t.Errorf("deployment revision %s, want 3", got)
	}
	_, msg, err = RollbackDeployment(c.deployment("web"), values(c.rss), 3)
	if err != nil || msg != "skipped rollback (current template already matches revision 3)" {
		t.Errorf("rollback to the current revision: %q, %v", msg, err)
	}
}

func TestDeploymentRevisionHistoryLimit(t *testing.T) {
	c := newCluster(t)
	c.add(newDeployment("web", 1, historyLimit(1)))
	rollOut(t, c, "web")
	for _, img := range []string{"nginx:2.0", "nginx:3.0", "nginx:4.0"} {
		c.editDeployment("web", image(img))
		rollOut(t, c, "web")
	}
	got := rsStates(c.replicaSetsOf("web"))
	if len(got) != 2 || got[0].Revision != "3" || got[0].Replicas != 0 || got[1].Revision != "4" {
		t.Errorf("replica sets %+v, want revision 3 (scaled to 0) and 4", got)
	}
}

func TestDeploymentScaleDuringRollout(t *testing.T) {
	c := newCluster(t)
	c.add(newDeployment("web", 10, rolling(intstr.FromInt32(3), intstr.FromInt32(2))))
	rollOut(t, c, "web")
	c.editDeployment("web", image("nginx:2.0"))
	c.settle()
	before := rsStates(c.replicaSetsOf("web"))
	if before[0].Replicas != 8 || before[1].Replicas != 5 {
		t.Fatalf("rollout start %+v, want old 8 new 5", before)
	}
	// Proportional scaling: 13 of 13 allowed go to 20+3 = 23, split 8:5.
	c.editDeployment("web", func(d *appsv1.Deployment) { d.Spec.Replicas = int32Ptr(20) })
	c.pass()
	after := rsStates(c.replicaSetsOf("web"))
	if after[0].Replicas+after[1].Replicas != 23 || after[0].Replicas != 14 || after[1].Replicas != 9 {
		t.Errorf("after scaling to 20: %+v, want old 14 new 9", after)
	}
}

func TestDeploymentSelectingAll(t *testing.T) {
	c := newCluster(t)
	d := newDeployment("web", 1)
	d.Spec.Selector.MatchLabels = nil
	c.add(d)
	c.settle()
	if len(c.rss) != 0 {
		t.Errorf("a deployment selecting everything created replica sets")
	}
	if got := c.eventsFor("Deployment", "web"); len(got) == 0 || got[0] != "SelectingAll: "+deploymentSelectingAllMsg {
		t.Errorf("events %v", got)
	}
}

func TestDeploymentDeletionCascades(t *testing.T) {
	c := newCluster(t)
	c.add(newDeployment("web", 2))
	rollOut(t, c, "web")
	delete(c.deployments, nsName{"default", "web"})
	c.settle()
	if len(c.rss) != 0 || len(c.pods) != 0 {
		t.Errorf("left after deleting the deployment: %d replica sets, %d pods", len(c.rss), len(c.pods))
	}
}

func TestDeploymentRolloutStatusMessages(t *testing.T) {
	d := func(gen, observed int64, replicas, updated, total, available int32) *appsv1.Deployment {
		x := newDeployment("web", replicas)
		x.Generation = gen
		x.Status = appsv1.DeploymentStatus{ObservedGeneration: observed, UpdatedReplicas: updated, Replicas: total, AvailableReplicas: available}
		return x
	}
	tests := []struct {
		name string
		d    *appsv1.Deployment
		msg  string
		done bool
	}{
		{"not observed", d(2, 1, 3, 3, 3, 3), "Waiting for deployment spec update to be observed...\n", false},
		{"updating", d(1, 1, 3, 1, 4, 3), "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...\n", false},
		{"old pending", d(1, 1, 3, 3, 4, 3), "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...\n", false},
		{"unavailable", d(1, 1, 3, 3, 3, 2), "Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available...\n", false},
		{"done", d(1, 1, 3, 3, 3, 3), "deployment \"web\" successfully rolled out\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, done, err := DeploymentRolloutStatus(tt.d, 0)
			if err != nil || msg != tt.msg || done != tt.done {
				t.Errorf("got %q, %v, %v; want %q, %v", msg, done, err, tt.msg, tt.done)
			}
		})
	}
}

func TestRestartTemplate(t *testing.T) {
	d := newDeployment("web", 1)
	out, err := RestartDeployment(d, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Spec.Template.Annotations[RestartedAtAnnotation]; got != "2025-06-01T12:00:00Z" {
		t.Errorf("restartedAt = %q", got)
	}
	if d.Spec.Template.Annotations != nil {
		t.Error("RestartDeployment modified its argument")
	}
}

func TestResolveFenceposts(t *testing.T) {
	tests := []struct {
		surge, unavailable intstr.IntOrString
		replicas           int32
		wantSurge, wantU   int32
	}{
		{intstr.FromString("25%"), intstr.FromString("25%"), 10, 3, 2}, // surge rounds up, unavailable down
		{intstr.FromString("25%"), intstr.FromString("25%"), 1, 1, 0},
		{intstr.FromInt32(0), intstr.FromString("10%"), 3, 0, 1}, // both 0 after rounding: unavailable 1
		{intstr.FromInt32(2), intstr.FromInt32(5), 3, 2, 5},
	}
	for _, tt := range tests {
		s, u := resolveFenceposts(&tt.surge, &tt.unavailable, tt.replicas)
		if s != tt.wantSurge || u != tt.wantU {
			t.Errorf("resolveFenceposts(%s, %s, %d) = %d, %d; want %d, %d", tt.surge.String(), tt.unavailable.String(), tt.replicas, s, u, tt.wantSurge, tt.wantU)
		}
	}
	d := newDeployment("web", 3, rolling(intstr.FromInt32(2), intstr.FromInt32(5)))
	setDeploymentDefaults(&d.Spec)
	if got := maxUnavailable(d); got != 3 {
		t.Errorf("maxUnavailable = %d, want it capped at replicas", got)
	}
}

func TestDeploymentHashCollision(t *testing.T) {
	c := newCluster(t)
	d := newDeployment("web", 1)
	hash := ComputeHash(&d.Spec.Template, nil)
	squatter := newReplicaSet("web-"+hash, 0)
	squatter.Spec.Template = podTemplate("other", "busybox")
	squatter.Spec.Selector.MatchLabels = map[string]string{"app": "other"}
	squatter.Labels = map[string]string{"app": "other"}
	c.add(d, squatter)
	c.settle()
	got := c.deployment("web")
	if got.Status.CollisionCount == nil || *got.Status.CollisionCount != 1 {
		t.Fatalf("collisionCount = %v, want 1", got.Status.CollisionCount)
	}
	want := "web-" + ComputeHash(&got.Spec.Template, int32Ptr(1))
	if rss := c.replicaSetsOf("web"); len(rss) != 1 || rss[0].Name != want {
		t.Errorf("replica sets %+v, want %s", rsStates(rss), want)
	}
}
