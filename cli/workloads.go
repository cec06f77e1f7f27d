package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/plan/admission"
	"github.com/clusterctl/clusterctl/plan/jobs"
	"github.com/clusterctl/clusterctl/reconcile"
)

// workloadKind is how `get` lists one stored kind: kubectl's columns.
type workloadKind struct {
	kind    string
	aliases []string
	header  string
	row     func(obj runtime.Object, now time.Time) []string
}

func workloadKinds() []workloadKind {
	i32 := func(p *int32) int32 {
		if p == nil {
			return 1
		}
		return *p
	}
	return []workloadKind{
		{"Deployment", []string{"deployments", "deployment", "deploy"}, "READY\tUP-TO-DATE\tAVAILABLE", func(o runtime.Object, _ time.Time) []string {
			d := o.(*appsv1.Deployment)
			return []string{fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, i32(d.Spec.Replicas)), fmt.Sprint(d.Status.UpdatedReplicas), fmt.Sprint(d.Status.AvailableReplicas)}
		}},
		{"ReplicaSet", []string{"replicasets", "replicaset", "rs"}, "DESIRED\tCURRENT\tREADY", func(o runtime.Object, _ time.Time) []string {
			rs := o.(*appsv1.ReplicaSet)
			return []string{fmt.Sprint(i32(rs.Spec.Replicas)), fmt.Sprint(rs.Status.Replicas), fmt.Sprint(rs.Status.ReadyReplicas)}
		}},
		{"ReplicationController", []string{"replicationcontrollers", "replicationcontroller", "rc"}, "DESIRED\tCURRENT\tREADY", func(o runtime.Object, _ time.Time) []string {
			rc := o.(*corev1.ReplicationController)
			return []string{fmt.Sprint(i32(rc.Spec.Replicas)), fmt.Sprint(rc.Status.Replicas), fmt.Sprint(rc.Status.ReadyReplicas)}
		}},
		{"DaemonSet", []string{"daemonsets", "daemonset", "ds"}, "DESIRED\tCURRENT\tREADY\tUP-TO-DATE\tAVAILABLE\tNODE SELECTOR", func(o runtime.Object, _ time.Time) []string {
			ds := o.(*appsv1.DaemonSet)
			sel := "<none>"
			if len(ds.Spec.Template.Spec.NodeSelector) > 0 {
				sel = labels.SelectorFromSet(ds.Spec.Template.Spec.NodeSelector).String()
			}
			s := ds.Status
			return []string{fmt.Sprint(s.DesiredNumberScheduled), fmt.Sprint(s.CurrentNumberScheduled), fmt.Sprint(s.NumberReady),
				fmt.Sprint(s.UpdatedNumberScheduled), fmt.Sprint(s.NumberAvailable), sel}
		}},
		{"StatefulSet", []string{"statefulsets", "statefulset", "sts"}, "READY", func(o runtime.Object, _ time.Time) []string {
			ss := o.(*appsv1.StatefulSet)
			return []string{fmt.Sprintf("%d/%d", ss.Status.ReadyReplicas, i32(ss.Spec.Replicas))}
		}},
		{"Job", []string{"jobs", "job"}, "STATUS\tCOMPLETIONS\tDURATION", func(o runtime.Object, now time.Time) []string {
			s := jobs.JobStatusSummary(o.(*batchv1.Job), now)
			return []string{s.Status, s.Completions, s.Duration}
		}},
		{"CronJob", []string{"cronjobs", "cronjob", "cj"}, "SCHEDULE\tTIMEZONE\tSUSPEND\tACTIVE\tLAST SCHEDULE", func(o runtime.Object, now time.Time) []string {
			cj := o.(*batchv1.CronJob)
			tz, last := "<none>", "<none>"
			if cj.Spec.TimeZone != nil {
				tz = *cj.Spec.TimeZone
			}
			if t := cj.Status.LastScheduleTime; t != nil {
				last = humanDuration(now.Sub(t.Time)) + " ago"
			}
			return []string{cj.Spec.Schedule, tz, fmt.Sprint(cj.Spec.Suspend != nil && *cj.Spec.Suspend), fmt.Sprint(len(cj.Status.Active)), last}
		}},
		{"HorizontalPodAutoscaler", []string{"horizontalpodautoscalers", "horizontalpodautoscaler", "hpa"}, "REFERENCE\tTARGETS\tMINPODS\tMAXPODS\tREPLICAS", func(o runtime.Object, _ time.Time) []string {
			h := o.(*autoscalingv2.HorizontalPodAutoscaler)
			return []string{h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name, hpaTargets(h), fmt.Sprint(i32(h.Spec.MinReplicas)),
				fmt.Sprint(h.Spec.MaxReplicas), fmt.Sprint(h.Status.CurrentReplicas)}
		}},
		{"PersistentVolumeClaim", []string{"persistentvolumeclaims", "persistentvolumeclaim", "pvc"}, "STATUS\tVOLUME\tCAPACITY\tACCESS MODES\tSTORAGECLASS", func(o runtime.Object, _ time.Time) []string {
			pvc := o.(*corev1.PersistentVolumeClaim)
			phase := string(pvc.Status.Phase)
			if phase == "" {
				phase = "Pending"
			}
			capacity := ""
			if q, ok := pvc.Status.Capacity[corev1.ResourceStorage]; ok {
				capacity = q.String()
			}
			class := reconcile.LocalPathClass
			if pvc.Spec.StorageClassName != nil && *pvc.Spec.StorageClassName != "" {
				class = *pvc.Spec.StorageClassName
			}
			return []string{phase, pvc.Spec.VolumeName, capacity, accessModes(pvc.Spec.AccessModes), class}
		}},
		{"PersistentVolume", []string{"persistentvolumes", "persistentvolume", "pv"}, "CAPACITY\tACCESS MODES\tRECLAIM POLICY\tSTATUS\tCLAIM\tSTORAGECLASS", func(o runtime.Object, _ time.Time) []string {
			pv := o.(*corev1.PersistentVolume)
			q := pv.Spec.Capacity[corev1.ResourceStorage]
			claim := ""
			if r := pv.Spec.ClaimRef; r != nil {
				claim = r.Namespace + "/" + r.Name
			}
			return []string{q.String(), accessModes(pv.Spec.AccessModes), string(pv.Spec.PersistentVolumeReclaimPolicy), string(pv.Status.Phase), claim, pv.Spec.StorageClassName}
		}},
		{"ResourceQuota", []string{"resourcequotas", "resourcequota", "quota"}, "REQUEST\tLIMIT", func(o runtime.Object, _ time.Time) []string {
			req, lim := admission.Columns(o.(*corev1.ResourceQuota).Status)
			return []string{req, lim}
		}},
		{"LimitRange", []string{"limitranges", "limitrange", "limits"}, "CREATED AT", func(o runtime.Object, _ time.Time) []string {
			return []string{o.(*corev1.LimitRange).CreationTimestamp.UTC().Format(time.RFC3339)}
		}},
		{"PodDisruptionBudget", []string{"poddisruptionbudgets", "poddisruptionbudget", "pdb"}, "MIN AVAILABLE\tMAX UNAVAILABLE\tALLOWED DISRUPTIONS", func(o runtime.Object, _ time.Time) []string {
			pdb := o.(*policyv1.PodDisruptionBudget)
			minA, maxU := "N/A", "N/A"
			if v := pdb.Spec.MinAvailable; v != nil {
				minA = v.String()
			}
			if v := pdb.Spec.MaxUnavailable; v != nil {
				maxU = v.String()
			}
			return []string{minA, maxU, fmt.Sprint(pdb.Status.DisruptionsAllowed)}
		}},
		{"StorageClass", []string{"storageclasses", "storageclass", "sc"}, "PROVISIONER\tRECLAIMPOLICY\tVOLUMEBINDINGMODE", func(o runtime.Object, _ time.Time) []string {
			sc := o.(*storagev1.StorageClass)
			rp, bm := "", ""
			if sc.ReclaimPolicy != nil {
				rp = string(*sc.ReclaimPolicy)
			}
			if sc.VolumeBindingMode != nil {
				bm = string(*sc.VolumeBindingMode)
			}
			return []string{sc.Provisioner, rp, bm}
		}},
	}
}

func accessModes(m []corev1.PersistentVolumeAccessMode) string {
	short := map[corev1.PersistentVolumeAccessMode]string{"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
	var out []string
	for _, a := range m {
		out = append(out, short[a])
	}
	return strings.Join(out, ",")
}

func hpaTargets(h *autoscalingv2.HorizontalPodAutoscaler) string {
	var parts []string
	for i, m := range h.Spec.Metrics {
		if m.Resource == nil {
			continue
		}
		cur := "<unknown>"
		if i < len(h.Status.CurrentMetrics) && h.Status.CurrentMetrics[i].Resource != nil {
			c := h.Status.CurrentMetrics[i].Resource.Current
			switch {
			case c.AverageUtilization != nil:
				cur = fmt.Sprintf("%d%%", *c.AverageUtilization)
			case c.AverageValue != nil:
				cur = c.AverageValue.String()
			}
		}
		want := ""
		switch t := m.Resource.Target; {
		case t.AverageUtilization != nil:
			want = fmt.Sprintf("%d%%", *t.AverageUtilization)
		case t.AverageValue != nil:
			want = t.AverageValue.String()
		}
		parts = append(parts, fmt.Sprintf("%s: %s/%s", m.Resource.Name, cur, want))
	}
	return strings.Join(parts, ", ")
}

// getWorkloadsCommand lists one stored kind as of the last reconcile (no
// host is contacted).
func getWorkloadsCommand(env *Env, wk workloadKind) *cli.Command {
	return &cli.Command{
		Name:      wk.aliases[0],
		Aliases:   wk.aliases[1:],
		Usage:     "list " + wk.kind + "s (status as of the last reconcile)",
		ArgsUsage: "[NAME...]",
		Flags:     storedListFlags(),
		Action: func(c *cli.Context) error {
			names, err := trailingFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			_, cl, err := loadCluster(c, env)
			if err != nil {
				return err
			}
			cluster := manifest.ClusterScoped(wk.kind)
			scope, err := newListScope(c, names, cluster)
			if err != nil {
				return err
			}
			var objs []runtime.Object
			found := map[string]bool{}
			keys := make([]string, 0, len(cl.Workloads[wk.kind]))
			for k := range cl.Workloads[wk.kind] {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				o := cl.Workloads[wk.kind][k]
				if m, _ := metaOf(o); scope.match(m) {
					found[m.Name] = true
					objs = append(objs, o)
				}
			}
			if err := scope.missing(wk.kind, found); err != nil {
				return err
			}
			return printWorkloads(env.Out, c.String("output"), wk, objs, scope.all && !cluster, time.Now())
		},
	}
}

func printWorkloads(w io.Writer, format string, wk workloadKind, objs []runtime.Object, showNS bool, now time.Time) error {
	switch format {
	case "json", "yaml":
		list := struct {
			APIVersion string           `json:"apiVersion"`
			Kind       string           `json:"kind"`
			Items      []runtime.Object `json:"items"`
		}{APIVersion: "v1", Kind: "List", Items: []runtime.Object{}}
		list.Items = append(list.Items, objs...)
		return printK8s(w, format, list)
	case "":
	default:
		return withCode(ExitUsage, fmt.Errorf("unknown output format %q (want json or yaml)", format))
	}
	if len(objs) == 0 {
		fmt.Fprintln(w, "No resources found.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	head := "NAME\t" + wk.header + "\tAGE"
	if showNS {
		head = "NAMESPACE\t" + head
	}
	fmt.Fprintln(tw, head)
	for _, o := range objs {
		m, _ := metaOf(o)
		cols := append([]string{m.Name}, wk.row(o, now)...)
		if showNS {
			cols = append([]string{m.Namespace}, cols...)
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t"+age(m.CreationTimestamp, now))
	}
	return tw.Flush()
}
