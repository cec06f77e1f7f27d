package manifest

import (
	"fmt"

	"github.com/robfig/cron/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Workload defaulting, as the API server's (apps/v1, batch/v1,
// autoscaling/v2, core/v1 and storage/v1 defaults.go):
//
//   - Deployment: replicas 1, strategy RollingUpdate with maxUnavailable and
//     maxSurge 25%, revisionHistoryLimit 10, progressDeadlineSeconds 600.
//   - ReplicaSet: replicas 1. ReplicationController: replicas 1, selector
//     and labels from the template's labels when unset.
//   - DaemonSet: updateStrategy RollingUpdate with maxUnavailable 1 and
//     maxSurge 0, revisionHistoryLimit 10.
//   - StatefulSet: replicas 1, podManagementPolicy OrderedReady,
//     updateStrategy RollingUpdate with partition 0, revisionHistoryLimit 10,
//     persistentVolumeClaimRetentionPolicy Retain/Retain; claim templates
//     volumeMode Filesystem.
//   - Job: completions and parallelism 1 when both are unset, parallelism 1
//     when unset, backoffLimit 6, completionMode NonIndexed, suspend false.
//   - CronJob: concurrencyPolicy Allow, suspend false, history limits 3
//     successful and 1 failed, and its job template as a Job.
//   - HorizontalPodAutoscaler: minReplicas 1, a cpu 80% utilization target
//     when no metric is given.
//   - PersistentVolumeClaim and PersistentVolume: volumeMode Filesystem; a
//     PersistentVolume's reclaim policy Retain. StorageClass: reclaimPolicy
//     Delete, volumeBindingMode Immediate.
//
// Pod templates get the Pod defaults.

const (
	defaultRevisionHistoryLimit = 10
	defaultProgressDeadline     = 600
	defaultBackoffLimit         = 6
	defaultHPACPUUtilization    = 80
)

func defaultDeployment(d *appsv1.Deployment) {
	s := &d.Spec
	if s.Replicas == nil {
		s.Replicas = ptr(int32(1))
	}
	if s.Strategy.Type == "" {
		s.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if s.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if s.Strategy.RollingUpdate == nil {
			s.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		if s.Strategy.RollingUpdate.MaxUnavailable == nil {
			s.Strategy.RollingUpdate.MaxUnavailable = ptr(intstr.FromString("25%"))
		}
		if s.Strategy.RollingUpdate.MaxSurge == nil {
			s.Strategy.RollingUpdate.MaxSurge = ptr(intstr.FromString("25%"))
		}
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = ptr(int32(defaultRevisionHistoryLimit))
	}
	if s.ProgressDeadlineSeconds == nil {
		s.ProgressDeadlineSeconds = ptr(int32(defaultProgressDeadline))
	}
	defaultPodSpec(&s.Template.Spec)
}

func defaultReplicaSet(rs *appsv1.ReplicaSet) {
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = ptr(int32(1))
	}
	defaultPodSpec(&rs.Spec.Template.Spec)
}

func defaultReplicationController(rc *corev1.ReplicationController) {
	s := &rc.Spec
	if s.Replicas == nil {
		s.Replicas = ptr(int32(1))
	}
	if s.Template != nil {
		if len(s.Selector) == 0 {
			s.Selector = s.Template.Labels
		}
		if len(rc.Labels) == 0 {
			rc.Labels = s.Template.Labels
		}
		defaultPodSpec(&s.Template.Spec)
	}
}

func defaultDaemonSet(ds *appsv1.DaemonSet) {
	s := &ds.Spec
	if s.UpdateStrategy.Type == "" {
		s.UpdateStrategy.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if s.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		if s.UpdateStrategy.RollingUpdate.MaxUnavailable == nil {
			s.UpdateStrategy.RollingUpdate.MaxUnavailable = ptr(intstr.FromInt32(1))
		}
		if s.UpdateStrategy.RollingUpdate.MaxSurge == nil {
			s.UpdateStrategy.RollingUpdate.MaxSurge = ptr(intstr.FromInt32(0))
		}
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = ptr(int32(defaultRevisionHistoryLimit))
	}
	defaultPodSpec(&s.Template.Spec)
}

func defaultStatefulSet(ss *appsv1.StatefulSet) {
	s := &ss.Spec
	if s.Replicas == nil {
		s.Replicas = ptr(int32(1))
	}
	if s.PodManagementPolicy == "" {
		s.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	if s.UpdateStrategy.Type == "" {
		s.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
	}
	if s.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
		if s.UpdateStrategy.RollingUpdate.Partition == nil {
			s.UpdateStrategy.RollingUpdate.Partition = ptr(int32(0))
		}
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = ptr(int32(defaultRevisionHistoryLimit))
	}
	if s.PersistentVolumeClaimRetentionPolicy == nil {
		s.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	if s.PersistentVolumeClaimRetentionPolicy.WhenDeleted == "" {
		s.PersistentVolumeClaimRetentionPolicy.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if s.PersistentVolumeClaimRetentionPolicy.WhenScaled == "" {
		s.PersistentVolumeClaimRetentionPolicy.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	for i := range s.VolumeClaimTemplates {
		defaultPVCSpec(&s.VolumeClaimTemplates[i].Spec)
	}
	defaultPodSpec(&s.Template.Spec)
}

func defaultJobSpec(s *batchv1.JobSpec) {
	if s.Completions == nil && s.Parallelism == nil {
		s.Completions, s.Parallelism = ptr(int32(1)), ptr(int32(1))
	}
	if s.Parallelism == nil {
		s.Parallelism = ptr(int32(1))
	}
	if s.BackoffLimit == nil {
		s.BackoffLimit = ptr(int32(defaultBackoffLimit))
	}
	if s.CompletionMode == nil {
		s.CompletionMode = ptr(batchv1.NonIndexedCompletion)
	}
	if s.Suspend == nil {
		s.Suspend = ptr(false)
	}
	defaultPodSpec(&s.Template.Spec)
}

func defaultCronJob(cj *batchv1.CronJob) {
	s := &cj.Spec
	if s.ConcurrencyPolicy == "" {
		s.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if s.Suspend == nil {
		s.Suspend = ptr(false)
	}
	if s.SuccessfulJobsHistoryLimit == nil {
		s.SuccessfulJobsHistoryLimit = ptr(int32(3))
	}
	if s.FailedJobsHistoryLimit == nil {
		s.FailedJobsHistoryLimit = ptr(int32(1))
	}
	defaultJobSpec(&s.JobTemplate.Spec)
}

func defaultHPA(h *autoscalingv2.HorizontalPodAutoscaler) {
	if h.Spec.MinReplicas == nil {
		h.Spec.MinReplicas = ptr(int32(1))
	}
	if len(h.Spec.Metrics) == 0 {
		h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(defaultHPACPUUtilization))}}}}
	}
}

func defaultPVCSpec(s *corev1.PersistentVolumeClaimSpec) {
	if s.VolumeMode == nil {
		s.VolumeMode = ptr(corev1.PersistentVolumeFilesystem)
	}
}

func defaultPV(pv *corev1.PersistentVolume) {
	if pv.Spec.VolumeMode == nil {
		pv.Spec.VolumeMode = ptr(corev1.PersistentVolumeFilesystem)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
}

func defaultStorageClass(sc *storagev1.StorageClass) {
	if sc.ReclaimPolicy == nil {
		sc.ReclaimPolicy = ptr(corev1.PersistentVolumeReclaimDelete)
	}
	if sc.VolumeBindingMode == nil {
		sc.VolumeBindingMode = ptr(storagev1.VolumeBindingImmediate)
	}
}

// --- validation ---

// template checks a pod template at tp: labels, and the pod spec with the
// restart policies the owner allows.
func (s *sink) template(t *corev1.PodTemplateSpec, tp path, restart ...string) {
	s.labels(tp.field("metadata").field("labels"), t.Labels)
	sp := tp.field("spec")
	s.validatePodSpec(&t.Spec, sp)
	if len(restart) > 0 && string(t.Spec.RestartPolicy) != "" {
		s.oneOf(sp.field("restartPolicy"), "restart policy for this kind", string(t.Spec.RestartPolicy), restart...)
	}
}

func (s *sink) labels(p path, l map[string]string) {
	for _, k := range sortedKeys(l) {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			s.at(p.key(k), "invalid label key %q: %s", k, msgs(errs))
		}
		if errs := validation.IsValidLabelValue(l[k]); len(errs) > 0 {
			s.at(p.key(k), "invalid label value %q: %s", l[k], msgs(errs))
		}
	}
}

// selector checks a required label selector and that it selects the
// template's labels, as the API server does.
func (s *sink) selector(p path, sel *metav1.LabelSelector, template map[string]string) {
	if sel == nil || len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		s.at(p, "required (a selector matching spec.template.metadata.labels)")
		return
	}
	ls, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		s.at(p, "invalid selector: %v", err)
		return
	}
	if !ls.Matches(labels.Set(template)) {
		s.at(p, "selector %q does not match template labels", ls.String())
	}
}

func (s *sink) nonNegative(p path, v *int32) {
	if v != nil && *v < 0 {
		s.at(p, "must be greater than or equal to 0, got %d", *v)
	}
}

func (s *sink) intOrPercent(p path, v *intstr.IntOrString) (zero bool) {
	if v == nil {
		return true
	}
	if v.Type == intstr.Int {
		if v.IntVal < 0 {
			s.at(p, "must be greater than or equal to 0, got %d", v.IntVal)
		}
		return v.IntVal == 0
	}
	var n int
	if _, err := fmt.Sscanf(v.StrVal, "%d%%", &n); err != nil || fmt.Sprintf("%d%%", n) != v.StrVal || n < 0 || n > 100 {
		s.at(p, "invalid value %q: must be an integer or a percentage between 0%% and 100%%", v.StrVal)
		return false
	}
	return n == 0
}

func (s *sink) validateDeployment(d *appsv1.Deployment) {
	sp := path{}.field("spec")
	s.nonNegative(sp.field("replicas"), d.Spec.Replicas)
	s.selector(sp.field("selector"), d.Spec.Selector, d.Spec.Template.Labels)
	s.template(&d.Spec.Template, sp.field("template"), "Always")
	st := sp.field("strategy")
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if d.Spec.Strategy.RollingUpdate != nil {
			s.at(st.field("rollingUpdate"), "may not be set when strategy type is Recreate")
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
			z1 := s.intOrPercent(st.field("rollingUpdate").field("maxUnavailable"), ru.MaxUnavailable)
			z2 := s.intOrPercent(st.field("rollingUpdate").field("maxSurge"), ru.MaxSurge)
			if z1 && z2 {
				s.at(st.field("rollingUpdate").field("maxUnavailable"), "may not be 0 when maxSurge is 0")
			}
		}
	default:
		s.oneOf(st.field("type"), "strategy type", string(d.Spec.Strategy.Type), "RollingUpdate", "Recreate")
	}
	s.nonNegative(sp.field("revisionHistoryLimit"), d.Spec.RevisionHistoryLimit)
	s.nonNegative(sp.field("minReadySeconds"), &d.Spec.MinReadySeconds)
	if p := d.Spec.ProgressDeadlineSeconds; p != nil && *p <= d.Spec.MinReadySeconds {
		s.at(sp.field("progressDeadlineSeconds"), "must be greater than minReadySeconds")
	}
}

func (s *sink) validateReplicaSet(rs *appsv1.ReplicaSet) {
	sp := path{}.field("spec")
	s.nonNegative(sp.field("replicas"), rs.Spec.Replicas)
	s.nonNegative(sp.field("minReadySeconds"), &rs.Spec.MinReadySeconds)
	s.selector(sp.field("selector"), rs.Spec.Selector, rs.Spec.Template.Labels)
	s.template(&rs.Spec.Template, sp.field("template"), "Always")
}

func (s *sink) validateReplicationController(rc *corev1.ReplicationController) {
	sp := path{}.field("spec")
	s.nonNegative(sp.field("replicas"), rc.Spec.Replicas)
	if rc.Spec.Template == nil {
		s.at(sp.field("template"), "required")
		return
	}
	if len(rc.Spec.Selector) == 0 {
		s.at(sp.field("selector"), "required (or labels on the template)")
	} else if !labels.SelectorFromSet(rc.Spec.Selector).Matches(labels.Set(rc.Spec.Template.Labels)) {
		s.at(sp.field("selector"), "selector does not match template labels")
	}
	s.template(rc.Spec.Template, sp.field("template"), "Always")
}

func (s *sink) validateDaemonSet(ds *appsv1.DaemonSet) {
	sp := path{}.field("spec")
	s.selector(sp.field("selector"), ds.Spec.Selector, ds.Spec.Template.Labels)
	s.template(&ds.Spec.Template, sp.field("template"), "Always")
	st := sp.field("updateStrategy")
	switch ds.Spec.UpdateStrategy.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil {
			z1 := s.intOrPercent(st.field("rollingUpdate").field("maxUnavailable"), ru.MaxUnavailable)
			z2 := s.intOrPercent(st.field("rollingUpdate").field("maxSurge"), ru.MaxSurge)
			if z1 && z2 {
				s.at(st.field("rollingUpdate").field("maxUnavailable"), "may not be 0 when maxSurge is 0")
			}
		}
	default:
		s.oneOf(st.field("type"), "update strategy type", string(ds.Spec.UpdateStrategy.Type), "RollingUpdate", "OnDelete")
	}
}

func (s *sink) validateStatefulSet(ss *appsv1.StatefulSet) {
	sp := path{}.field("spec")
	s.nonNegative(sp.field("replicas"), ss.Spec.Replicas)
	s.selector(sp.field("selector"), ss.Spec.Selector, ss.Spec.Template.Labels)
	// Containers may mount the claim templates: each pod gets a
	// persistentVolumeClaim volume of that name (validated on a copy).
	tmpl := ss.Spec.Template.DeepCopy()
	for _, t := range ss.Spec.VolumeClaimTemplates {
		tmpl.Spec.Volumes = append(tmpl.Spec.Volumes, corev1.Volume{Name: t.Name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: t.Name}}})
	}
	s.template(tmpl, sp.field("template"), "Always")
	s.oneOf(sp.field("podManagementPolicy"), "pod management policy", string(ss.Spec.PodManagementPolicy), "OrderedReady", "Parallel")
	st := sp.field("updateStrategy")
	s.oneOf(st.field("type"), "update strategy type", string(ss.Spec.UpdateStrategy.Type), "RollingUpdate", "OnDelete")
	if ru := ss.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		s.nonNegative(st.field("rollingUpdate").field("partition"), ru.Partition)
		if ru.MaxUnavailable != nil {
			s.at(st.field("rollingUpdate").field("maxUnavailable"), "not supported (an alpha feature of Kubernetes)")
		}
	}
	if ss.Spec.ServiceName != "" {
		if errs := validation.IsDNS1123Label(ss.Spec.ServiceName); len(errs) > 0 {
			s.at(sp.field("serviceName"), "invalid service name %q: %s", ss.Spec.ServiceName, msgs(errs))
		}
	}
	if p := ss.Spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		pp := sp.field("persistentVolumeClaimRetentionPolicy")
		s.oneOf(pp.field("whenDeleted"), "retention policy", string(p.WhenDeleted), "Retain", "Delete")
		s.oneOf(pp.field("whenScaled"), "retention policy", string(p.WhenScaled), "Retain", "Delete")
	}
	for i := range ss.Spec.VolumeClaimTemplates {
		t := &ss.Spec.VolumeClaimTemplates[i]
		tp := sp.field("volumeClaimTemplates").index(i)
		if t.Name == "" {
			s.at(tp.field("metadata").field("name"), "required")
		}
		s.pvcSpec(tp.field("spec"), &t.Spec)
	}
}

func (s *sink) validateJobSpec(js *batchv1.JobSpec, sp path) {
	s.nonNegative(sp.field("parallelism"), js.Parallelism)
	s.nonNegative(sp.field("completions"), js.Completions)
	s.nonNegative(sp.field("backoffLimit"), js.BackoffLimit)
	if d := js.ActiveDeadlineSeconds; d != nil && *d <= 0 {
		s.at(sp.field("activeDeadlineSeconds"), "must be greater than 0")
	}
	s.nonNegative(sp.field("ttlSecondsAfterFinished"), js.TTLSecondsAfterFinished)
	if m := js.CompletionMode; m != nil {
		s.oneOf(sp.field("completionMode"), "completion mode", string(*m), "NonIndexed", "Indexed")
		if *m == batchv1.IndexedCompletion && js.Completions == nil {
			s.at(sp.field("completions"), "required when completionMode is Indexed")
		}
	}
	if js.Selector != nil && (js.ManualSelector == nil || !*js.ManualSelector) && !s.stored {
		s.at(sp.field("selector"), "set by clusterctl (controller-uid); set manualSelector: true to give your own")
	}
	if js.Template.Spec.RestartPolicy == "" || js.Template.Spec.RestartPolicy == corev1.RestartPolicyAlways {
		s.at(sp.field("template").field("spec").field("restartPolicy"), "must be OnFailure or Never for a Job (got %q)", js.Template.Spec.RestartPolicy)
	}
	s.template(&js.Template, sp.field("template"))
}

func (s *sink) validateCronJob(cj *batchv1.CronJob) {
	sp := path{}.field("spec")
	if cj.Spec.Schedule == "" {
		s.at(sp.field("schedule"), "required")
	} else if _, err := cron.ParseStandard(cj.Spec.Schedule); err != nil {
		s.at(sp.field("schedule"), "invalid schedule %q: %v", cj.Spec.Schedule, err)
	}
	s.oneOf(sp.field("concurrencyPolicy"), "concurrency policy", string(cj.Spec.ConcurrencyPolicy), "Allow", "Forbid", "Replace")
	s.nonNegative(sp.field("successfulJobsHistoryLimit"), cj.Spec.SuccessfulJobsHistoryLimit)
	s.nonNegative(sp.field("failedJobsHistoryLimit"), cj.Spec.FailedJobsHistoryLimit)
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && *d < 0 {
		s.at(sp.field("startingDeadlineSeconds"), "must be greater than or equal to 0")
	}
	if len(cj.Name) > 52 {
		s.at(path{}.field("metadata").field("name"), "must be no more than 52 characters (its Jobs add 11)")
	}
	s.validateJobSpec(&cj.Spec.JobTemplate.Spec, sp.field("jobTemplate").field("spec"))
}

func (s *sink) validateHPA(h *autoscalingv2.HorizontalPodAutoscaler) {
	sp := path{}.field("spec")
	ref := h.Spec.ScaleTargetRef
	s.oneOf(sp.field("scaleTargetRef").field("kind"), "scale target kind", ref.Kind, "Deployment", "ReplicaSet", "StatefulSet", "ReplicationController")
	if ref.Name == "" {
		s.at(sp.field("scaleTargetRef").field("name"), "required")
	}
	if m := h.Spec.MinReplicas; m != nil && *m < 1 {
		s.at(sp.field("minReplicas"), "must be at least 1 (scaling to zero is an alpha feature)")
	}
	switch {
	case h.Spec.MaxReplicas < 1:
		s.at(sp.field("maxReplicas"), "must be at least 1")
	case h.Spec.MinReplicas != nil && h.Spec.MaxReplicas < *h.Spec.MinReplicas:
		s.at(sp.field("maxReplicas"), "must be greater than or equal to minReplicas (%d)", *h.Spec.MinReplicas)
	}
	for i, m := range h.Spec.Metrics {
		mp := sp.field("metrics").index(i)
		if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil {
			s.at(mp.field("type"), "only Resource metrics (cpu, memory) are supported, got %s", m.Type)
			continue
		}
		s.oneOf(mp.field("resource").field("name"), "resource", string(m.Resource.Name), "cpu", "memory")
		t := m.Resource.Target
		switch t.Type {
		case autoscalingv2.UtilizationMetricType:
			if t.AverageUtilization == nil || *t.AverageUtilization < 1 {
				s.at(mp.field("resource").field("target").field("averageUtilization"), "required and at least 1 for a Utilization target")
			}
		case autoscalingv2.AverageValueMetricType:
			if t.AverageValue == nil || t.AverageValue.Sign() <= 0 {
				s.at(mp.field("resource").field("target").field("averageValue"), "required and greater than 0 for an AverageValue target")
			}
		default:
			s.oneOf(mp.field("resource").field("target").field("type"), "target type", string(t.Type), "Utilization", "AverageValue")
		}
	}
}

func (s *sink) pvcSpec(p path, spec *corev1.PersistentVolumeClaimSpec) {
	if len(spec.AccessModes) == 0 {
		s.at(p.field("accessModes"), "at least 1 access mode is required")
	}
	for i, m := range spec.AccessModes {
		s.oneOf(p.field("accessModes").index(i), "access mode", string(m), "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
	}
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok || q.Sign() <= 0 {
		s.at(p.field("resources").field("requests").field("storage"), "required and greater than 0")
	}
	if m := spec.VolumeMode; m != nil && *m != corev1.PersistentVolumeFilesystem {
		s.at(p.field("volumeMode"), "only Filesystem is supported")
	}
}

func (s *sink) validatePV(pv *corev1.PersistentVolume) {
	sp := path{}.field("spec")
	if pv.Spec.HostPath == nil && pv.Spec.Local == nil {
		s.at(sp, "only hostPath and local persistent volumes are supported")
	}
	if q, ok := pv.Spec.Capacity[corev1.ResourceStorage]; !ok || q.Sign() <= 0 {
		s.at(sp.field("capacity").field("storage"), "required and greater than 0")
	}
	if len(pv.Spec.AccessModes) == 0 {
		s.at(sp.field("accessModes"), "at least 1 access mode is required")
	}
}
