package cli

import (
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// getStoredCommand lists ConfigMaps, Secrets or Namespaces from the inventory
// (no host is contacted).
func getStoredCommand(env *Env, kind string, aliases ...string) *cli.Command {
	return &cli.Command{
		Name:    aliases[0],
		Aliases: aliases[1:],
		Usage:   "list " + kind + "s",
		Flags:   storedListFlags(),
		Action: func(c *cli.Context) error {
			_, cl, err := loadCluster(c, env)
			if err != nil {
				return err
			}
			scope, err := newListScope(c, nil, kind == "Namespace")
			if err != nil {
				return err
			}
			type row struct {
				meta  *metav1.ObjectMeta
				obj   runtime.Object
				extra []string
			}
			var rows []row
			keep := func(m *metav1.ObjectMeta) bool { return scope.match(m) }
			switch kind {
			case "ConfigMap":
				for _, o := range cl.ConfigMaps {
					if keep(&o.ObjectMeta) {
						rows = append(rows, row{&o.ObjectMeta, o, []string{fmt.Sprint(len(o.Data) + len(o.BinaryData))}})
					}
				}
			case "Secret":
				for _, o := range cl.Secrets {
					if keep(&o.ObjectMeta) {
						rows = append(rows, row{&o.ObjectMeta, o, []string{string(o.Type), fmt.Sprint(len(o.Data))}})
					}
				}
			case "Namespace":
				if _, ok := cl.Namespaces["default"]; !ok {
					d := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
					cl.Namespaces["default"] = d
				}
				for _, o := range cl.Namespaces {
					if keep(&o.ObjectMeta) {
						rows = append(rows, row{&o.ObjectMeta, o, []string{"Active"}})
					}
				}
			}
			sort.Slice(rows, func(i, j int) bool {
				return rows[i].meta.Namespace+"/"+rows[i].meta.Name < rows[j].meta.Namespace+"/"+rows[j].meta.Name
			})
			switch f := c.String("output"); f {
			case "json", "yaml":
				list := struct {
					APIVersion string           `json:"apiVersion"`
					Kind       string           `json:"kind"`
					Items      []runtime.Object `json:"items"`
				}{APIVersion: "v1", Kind: "List", Items: []runtime.Object{}}
				for _, r := range rows {
					r.obj.GetObjectKind().SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
					list.Items = append(list.Items, r.obj)
				}
				return printK8s(env.Out, f, list)
			case "":
			default:
				return withCode(ExitUsage, fmt.Errorf("unknown output format %q (want json or yaml)", f))
			}
			if len(rows) == 0 {
				fmt.Fprintln(env.Out, "No resources found.")
				return nil
			}
			tw := tabwriter.NewWriter(env.Out, 0, 8, 3, ' ', 0)
			head := map[string]string{"ConfigMap": "NAME\tDATA\tAGE", "Secret": "NAME\tTYPE\tDATA\tAGE", "Namespace": "NAME\tSTATUS\tAGE"}[kind]
			showNS := scope.all && kind != "Namespace"
			if showNS {
				head = "NAMESPACE\t" + head
			}
			fmt.Fprintln(tw, head)
			for _, r := range rows {
				line := r.meta.Name
				if showNS {
					line = r.meta.Namespace + "\t" + line
				}
				for _, e := range r.extra {
					line += "\t" + e
				}
				age := "<unknown>"
				if !r.meta.CreationTimestamp.IsZero() {
					age = humanDuration(time.Since(r.meta.CreationTimestamp.Time))
				}
				fmt.Fprintln(tw, line+"\t"+age)
			}
			return tw.Flush()
		},
	}
}
