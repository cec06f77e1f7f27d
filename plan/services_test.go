package plan

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func TestAllocateClusterIPs(t *testing.T) {
	cidr := netip.MustParsePrefix("10.96.0.0/29") // .0 network, .1 reserved: .2-.7 usable
	ip := netip.MustParseAddr
	got, err := AllocateClusterIPs(cidr, []string{"b/svc", "a/svc", "c/svc", "d/svc"},
		map[string]netip.Addr{"d/svc": ip("10.96.0.2")},
		map[string]netip.Addr{"c/svc": ip("10.96.0.5"), "a/svc": ip("10.96.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	// d asked for .2 and wins it; a loses its old .2 and gets the lowest free; c keeps .5.
	want := map[string]netip.Addr{"d/svc": ip("10.96.0.2"), "c/svc": ip("10.96.0.5"), "a/svc": ip("10.96.0.3"), "b/svc": ip("10.96.0.4")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("allocation (-want +got):\n%s", diff)
	}
	// Stable: re-running on its own output changes nothing.
	again, err := AllocateClusterIPs(cidr, []string{"a/svc", "b/svc", "c/svc", "d/svc"}, map[string]netip.Addr{"d/svc": ip("10.96.0.2")}, got)
	if err != nil || !cmp.Equal(again, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })) {
		t.Errorf("not stable: %v %v", again, err)
	}
	// Errors: outside the CIDR, duplicate request, CIDR full — all at once.
	_, err = AllocateClusterIPs(cidr, []string{"x/1", "x/2", "x/3", "x/4", "x/5", "x/6", "x/7", "x/8", "x/9"},
		map[string]netip.Addr{"x/1": ip("10.0.0.1"), "x/2": ip("10.96.0.6"), "x/3": ip("10.96.0.6")}, nil)
	for _, w := range []string{"10.0.0.1 is not in the service CIDR", "10.96.0.6 is already used by x/2", "is full"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
}

func TestAllocateNodePorts(t *testing.T) {
	got, err := AllocateNodePorts([]string{"a/s/http", "b/s/http", "c/s/dns"},
		map[string]int32{"b/s/http": 30000}, map[string]int32{"c/s/dns": 31000, "a/s/http": 30000})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int32{"b/s/http": 30000, "c/s/dns": 31000, "a/s/http": 30001}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := AllocateNodePorts([]string{"a"}, map[string]int32{"a": 8080}, nil); err == nil || !strings.Contains(err.Error(), "outside 30000-32767") {
		t.Errorf("out of range: %v", err)
	}
}

func TestEndpoints(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"},
		Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9100)},
			{Name: "same", Port: 7000},
		}}}
	pod := func(name, node, portName string, port int32, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-" + name), Labels: labels},
			Spec: corev1.PodSpec{NodeName: node, Subdomain: "web", Containers: []corev1.Container{{Name: "c",
				Ports: []corev1.ContainerPort{{Name: portName, ContainerPort: port}}}}}}
	}
	web := map[string]string{"app": "web"}
	eps := Endpoints(svc, []PodEndpoint{
		{Pod: pod("b", "h2", "http", 8081, web), IP: "10.244.1.5", Ready: false},
		{Pod: pod("a", "h1", "http", 8080, web), IP: "10.244.0.5", Ready: true},
		{Pod: pod("noname", "h1", "other", 1, web), IP: "10.244.0.6", Ready: true},
		{Pod: pod("pending", "", "http", 8080, web), IP: "", Ready: false},
		{Pod: pod("other", "h1", "http", 8080, map[string]string{"app": "db"}), IP: "10.244.0.7", Ready: true},
	})
	want := []nodeapi.Endpoint{
		{IP: "10.244.0.5", NodeName: "h1", Ready: true, PodUID: "uid-a", Hostname: "a", Ports: map[string]int32{"http": 8080, "metrics": 9100, "same": 7000}},
		{IP: "10.244.0.6", NodeName: "h1", Ready: true, PodUID: "uid-noname", Hostname: "noname", Ports: map[string]int32{"metrics": 9100, "same": 7000}},
		{IP: "10.244.1.5", NodeName: "h2", Ready: false, PodUID: "uid-b", Hostname: "b", Ports: map[string]int32{"http": 8081, "metrics": 9100, "same": 7000}},
	}
	if diff := cmp.Diff(want, eps); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	svc.Spec.Selector = nil
	if eps := Endpoints(svc, []PodEndpoint{{Pod: pod("a", "h1", "http", 8080, web), IP: "10.244.0.5"}}); eps != nil {
		t.Errorf("selectorless service got endpoints %v", eps)
	}
}
