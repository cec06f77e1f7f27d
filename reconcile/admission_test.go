package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
)

const quotaObjects = `apiVersion: v1
kind: ResourceQuota
metadata: {name: few, namespace: default}
spec:
  hard: {pods: "2"}
---
apiVersion: v1
kind: LimitRange
metadata: {name: limits, namespace: default}
spec:
  limits:
  - type: Container
    default: {cpu: 200m}
    defaultRequest: {cpu: 50m}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: default, uid: 9a4b1c2d-0000-4000-8000-000000000001}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: busybox:1}]
`

// TestControllersRespectQuotaAndLimitRange: a ReplicaSet of 3 in a
// namespace allowing 2 pods gets 2, defaulted by the LimitRange, and a
// FailedCreate event for the third.
func TestControllersRespectQuotaAndLimitRange(t *testing.T) {
	in := inventory.New("c.yaml", "t")
	objs, err := manifest.Decode("objs.yaml", []byte(quotaObjects))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := Store(in, o); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := Load(in)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := RunControllers(in, cl, ControllerInput{Now: time.Unix(1e9, 0), Seed: "s"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(cl.Pods) != 2 {
		t.Fatalf("%d pods made, want 2 (the quota)", len(cl.Pods))
	}
	for _, p := range cl.Pods {
		c := p.Spec.Containers[0]
		if c.Resources.Limits.Cpu().String() != "200m" || c.Resources.Requests.Cpu().String() != "50m" {
			t.Errorf("%s: resources %v, want the LimitRange defaults", p.Name, c.Resources)
		}
	}
	found := false
	for _, e := range ch.Events {
		if e.Reason == "FailedCreate" && e.Object.Kind == "ReplicaSet" && strings.Contains(e.Message, "exceeded quota: few") {
			found = true
		}
	}
	if !found {
		t.Errorf("no FailedCreate event naming the quota: %+v", ch.Events)
	}
	stored := 0
	for _, o := range in.Objects() {
		if o.Kind == "Pod" {
			stored++
		}
	}
	if stored != 2 {
		t.Errorf("%d pods stored in the inventory, want 2", stored)
	}
}
