package manifest

import (
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Defaulting: the subset of the API server's defaulting for core/v1
// (k8s.io/kubernetes/pkg/apis/core/v1/defaults.go, which is not importable)
// that applies to the supported kinds, written out by hand. Every function
// only fills in fields that are unset, so defaulting twice changes nothing.
//
// Pod:
//   - spec: restartPolicy Always, dnsPolicy ClusterFirst,
//     terminationGracePeriodSeconds 30, schedulerName default-scheduler,
//     securityContext {}, enableServiceLinks true.
//   - containers and initContainers: imagePullPolicy Always when the image has
//     the tag latest or no tag and no digest, IfNotPresent otherwise;
//     terminationMessagePath /dev/termination-log; terminationMessagePolicy
//     File; resource requests copied from limits where only the limit is set;
//     ports: protocol TCP, and hostPort = containerPort on hostNetwork pods.
//   - probes: timeoutSeconds 1, periodSeconds 10, successThreshold 1,
//     failureThreshold 3. Every httpGet (probes and lifecycle hooks): path
//     "/", scheme HTTP.
//   - env and downwardAPI fieldRef: apiVersion v1.
//   - volumes: a volume without a source is an emptyDir (medium "", node
//     disk); hostPath type "" (no check); defaultMode 0644 for configMap,
//     projected and downwardAPI volumes (secret volumes: see defaultVolume).
//
// Secret: type Opaque; stringData is merged into data (stringData wins) and
// cleared, as the API server's conversion does, so the stored object only has
// data.
//
// Namespace: the label kubernetes.io/metadata.name set to the name, and
// status.phase Active. metadata.namespace is cleared (it is meaningless on a
// cluster-scoped object and the API server drops it).
//
// Manifests (Decode and Read, not DecodeStored) also lose what the API server
// discards or sets itself when it creates an object, so that the output of
// kubectl get -o yaml can be applied without carrying stale state along:
// metadata.uid, resourceVersion, generation, creationTimestamp,
// deletionTimestamp, deletionGracePeriodSeconds, selfLink and managedFields,
// and a Pod's status.

const (
	defaultTerminationGracePeriodSeconds = 30
	defaultSchedulerName                 = "default-scheduler"
	defaultTerminationMessagePath        = "/dev/termination-log"
	defaultFileMode                      = 0o644
	namespaceNameLabel                   = "kubernetes.io/metadata.name"
)

func defaultPod(pod *corev1.Pod) { defaultPodSpec(&pod.Spec) }

func defaultPodSpec(spec *corev1.PodSpec) {
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = ptr(int64(defaultTerminationGracePeriodSeconds))
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = defaultSchedulerName
	}
	if spec.EnableServiceLinks == nil {
		spec.EnableServiceLinks = ptr(corev1.DefaultEnableServiceLinks)
	}
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i], spec.HostNetwork)
	}
	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i], spec.HostNetwork)
	}
	for i := range spec.Volumes {
		defaultVolume(&spec.Volumes[i])
	}
}

func defaultContainer(c *corev1.Container, hostNetwork bool) {
	if c.ImagePullPolicy == "" {
		if imageTag(c.Image) == "latest" {
			c.ImagePullPolicy = corev1.PullAlways
		} else {
			c.ImagePullPolicy = corev1.PullIfNotPresent
		}
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = defaultTerminationMessagePath
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		p := &c.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if hostNetwork && p.HostPort == 0 {
			p.HostPort = p.ContainerPort
		}
	}
	if len(c.Resources.Limits) > 0 {
		if c.Resources.Requests == nil {
			c.Resources.Requests = make(corev1.ResourceList)
		}
		for name, limit := range c.Resources.Limits {
			if _, ok := c.Resources.Requests[name]; !ok {
				c.Resources.Requests[name] = limit.DeepCopy()
			}
		}
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		defaultProbe(p)
	}
	if c.Lifecycle != nil {
		for _, h := range []*corev1.LifecycleHandler{c.Lifecycle.PostStart, c.Lifecycle.PreStop} {
			if h != nil {
				defaultHTTPGet(h.HTTPGet)
			}
		}
	}
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil && vf.FieldRef != nil && vf.FieldRef.APIVersion == "" {
			vf.FieldRef.APIVersion = "v1"
		}
	}
}

func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	defaultHTTPGet(p.HTTPGet)
}

func defaultHTTPGet(h *corev1.HTTPGetAction) {
	if h == nil {
		return
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = corev1.URISchemeHTTP
	}
}

func defaultVolume(v *corev1.Volume) {
	if len(setFields(&v.VolumeSource)) == 0 {
		v.VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	}
	src := &v.VolumeSource
	if src.HostPath != nil && src.HostPath.Type == nil {
		src.HostPath.Type = ptr(corev1.HostPathUnset)
	}
	if src.ConfigMap != nil && src.ConfigMap.DefaultMode == nil {
		src.ConfigMap.DefaultMode = ptr(int32(defaultFileMode))
	}
	// Secret volumes keep defaultMode unset: clusterctl writes secret files
	// 0600 unless the manifest asks for a mode (Kubernetes would use 0644).
	if src.DownwardAPI != nil && src.DownwardAPI.DefaultMode == nil {
		src.DownwardAPI.DefaultMode = ptr(int32(defaultFileMode))
	}
	if src.Projected == nil {
		return
	}
	if src.Projected.DefaultMode == nil {
		src.Projected.DefaultMode = ptr(int32(defaultFileMode))
	}
	for _, s := range src.Projected.Sources {
		if s.DownwardAPI == nil {
			continue
		}
		for _, item := range s.DownwardAPI.Items {
			if item.FieldRef != nil && item.FieldRef.APIVersion == "" {
				item.FieldRef.APIVersion = "v1"
			}
		}
	}
}

// imageTag returns an image reference's tag the way the API server's
// defaulting sees it: "latest" when there is neither a tag nor a digest, ""
// when there is only a digest.
func imageTag(image string) string {
	name, _, hasDigest := strings.Cut(image, "@")
	tag := ""
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		tag = name[i+1:]
	}
	if tag == "" && !hasDigest {
		return "latest"
	}
	return tag
}

// defaultSecret sets the type and merges stringData into data.
func defaultSecret(s *corev1.Secret) {
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

func defaultNamespace(ns *corev1.Namespace) {
	ns.Namespace = ""
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = make(map[string]string)
		}
		ns.Labels[namespaceNameLabel] = ns.Name
	}
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

// clearSystemFields drops what the API server sets itself on create.
func clearSystemFields(obj runtime.Object) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetUID("")
		m.SetResourceVersion("")
		m.SetGeneration(0)
		m.SetCreationTimestamp(metav1.Time{})
		m.SetDeletionTimestamp(nil)
		m.SetDeletionGracePeriodSeconds(nil)
		m.SetSelfLink("")
		m.SetManagedFields(nil)
	}
	// The API server ignores a manifest's status on create: every kind's
	// Status field is zeroed (a Namespace's phase is defaulted again).
	if v := reflect.ValueOf(obj); v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
		if st := v.Elem().FieldByName("Status"); st.IsValid() && st.CanSet() {
			st.Set(reflect.Zero(st.Type()))
		}
	}
}

func ptr[T any](v T) *T { return &v }
