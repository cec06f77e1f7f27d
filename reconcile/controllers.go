package reconcile

import (
	"fmt"
	"slices"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan/autoscale"
	"github.com/clusterctl/clusterctl/plan/controller"
	"github.com/clusterctl/clusterctl/plan/jobs"
	"github.com/clusterctl/clusterctl/plan/workloads"
)

// maxControllerPasses bounds the controller passes of one loop: a cascade
// (Deployment → ReplicaSet → pods) settles in three.
const maxControllerPasses = 8

func (c *Cluster) putWorkload(kind, key string, obj runtime.Object) {
	if c.Workloads[kind] == nil {
		c.Workloads[kind] = map[string]runtime.Object{}
	}
	c.Workloads[kind][key] = obj
}

// Typed lists the stored objects of one workload kind, sorted by key.
func Typed[T runtime.Object](c *Cluster, kind string) []T {
	m := c.Workloads[kind]
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		if t, ok := m[k].(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// PodWithStatus returns a copy of p with the status its node reports (nil:
// Pending, nothing reported).
func PodWithStatus(p *corev1.Pod, st *nodeapi.PodStatus) *corev1.Pod {
	out := p.DeepCopy()
	out.APIVersion, out.Kind = "v1", "Pod"
	if st == nil {
		out.Status = corev1.PodStatus{Phase: corev1.PodPending}
		return out
	}
	out.Status.Phase = corev1.PodPhase(st.Phase)
	out.Status.Reason, out.Status.Message, out.Status.PodIP = st.Reason, st.Message, st.PodIP
	if st.PodIP != "" {
		out.Status.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	}
	if st.StartTime != nil {
		t := metav1.NewTime(*st.StartTime)
		out.Status.StartTime = &t
	}
	for _, c := range st.Conditions {
		out.Status.Conditions = append(out.Status.Conditions, corev1.PodCondition{Type: corev1.PodConditionType(c.Type),
			Status: corev1.ConditionStatus(c.Status), Reason: c.Reason, Message: c.Message, LastTransitionTime: metav1.NewTime(c.LastTransitionTime)})
	}
	conv := func(cs []nodeapi.ContainerStatus) []corev1.ContainerStatus {
		var res []corev1.ContainerStatus
		for _, c := range cs {
			started := c.Started
			res = append(res, corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.ImageID, ContainerID: c.ContainerID,
				Ready: c.Ready, Started: &started, RestartCount: c.RestartCount, State: containerState(c.State), LastTerminationState: containerState(c.LastTerminationState)})
		}
		return res
	}
	out.Status.InitContainerStatuses = conv(st.InitContainerStatuses)
	out.Status.ContainerStatuses = conv(st.ContainerStatuses)
	return out
}

func containerState(s nodeapi.ContainerState) corev1.ContainerState {
	var out corev1.ContainerState
	if s.Waiting != nil {
		out.Waiting = &corev1.ContainerStateWaiting{Reason: s.Waiting.Reason, Message: s.Waiting.Message}
	}
	if s.Running != nil {
		out.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(s.Running.StartedAt)}
	}
	if t := s.Terminated; t != nil {
		out.Terminated = &corev1.ContainerStateTerminated{ExitCode: t.ExitCode, Signal: t.Signal, Reason: t.Reason, Message: t.Message,
			StartedAt: metav1.NewTime(t.StartedAt), FinishedAt: metav1.NewTime(t.FinishedAt)}
	}
	return out
}

// PodsWithStatus are the stored pods with the status their own node reports.
func (c *Cluster) PodsWithStatus(observed map[string]ObservedPod) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(c.Pods))
	for _, p := range c.Pods {
		var st *nodeapi.PodStatus
		if o, ok := observed[ObservedKey(p.Spec.NodeName, string(p.UID))]; ok && p.Spec.NodeName != "" {
			st = o.Status
		}
		out = append(out, PodWithStatus(p, st))
	}
	return out
}

// ControllerInput is what the controllers of one loop see besides the
// stored objects.
type ControllerInput struct {
	Now      time.Time
	Seed     string
	Observed map[string]ObservedPod
	Nodes    []workloads.Node
	// LoadLocation resolves CronJob time zones (time.LoadLocation).
	LoadLocation func(string) (*time.Location, error)
	// NodeStatuses are what each host reported (nil: not heard from); the
	// CronJob runs their agentlets fired are adopted from them.
	NodeStatuses map[string]*nodeapi.NodeStatus
	// WithinGrace are the hosts that are not Ready but have not been for
	// longer than the pod eviction timeout: their CronJobs stay.
	WithinGrace map[string]bool
}

// RunControllers runs the workload and job controllers to a fixed point
// (at most maxControllerPasses passes), applying their changes to cl and,
// unless dry, to the inventory. It returns every change made, in order.
func RunControllers(inv *inventory.Inventory, cl *Cluster, in ControllerInput, dry bool) (controller.Changes, error) {
	all, err := runAutoscalers(inv, cl, in, dry)
	if err != nil {
		return all, err
	}
	// Node-fired CronJob runs become Jobs before the Job controller runs.
	cron, err := syncNodeCronJobs(inv, cl, in, dry)
	all.Merge(cron)
	if err != nil {
		return all, err
	}
	for pass := 0; pass < maxControllerPasses; pass++ {
		pods := cl.PodsWithStatus(in.Observed)
		seed := fmt.Sprintf("%s/%d", in.Seed, pass)
		ch := workloads.Reconcile(workloads.Input{
			Now: in.Now, Seed: seed,
			Deployments:            Typed[*appsv1.Deployment](cl, "Deployment"),
			ReplicaSets:            Typed[*appsv1.ReplicaSet](cl, "ReplicaSet"),
			ReplicationControllers: Typed[*corev1.ReplicationController](cl, "ReplicationController"),
			DaemonSets:             Typed[*appsv1.DaemonSet](cl, "DaemonSet"),
			StatefulSets:           Typed[*appsv1.StatefulSet](cl, "StatefulSet"),
			ControllerRevisions:    Typed[*appsv1.ControllerRevision](cl, "ControllerRevision"),
			PVCs:                   Typed[*corev1.PersistentVolumeClaim](cl, "PersistentVolumeClaim"),
			Pods:                   pods,
			Nodes:                  in.Nodes,
		})
		ch.Merge(jobs.ReconcileJobs(jobs.JobInput{
			Now: in.Now, Seed: seed + "/jobs",
			Jobs:         Typed[*batchv1.Job](cl, "Job"),
			CronJobs:     Typed[*batchv1.CronJob](cl, "CronJob"),
			Pods:         pods,
			LoadLocation: in.LoadLocation,
		}))
		admitNewPods(cl, pods, &ch)
		if ch.Empty() {
			all.Events = append(all.Events, ch.Events...)
			break
		}
		ch.Sort()
		if err := cl.apply(inv, ch, dry); err != nil {
			return all, err
		}
		all.Merge(ch)
	}
	st, err := policyStatus(inv, cl, in, dry)
	all.Merge(st)
	return all, err
}

// apply makes the changes in cl and, unless dry, in the inventory. A put
// pod keeps its binding and status as the store has them (controllers do
// not bind).
func (c *Cluster) apply(inv *inventory.Inventory, ch controller.Changes, dry bool) error {
	for _, ref := range ch.Delete {
		c.remove(ref)
		if !dry {
			inv.DeleteObject(ref.Kind, ref.Namespace, ref.Name)
		}
	}
	for _, o := range ch.Put {
		gvk := o.GetObjectKind().GroupVersionKind()
		if gvk.Kind == "" {
			return fmt.Errorf("store %T %s/%s: no kind set by its controller", o, o.GetNamespace(), o.GetName())
		}
		if p, ok := o.(*corev1.Pod); ok {
			p = p.DeepCopy()
			p.Status = corev1.PodStatus{} // observed, never stored
			o = p
		}
		c.put(gvk.Kind, o)
		if dry {
			continue
		}
		apiVersion := gvk.GroupVersion().String()
		if err := Store(inv, manifest.Object{APIVersion: apiVersion, Kind: gvk.Kind, Namespace: o.GetNamespace(), Name: o.GetName(), Obj: o}); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) put(kind string, o controller.Object) {
	key := Key(o.GetNamespace(), o.GetName())
	switch t := o.(type) {
	case *corev1.Pod:
		if i := slices.IndexFunc(c.Pods, func(p *corev1.Pod) bool { return p.Namespace == t.Namespace && p.Name == t.Name }); i >= 0 {
			c.Pods[i] = t
		} else {
			c.Pods = append(c.Pods, t)
		}
	case *corev1.Service:
		c.Services[key] = t
	case *corev1.ConfigMap:
		c.ConfigMaps[key] = t
	case *corev1.Secret:
		c.Secrets[key] = t
	default:
		c.putWorkload(kind, key, o)
	}
}

func (c *Cluster) remove(ref controller.Ref) {
	key := Key(ref.Namespace, ref.Name)
	switch ref.Kind {
	case "Pod":
		c.Pods = slices.DeleteFunc(c.Pods, func(p *corev1.Pod) bool { return p.Namespace == ref.Namespace && p.Name == ref.Name })
	case "Service":
		delete(c.Services, key)
	case "ConfigMap":
		delete(c.ConfigMaps, key)
	case "Secret":
		delete(c.Secrets, key)
	default:
		delete(c.Workloads[ref.Kind], key)
	}
}

// runAutoscalers runs every HorizontalPodAutoscaler once: from the usage
// its target's pods report, it sets the target's replicas and records its
// own status and recommendation history (plan/autoscale).
func runAutoscalers(inv *inventory.Inventory, cl *Cluster, in ControllerInput, dry bool) (controller.Changes, error) {
	var ch controller.Changes
	if len(cl.Workloads["HorizontalPodAutoscaler"]) == 0 {
		return ch, nil // nothing to copy the pods for
	}
	pods := cl.PodsWithStatus(in.Observed)
	usage := map[string]*autoscale.Usage{}
	for _, o := range in.Observed {
		if u := o.Status.Usage; u != nil {
			usage[o.Status.UID] = &autoscale.Usage{CPUMillis: u.CPUMillis, MemoryBytes: u.MemoryWorkingSetBytes,
				Timestamp: u.Timestamp, Window: time.Duration(u.WindowMillis) * time.Millisecond}
		}
	}
	for _, h := range Typed[*autoscalingv2.HorizontalPodAutoscaler](cl, "HorizontalPodAutoscaler") {
		ref := h.Spec.ScaleTargetRef
		target, ok := cl.Object(ref.Kind, h.Namespace, ref.Name)
		if !ok {
			ch.Events = append(ch.Events, controller.Event{Object: controller.RefOf(h), Type: controller.EventWarning,
				Reason: "FailedGetScale", Message: fmt.Sprintf("%s %q not found", ref.Kind, ref.Name)})
			continue
		}
		target = target.DeepCopyObject()
		replicas, selector := scaleOf(target)
		var metrics []autoscale.PodMetrics
		for _, p := range pods {
			if p.Namespace == h.Namespace {
				metrics = append(metrics, autoscale.PodMetricsFromPod(p, usage[string(p.UID)]))
			}
		}
		res := autoscale.Recommend(autoscale.Input{Now: in.Now, HPA: h, CurrentReplicas: *replicas, Selector: selector,
			Pods: metrics, Config: autoscale.DefaultConfig()})
		ch.Events = append(ch.Events, res.Events...)
		var put []controller.Object
		if res.Changed {
			put = append(put, res.HPA)
		}
		if res.Rescale {
			*replicas = res.DesiredReplicas
			if m, ok := target.(controller.Object); ok {
				m.SetGeneration(m.GetGeneration() + 1)
				put = append(put, m)
			}
		}
		if len(put) == 0 {
			continue
		}
		step := controller.Changes{Put: put}
		if err := cl.apply(inv, step, dry); err != nil {
			return ch, err
		}
		ch.Put = append(ch.Put, put...)
	}
	return ch, nil
}

// scaleOf returns a pointer to a scale target's spec.replicas (defaulted to
// 1) and its selector.
func scaleOf(obj runtime.Object) (*int32, *metav1.LabelSelector) {
	one := func(p **int32) *int32 {
		if *p == nil {
			v := int32(1)
			*p = &v
		}
		return *p
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return one(&o.Spec.Replicas), o.Spec.Selector
	case *appsv1.ReplicaSet:
		return one(&o.Spec.Replicas), o.Spec.Selector
	case *appsv1.StatefulSet:
		return one(&o.Spec.Replicas), o.Spec.Selector
	case *corev1.ReplicationController:
		return one(&o.Spec.Replicas), &metav1.LabelSelector{MatchLabels: o.Spec.Selector}
	}
	v := int32(0)
	return &v, nil
}
