package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/reconcile"
)

const admitPolicies = `apiVersion: v1
kind: LimitRange
metadata: {name: limits, namespace: default}
spec:
  limits:
  - type: Container
    max: {cpu: "1"}
    default: {cpu: 500m, memory: 64Mi}
    defaultRequest: {cpu: 100m, memory: 32Mi}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: default}
spec:
  hard: {pods: "3", requests.cpu: 150m}
`

const admitPods = `apiVersion: v1
kind: Pod
metadata: {name: a}
spec:
  containers: [{name: c, image: busybox:1}]
---
apiVersion: v1
kind: Pod
metadata: {name: big}
spec:
  containers: [{name: c, image: busybox:1, resources: {limits: {cpu: "2"}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec:
  containers: [{name: c, image: busybox:1}]
`

// TestApplyAdmission: apply defaults pods from the namespace's LimitRange
// and refuses, naming file and line, a pod over its max (and the quota) and
// one that takes the quota over; the first pod fits and counts.
func TestApplyAdmission(t *testing.T) {
	inv := inventory.New("c.yaml", "t")
	pol, err := manifest.Decode("policies.yaml", []byte(admitPolicies))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pol {
		if err := reconcile.Store(inv, o); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := reconcile.Load(inv)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode("pods.yaml", []byte(admitPods))
	if err != nil {
		t.Fatal(err)
	}
	actions, problems := prepareApply(cl, objs, "default", inv.Cluster.ServiceCIDR, time.Unix(0, 0))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	problems = admit(cl, objs, actions)
	got := strings.Join(problems, "\n")
	want := []string{
		"pods.yaml:7: pod default/big: container c: cpu limit 2 exceeds LimitRange default/limits max 1",
		"pods.yaml:7: pod default/big: exceeded quota: compute, requested: requests.cpu=2, used: requests.cpu=100m, limited: requests.cpu=150m",
		"pods.yaml:13: pod default/b: exceeded quota: compute, requested: requests.cpu=100m, used: requests.cpu=100m, limited: requests.cpu=150m",
	}
	if got != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	a := objs[0].Obj.(interface{ GetAnnotations() map[string]string })
	if _, ok := a.GetAnnotations()["kubernetes.io/limit-ranger"]; !ok {
		t.Errorf("pod a was not defaulted by the LimitRange: %+v", objs[0].Obj)
	}
}
