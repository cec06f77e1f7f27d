package jobs

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// clusterctl apply gives a Job its uid and creationTimestamp before any
// controller sees it: the first pass must still generate its selector and
// pod labels, and create its pod.
func TestJobStoredByApplyIsAdmitted(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "once", UID: "11111111-2222-4333-8444-555555555555", CreationTimestamp: metav1.NewTime(now)},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}},
	}
	ch := ReconcileJobs(JobInput{Now: now, Seed: "s", Jobs: []*batchv1.Job{job}})
	var stored *batchv1.Job
	pods := 0
	for _, o := range ch.Put {
		switch obj := o.(type) {
		case *batchv1.Job:
			stored = obj
		case *corev1.Pod:
			pods++
			if obj.Labels[batchv1.ControllerUidLabel] != string(job.UID) {
				t.Errorf("pod labels = %v, want the Job uid", obj.Labels)
			}
		}
	}
	if stored == nil || stored.Spec.Selector == nil || stored.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] != string(job.UID) {
		t.Fatalf("stored Job = %+v, want a selector on its uid", stored)
	}
	if stored.UID != job.UID {
		t.Errorf("uid changed from %s to %s", job.UID, stored.UID)
	}
	if pods != 1 {
		t.Errorf("created %d pods, want 1", pods)
	}
}
