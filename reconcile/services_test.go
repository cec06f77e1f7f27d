package reconcile

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/nodeapi"
)

const servicesManifest = `apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web}}
spec:
  nodeName: h1
  containers: [{name: c, image: busybox:1, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: default, labels: {app: web}}
spec:
  nodeName: h2
  containers: [{name: c, image: busybox:1, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-3, namespace: default, labels: {app: web}}
spec:
  nodeName: h2
  containers: [{name: c, image: busybox:1, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec:
  clusterIP: 10.96.0.11
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: ext, namespace: default}
subsets:
- addresses: [{ip: 10.0.0.50}]
  notReadyAddresses: [{ip: 10.0.0.51}]
  ports: [{name: pg, port: 15432}]
---
apiVersion: v1
kind: Service
metadata: {name: pending, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`

func TestDesiredServicesPeersAndDNS(t *testing.T) {
	in, err := inventory.Parse("c.yaml", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode("svc.yaml", []byte(servicesManifest))
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{"web-1": "u1", "web-2": "u2", "web-3": "u3"}
	for _, o := range objs {
		if p, ok := o.Obj.(*corev1.Pod); ok {
			p.UID = types.UID(uids[p.Name])
		}
		if err := Store(in, o); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := Load(in)
	if err != nil {
		t.Fatal(err)
	}
	ready := []nodeapi.Condition{{Type: nodeapi.PodReady, Status: nodeapi.True}}
	statuses := map[string]*nodeapi.NodeStatus{
		"h1": {Pods: []nodeapi.PodStatus{{UID: "u1", PodIP: "10.244.0.5", Conditions: ready}}},
		"h2": {Pods: []nodeapi.PodStatus{
			{UID: "u2", PodIP: "10.244.1.5"}, // not ready
			{UID: "u3", PodIP: "10.244.1.6", Conditions: ready},
		}},
	}
	specs, errs := Desired(in, cl, DesiredInput{Generation: 3, Writer: "w", Now: time.Unix(0, 0), Observed: ObservedPods(statuses)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	h1 := specs["h1"]
	wantPeers := []nodeapi.Peer{{Name: "h2", Address: "10.0.0.2", PodCIDR: "10.244.1.0/24"}}
	if diff := cmp.Diff(wantPeers, h1.Peers); diff != "" {
		t.Errorf("h1 peers (-want +got):\n%s", diff)
	}
	if h1.DNS == nil || h1.DNS.Address != "10.0.0.1" {
		t.Errorf("h1 DNS = %+v, want 10.0.0.1", h1.DNS)
	}
	if d := h1.Pods[0].DNS; d == nil || d.Nameservers[0] != "10.0.0.1" || d.Searches[0] != "default.svc.cluster.local" {
		t.Errorf("web-1 resolv.conf = %+v", d)
	}
	want := []nodeapi.ServiceSpec{
		{Namespace: "default", Name: "ext", Type: "ClusterIP", ClusterIP: "10.96.0.11",
			Ports: []nodeapi.ServicePort{{Name: "pg", Protocol: "TCP", Port: 5432}},
			Endpoints: []nodeapi.Endpoint{
				{IP: "10.0.0.50", Ready: true, Ports: map[string]int32{"pg": 15432}},
				{IP: "10.0.0.51", Ready: false, Ports: map[string]int32{"pg": 15432}},
			}},
		{Namespace: "default", Name: "web", Type: "NodePort", ClusterIP: "10.96.0.10",
			Ports: []nodeapi.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, NodePort: 30080}},
			Endpoints: []nodeapi.Endpoint{
				{IP: "10.244.0.5", NodeName: "h1", Ready: true, PodUID: "u1", Ports: map[string]int32{"http": 8080}},
				{IP: "10.244.1.5", NodeName: "h2", Ready: false, PodUID: "u2", Ports: map[string]int32{"http": 8080}},
				{IP: "10.244.1.6", NodeName: "h2", Ready: true, PodUID: "u3", Ports: map[string]int32{"http": 8080}},
			}},
	}
	for _, h := range []string{"h1", "h2"} {
		if diff := cmp.Diff(want, specs[h].Services); diff != "" {
			t.Errorf("%s services (-want +got):\n%s", h, diff)
		}
		spec := specs[h]
		if err := spec.Validate(); err != nil {
			t.Errorf("%s spec invalid: %v", h, err)
		}
	}

	// A pod reported by a node it is not bound to is not an endpoint.
	statuses["h1"].Pods = append(statuses["h1"].Pods, nodeapi.PodStatus{UID: "u3", PodIP: "10.244.0.9", Conditions: ready})
	specs, _ = Desired(in, cl, DesiredInput{Generation: 3, Observed: ObservedPods(statuses)})
	if eps := specs["h1"].Services[1].Endpoints; len(eps) != 3 || eps[2].IP != "10.244.1.6" {
		t.Errorf("endpoints with u3 also reported by h1 = %+v, want h2's IP for it", eps)
	}
	delete(statuses, "h2")
	specs, _ = Desired(in, cl, DesiredInput{Generation: 3, Observed: ObservedPods(statuses)})
	if eps := specs["h1"].Services[1].Endpoints; len(eps) != 1 || eps[0].IP != "10.244.0.5" {
		t.Errorf("endpoints with h2 unreachable = %+v, want only web-1", eps)
	}
}
