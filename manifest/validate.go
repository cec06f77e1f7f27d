package manifest

import (
	"encoding/json"
	"fmt"
	"net/netip"
	pathpkg "path"
	"reflect"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Validation: a focused subset of the API server's validation
// (k8s.io/kubernetes/pkg/apis/core/validation), run after defaulting, so that
// bad input is caught on the workstation before anything reaches a host.
// Where clusterctl cannot do what a field asks (a volume type, a grpc
// probe, an env source), the field is rejected as "not supported yet" rather
// than silently ignored.
//
// Label keys and values use the non-deprecated forms of
// validation.IsQualifiedName and validation.IsValidLabelValue from
// k8s.io/apimachinery/pkg/api/validate/content.

const (
	maxAnnotationsBytes = 256 * 1024  // total size of all annotations
	maxDataBytes        = 1024 * 1024 // total size of a ConfigMap's or Secret's values
	maxFileMode         = 0o777
)

// defaultAndValidate defaults obj in place and reports what is wrong with it.
func (s *sink) defaultAndValidate(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		defaultPod(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validatePod(o)
	case *corev1.ConfigMap:
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateConfigMap(o)
	case *corev1.Secret:
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateSecret(o)
	case *corev1.Namespace:
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Label, false)
		defaultNamespace(o)
	case *corev1.Service:
		defaultService(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1035Label, true)
		s.validateService(o)
	case *corev1.Endpoints:
		defaultEndpoints(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateEndpoints(o)
	case *discoveryv1.EndpointSlice:
		defaultEndpointSlice(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateEndpointSlice(o)
	case *appsv1.Deployment:
		defaultDeployment(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateDeployment(o)
	case *appsv1.ReplicaSet:
		defaultReplicaSet(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateReplicaSet(o)
	case *corev1.ReplicationController:
		defaultReplicationController(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateReplicationController(o)
	case *appsv1.DaemonSet:
		defaultDaemonSet(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateDaemonSet(o)
	case *appsv1.StatefulSet:
		defaultStatefulSet(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Label, true)
		s.validateStatefulSet(o)
	case *batchv1.Job:
		defaultJobSpec(&o.Spec)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateJobSpec(&o.Spec, path{}.field("spec"))
	case *batchv1.CronJob:
		defaultCronJob(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateCronJob(o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		defaultHPA(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateHPA(o)
	case *corev1.PersistentVolumeClaim:
		defaultPVCSpec(&o.Spec)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.pvcSpec(path{}.field("spec"), &o.Spec)
	case *corev1.PersistentVolume:
		defaultPV(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, false)
		s.validatePV(o)
	case *storagev1.StorageClass:
		defaultStorageClass(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, false)
	case *corev1.ResourceQuota:
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateResourceQuota(o)
	case *corev1.LimitRange:
		defaultLimitRange(o)
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validateLimitRange(o)
	case *policyv1.PodDisruptionBudget:
		s.validateMeta(&o.ObjectMeta, validation.IsDNS1123Subdomain, true)
		s.validatePodDisruptionBudget(o)
	}
}

func (s *sink) validateMeta(m *metav1.ObjectMeta, isName func(string) []string, namespaced bool) {
	p := path{}.field("metadata")
	switch {
	case m.Name == "" && m.GenerateName != "":
		s.at(p.field("generateName"), "not supported: there is no API server to generate a name; set metadata.name instead")
	case m.Name == "":
		s.at(p.field("name"), "required")
	default:
		if errs := isName(m.Name); len(errs) > 0 {
			s.at(p.field("name"), "invalid name %q: %s", m.Name, msgs(errs))
		}
	}
	if namespaced && m.Namespace != "" {
		if errs := validation.IsDNS1123Label(m.Namespace); len(errs) > 0 {
			s.at(p.field("namespace"), "invalid namespace %q: %s", m.Namespace, msgs(errs))
		}
	}
	for _, k := range sortedKeys(m.Labels) {
		lp := p.field("labels").key(k)
		if errs := content.IsLabelKey(k); len(errs) > 0 {
			s.at(lp, "invalid label key %q: %s", k, msgs(errs))
		}
		if errs := content.IsLabelValue(m.Labels[k]); len(errs) > 0 {
			s.at(lp, "invalid label value %q: %s", m.Labels[k], msgs(errs))
		}
	}
	total := 0
	for _, k := range sortedKeys(m.Annotations) {
		total += len(k) + len(m.Annotations[k])
		if errs := content.IsLabelKey(strings.ToLower(k)); len(errs) > 0 {
			s.at(p.field("annotations").key(k), "invalid annotation key %q: %s", k, msgs(errs))
		}
	}
	if total > maxAnnotationsBytes {
		s.at(p.field("annotations"), "must have at most %d bytes in total, have %d", maxAnnotationsBytes, total)
	}
}

// --- Pod ---

func (s *sink) validatePod(pod *corev1.Pod) {
	s.validatePodSpec(&pod.Spec, path{}.field("spec"))
}

// validatePodSpec checks a pod spec found at sp (a Pod's spec or a
// workload's pod template spec).
func (s *sink) validatePodSpec(spec *corev1.PodSpec, sp path) {
	if len(spec.Containers) == 0 {
		s.at(sp.field("containers"), "at least one container is required")
	}
	if len(spec.EphemeralContainers) > 0 {
		s.at(sp.field("ephemeralContainers"), "may not be set when creating a pod")
	}
	s.oneOf(sp.field("restartPolicy"), "restart policy", string(spec.RestartPolicy), "Always", "OnFailure", "Never")
	s.oneOf(sp.field("dnsPolicy"), "DNS policy", string(spec.DNSPolicy), "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
	if spec.DNSPolicy == corev1.DNSNone && (spec.DNSConfig == nil || len(spec.DNSConfig.Nameservers) == 0) {
		s.atLine(s.line(sp.field("dnsPolicy")), sp.field("dnsConfig").field("nameservers"), "at least one nameserver is required when dnsPolicy is None")
	}
	if g := spec.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		s.at(sp.field("terminationGracePeriodSeconds"), "must be greater than or equal to 0")
	}
	if d := spec.ActiveDeadlineSeconds; d != nil && *d < 1 {
		s.at(sp.field("activeDeadlineSeconds"), "must be greater than or equal to 1")
	}
	for _, f := range []struct{ name, value string }{{"hostname", spec.Hostname}, {"subdomain", spec.Subdomain}} {
		if f.value == "" {
			continue
		}
		if errs := validation.IsDNS1123Label(f.value); len(errs) > 0 {
			s.at(sp.field(f.name), "invalid %s %q: %s", f.name, f.value, msgs(errs))
		}
	}
	if spec.NodeName != "" {
		if errs := validation.IsDNS1123Subdomain(spec.NodeName); len(errs) > 0 {
			s.at(sp.field("nodeName"), "invalid node name %q: %s", spec.NodeName, msgs(errs))
		}
	}
	volumes := s.validateVolumes(spec.Volumes, sp.field("volumes"))
	names := make(map[string]path)
	hostPorts := make(map[string]path)
	for i := range spec.InitContainers {
		s.validateContainer(&spec.InitContainers[i], sp.field("initContainers").index(i), true, volumes, names, hostPorts)
	}
	for i := range spec.Containers {
		s.validateContainer(&spec.Containers[i], sp.field("containers").index(i), false, volumes, names, hostPorts)
	}
}

// supportedVolumeTypes are the volume sources clusterctl can provide.
func supportedVolumeTypes() []string {
	return []string{"emptyDir", "hostPath", "configMap", "secret", "projected", "persistentVolumeClaim"}
}

// validateVolumes checks the pod's volumes and returns their names.
func (s *sink) validateVolumes(vols []corev1.Volume, base path) map[string]bool {
	names := make(map[string]bool)
	first := make(map[string]int)
	for i := range vols {
		v := &vols[i]
		vp := base.index(i)
		switch errs := validation.IsDNS1123Label(v.Name); {
		case v.Name == "":
			s.at(vp.field("name"), "required")
		case len(errs) > 0:
			s.at(vp.field("name"), "invalid volume name %q: %s", v.Name, msgs(errs))
		}
		if j, dup := first[v.Name]; dup && v.Name != "" {
			s.at(vp.field("name"), "duplicate volume name %q (also spec.volumes[%d])", v.Name, j)
		} else {
			first[v.Name] = i
		}
		names[v.Name] = true
		sources := setFields(&v.VolumeSource)
		if len(sources) > 1 {
			s.at(vp, "may set only one volume source, found %s", joinAnd(sources))
		}
		for _, src := range sources {
			if !slices.Contains(supportedVolumeTypes(), src) {
				s.at(vp.field(src), "volume type %s is not supported yet (supported: %s)", src, strings.Join(supportedVolumeTypes(), ", "))
			}
		}
		src := &v.VolumeSource
		if e := src.EmptyDir; e != nil {
			if e.Medium != corev1.StorageMediumDefault && e.Medium != corev1.StorageMediumMemory {
				s.at(vp.field("emptyDir").field("medium"), `unsupported medium %q (use "" for the node's disk or Memory for tmpfs)`, e.Medium)
			}
			if e.SizeLimit != nil && e.SizeLimit.Sign() < 0 {
				s.at(vp.field("emptyDir").field("sizeLimit"), "must be greater than or equal to 0")
			}
		}
		if h := src.HostPath; h != nil {
			hp := vp.field("hostPath")
			switch {
			case h.Path == "":
				s.at(hp.field("path"), "required")
			case !strings.HasPrefix(h.Path, "/"):
				s.at(hp.field("path"), "must be an absolute path, got %q", h.Path)
			}
			if h.Type != nil {
				s.oneOf(hp.field("type"), "hostPath type", string(*h.Type), "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice")
			}
		}
		if c := src.ConfigMap; c != nil {
			cp := vp.field("configMap")
			s.objectName(cp.field("name"), "ConfigMap", c.Name)
			s.keyToPaths(cp.field("items"), c.Items)
			s.fileMode(cp.field("defaultMode"), c.DefaultMode)
		}
		if c := src.Secret; c != nil {
			cp := vp.field("secret")
			s.objectName(cp.field("secretName"), "Secret", c.SecretName)
			s.keyToPaths(cp.field("items"), c.Items)
			s.fileMode(cp.field("defaultMode"), c.DefaultMode)
		}
		if pr := src.Projected; pr != nil {
			s.projected(vp.field("projected"), pr)
		}
	}
	return names
}

func (s *sink) projected(p path, pr *corev1.ProjectedVolumeSource) {
	s.fileMode(p.field("defaultMode"), pr.DefaultMode)
	supported := []string{"configMap", "secret", "downwardAPI"}
	for i := range pr.Sources {
		src := &pr.Sources[i]
		sp := p.field("sources").index(i)
		set := setFields(src)
		switch {
		case len(set) == 0:
			s.at(sp, "must set one of configMap, secret or downwardAPI")
		case len(set) > 1:
			s.at(sp, "may set only one of configMap, secret or downwardAPI, found %s", joinAnd(set))
		}
		for _, f := range set {
			if !slices.Contains(supported, f) {
				s.at(sp.field(f), "projected %s is not supported yet (supported: configMap, secret, downwardAPI)", f)
			}
		}
		if c := src.ConfigMap; c != nil {
			s.objectName(sp.field("configMap").field("name"), "ConfigMap", c.Name)
			s.keyToPaths(sp.field("configMap").field("items"), c.Items)
		}
		if c := src.Secret; c != nil {
			s.objectName(sp.field("secret").field("name"), "Secret", c.Name)
			s.keyToPaths(sp.field("secret").field("items"), c.Items)
		}
		if d := src.DownwardAPI; d != nil {
			for j := range d.Items {
				s.downwardAPIFile(sp.field("downwardAPI").field("items").index(j), &d.Items[j])
			}
		}
	}
}

func (s *sink) downwardAPIFile(p path, f *corev1.DownwardAPIVolumeFile) {
	s.localPath(p.field("path"), f.Path)
	s.fileMode(p.field("mode"), f.Mode)
	switch {
	case f.ResourceFieldRef != nil:
		s.at(p.field("resourceFieldRef"), "not supported yet (use fieldRef)")
	case f.FieldRef == nil:
		s.at(p.field("fieldRef"), "required")
	default:
		fp := f.FieldRef.FieldPath
		ok := slices.Contains([]string{"metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations"}, fp)
		for _, prefix := range []string{"metadata.labels['", "metadata.annotations['"} {
			if k, found := strings.CutPrefix(fp, prefix); found && strings.HasSuffix(k, "']") {
				ok = true
			}
		}
		if !ok {
			s.at(p.field("fieldRef").field("fieldPath"), "unsupported fieldPath %q (supported: metadata.name, metadata.namespace, metadata.uid, metadata.labels, metadata.annotations, metadata.labels['KEY'], metadata.annotations['KEY'])", fp)
		}
		if v := f.FieldRef.APIVersion; v != "v1" {
			s.at(p.field("fieldRef").field("apiVersion"), "unsupported apiVersion %q (only v1)", v)
		}
	}
}

// objectName checks a reference to a ConfigMap or Secret by name.
func (s *sink) objectName(p path, kind, name string) {
	if name == "" {
		s.at(p, "required")
		return
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		s.at(p, "invalid %s name %q: %s", kind, name, msgs(errs))
	}
}

func (s *sink) keyToPaths(p path, items []corev1.KeyToPath) {
	for i, item := range items {
		ip := p.index(i)
		s.dataKey(ip.field("key"), item.Key)
		s.localPath(ip.field("path"), item.Path)
		s.fileMode(ip.field("mode"), item.Mode)
	}
}

// dataKey checks a ConfigMap or Secret key.
func (s *sink) dataKey(p path, key string) {
	if key == "" {
		s.at(p, "required")
		return
	}
	if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
		s.at(p, "invalid key %q: %s", key, msgs(errs))
	}
}

// localPath checks a relative file path inside a volume.
func (s *sink) localPath(p path, file string) {
	switch {
	case file == "":
		s.at(p, "required")
	case strings.HasPrefix(file, "/"):
		s.at(p, "must be a relative path, got %q", file)
	case slices.Contains(strings.Split(file, "/"), ".."):
		s.at(p, "must not contain '..', got %q", file)
	}
}

// fileMode checks a file permission such as defaultMode: 0644.
func (s *sink) fileMode(p path, mode *int32) {
	if mode == nil || *mode >= 0 && *mode <= maxFileMode {
		return
	}
	msg := fmt.Sprintf("invalid file mode %d (octal %#o): must be between 0 and 0777 (octal)", *mode, *mode)
	if text := s.scalarAt(p); text != "" && text[0] != '0' && len(text) <= 4 && strings.Trim(text, "01234567") == "" {
		msg += fmt.Sprintf("; %s is a decimal number, write 0%s for octal", text, text)
	}
	s.at(p, "%s", msg)
}

func (s *sink) validateContainer(c *corev1.Container, p path, init bool, volumes map[string]bool, names, hostPorts map[string]path) {
	switch errs := validation.IsDNS1123Label(c.Name); {
	case c.Name == "":
		s.at(p.field("name"), "required")
	case len(errs) > 0:
		s.at(p.field("name"), "invalid container name %q: %s", c.Name, msgs(errs))
	}
	if other, dup := names[c.Name]; dup && c.Name != "" {
		s.at(p.field("name"), "duplicate container name %q (also %s)", c.Name, other)
	} else {
		names[c.Name] = p
	}
	switch {
	case c.Image == "":
		s.at(p.field("image"), "required")
	case strings.TrimSpace(c.Image) != c.Image:
		s.at(p.field("image"), "must not have leading or trailing whitespace")
	}
	s.oneOf(p.field("imagePullPolicy"), "image pull policy", string(c.ImagePullPolicy), "Always", "IfNotPresent", "Never")
	s.oneOf(p.field("terminationMessagePolicy"), "termination message policy", string(c.TerminationMessagePolicy), "File", "FallbackToLogsOnError")
	sidecar := false
	switch {
	case init && c.RestartPolicy != nil:
		sidecar = *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		if !sidecar {
			s.at(p.field("restartPolicy"), "unsupported value %q: init containers allow only Always (a sidecar)", *c.RestartPolicy)
		}
	case !init && c.RestartPolicy != nil:
		s.at(p.field("restartPolicy"), "not supported yet on regular containers (set spec.restartPolicy)")
	}
	if !init && len(c.RestartPolicyRules) > 0 {
		s.at(p.field("restartPolicyRules"), "not supported yet")
	}
	if len(c.VolumeDevices) > 0 {
		s.at(p.field("volumeDevices"), "not supported yet")
	}
	portNames := s.ports(c, p, hostPorts)
	s.env(c, p)
	s.resources(c, p)
	s.volumeMounts(c, p, volumes)
	probes := []struct {
		name  string
		probe *corev1.Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}}
	for _, pr := range probes {
		if pr.probe == nil {
			continue
		}
		if init && !sidecar {
			s.at(p.field(pr.name), "not allowed on init containers unless restartPolicy is Always (a sidecar)")
			continue
		}
		s.probe(p.field(pr.name), pr.name, pr.probe, portNames)
	}
	if c.Lifecycle != nil {
		if init && !sidecar {
			s.at(p.field("lifecycle"), "not allowed on init containers unless restartPolicy is Always (a sidecar)")
		} else {
			for _, h := range []struct {
				name    string
				handler *corev1.LifecycleHandler
			}{{"postStart", c.Lifecycle.PostStart}, {"preStop", c.Lifecycle.PreStop}} {
				if h.handler != nil {
					s.lifecycleHandler(p.field("lifecycle").field(h.name), h.handler, portNames)
				}
			}
		}
	}
}

// ports checks a container's ports and returns their names.
func (s *sink) ports(c *corev1.Container, p path, hostPorts map[string]path) map[string]bool {
	names := make(map[string]bool)
	first := make(map[string]int)
	for i, port := range c.Ports {
		pp := p.field("ports").index(i)
		switch {
		case port.ContainerPort == 0:
			s.at(pp.field("containerPort"), "required")
		case port.ContainerPort < 1 || port.ContainerPort > 65535:
			s.at(pp.field("containerPort"), "must be between 1 and 65535, got %d", port.ContainerPort)
		}
		if port.HostPort < 0 || port.HostPort > 65535 {
			s.at(pp.field("hostPort"), "must be between 1 and 65535, got %d", port.HostPort)
		}
		s.oneOf(pp.field("protocol"), "protocol", string(port.Protocol), "TCP", "UDP", "SCTP")
		if port.HostIP != "" {
			if _, err := netip.ParseAddr(port.HostIP); err != nil {
				s.at(pp.field("hostIP"), "invalid IP address %q", port.HostIP)
			}
		}
		if port.Name != "" {
			if errs := validation.IsValidPortName(port.Name); len(errs) > 0 {
				s.at(pp.field("name"), "invalid port name %q: %s", port.Name, msgs(errs))
			}
			if j, dup := first[port.Name]; dup {
				s.at(pp.field("name"), "duplicate port name %q (also ports[%d])", port.Name, j)
			} else {
				first[port.Name] = i
			}
			names[port.Name] = true
		}
		if port.HostPort > 0 {
			k := fmt.Sprintf("%s/%d/%s", port.HostIP, port.HostPort, port.Protocol)
			if other, dup := hostPorts[k]; dup {
				s.at(pp.field("hostPort"), "host port %d/%s is already used by %s", port.HostPort, port.Protocol, other)
			} else {
				hostPorts[k] = pp
			}
		}
	}
	return names
}

// envFieldPaths are the fieldRef paths clusterctl can fill in.
func envFieldPaths() []string {
	return []string{"metadata.name", "metadata.namespace", "metadata.uid", "status.podIP", "spec.nodeName", "status.hostIP", "spec.serviceAccountName"}
}

func (s *sink) env(c *corev1.Container, p path) {
	for i := range c.Env {
		e := &c.Env[i]
		ep := p.field("env").index(i)
		if e.Name == "" {
			s.at(ep.field("name"), "required")
		} else if errs := validation.IsRelaxedEnvVarName(e.Name); len(errs) > 0 {
			s.at(ep.field("name"), "invalid environment variable name %q: %s", e.Name, msgs(errs))
		}
		vf := e.ValueFrom
		if vf == nil {
			continue
		}
		vp := ep.field("valueFrom")
		if e.Value != "" {
			s.at(ep.field("value"), "may not be set together with valueFrom")
		}
		set := setFields(vf)
		switch {
		case len(set) == 0:
			s.at(vp, "must set one of fieldRef, configMapKeyRef or secretKeyRef")
		case len(set) > 1:
			s.at(vp, "may set only one of fieldRef, configMapKeyRef or secretKeyRef, found %s", joinAnd(set))
		}
		for _, f := range set {
			if f != "fieldRef" && f != "configMapKeyRef" && f != "secretKeyRef" {
				s.at(vp.field(f), "not supported yet (supported: fieldRef, configMapKeyRef, secretKeyRef)")
			}
		}
		if fr := vf.FieldRef; fr != nil {
			fp := vp.field("fieldRef")
			if fr.APIVersion != "v1" {
				s.at(fp.field("apiVersion"), "unsupported apiVersion %q (only v1)", fr.APIVersion)
			}
			switch {
			case fr.FieldPath == "":
				s.at(fp.field("fieldPath"), "required")
			case slices.Contains(envFieldPaths(), fr.FieldPath):
			case isKubeEnvFieldPath(fr.FieldPath):
				s.at(fp.field("fieldPath"), "%q is not supported yet (supported: %s)", fr.FieldPath, strings.Join(envFieldPaths(), ", "))
			default:
				s.at(fp.field("fieldPath"), "unsupported fieldPath %q (supported: %s)", fr.FieldPath, strings.Join(envFieldPaths(), ", "))
			}
		}
		if r := vf.ConfigMapKeyRef; r != nil {
			s.objectName(vp.field("configMapKeyRef").field("name"), "ConfigMap", r.Name)
			s.dataKey(vp.field("configMapKeyRef").field("key"), r.Key)
		}
		if r := vf.SecretKeyRef; r != nil {
			s.objectName(vp.field("secretKeyRef").field("name"), "Secret", r.Name)
			s.dataKey(vp.field("secretKeyRef").field("key"), r.Key)
		}
	}
	for i := range c.EnvFrom {
		ef := &c.EnvFrom[i]
		ep := p.field("envFrom").index(i)
		set := setFields(ef)
		switch {
		case len(set) == 0:
			s.at(ep, "must set one of configMapRef or secretRef")
		case len(set) > 1:
			s.at(ep, "may set only one of configMapRef or secretRef, found %s", joinAnd(set))
		}
		if r := ef.ConfigMapRef; r != nil {
			s.objectName(ep.field("configMapRef").field("name"), "ConfigMap", r.Name)
		}
		if r := ef.SecretRef; r != nil {
			s.objectName(ep.field("secretRef").field("name"), "Secret", r.Name)
		}
		if ef.Prefix != "" {
			if errs := validation.IsRelaxedEnvVarName(ef.Prefix); len(errs) > 0 {
				s.at(ep.field("prefix"), "invalid prefix %q: %s", ef.Prefix, msgs(errs))
			}
		}
	}
}

// isKubeEnvFieldPath reports whether Kubernetes accepts an env fieldRef
// path that clusterctl does not support yet.
func isKubeEnvFieldPath(fp string) bool {
	switch fp {
	case "status.podIPs", "status.hostIPs":
		return true
	}
	for _, prefix := range []string{"metadata.labels['", "metadata.annotations['"} {
		if k, ok := strings.CutPrefix(fp, prefix); ok && strings.HasSuffix(k, "']") {
			return true
		}
	}
	return false
}

func (s *sink) resources(c *corev1.Container, p path) {
	rp := p.field("resources")
	for _, name := range sortedKeys(c.Resources.Limits) {
		s.resource(rp.field("limits").key(string(name)), string(name), c.Resources.Limits[name])
	}
	for _, name := range sortedKeys(c.Resources.Requests) {
		req := c.Resources.Requests[name]
		limit, hasLimit := c.Resources.Limits[name]
		if hasLimit && req.Cmp(limit) == 0 {
			continue // copied from the limit by defaulting, or the same: checked there
		}
		s.resource(rp.field("requests").key(string(name)), string(name), req)
	}
	for _, name := range sortedKeys(c.Resources.Requests) {
		req := c.Resources.Requests[name]
		rq, lp := rp.field("requests").key(string(name)), rp.field("limits").key(string(name))
		if limit, ok := c.Resources.Limits[name]; ok && req.Cmp(limit) > 0 && !s.suppressed(rq) && !s.suppressed(lp) {
			s.at(rq, "request %s must be less than or equal to the %s limit %s", req.String(), name, limit.String())
		}
	}
	if len(c.Resources.Claims) > 0 {
		s.at(rp.field("claims"), "not supported yet")
	}
}

// resource checks one entry of requests or limits.
func (s *sink) resource(p path, name string, q resource.Quantity) {
	if msg := resourceNameProblem(name); msg != "" {
		s.at(p, "%s", msg)
	} else if q.Sign() < 0 {
		s.at(p, "must be greater than or equal to 0, got %s", q.String())
	}
}

// resourceNameProblem explains what is wrong with a resource name, or
// returns "".
func resourceNameProblem(name string) string {
	standard := []string{"cpu", "memory", "ephemeral-storage"}
	switch {
	case slices.Contains(standard, name), strings.HasPrefix(name, "hugepages-"):
		return ""
	case strings.Contains(name, "/") && len(content.IsLabelKey(name)) == 0 && !strings.Contains(name, "kubernetes.io/"):
		return "" // an extended resource, e.g. example.com/gpu
	}
	msg := fmt.Sprintf("unsupported resource %q (supported: cpu, memory, ephemeral-storage, hugepages-SIZE, or an extended resource like example.com/gpu)", name)
	if best := closest(name, standard); best != "" {
		msg += fmt.Sprintf("; did you mean %s?", best)
	}
	return msg
}

func (s *sink) volumeMounts(c *corev1.Container, p path, volumes map[string]bool) {
	mountPaths := make(map[string]int)
	for i, m := range c.VolumeMounts {
		mp := p.field("volumeMounts").index(i)
		switch {
		case m.Name == "":
			s.at(mp.field("name"), "required")
		case !volumes[m.Name]:
			msg := fmt.Sprintf("volume %q not found in spec.volumes", m.Name)
			if best := closest(m.Name, sortedKeys(volumes)); best != "" {
				msg += fmt.Sprintf("; did you mean %q?", best)
			}
			s.at(mp.field("name"), "%s", msg)
		}
		if m.MountPath == "" {
			s.at(mp.field("mountPath"), "required")
		} else if j, dup := mountPaths[pathpkg.Clean(m.MountPath)]; dup {
			s.at(mp.field("mountPath"), "duplicate mount path %q (also volumeMounts[%d])", m.MountPath, j)
		} else {
			mountPaths[pathpkg.Clean(m.MountPath)] = i
		}
		if m.SubPath != "" {
			switch {
			case strings.HasPrefix(m.SubPath, "/"):
				s.at(mp.field("subPath"), "must be a relative path, got %q", m.SubPath)
			case slices.Contains(strings.Split(m.SubPath, "/"), ".."):
				s.at(mp.field("subPath"), "must not contain '..', got %q", m.SubPath)
			}
		}
		if m.SubPathExpr != "" {
			s.at(mp.field("subPathExpr"), "not supported yet")
		}
	}
}

func (s *sink) probe(p path, kind string, pr *corev1.Probe, portNames map[string]bool) {
	set := setFields(&pr.ProbeHandler)
	switch {
	case len(set) == 0:
		s.at(p, "must set one of exec, httpGet or tcpSocket")
	case len(set) > 1:
		s.at(p, "may set only one of exec, httpGet or tcpSocket, found %s", joinAnd(set))
	}
	if pr.GRPC != nil {
		s.at(p.field("grpc"), "grpc probes are not supported yet (use exec, httpGet or tcpSocket)")
	}
	s.handler(p, pr.Exec, pr.HTTPGet, pr.TCPSocket, portNames)
	for _, f := range []struct {
		name  string
		value int32
		min   int32
	}{
		{"initialDelaySeconds", pr.InitialDelaySeconds, 0},
		{"timeoutSeconds", pr.TimeoutSeconds, 1},
		{"periodSeconds", pr.PeriodSeconds, 1},
		{"successThreshold", pr.SuccessThreshold, 1},
		{"failureThreshold", pr.FailureThreshold, 1},
	} {
		if f.value < f.min {
			s.at(p.field(f.name), "must be greater than or equal to %d, got %d", f.min, f.value)
		}
	}
	if kind != "readinessProbe" && pr.SuccessThreshold != 1 && pr.SuccessThreshold >= 1 {
		s.at(p.field("successThreshold"), "must be 1 for a %s, got %d", kind, pr.SuccessThreshold)
	}
	if g := pr.TerminationGracePeriodSeconds; g != nil {
		switch {
		case kind == "readinessProbe":
			s.at(p.field("terminationGracePeriodSeconds"), "not allowed on a readinessProbe")
		case *g < 1:
			s.at(p.field("terminationGracePeriodSeconds"), "must be greater than or equal to 1, got %d", *g)
		}
	}
}

func (s *sink) lifecycleHandler(p path, h *corev1.LifecycleHandler, portNames map[string]bool) {
	set := setFields(h)
	switch {
	case len(set) == 0:
		s.at(p, "must set one of exec, httpGet, tcpSocket or sleep")
	case len(set) > 1:
		s.at(p, "may set only one of exec, httpGet, tcpSocket or sleep, found %s", joinAnd(set))
	}
	if h.Sleep != nil && h.Sleep.Seconds < 0 {
		s.at(p.field("sleep").field("seconds"), "must be greater than or equal to 0")
	}
	s.handler(p, h.Exec, h.HTTPGet, h.TCPSocket, portNames)
}

// handler checks the actions shared by probes and lifecycle hooks.
func (s *sink) handler(p path, exec *corev1.ExecAction, get *corev1.HTTPGetAction, tcp *corev1.TCPSocketAction, portNames map[string]bool) {
	if exec != nil && len(exec.Command) == 0 {
		s.at(p.field("exec").field("command"), "required")
	}
	if get != nil {
		gp := p.field("httpGet")
		s.handlerPort(gp.field("port"), get.Port, portNames)
		s.oneOf(gp.field("scheme"), "scheme", string(get.Scheme), "HTTP", "HTTPS")
		for i, h := range get.HTTPHeaders {
			if errs := validation.IsHTTPHeaderName(h.Name); len(errs) > 0 {
				s.at(gp.field("httpHeaders").index(i).field("name"), "invalid header name %q: %s", h.Name, msgs(errs))
			}
		}
	}
	if tcp != nil {
		s.handlerPort(p.field("tcpSocket").field("port"), tcp.Port, portNames)
	}
}

// handlerPort checks a probe's port: a number, or the name of one of the
// container's ports (which clusterctl resolves before the pod reaches a node).
func (s *sink) handlerPort(p path, port intstr.IntOrString, portNames map[string]bool) {
	if port.Type == intstr.Int {
		switch {
		case port.IntVal == 0:
			s.at(p, "required")
		case port.IntVal < 1 || port.IntVal > 65535:
			s.at(p, "must be between 1 and 65535, got %d", port.IntVal)
		}
		return
	}
	if errs := validation.IsValidPortName(port.StrVal); len(errs) > 0 {
		s.at(p, "invalid port name %q: %s", port.StrVal, msgs(errs))
		return
	}
	if !portNames[port.StrVal] {
		s.at(p, "port %q is not the name of one of this container's ports", port.StrVal)
	}
}

// --- ConfigMap and Secret ---

func (s *sink) validateConfigMap(cm *corev1.ConfigMap) {
	total := 0
	for _, k := range sortedKeys(cm.Data) {
		s.dataKey(path{}.field("data").key(k), k)
		total += len(cm.Data[k])
	}
	for _, k := range sortedKeys(cm.BinaryData) {
		kp := path{}.field("binaryData").key(k)
		s.dataKey(kp, k)
		if _, dup := cm.Data[k]; dup {
			s.at(kp, "duplicate key %q: also set in data", k)
		}
		total += len(cm.BinaryData[k])
	}
	if total > maxDataBytes {
		s.atLine(s.objectLine(), path{}.field("data"), "data and binaryData must have at most %d bytes in total, have %d", maxDataBytes, total)
	}
}

// secretTypes are the Secret types Kubernetes defines and clusterctl
// accepts, with the keys each requires (any one of them, for basic-auth).
func secretTypes() map[corev1.SecretType][]string {
	return map[corev1.SecretType][]string{
		corev1.SecretTypeOpaque:           nil,
		corev1.SecretTypeDockercfg:        {corev1.DockerConfigKey},
		corev1.SecretTypeDockerConfigJson: {corev1.DockerConfigJsonKey},
		corev1.SecretTypeBasicAuth:        {corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey},
		corev1.SecretTypeSSHAuth:          {corev1.SSHAuthPrivateKey},
		corev1.SecretTypeTLS:              {corev1.TLSCertKey, corev1.TLSPrivateKeyKey},
		corev1.SecretTypeBootstrapToken:   nil,
	}
}

func (s *sink) validateSecret(sec *corev1.Secret) {
	// Keys are checked where they are written, before stringData is merged.
	for _, k := range sortedKeys(sec.Data) {
		s.dataKey(path{}.field("data").key(k), k)
	}
	for _, k := range sortedKeys(sec.StringData) {
		s.dataKey(path{}.field("stringData").key(k), k)
	}
	fromString := make(map[string]bool, len(sec.StringData))
	for k := range sec.StringData {
		fromString[k] = true
	}
	keyPath := func(k string) path {
		if fromString[k] {
			return path{}.field("stringData").key(k)
		}
		return path{}.field("data").key(k)
	}
	defaultSecret(sec)

	tp := path{}.field("type")
	types := secretTypes()
	required, known := types[sec.Type]
	switch {
	case sec.Type == corev1.SecretTypeServiceAccountToken:
		s.at(tp, "%s is not supported yet: there is no service account token controller", sec.Type)
	case !known && !isCustomSecretType(string(sec.Type)):
		names := make([]string, 0, len(types))
		for t := range types {
			names = append(names, string(t))
		}
		slices.Sort(names)
		msg := fmt.Sprintf("unknown secret type %q (known: %s; a custom type needs a domain prefix, like example.com/my-type)", sec.Type, strings.Join(names, ", "))
		if best := closest(string(sec.Type), names); best != "" {
			msg += fmt.Sprintf("; did you mean %s?", best)
		}
		s.at(tp, "%s", msg)
	}
	switch sec.Type {
	case corev1.SecretTypeBasicAuth:
		_, user := sec.Data[corev1.BasicAuthUsernameKey]
		_, pass := sec.Data[corev1.BasicAuthPasswordKey]
		if !user && !pass {
			s.atLine(s.line(tp), path{}.field("data"), "%s needs %s or %s", sec.Type, corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey)
		}
	default:
		for _, k := range required {
			if _, ok := sec.Data[k]; !ok {
				s.atLine(s.line(tp), keyPath(k), "required for type %s", sec.Type)
			}
		}
	}
	for _, k := range []string{corev1.DockerConfigJsonKey, corev1.DockerConfigKey} {
		if v, ok := sec.Data[k]; ok && slices.Contains(required, k) && !json.Valid(v) {
			s.at(keyPath(k), "must be valid JSON (a Docker config)")
		}
	}
	total := 0
	for _, v := range sec.Data {
		total += len(v)
	}
	if total > maxDataBytes {
		s.atLine(s.objectLine(), path{}.field("data"), "must have at most %d bytes in total, have %d", maxDataBytes, total)
	}
}

// isCustomSecretType reports whether t is a user-defined type such as
// example.com/my-type (outside Kubernetes' own domains).
func isCustomSecretType(t string) bool {
	prefix, _, ok := strings.Cut(t, "/")
	if !ok || len(content.IsLabelKey(t)) > 0 {
		return false
	}
	for _, own := range []string{"kubernetes.io", "k8s.io"} {
		if prefix == own || strings.HasSuffix(prefix, "."+own) {
			return false
		}
	}
	return true
}

// --- helpers ---

// oneOf checks that value is one of allowed.
func (s *sink) oneOf(p path, what, value string, allowed ...string) {
	if slices.Contains(allowed, value) {
		return
	}
	quoted := make([]string, 0, len(allowed))
	for _, a := range allowed {
		if a == "" {
			a = `""`
		}
		quoted = append(quoted, a)
	}
	msg := fmt.Sprintf("unsupported %s %q (must be %s)", what, value, joinOr(quoted))
	if best := closest(value, allowed); best != "" {
		msg += fmt.Sprintf("; did you mean %s?", best)
	}
	s.at(p, "%s", msg)
}

// setFields returns the JSON names of the non-nil pointer fields of the
// struct v points to: the members set in a one-of such as VolumeSource.
func setFields(v any) []string {
	rv := reflect.ValueOf(v).Elem()
	var set []string
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
		set = append(set, name)
	}
	return set
}

// msgs joins the messages of an apimachinery validation function, tidying
// their example lists ("'a',  or 'b', regex" becomes "'a' or 'b', regex").
func msgs(errs []string) string {
	return strings.ReplaceAll(strings.Join(errs, "; "), "',  or '", "' or '")
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func joinAnd(items []string) string { return joinWith(items, "and") }
func joinOr(items []string) string  { return joinWith(items, "or") }

func joinWith(items []string, conj string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " " + conj + " " + items[len(items)-1]
}
