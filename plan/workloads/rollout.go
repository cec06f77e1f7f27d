package workloads

import (
	"errors"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeploymentRolloutStatus is kubectl rollout status for a Deployment
// (kubectl's DeploymentStatusViewer): the message to print and whether the
// rollout is done. A revision above 0 must be the Deployment's current
// one. A Deployment past its progress deadline is an error. The API
// server's defaults are applied first, as kubectl sees them.
func DeploymentRolloutStatus(d *appsv1.Deployment, revision int64) (string, bool, error) {
	d = d.DeepCopy()
	setDeploymentDefaults(&d.Spec)
	if revision > 0 {
		rev, err := Revision(d)
		if err != nil {
			return "", false, fmt.Errorf("cannot get the revision of deployment %q: %w", d.Name, err)
		}
		if revision != rev {
			return "", false, fmt.Errorf("desired revision (%d) is different from the running revision (%d)", revision, rev)
		}
	}
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...\n", false, nil
	}
	if c := getDeploymentCondition(d.Status, appsv1.DeploymentProgressing); c != nil && c.Reason == ReasonProgressDeadline {
		return "", false, fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
	}
	st := d.Status
	if d.Spec.Replicas != nil && st.UpdatedReplicas < *d.Spec.Replicas {
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...\n", d.Name, st.UpdatedReplicas, *d.Spec.Replicas), false, nil
	}
	if st.Replicas > st.UpdatedReplicas {
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...\n", d.Name, st.Replicas-st.UpdatedReplicas), false, nil
	}
	if st.AvailableReplicas < st.UpdatedReplicas {
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...\n", d.Name, st.AvailableReplicas, st.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out\n", d.Name), true, nil
}

// DaemonSetRolloutStatus is kubectl rollout status for a DaemonSet.
// The API server's defaults are applied first, as kubectl sees them.
func DaemonSetRolloutStatus(ds *appsv1.DaemonSet) (string, bool, error) {
	ds = ds.DeepCopy()
	setDaemonSetDefaults(&ds.Spec)
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		return "", true, fmt.Errorf("rollout status is only available for %s strategy type", appsv1.RollingUpdateStatefulSetStrategyType)
	}
	if ds.Generation > ds.Status.ObservedGeneration {
		return "Waiting for daemon set spec update to be observed...\n", false, nil
	}
	st := ds.Status
	if st.UpdatedNumberScheduled < st.DesiredNumberScheduled {
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated...\n", ds.Name, st.UpdatedNumberScheduled, st.DesiredNumberScheduled), false, nil
	}
	if st.NumberAvailable < st.DesiredNumberScheduled {
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available...\n", ds.Name, st.NumberAvailable, st.DesiredNumberScheduled), false, nil
	}
	return fmt.Sprintf("daemon set %q successfully rolled out\n", ds.Name), true, nil
}

// StatefulSetRolloutStatus is kubectl rollout status for a StatefulSet.
// The API server's defaults are applied first, as kubectl sees them.
func StatefulSetRolloutStatus(set *appsv1.StatefulSet) (string, bool, error) {
	set = set.DeepCopy()
	setStatefulSetDefaults(&set.Spec)
	u := set.Spec.UpdateStrategy
	if u.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		return "", true, fmt.Errorf("rollout status is only available for %s strategy type", appsv1.RollingUpdateStatefulSetStrategyType)
	}
	if set.Status.ObservedGeneration == 0 || set.Generation > set.Status.ObservedGeneration {
		return "Waiting for statefulset spec update to be observed...\n", false, nil
	}
	st := set.Status
	if set.Spec.Replicas != nil && st.ReadyReplicas < *set.Spec.Replicas {
		return fmt.Sprintf("Waiting for %d pods to be ready...\n", *set.Spec.Replicas-st.ReadyReplicas), false, nil
	}
	if u.RollingUpdate != nil {
		if set.Spec.Replicas != nil && u.RollingUpdate.Partition != nil {
			if want := *set.Spec.Replicas - *u.RollingUpdate.Partition; st.UpdatedReplicas < want {
				return fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated...\n", st.UpdatedReplicas, want), false, nil
			}
		}
		return fmt.Sprintf("partitioned roll out complete: %d new pods have been updated...\n", st.UpdatedReplicas), true, nil
	}
	if st.UpdateRevision != st.CurrentRevision {
		return fmt.Sprintf("waiting for statefulset rolling update to complete %d pods at revision %s...\n", st.UpdatedReplicas, st.UpdateRevision), false, nil
	}
	return fmt.Sprintf("statefulset rolling update complete %d pods at revision %s...\n", st.CurrentReplicas, st.CurrentRevision), true, nil
}

// DeploymentRevision is one entry of a Deployment's rollout history.
type DeploymentRevision struct {
	Revision    int64
	ReplicaSet  string
	ChangeCause string // the kubernetes.io/change-cause annotation, "" if none
	Template    corev1.PodTemplateSpec
}

// ownedBy returns the ReplicaSets among rss that d controls.
func ownedBy(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		ref := metav1.GetControllerOfNoCopy(rs)
		if rs.Namespace == d.Namespace && ref != nil && ref.Kind == "Deployment" && ref.Name == d.Name && ref.UID == d.UID {
			out = append(out, rs)
		}
	}
	return out
}

// DeploymentHistory is kubectl rollout history: the revisions of d's
// ReplicaSets (among rss), oldest first. ReplicaSets without a valid
// revision are left out; as in kubectl, a later ReplicaSet with the same
// revision replaces an earlier one.
func DeploymentHistory(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) []DeploymentRevision {
	byRev := map[int64]DeploymentRevision{}
	for _, rs := range sortedObjects(ownedBy(d, rss)) {
		v, err := Revision(rs)
		if err != nil {
			continue
		}
		tpl := *rs.Spec.Template.DeepCopy()
		cause := rs.Annotations[ChangeCauseAnnotation]
		if cause != "" {
			tpl.Annotations = withKey(tpl.Annotations, ChangeCauseAnnotation, cause)
		}
		byRev[v] = DeploymentRevision{Revision: v, ReplicaSet: rs.Name, ChangeCause: cause, Template: tpl}
	}
	out := make([]DeploymentRevision, 0, len(byRev))
	for _, r := range byRev {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	return out
}

// ErrPaused matches (errors.Is) the error of rolling back or restarting a
// paused Deployment, whose text is kubectl's.
var ErrPaused = errors.New("deployment is paused")

type pausedError string

func (e pausedError) Error() string        { return string(e) }
func (e pausedError) Is(target error) bool { return target == ErrPaused }

// RollbackDeployment is kubectl rollout undo: it returns a copy of d with
// the pod template of revision toRevision (0 means the previous one) and
// the annotations of that revision's ReplicaSet, and kubectl's message
// ("rolled back", or why it was skipped). The caller stores the result; the
// next Reconcile rolls it out, reusing the old ReplicaSet under a new
// revision number. It returns a nil Deployment when nothing changes.
func RollbackDeployment(d *appsv1.Deployment, rss []*appsv1.ReplicaSet, toRevision int64) (*appsv1.Deployment, string, error) {
	if toRevision < 0 {
		return nil, "", fmt.Errorf("unable to find specified revision %d in history", toRevision)
	}
	if d.Spec.Paused {
		return nil, "", pausedError("you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again")
	}
	var latest, previous *appsv1.ReplicaSet
	latestRev, previousRev := int64(-1), int64(-1)
	var target *appsv1.ReplicaSet
	for _, rs := range sortedObjects(ownedBy(d, rss)) {
		v, err := Revision(rs)
		if err != nil {
			continue
		}
		if toRevision == 0 {
			switch {
			case latestRev < v:
				previousRev, previous = latestRev, latest
				latestRev, latest = v, rs
			case previousRev < v:
				previousRev, previous = v, rs
			}
		} else if v == toRevision {
			target = rs
			break
		}
	}
	switch {
	case toRevision > 0 && target == nil:
		return nil, "", fmt.Errorf("unable to find specified revision %d in history", toRevision)
	case toRevision == 0 && previous == nil:
		return nil, "", fmt.Errorf("no rollout history found for deployment %q", d.Name)
	case toRevision == 0:
		target = previous
	}
	if equalIgnoreHash(&target.Spec.Template, &d.Spec.Template) {
		rev, _ := Revision(target)
		return nil, fmt.Sprintf("skipped rollback (current template already matches revision %d)", rev), nil
	}
	out := d.DeepCopy()
	out.Spec.Template = *target.Spec.Template.DeepCopy()
	out.Spec.Template.Labels = withoutKey(out.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(out.Spec.Template.Labels) == 0 {
		out.Spec.Template.Labels = nil
	}
	annotations := map[string]string{}
	for k := range annotationsToSkip {
		if v, ok := d.Annotations[k]; ok {
			annotations[k] = v
		}
	}
	for k, v := range target.Annotations {
		if !annotationsToSkip[k] {
			annotations[k] = v
		}
	}
	out.Annotations = copyStringMap(annotations)
	return out, "rolled back", nil
}

// RestartTemplate returns a copy of tpl with the kubectl rollout restart
// annotation set to now (RFC 3339), which makes the controller replace
// every pod.
func RestartTemplate(tpl *corev1.PodTemplateSpec, now time.Time) corev1.PodTemplateSpec {
	out := *tpl.DeepCopy()
	out.Annotations = withKey(out.Annotations, RestartedAtAnnotation, now.Format(time.RFC3339))
	return out
}

// RestartDeployment is kubectl rollout restart for a Deployment; a paused
// Deployment cannot be restarted.
func RestartDeployment(d *appsv1.Deployment, now time.Time) (*appsv1.Deployment, error) {
	if d.Spec.Paused {
		return nil, pausedError("can't restart paused deployment (run rollout resume first)")
	}
	out := d.DeepCopy()
	out.Spec.Template = RestartTemplate(&d.Spec.Template, now)
	return out, nil
}

// RestartDaemonSet is kubectl rollout restart for a DaemonSet.
func RestartDaemonSet(ds *appsv1.DaemonSet, now time.Time) *appsv1.DaemonSet {
	out := ds.DeepCopy()
	out.Spec.Template = RestartTemplate(&ds.Spec.Template, now)
	return out
}

// RestartStatefulSet is kubectl rollout restart for a StatefulSet.
func RestartStatefulSet(set *appsv1.StatefulSet, now time.Time) *appsv1.StatefulSet {
	out := set.DeepCopy()
	out.Spec.Template = RestartTemplate(&set.Spec.Template, now)
	return out
}
