package reconcile

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan"
	"github.com/clusterctl/clusterctl/plan/controller"
	"github.com/clusterctl/clusterctl/plan/jobs"
	"github.com/clusterctl/clusterctl/plan/sched"
	"github.com/clusterctl/clusterctl/plan/workloads"
)

// CronJobs fired by nodes, the cluster loop's half (agentlet/cron is the
// node's):
//
//   - syncNodeCronJobs, first in RunControllers: the runs the nodes report
//     are adopted as Jobs with their pods (jobs.AdoptNodeRuns), so the Job
//     controller carries on from there in the same loop; then every CronJob
//     is bound to one node (BindCronJobs, annotation
//     jobs.CronJobNodeAnnotation) and the CronJob controller leaves its runs
//     to that node.
//   - cronJobSpecs, in Desired: each bound CronJob is lowered into its
//     node's NodeSpec.CronJobs, its pod template through plan.LowerPod with
//     the pods' lowering inputs.

// syncNodeCronJobs adopts the runs the nodes report and binds the CronJobs
// to nodes, applying the changes to cl and, unless dry, to the inventory.
func syncNodeCronJobs(inv *inventory.Inventory, cl *Cluster, in ControllerInput, dry bool) (controller.Changes, error) {
	var reports []jobs.NodeCronReport
	for _, node := range SortedKeys(in.NodeStatuses) {
		if st := in.NodeStatuses[node]; st != nil {
			for _, cs := range st.CronJobs {
				reports = append(reports, jobs.NodeCronReport{Node: node, Status: cs})
			}
		}
	}
	all := jobs.AdoptNodeRuns(jobs.AdoptInput{
		CronJobs: Typed[*batchv1.CronJob](cl, "CronJob"), Jobs: Typed[*batchv1.Job](cl, "Job"), Pods: cl.Pods,
		Reports: reports, LoadLocation: in.LoadLocation,
	})
	if !all.Empty() {
		if err := cl.apply(inv, all, dry); err != nil {
			return all, err
		}
	}
	bound := bindCronJobs(Typed[*batchv1.CronJob](cl, "CronJob"), in.Nodes, in.WithinGrace)
	if len(bound) > 0 {
		step := controller.Changes{}
		for _, cj := range bound {
			step.Put = append(step.Put, cj)
			what := "unbound: no node can fire it"
			if node := cj.Annotations[jobs.CronJobNodeAnnotation]; node != "" {
				what = "bound to node " + node + ", whose agentlet fires its runs"
			}
			step.Events = append(step.Events, controller.Event{Object: controller.RefOf(cj), Type: controller.EventNormal,
				Reason: "NodeBinding", Message: "CronJob " + what})
		}
		if err := cl.apply(inv, step, dry); err != nil {
			return all, err
		}
		all.Merge(step)
	}
	return all, nil
}

// cronNodeGone reports whether a CronJob bound to node must move: the node
// is not in the inventory, or it is not Ready and has not been for longer
// than the cluster's pod eviction timeout (a node within it, partitioned
// say, keeps firing its CronJobs: moving them would run them twice).
func cronNodeGone(n *workloads.Node, withinGrace map[string]bool) bool {
	return n == nil || !n.Ready && !withinGrace[n.Name]
}

// cronFilters are the scheduler filters a CronJob's pod template must pass
// on its node: the node's labels, taints and cordon. Resources, ports and
// inter-pod constraints change with every pod and are not checked: the
// node fires the run's pods without the scheduler.
var cronFilters = &sched.Framework{Filters: []sched.FilterPlugin{sched.NodeUnschedulable{}, sched.TaintToleration{},
	sched.NodeSelector{}, sched.NodeAffinity{}}}

// cronFits reports whether the CronJob's pods may run on node.
func cronFits(pod *corev1.Pod, n *workloads.Node) bool {
	sn := sched.Node{Name: n.Name, Labels: n.Labels, Taints: n.Taints, Unschedulable: n.Unschedulable, Ready: true}
	res := cronFilters.Schedule([]*corev1.Pod{pod}, []sched.Node{sn})
	return res.Bindings[Key(pod.Namespace, pod.Name)] == n.Name
}

// BindCronJobs binds every CronJob a node can fire (jobs.NodeFireable) to
// one node, recorded in its jobs.CronJobNodeAnnotation, and returns the
// CronJobs whose binding changed (copies). A binding is kept while its node
// is in the inventory, Ready and its pod template fits there; otherwise the
// CronJob moves to the Ready node its template fits on that has the fewest
// CronJobs (then by name). With no such node it keeps its node while that
// is in the inventory (nothing better to do) and is unbound otherwise: the
// cluster loop then fires it itself, and its pods wait for a node. The
// result depends only on the input.
func BindCronJobs(cronJobs []*batchv1.CronJob, nodes []workloads.Node) []*batchv1.CronJob {
	return bindCronJobs(cronJobs, nodes, nil)
}

// bindCronJobs is BindCronJobs keeping the bindings to the nodes within
// their grace period.
func bindCronJobs(cronJobs []*batchv1.CronJob, nodes []workloads.Node, withinGrace map[string]bool) []*batchv1.CronJob {
	byName := map[string]*workloads.Node{}
	names := make([]string, 0, len(nodes))
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
		names = append(names, nodes[i].Name)
	}
	sort.Strings(names)
	sorted := append([]*batchv1.CronJob(nil), cronJobs...)
	sort.Slice(sorted, func(i, j int) bool {
		return Key(sorted[i].Namespace, sorted[i].Name) < Key(sorted[j].Namespace, sorted[j].Name)
	})

	count := map[string]int{}
	var pending []*batchv1.CronJob
	for _, cj := range sorted {
		node := cj.Annotations[jobs.CronJobNodeAnnotation]
		if !cronBindable(cj) {
			continue
		}
		if n := byName[node]; node != "" && !cronNodeGone(n, withinGrace) && cronFits(cronTemplate(cj), n) {
			count[node]++
			continue
		}
		pending = append(pending, cj)
	}
	var changed []*batchv1.CronJob
	set := func(cj *batchv1.CronJob, node string) {
		if cj.Annotations[jobs.CronJobNodeAnnotation] == node {
			return
		}
		cj = cj.DeepCopy()
		cj.SetGroupVersionKind(batchv1.SchemeGroupVersion.WithKind("CronJob"))
		if node == "" {
			delete(cj.Annotations, jobs.CronJobNodeAnnotation)
		} else {
			if cj.Annotations == nil {
				cj.Annotations = map[string]string{}
			}
			cj.Annotations[jobs.CronJobNodeAnnotation] = node
		}
		changed = append(changed, cj)
	}
	for _, cj := range sorted {
		if !cronBindable(cj) && cj.Annotations[jobs.CronJobNodeAnnotation] != "" && cj.DeletionTimestamp == nil {
			set(cj, "") // its job template cannot be fired by a node (any more)
		}
	}
	for _, cj := range pending {
		pod := cronTemplate(cj)
		best := ""
		for _, name := range names {
			n := byName[name]
			if cronNodeGone(n, nil) || !cronFits(pod, n) {
				continue
			}
			if best == "" || count[name] < count[best] {
				best = name
			}
		}
		old := cj.Annotations[jobs.CronJobNodeAnnotation]
		switch {
		case best != "":
			count[best]++
			set(cj, best)
		case old != "" && byName[old] != nil:
			count[old]++ // no better node: keep it
		default:
			set(cj, "")
		}
	}
	return changed
}

// cronBindable: a stored, admitted CronJob whose runs a node can fire.
func cronBindable(cj *batchv1.CronJob) bool {
	return cj.UID != "" && cj.DeletionTimestamp == nil && jobs.NodeFireable(cj)
}

// cronTemplate is the pod a CronJob's runs start, unbound, for the filters.
func cronTemplate(cj *batchv1.CronJob) *corev1.Pod {
	return jobs.RunPodTemplates(cj, "")[0]
}

// cronJobSpecs lowers every bound CronJob into its node's CronJobSpec,
// sorted by namespace/name per node. A CronJob that cannot be lowered is
// left out (its node then fires nothing for it) and reported in errs under
// its key.
func cronJobSpecs(inv *inventory.Inventory, cl *Cluster, auth []nodeapi.RegistryAuth, errs map[string]error) map[string][]nodeapi.CronJobSpec {
	out := map[string][]nodeapi.CronJobSpec{}
	claims := cl.claims()
	for _, cj := range Typed[*batchv1.CronJob](cl, "CronJob") {
		node := cj.Annotations[jobs.CronJobNodeAnnotation]
		if node == "" || !cronBindable(cj) {
			continue
		}
		h, ok := inv.Host(node)
		if !ok {
			continue // rebound at the next loop
		}
		spec, err := lowerCronJob(cj, inv, h, plan.LowerInput{ConfigMaps: cl.ConfigMaps, Secrets: cl.Secrets, PVCs: claims,
			ClusterDomain: inv.Cluster.Domain, NodeName: h.Name, HostIP: h.Address, RegistryAuth: auth})
		if err != nil {
			errs[Key(cj.Namespace, cj.Name)] = err
			continue
		}
		out[h.Name] = append(out[h.Name], spec)
	}
	return out
}

// lowerCronJob is one CronJob for its node. li is completed as Desired
// completes it for the node's pods, so that a run's pod lowers the same
// whether agentlet makes it from the template or the CLI from the adopted
// pod.
func lowerCronJob(cj *batchv1.CronJob, inv *inventory.Inventory, h inventory.Host, li plan.LowerInput) (nodeapi.CronJobSpec, error) {
	if ip, ok := NodeIP(inv, h); ok {
		li.HostIP, li.ClusterDNS = ip.String(), ip.String()
	}
	s := cj.Spec
	spec := nodeapi.CronJobSpec{UID: string(cj.UID), Namespace: cj.Namespace, Name: cj.Name,
		CreationTimestamp: cj.CreationTimestamp.UTC(), Schedule: s.Schedule, TimeZone: s.TimeZone,
		ConcurrencyPolicy: string(s.ConcurrencyPolicy), Suspend: s.Suspend != nil && *s.Suspend,
		StartingDeadlineSeconds: s.StartingDeadlineSeconds, SuccessfulJobsHistoryLimit: 3, FailedJobsHistoryLimit: 1,
		PodsPerRun: jobs.PodsPerRun(cj), Indexed: s.JobTemplate.Spec.CompletionMode != nil && *s.JobTemplate.Spec.CompletionMode == batchv1.IndexedCompletion}
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = nodeapi.ConcurrencyAllow
	}
	if l := s.SuccessfulJobsHistoryLimit; l != nil {
		spec.SuccessfulJobsHistoryLimit = *l
	}
	if l := s.FailedJobsHistoryLimit; l != nil {
		spec.FailedJobsHistoryLimit = *l
	}
	if t := cj.Status.LastScheduleTime; t != nil {
		last := t.UTC()
		spec.LastScheduleTime = &last
	}
	for _, a := range cj.Status.Active {
		spec.ActiveJobs = append(spec.ActiveJobs, a.Name)
	}
	sort.Strings(spec.ActiveJobs)
	var errs []error
	for _, pod := range jobs.RunPodTemplates(cj, h.Name) {
		lowered, err := plan.LowerPod(pod, li)
		if err != nil {
			// The placeholder name means nothing to a user.
			msg := strings.ReplaceAll(err.Error(), nodeapi.CronPodNamePlaceholder, "<run pod>")
			errs = append(errs, errors.New(msg))
			continue
		}
		spec.Templates = append(spec.Templates, lowered)
	}
	if len(errs) == 0 {
		errs = append(errs, spec.Validate())
	}
	if err := errors.Join(errs...); err != nil {
		return nodeapi.CronJobSpec{}, fmt.Errorf("cronjob %s: its node %s cannot fire it: %w", Key(cj.Namespace, cj.Name), h.Name, err)
	}
	return spec, nil
}
