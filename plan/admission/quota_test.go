package admission

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestUsage(t *testing.T) {
	nodePort := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "np"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}, {Port: 443}}}}
	clusterIP := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr("local-path"),
			Resources: corev1.VolumeResourceRequirements{Requests: res("storage", "1500m")}}}
	plainClaim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: res("storage", "1Gi")}}}
	tests := []struct {
		name string
		obj  runtime.Object
		want string
	}{
		{"running pod", mkPod("ns", "p", []corev1.Container{
			ctr("a", res("cpu", "100m", "memory", "64Mi", "ephemeral-storage", "1Gi", "hugepages-2Mi", "4Mi", "example.com/gpu", "1"), res("cpu", "200m")),
		}, phase(corev1.PodRunning)),
			"count/pods=1,cpu=100m,ephemeral-storage=1Gi,hugepages-2Mi=4Mi,limits.cpu=200m,memory=64Mi,pods=1," +
				"requests.cpu=100m,requests.ephemeral-storage=1Gi,requests.example.com/gpu=1,requests.hugepages-2Mi=4Mi,requests.memory=64Mi"},
		{"pod without requests", mkPod("ns", "p", []corev1.Container{ctr("a", nil, nil)}), "count/pods=1,pods=1"},
		{"succeeded pod", cpuPod("ns", "p", "1", "1", phase(corev1.PodSucceeded)), ""},
		{"failed pod", cpuPod("ns", "p", "1", "1", phase(corev1.PodFailed)), ""},
		{"NodePort service", nodePort, "count/services=1,services=1,services.loadbalancers=0,services.nodeports=2"},
		{"ClusterIP service", clusterIP, "count/services=1,services=1,services.loadbalancers=0,services.nodeports=0"},
		{"claim with a class, rounded up to whole bytes", claim,
			"count/persistentvolumeclaims=1,local-path.storageclass.storage.k8s.io/persistentvolumeclaims=1," +
				"local-path.storageclass.storage.k8s.io/requests.storage=2,persistentvolumeclaims=1,requests.storage=2"},
		{"claim without a class", plainClaim, "count/persistentvolumeclaims=1,persistentvolumeclaims=1,requests.storage=1Gi"},
		{"configmap", mkConfigMap("ns", "cm"), "configmaps=1,count/configmaps=1"},
		{"secret without apiVersion/kind", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}}, "count/secrets=1,secrets=1"},
		{"deployment", mkDeployment("ns", "web"), "count/deployments.apps=1"},
		{"cronjob", &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c"}}, "count/cronjobs.batch=1"},
		{"budget", &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}}, "count/poddisruptionbudgets.policy=1"},
		{"quota", mkQuota("ns", "q", nil), "count/resourcequotas=1,resourcequotas=1"},
		{"replication controller", &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "rc"}},
			"count/replicationcontrollers=1,replicationcontrollers=1"},
		{"cluster-scoped kind", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := show(Usage(tt.obj)); got != tt.want {
				t.Errorf("Usage =\n  %s\nwant\n  %s", got, tt.want)
			}
		})
	}
}

func TestPodConstraints(t *testing.T) {
	compute := res("requests.cpu", "2", "limits.memory", "2Gi", "pods", "10")
	tests := []struct {
		name string
		pod  *corev1.Pod
		hard corev1.ResourceList
		want string
	}{
		{"all specified", cpuPod("ns", "p", "1", "1"), compute, ""},
		{"no compute resources in the quota", mkPod("ns", "p", []corev1.Container{ctr("a", nil, nil)}), res("pods", "1"), ""},
		{"missing everywhere", mkPod("ns", "p", []corev1.Container{ctr("b", nil, nil), ctr("a", res("cpu", "1"), nil)}, withInit(ctr("init", nil, res("memory", "1Gi")))),
			compute, "must specify limits.memory for: a,b; requests.cpu for: b,init"},
		{"cpu means the request", mkPod("ns", "p", []corev1.Container{ctr("a", nil, res("cpu", "1"))}), res("cpu", "1"), "must specify cpu for: a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := podConstraints(tt.pod, tt.hard); got != tt.want {
				t.Errorf("podConstraints = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStatusAndColumns(t *testing.T) {
	q := mkQuota("team", "compute", res("pods", "10", "requests.cpu", "2", "limits.cpu", "4", "requests.memory", "1Gi", "count/deployments.apps", "2"))
	objects := []runtime.Object{
		cpuPod("team", "a", "500m", "1", phase(corev1.PodRunning)),
		cpuPod("team", "b", "250m", "1"),
		cpuPod("team", "done", "1", "1", phase(corev1.PodSucceeded)),
		cpuPod("other", "c", "1", "1"),
		mkConfigMap("team", "cm"),
	}
	st := Status(q, objects)
	want := "count/deployments.apps=0,limits.cpu=2,pods=2,requests.cpu=750m,requests.memory=128Mi"
	if got := show(st.Used); got != want {
		t.Errorf("used = %s, want %s", got, want)
	}
	if diff := cmp.Diff(show(q.Spec.Hard), show(st.Hard)); diff != "" {
		t.Errorf("hard (-spec +status):\n%s", diff)
	}
	req, lim := Columns(st)
	if want := "count/deployments.apps: 0/2, pods: 2/10, requests.cpu: 750m/2, requests.memory: 128Mi/1Gi"; req != want {
		t.Errorf("request column = %q, want %q", req, want)
	}
	if want := "limits.cpu: 2/4"; lim != want {
		t.Errorf("limit column = %q, want %q", lim, want)
	}
}
