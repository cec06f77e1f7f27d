package manifest

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// kindInfo is one supported apiVersion/kind.
type kindInfo struct {
	apiVersion string
	kind       string
}

// supportedKinds is the table of what Decode accepts, in the order
// SupportedKinds reports it.
func supportedKinds() []kindInfo {
	return []kindInfo{
		{"v1", "Pod"},
		{"v1", "ConfigMap"},
		{"v1", "Secret"},
		{"v1", "Namespace"},
		{"v1", "Service"},
		{"v1", "Endpoints"},
		{"discovery.k8s.io/v1", "EndpointSlice"},
		{"apps/v1", "Deployment"},
		{"apps/v1", "ReplicaSet"},
		{"apps/v1", "DaemonSet"},
		{"apps/v1", "StatefulSet"},
		{"apps/v1", "ControllerRevision"},
		{"v1", "ReplicationController"},
		{"batch/v1", "Job"},
		{"batch/v1", "CronJob"},
		{"autoscaling/v2", "HorizontalPodAutoscaler"},
		{"v1", "PersistentVolumeClaim"},
		{"v1", "PersistentVolume"},
		{"storage.k8s.io/v1", "StorageClass"},
		{"v1", "ResourceQuota"},
		{"v1", "LimitRange"},
		{"policy/v1", "PodDisruptionBudget"},
	}
}

// SupportedKinds lists the kinds Decode accepts, as apiVersion/kind. A v1
// List of them is accepted too.
func SupportedKinds() []string {
	var out []string
	for _, k := range supportedKinds() {
		out = append(out, k.apiVersion+"/"+k.kind)
	}
	return out
}

func isSupported(apiVersion, kind string) bool {
	for _, k := range supportedKinds() {
		if k.apiVersion == apiVersion && k.kind == kind {
			return true
		}
	}
	return false
}

// ClusterScoped reports whether objects of kind have no namespace.
func ClusterScoped(kind string) bool {
	switch kind {
	case "Namespace", "PersistentVolume", "StorageClass":
		return true
	}
	return false
}

// apiVersionOf returns the apiVersion a supported kind lives in, or "".
func apiVersionOf(kind string) string {
	for _, k := range supportedKinds() {
		if k.kind == kind {
			return k.apiVersion
		}
	}
	return ""
}

// newScheme registers every group the supported kinds come from.
func newScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, autoscalingv2.AddToScheme,
		discoveryv1.AddToScheme, storagev1.AddToScheme, policyv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(fmt.Sprintf("register API types: %v", err)) // cannot happen: static registrations
		}
	}
	return scheme
}
