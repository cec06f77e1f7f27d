package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/reconcile"
)

// listScope is what a list or describe command selects: a namespace (or
// all), a label selector and, optionally, names.
type listScope struct {
	all   bool
	ns    string
	sel   labels.Selector
	names []string
}

// newListScope reads -n, -A and -l; cluster-scoped kinds list everything.
func newListScope(c *cli.Context, names []string, clusterScoped bool) (listScope, error) {
	s := listScope{all: c.Bool("all-namespaces") || clusterScoped, ns: c.String("namespace"), sel: labels.Everything(), names: names}
	if v := c.String("selector"); v != "" {
		sel, err := labels.Parse(v)
		if err != nil {
			return s, withCode(ExitUsage, fmt.Errorf("parse selector %q: %w", v, err))
		}
		s.sel = sel
	}
	return s, nil
}

// match reports whether an object is in scope.
func (s listScope) match(m metav1.Object) bool {
	return (s.all || m.GetNamespace() == s.ns) && s.sel.Matches(labels.Set(m.GetLabels())) &&
		(len(s.names) == 0 || contains(s.names, m.GetName()))
}

// missing is the usage error for the first name nothing matched, if any.
func (s listScope) missing(kind string, found map[string]bool) error {
	for _, n := range s.names {
		if !found[n] {
			return withCode(ExitUsage, fmt.Errorf("%s %q not found in namespace %q", strings.ToLower(kind), n, s.ns))
		}
	}
	return nil
}

// loadCluster reads the inventory and its objects (no lock: read commands).
func loadCluster(c *cli.Context, env *Env) (*inventory.Inventory, *reconcile.Cluster, error) {
	inv, err := loadInventory(inventoryPath(c, env))
	if err != nil {
		return nil, nil, err
	}
	cl, err := reconcile.Load(inv)
	return inv, cl, err
}

// storedListFlags are the flags of a list that reads only the inventory.
func storedListFlags() []cli.Flag {
	return []cli.Flag{inventoryFlag(), namespaceFlag(), outputFlag("output format: json|yaml"),
		&cli.BoolFlag{Name: "all-namespaces", Aliases: []string{"A"}, Usage: "list across all namespaces"},
		&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "label selector"}}
}
