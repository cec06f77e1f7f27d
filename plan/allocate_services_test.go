package plan

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func svc(name, typ, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceType(typ), ClusterIP: clusterIP, Ports: ports}}
}

func port(name string, p, nodePort int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: p, NodePort: nodePort, Protocol: corev1.ProtocolTCP}
}

func TestAllocateServices(t *testing.T) {
	cidr := netip.MustParsePrefix("10.96.0.0/24")
	other := svc("db", "ClusterIP", "10.96.0.2", port("", 5432, 0))
	otherNP := svc("np-old", "NodePort", "10.96.0.3", port("http", 80, 30000))

	web := svc("web", "NodePort", "", port("http", 80, 0), port("admin", 81, 0))
	fixed := svc("fixed", "ClusterIP", "10.96.0.50", port("", 80, 0))
	headless := svc("headless", "ClusterIP", "None")
	kept := svc("kept", "NodePort", "", port("http", 80, 0))
	keptStored := svc("kept", "NodePort", "10.96.0.9", port("http", 80, 31000))
	demoted := svc("demoted", "ClusterIP", "", port("http", 80, 32000))

	err := AllocateServices(cidr, []ServiceAllocation{
		{Service: web}, {Service: fixed}, {Service: headless}, {Service: kept, Stored: keptStored}, {Service: demoted},
	}, []*corev1.Service{other, otherNP})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range []*corev1.Service{web, fixed, headless, kept, demoted} {
		v := s.Spec.ClusterIP
		for _, p := range s.Spec.Ports {
			v += fmt.Sprintf(" %s:%d", p.Name, p.NodePort)
		}
		got[s.Name] = v
	}
	want := map[string]string{
		"web":      "10.96.0.5 http:30002 admin:30001", // node ports go in key order too: admin before http
		"fixed":    "10.96.0.50 :0",
		"headless": "None",
		"kept":     "10.96.0.9 http:31000", // stored allocations survive a manifest without them
		"demoted":  "10.96.0.4 http:0",     // ClusterIP services have no node ports
	}
	// Lowest free addresses go in key order: demoted (.4) before web (.5).
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("allocations (-want +got):\n%s", diff)
	}
	if headless.Spec.ClusterIPs[0] != "None" || web.Spec.ClusterIPs[0] != "10.96.0.5" {
		t.Errorf("clusterIPs = %v, %v", headless.Spec.ClusterIPs, web.Spec.ClusterIPs)
	}
}

func TestAllocateServicesErrors(t *testing.T) {
	cidr := netip.MustParsePrefix("10.96.0.0/24")
	other := svc("db", "NodePort", "10.96.0.2", port("", 5432, 30080))
	changed := svc("web", "ClusterIP", "10.96.0.7")
	stored := svc("web", "ClusterIP", "10.96.0.6")
	taken := svc("dup", "ClusterIP", "10.96.0.2")
	portTaken := svc("np", "NodePort", "", port("", 80, 30080))
	outside := svc("far", "ClusterIP", "10.97.0.1")
	err := AllocateServices(cidr, []ServiceAllocation{{Service: changed, Stored: stored}, {Service: taken}, {Service: portTaken}, {Service: outside}},
		[]*corev1.Service{other})
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		"service default/web: spec.clusterIP: field is immutable (is 10.96.0.6, manifest says 10.96.0.7)",
		"10.96.0.2 is already used by default/db",
		"30080 is already used by default/db",
		"10.97.0.1 is not in the service CIDR 10.96.0.0/24",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
