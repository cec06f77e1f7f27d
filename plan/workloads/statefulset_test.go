package workloads

import (
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (c *cluster) set(name string) *appsv1.StatefulSet {
	c.t.Helper()
	s, ok := c.sets[nsName{"default", name}]
	if !ok {
		c.t.Fatalf("statefulset %s not found", name)
	}
	return s
}

func (c *cluster) editSet(name string, edit func(*appsv1.StatefulSet)) {
	s := c.set(name).DeepCopy()
	edit(s)
	c.store(s)
}

func (c *cluster) claimNames() []string {
	var out []string
	for _, p := range c.pvcs {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

// revisionOf returns each live pod's controller-revision-hash label.
func (c *cluster) revisionOf(set string) map[string]string {
	out := map[string]string{}
	for _, name := range c.podsOf("StatefulSet", set) {
		out[name] = c.pods[nsName{"default", name}].Labels[appsv1.StatefulSetRevisionLabel]
	}
	return out
}

func TestStatefulSetOrderedCreation(t *testing.T) {
	c := newCluster(t)
	c.add(newStatefulSet("web", 3, withClaim("www")))
	c.settle()
	if diff := cmp.Diff([]string{"web-0"}, c.podsOf("StatefulSet", "web")); diff != "" {
		t.Fatalf("first invocation (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"www-web-0"}, c.claimNames()); diff != "" {
		t.Fatalf("claims (-want +got):\n%s", diff)
	}
	set := c.set("web")
	rev := set.Status.UpdateRevision
	p := c.pods[nsName{"default", "web-0"}]
	wantLabels := map[string]string{
		"app": "web", "statefulset.kubernetes.io/pod-name": "web-0", "apps.kubernetes.io/pod-index": "0",
		"controller-revision-hash": rev,
	}
	if diff := cmp.Diff(wantLabels, p.Labels); diff != "" {
		t.Errorf("pod labels (-want +got):\n%s", diff)
	}
	if p.Spec.Hostname != "web-0" || p.Spec.Subdomain != "web-headless" || p.GenerateName != "web-" {
		t.Errorf("hostname %q subdomain %q generateName %q", p.Spec.Hostname, p.Spec.Subdomain, p.GenerateName)
	}
	wantVolumes := []corev1.Volume{{Name: "www", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "www-web-0"}}}}
	if diff := cmp.Diff(wantVolumes, p.Spec.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	pvc := c.pvcs[nsName{"default", "www-web-0"}]
	if pvc.Labels["app"] != "web" || pvc.Status.Phase != corev1.ClaimPending || len(pvc.OwnerReferences) != 0 {
		t.Errorf("claim %+v", pvc.ObjectMeta)
	}
	cr := c.revs[nsName{"default", rev}]
	patch, _ := templatePatch(&set.Spec.Template)
	if cr == nil || cr.Name != "web-"+hashControllerRevision(patch, int32Ptr(0)) || cr.Revision != 1 || *set.Status.CollisionCount != 0 {
		t.Errorf("revision %v for %s", cr, rev)
	}
	wantEvents := []string{
		"SuccessfulCreate: create Claim www-web-0 Pod web-0 in StatefulSet web success",
		"SuccessfulCreate: create Pod web-0 in StatefulSet web successful",
	}
	if diff := cmp.Diff(wantEvents, c.eventsFor("StatefulSet", "web")); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Running but not ready is not enough.
	c.setPods(func(*corev1.Pod) bool { return true }, corev1.PodRunning, false)
	c.settle()
	if n := len(c.podsOf("StatefulSet", "web")); n != 1 {
		t.Fatalf("%d pods before web-0 was ready", n)
	}
	for i, want := range [][]string{{"web-0", "web-1"}, {"web-0", "web-1", "web-2"}} {
		c.readyAll()
		c.settle()
		if diff := cmp.Diff(want, c.podsOf("StatefulSet", "web")); diff != "" {
			t.Fatalf("step %d (-want +got):\n%s", i, diff)
		}
	}
	c.readyAll()
	c.settle()
	st := c.set("web").Status
	want := appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, CurrentReplicas: 3, UpdatedReplicas: 3,
		CurrentRevision: rev, UpdateRevision: rev, CollisionCount: int32Ptr(0)}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if msg, done, err := StatefulSetRolloutStatus(c.set("web")); err != nil || !done || msg != "partitioned roll out complete: 3 new pods have been updated...\n" {
		t.Errorf("rollout status %q %v %v", msg, done, err)
	}
}

func TestStatefulSetParallel(t *testing.T) {
	c := newCluster(t)
	c.add(newStatefulSet("web", 3, withClaim("data"), func(s *appsv1.StatefulSet) {
		s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
		s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 5}
	}))
	c.pass()
	if diff := cmp.Diff([]string{"web-5", "web-6", "web-7"}, c.podsOf("StatefulSet", "web")); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"data-web-5", "data-web-6", "data-web-7"}, c.claimNames()); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
}

func TestStatefulSetScaleDown(t *testing.T) {
	c := newCluster(t)
	c.graceful = true
	c.add(newStatefulSet("web", 3, withClaim("www")))
	for range 4 {
		c.settle()
		c.readyAll()
	}
	c.editSet("web", func(s *appsv1.StatefulSet) { s.Spec.Replicas = int32Ptr(1) })
	c.settle()
	if diff := cmp.Diff([]string{"web-0", "web-1"}, c.podsOf("StatefulSet", "web")); diff != "" {
		t.Fatalf("first step removes only the highest ordinal (-want +got):\n%s", diff)
	}
	c.settle()
	if n := len(c.podsOf("StatefulSet", "web")); n != 2 {
		t.Fatalf("removed web-1 while web-2 was terminating")
	}
	c.finishTermination()
	c.settle()
	if diff := cmp.Diff([]string{"web-0"}, c.podsOf("StatefulSet", "web")); diff != "" {
		t.Fatalf("second step (-want +got):\n%s", diff)
	}
	c.finishTermination()
	c.settle()
	if diff := cmp.Diff([]string{"www-web-0", "www-web-1", "www-web-2"}, c.claimNames()); diff != "" {
		t.Errorf("claims are retained by default (-want +got):\n%s", diff)
	}
	// Scaling up again reuses the claims.
	c.editSet("web", func(s *appsv1.StatefulSet) { s.Spec.Replicas = int32Ptr(2) })
	c.readyAll()
	c.settle()
	if diff := cmp.Diff([]string{"www-web-0", "www-web-1", "www-web-2"}, c.claimNames()); diff != "" {
		t.Errorf("claims after scaling up (-want +got):\n%s", diff)
	}
}

func TestStatefulSetClaimRetention(t *testing.T) {
	del := appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	c := newCluster(t)
	c.add(newStatefulSet("web", 2, withClaim("www"), func(s *appsv1.StatefulSet) {
		s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenScaled: del, WhenDeleted: del}
	}))
	for range 3 {
		c.settle()
		c.readyAll()
	}
	for _, name := range []string{"www-web-0", "www-web-1"} {
		refs := c.pvcs[nsName{"default", name}].OwnerReferences
		if len(refs) != 1 || refs[0].Kind != "StatefulSet" || refs[0].UID != "uid-web" {
			t.Errorf("%s owner references %+v, want the StatefulSet", name, refs)
		}
	}
	c.editSet("web", func(s *appsv1.StatefulSet) { s.Spec.Replicas = int32Ptr(1) })
	c.settle()
	if diff := cmp.Diff([]string{"www-web-0"}, c.claimNames()); diff != "" {
		t.Errorf("whenScaled Delete (-want +got):\n%s", diff)
	}
	delete(c.sets, nsName{"default", "web"})
	c.settle()
	if len(c.pvcs) != 0 || len(c.pods) != 0 || len(c.revs) != 0 {
		t.Errorf("after deleting the set: claims %v, %d pods, %d revisions", c.claimNames(), len(c.pods), len(c.revs))
	}
}

func TestStatefulSetPartitionedUpdate(t *testing.T) {
	c := newCluster(t)
	c.add(newStatefulSet("web", 3, func(s *appsv1.StatefulSet) {
		s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: int32Ptr(1)}}
	}))
	for range 4 {
		c.settle()
		c.readyAll()
	}
	c.settle()
	oldRev := c.set("web").Status.CurrentRevision
	c.editSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "db:2.0" })
	c.settle()
	newRev := c.set("web").Status.UpdateRevision
	if newRev == oldRev {
		t.Fatal("no new revision")
	}
	if diff := cmp.Diff(map[string]string{"web-0": oldRev, "web-1": oldRev, "web-2": newRev}, c.revisionOf("web")); diff != "" {
		t.Fatalf("first step updates the highest ordinal (-want +got):\n%s", diff)
	}
	if img := c.pods[nsName{"default", "web-2"}].Spec.Containers[0].Image; img != "db:2.0" {
		t.Errorf("web-2 runs %s", img)
	}
	// web-1 waits for web-2 to be ready.
	c.settle()
	if got := c.revisionOf("web")["web-1"]; got != oldRev {
		t.Fatalf("web-1 updated before web-2 was ready")
	}
	c.readyAll()
	c.settle()
	c.readyAll()
	c.settle()
	if diff := cmp.Diff(map[string]string{"web-0": oldRev, "web-1": newRev, "web-2": newRev}, c.revisionOf("web")); diff != "" {
		t.Fatalf("partition 1 keeps web-0 (-want +got):\n%s", diff)
	}
	st := c.set("web").Status
	if st.CurrentRevision != oldRev || st.UpdatedReplicas != 2 || st.CurrentReplicas != 1 {
		t.Errorf("status %+v", st)
	}
	if msg, done, _ := StatefulSetRolloutStatus(c.set("web")); !done || msg != "partitioned roll out complete: 2 new pods have been updated...\n" {
		t.Errorf("rollout status %q", msg)
	}

	// A deleted pod below the partition comes back at the current
	// revision, with the current revision's template.
	delete(c.pods, nsName{"default", "web-0"})
	c.settle()
	if p := c.pods[nsName{"default", "web-0"}]; p.Labels[appsv1.StatefulSetRevisionLabel] != oldRev || p.Spec.Containers[0].Image != "db:1.0" {
		t.Errorf("recreated web-0 at %s running %s", p.Labels[appsv1.StatefulSetRevisionLabel], p.Spec.Containers[0].Image)
	}

	c.editSet("web", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = int32Ptr(0) })
	for range 3 {
		c.readyAll()
		c.settle()
	}
	st = c.set("web").Status
	if st.CurrentRevision != newRev || st.CurrentReplicas != 3 || st.UpdatedReplicas != 3 {
		t.Errorf("after partition 0: %+v", st)
	}
}

func TestStatefulSetRollbackReusesRevision(t *testing.T) {
	c := newCluster(t)
	c.add(newStatefulSet("web", 1))
	for range 2 {
		c.settle()
		c.readyAll()
	}
	first := c.set("web").Status.UpdateRevision
	c.editSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "db:2.0" })
	for range 2 {
		c.settle()
		c.readyAll()
	}
	c.editSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "db:1.0" })
	for range 2 {
		c.settle()
		c.readyAll()
	}
	if got := c.set("web").Status.UpdateRevision; got != first {
		t.Errorf("update revision %s, want the first one %s again", got, first)
	}
	if cr := c.revs[nsName{"default", first}]; cr.Revision != 3 || len(c.revs) != 2 {
		t.Errorf("revision number %d, %d revisions; want 3 and 2", cr.Revision, len(c.revs))
	}
}

func TestStatefulSetOnDeleteAndFailedPods(t *testing.T) {
	c := newCluster(t)
	c.add(newStatefulSet("web", 2, func(s *appsv1.StatefulSet) {
		s.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
	}))
	for range 3 {
		c.settle()
		c.readyAll()
	}
	oldRev := c.set("web").Status.CurrentRevision
	c.editSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "db:2.0" })
	c.settle()
	newRev := c.set("web").Status.UpdateRevision
	if diff := cmp.Diff(map[string]string{"web-0": oldRev, "web-1": oldRev}, c.revisionOf("web")); diff != "" {
		t.Fatalf("OnDelete replaced pods (-want +got):\n%s", diff)
	}
	// A failed pod is deleted and comes back at the update revision.
	c.setPods(func(p *corev1.Pod) bool { return p.Name == "web-1" }, corev1.PodFailed, false)
	c.settle()
	if diff := cmp.Diff(map[string]string{"web-0": oldRev, "web-1": newRev}, c.revisionOf("web")); diff != "" {
		t.Errorf("after web-1 failed (-want +got):\n%s", diff)
	}
	if got := c.eventsFor("StatefulSet", "web"); got[len(got)-2] != "SuccessfulDelete: delete Pod web-1 in StatefulSet web successful" {
		t.Errorf("events %v", got)
	}
}

func TestStatefulSetAdoptsMembersOnly(t *testing.T) {
	c := newCluster(t)
	member := &corev1.Pod{TypeMeta: typePod, ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default", Labels: map[string]string{"app": "web"}}}
	stranger := &corev1.Pod{TypeMeta: typePod, ObjectMeta: metav1.ObjectMeta{Name: "other-0", Namespace: "default", Labels: map[string]string{"app": "web"}}}
	c.add(newStatefulSet("web", 1), member, stranger)
	c.pass()
	if ref := metav1.GetControllerOf(c.pods[nsName{"default", "web-0"}]); ref == nil || ref.Name != "web" {
		t.Errorf("web-0 not adopted: %v", ref)
	}
	if ref := metav1.GetControllerOf(c.pods[nsName{"default", "other-0"}]); ref != nil {
		t.Errorf("other-0 adopted by %v", ref)
	}
}
