package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func ptr[T any](v T) *T { return &v }

func cmRef(name string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: name} }

// TestLowerPodErrors breaks a valid pod one way at a time and checks the
// exact errors: each names the pod and the field, and all are reported.
func TestLowerPodErrors(t *testing.T) {
	const p = "lower pod default/p: "
	tests := []struct {
		name   string
		mutate func(pod *corev1.Pod, in *LowerInput)
		want   []string
	}{
		{"missing metadata", func(pod *corev1.Pod, _ *LowerInput) { pod.Namespace, pod.UID = "", "" },
			[]string{"lower pod /p: metadata.namespace: required", "lower pod /p: metadata.uid: required"}},
		{"no containers", func(pod *corev1.Pod, _ *LowerInput) { pod.Spec.Containers = nil },
			[]string{p + "spec.containers: at least one container is required"}},
		{"container without name and image", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.Containers[0].Name, pod.Spec.Containers[0].Image = "", ""
		},
			[]string{p + "spec.containers[0].name: required", p + "spec.containers[0].image: required"}},
		{"duplicate container names (nodeapi validation)", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.Containers = append(pod.Spec.Containers, pod.Spec.Containers[0])
		}, []string{p + `pod default/p: container "c": duplicate name`}},
		{"mount of an undeclared volume (nodeapi validation)", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "nope", MountPath: "/x"}}
		}, []string{p + `pod default/p: container "c": volumeMount "nope" names no volume`}},

		// Pod-level fields that would change behaviour.
		{"host namespaces and friends", func(pod *corev1.Pod, _ *LowerInput) {
			s := &pod.Spec
			s.HostNetwork, s.HostPID, s.HostIPC = true, true, true
			s.ShareProcessNamespace, s.HostUsers = ptr(true), ptr(false)
			s.EphemeralContainers = []corev1.EphemeralContainer{{}}
			s.ActiveDeadlineSeconds = ptr(int64(10))
			s.HostAliases = []corev1.HostAlias{{IP: "1.2.3.4"}}
			s.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "x"}}
			s.RuntimeClassName = ptr("kata")
			s.SetHostnameAsFQDN = ptr(true)
			s.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu"}}
			s.Resources = &corev1.ResourceRequirements{}
			s.OS = &corev1.PodOS{Name: corev1.Windows}
		}, []string{
			p + "spec.hostNetwork: not supported: every pod gets its own network namespace",
			p + "spec.hostPID: not supported: every pod gets its own PID namespace",
			p + "spec.hostIPC: not supported: every pod gets its own IPC namespace",
			p + "spec.shareProcessNamespace: not supported",
			p + "spec.hostUsers: false (user namespaces) is not supported",
			p + "spec.ephemeralContainers: not supported",
			p + "spec.activeDeadlineSeconds: not supported",
			p + "spec.hostAliases: not supported",
			p + "spec.readinessGates: not supported",
			p + "spec.runtimeClassName: not supported",
			p + "spec.setHostnameAsFQDN: not supported",
			p + "spec.resourceClaims: not supported (dynamic resource allocation)",
			p + "spec.resources: pod-level resources are not supported; set them per container",
			p + `spec.os.name: "windows" is not supported: nodes run linux`,
		}},
		{"bound elsewhere", func(pod *corev1.Pod, _ *LowerInput) { pod.Spec.NodeName = "h9" },
			[]string{p + "spec.nodeName: the pod is bound to h9, not to h1 it is lowered for"}},
		{"restart policy, grace period, hostname", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.RestartPolicy = "Sometimes"
			pod.Spec.TerminationGracePeriodSeconds = ptr(int64(-1))
			pod.Spec.Hostname = "Not_A_Label"
		}, []string{
			p + `spec.hostname: "Not_A_Label" is not a valid DNS label: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
			p + `spec.restartPolicy: unsupported value "Sometimes"`,
			p + "spec.terminationGracePeriodSeconds: must not be negative (got -1)",
		}},
		{"dns", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.DNSPolicy = corev1.DNSNone
			pod.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "dns.example.com", "8.8.8.8", "9.9.9.9", "1.0.0.1"},
				Options: []corev1.PodDNSConfigOption{{Value: ptr("1")}}}
		}, []string{
			p + `spec.dnsConfig.nameservers[1]: "dns.example.com" is not an IP address`,
			p + "spec.dnsConfig.nameservers: at most 3 are allowed (got 4)",
			p + "spec.dnsConfig.options[0].name: required",
		}},
		{"dns None without config", func(pod *corev1.Pod, _ *LowerInput) { pod.Spec.DNSPolicy = corev1.DNSNone },
			[]string{p + "spec.dnsConfig: required when dnsPolicy is None"}},
		{"dnsConfig with ClusterFirst and no cluster DNS", func(pod *corev1.Pod, _ *LowerInput) { pod.Spec.DNSConfig = &corev1.PodDNSConfig{} },
			[]string{p + "spec.dnsConfig: not supported: the node has no cluster DNS address; use dnsPolicy None"}},
		{"dnsConfig with Default", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.DNSPolicy, pod.Spec.DNSConfig = corev1.DNSDefault, &corev1.PodDNSConfig{}
		}, []string{p + "spec.dnsConfig: not supported with dnsPolicy Default (it would be merged with the node's resolv.conf); use dnsPolicy None"}},
		{"unknown dns policy", func(pod *corev1.Pod, _ *LowerInput) { pod.Spec.DNSPolicy = "Sometimes" },
			[]string{p + `spec.dnsPolicy: unsupported value "Sometimes"`}},

		// Security contexts.
		{"pod security context", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.SecurityContext = &corev1.PodSecurityContext{
				SELinuxOptions:           &corev1.SELinuxOptions{Level: "s0"},
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				AppArmorProfile:          &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault},
				Sysctls:                  []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1024"}},
				SupplementalGroupsPolicy: ptr(corev1.SupplementalGroupsPolicyStrict),
				RunAsNonRoot:             ptr(true),
			}
		}, []string{
			p + "spec.securityContext.seLinuxOptions: not supported",
			p + "spec.securityContext.seccompProfile: type RuntimeDefault is not supported (only Unconfined)",
			p + "spec.securityContext.appArmorProfile: not supported",
			p + "spec.securityContext.sysctls: not supported",
			p + `spec.securityContext.supplementalGroupsPolicy: "Strict" is not supported (only Merge)`,
			p + "spec.containers[0].securityContext.runAsNonRoot: cannot be checked without runAsUser (the image's user is only known on the node); set runAsUser",
		}},
		{"container security context", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				AllowPrivilegeEscalation: ptr(false),
				ProcMount:                ptr(corev1.UnmaskedProcMount),
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost},
				RunAsNonRoot:             ptr(true),
				RunAsUser:                ptr(int64(0)),
			}
		}, []string{
			p + "spec.containers[0].securityContext.seccompProfile: type Localhost is not supported (only Unconfined)",
			p + "spec.containers[0].securityContext.capabilities: not supported",
			p + "spec.containers[0].securityContext.allowPrivilegeEscalation: false (no_new_privs) is not supported",
			p + `spec.containers[0].securityContext.procMount: "Unmasked" is not supported`,
			p + "spec.containers[0].securityContext.runAsNonRoot: is true but runAsUser is 0",
		}},

		// Containers.
		{"container fields", func(pod *corev1.Pod, _ *LowerInput) {
			c := &pod.Spec.Containers[0]
			c.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
			c.VolumeDevices = []corev1.VolumeDevice{{Name: "d", DevicePath: "/dev/x"}}
			c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
			c.StdinOnce = true
			c.ImagePullPolicy = "Sometimes"
			c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"x"}}},
				StopSignal: ptr(corev1.SIGINT)}
		}, []string{
			p + "spec.containers[0].restartPolicy: per-container restart policies (sidecar containers) are not supported",
			p + "spec.containers[0].volumeDevices: not supported",
			p + `spec.containers[0].terminationMessagePolicy: "FallbackToLogsOnError" is not supported (only File)`,
			p + "spec.containers[0].stdinOnce: not supported",
			p + "spec.containers[0].lifecycle.postStart: not supported",
			p + "spec.containers[0].lifecycle.stopSignal: not supported",
			p + `spec.containers[0].imagePullPolicy: unsupported value "Sometimes"`,
		}},
		{"init container with probes and hooks", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox",
				Lifecycle:     &corev1.Lifecycle{},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}}
		}, []string{
			p + "spec.initContainers[0].lifecycle: not allowed on init containers",
			p + "spec.initContainers[0].livenessProbe: not allowed on init containers",
		}},
		{"resources", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Limits: corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("1Gi"),
					"nvidia.com/gpu": resource.MustParse("1")},
				Requests: corev1.ResourceList{"cpu": resource.MustParse("2"), "memory": resource.MustParse("2Gi"),
					"ephemeral-storage": resource.MustParse("1Gi")},
				Claims: []corev1.ResourceClaim{{Name: "gpu"}},
			}
		}, []string{
			p + "spec.containers[0].resources.limits[nvidia.com/gpu]: not supported (only cpu and memory)",
			p + "spec.containers[0].resources.requests[ephemeral-storage]: not supported (only cpu and memory)",
			p + "spec.containers[0].resources.claims: not supported (dynamic resource allocation)",
			p + "spec.containers[0].resources.requests[cpu]: 2000m must not exceed the limit 1000m",
			p + "spec.containers[0].resources.requests[memory]: 2147483648 bytes must not exceed the limit 1073741824 bytes",
		}},
		{"negative resources", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"cpu": resource.MustParse("-1")}
		}, []string{p + "spec.containers[0].resources.requests[cpu]: must not be negative (got -1)"}},

		// Environment.
		{"missing configmaps and secrets", func(pod *corev1.Pod, in *LowerInput) {
			in.ConfigMaps["default/cm"] = &corev1.ConfigMap{Data: map[string]string{"a": "1"}}
			in.Secrets["default/s"] = &corev1.Secret{Data: map[string][]byte{"a": []byte("1")}}
			in.ConfigMaps["other/x"] = &corev1.ConfigMap{Data: map[string]string{"y": "1"}} // wrong namespace
			c := &pod.Spec.Containers[0]
			c.EnvFrom = []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: cmRef("x")}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: cmRef("x")}},
				{},
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: cmRef("cm")}, SecretRef: &corev1.SecretEnvSource{LocalObjectReference: cmRef("s")}},
			}
			c.Env = []corev1.EnvVar{
				{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: cmRef("x"), Key: "y"}}},
				{Name: "B", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: cmRef("cm"), Key: "y"}}},
				{Name: "C", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: cmRef("x"), Key: "y"}}},
				{Name: "D", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: cmRef("s"), Key: "y"}}},
				{Name: "E", ValueFrom: &corev1.EnvVarSource{}},
				{Name: "F", ValueFrom: &corev1.EnvVarSource{FileKeyRef: &corev1.FileKeySelector{VolumeName: "v", Path: "p", Key: "k"}}},
				{Name: "", Value: "x"},
			}
		}, []string{
			p + "spec.containers[0].envFrom[0].configMapRef: configmap default/x not found",
			p + "spec.containers[0].envFrom[1].secretRef: secret default/x not found",
			p + "spec.containers[0].envFrom[2]: one of configMapRef and secretRef is required",
			p + "spec.containers[0].envFrom[3]: exactly one of configMapRef and secretRef is allowed",
			p + "spec.containers[0].env[0].valueFrom.configMapKeyRef: configmap default/x not found",
			p + "spec.containers[0].env[1].valueFrom.configMapKeyRef: key y not in configmap default/cm",
			p + "spec.containers[0].env[2].valueFrom.secretKeyRef: secret default/x not found",
			p + "spec.containers[0].env[3].valueFrom.secretKeyRef: key y not in secret default/s",
			p + "spec.containers[0].env[4].valueFrom: exactly one source is required (got 0)",
			p + "spec.containers[0].env[5].valueFrom.fileKeyRef: not supported",
			p + "spec.containers[0].env[6].name: required",
		}},
		{"field references", func(pod *corev1.Pod, in *LowerInput) {
			in.NodeName, in.HostIP = "", ""
			ref := func(path string) *corev1.EnvVarSource {
				return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
			}
			pod.Spec.Containers[0].Env = []corev1.EnvVar{
				{Name: "A", ValueFrom: ref("spec.nodeName")},
				{Name: "B", ValueFrom: ref("status.hostIP")},
				{Name: "C", ValueFrom: ref("metadata.labels")}, // volumes only
				{Name: "D", ValueFrom: ref("spec.restartPolicy")},
				{Name: "E", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v2", FieldPath: "metadata.name"}}},
			}
		}, []string{
			p + "spec.containers[0].env[0].valueFrom.fieldRef: spec.nodeName is not known: the pod is not bound to a node",
			p + "spec.containers[0].env[1].valueFrom.fieldRef: status.hostIP is not known: the node has no address",
			p + `spec.containers[0].env[2].valueFrom.fieldRef.fieldPath: unsupported field "metadata.labels"`,
			p + `spec.containers[0].env[3].valueFrom.fieldRef.fieldPath: unsupported field "spec.restartPolicy"`,
			p + `spec.containers[0].env[4].valueFrom.fieldRef.apiVersion: unsupported "v2" (want v1)`,
		}},
		{"resource references", func(pod *corev1.Pod, in *LowerInput) {
			in.NodeAllocatable = nodeapi.Resources{}
			ref := func(container, res string) *corev1.EnvVarSource {
				return &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: container, Resource: res}}
			}
			pod.Spec.Containers[0].Env = []corev1.EnvVar{
				{Name: "A", ValueFrom: ref("", "limits.cpu")},
				{Name: "B", ValueFrom: ref("", "limits.memory")},
				{Name: "C", ValueFrom: ref("ghost", "limits.cpu")},
				{Name: "D", ValueFrom: ref("", "limits.ephemeral-storage")},
				{Name: "E", ValueFrom: ref("", "requests.cpu")}, // 0: fine
			}
		}, []string{
			p + "spec.containers[0].env[0].valueFrom.resourceFieldRef: limits.cpu of a container without a cpu limit needs the node's allocatable cpu, which is not known",
			p + "spec.containers[0].env[1].valueFrom.resourceFieldRef: limits.memory of a container without a memory limit needs the node's allocatable memory, which is not known",
			p + `spec.containers[0].env[2].valueFrom.resourceFieldRef.containerName: no container "ghost"`,
			p + `spec.containers[0].env[3].valueFrom.resourceFieldRef.resource: unsupported resource "limits.ephemeral-storage" (only cpu and memory)`,
		}},
		{"expanding the pod IP", func(pod *corev1.Pod, _ *LowerInput) {
			c := &pod.Spec.Containers[0]
			c.Env = []corev1.EnvVar{
				{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
				{Name: "ADDR", Value: "$(IP):8080"},
			}
			c.Args = []string{"--listen=$(IP)"}
			c.VolumeMounts = []corev1.VolumeMount{{Name: "v", MountPath: "/v", SubPathExpr: "$(IP)"}}
			pod.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, []string{
			p + "spec.containers[0].env[1].value: references $(IP), which is status.podIP: only the node knows the pod IP and expanding it there is not supported yet",
			p + "spec.containers[0].args[0]: references $(IP), which is status.podIP: only the node knows the pod IP and expanding it there is not supported yet",
			p + "spec.containers[0].volumeMounts[0].subPathExpr: references $(IP), which is status.podIP: only the node knows the pod IP and expanding it there is not supported yet",
		}},

		// Ports, probes, hooks.
		{"probes", func(pod *corev1.Pod, _ *LowerInput) {
			c := &pod.Spec.Containers[0]
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("metrics"),
				Scheme: "FTP", Protocol: ptr(corev1.HTTPProtocolHTTP2)}}, TerminationGracePeriodSeconds: ptr(int64(5))}
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090}}}
			c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(70000)},
				Exec: &corev1.ExecAction{}}}
		}, []string{
			p + "spec.containers[0].livenessProbe.terminationGracePeriodSeconds: not supported",
			p + `spec.containers[0].livenessProbe.httpGet.protocol: "HTTP2" is not supported (only HTTP1)`,
			p + `spec.containers[0].livenessProbe.httpGet.port: no container port named "metrics"`,
			p + `spec.containers[0].livenessProbe.httpGet.scheme: unsupported value "FTP"`,
			p + "spec.containers[0].readinessProbe.grpc: not supported",
			p + "spec.containers[0].startupProbe: exactly one handler is required (got 2)",
		}},
		{"probe port out of range and empty exec", func(pod *corev1.Pod, _ *LowerInput) {
			c := &pod.Spec.Containers[0]
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("0")}}}
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{}}}
		}, []string{
			p + "spec.containers[0].livenessProbe.tcpSocket.port: invalid port number 0",
			p + "spec.containers[0].readinessProbe.exec.command: required",
		}},
		{"preStop", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}}
			pod.Spec.Containers = append(pod.Spec.Containers,
				corev1.Container{Name: "d", Image: "x", Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{}}},
				corev1.Container{Name: "e", Image: "x", Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: -1}}}})
		}, []string{
			p + "spec.containers[0].lifecycle.preStop.tcpSocket: not supported (Kubernetes does not run it either)",
			p + "spec.containers[1].lifecycle.preStop: exactly one handler is required (got 0)",
			p + "spec.containers[2].lifecycle.preStop.sleep.seconds: must not be negative (got -1)",
		}},

		// Volumes and mounts.
		{"unsupported volumes", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.Volumes = []corev1.Volume{
				{Name: "pvc", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
				{Name: "nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "s", Path: "/"}}},
				{Name: "none"},
				{Name: "two", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}, HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}},
				{Name: "huge", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumHugePages, Mode: ptr(int32(0o700))}}},
				{Name: "dev", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "dev/sda", Type: ptr(corev1.HostPathBlockDev)}}},
				{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}, {}}}}},
			}
		}, []string{
			p + `spec.volumes[0].persistentVolumeClaim.claimName: persistentvolumeclaim "data" not found`,
			p + "spec.volumes[1].nfs: nfs volumes are not supported",
			p + "spec.volumes[2]: exactly one volume source is required (got none)",
			p + "spec.volumes[3]: exactly one volume source is required (got hostPath, emptyDir)",
			p + `spec.volumes[4].emptyDir.medium: "HugePages" is not supported (only "" and Memory)`,
			p + "spec.volumes[4].emptyDir.mode: not supported",
			p + `spec.volumes[5].hostPath.path: "dev/sda" must be absolute`,
			p + `spec.volumes[5].hostPath.type: "BlockDevice" is not supported`,
			p + "spec.volumes[6].projected.sources[0].serviceAccountToken: serviceAccountToken projections are not supported",
			p + "spec.volumes[6].projected.sources[1]: exactly one projection source is required (got none)",
		}},
		{"files volumes", func(pod *corev1.Pod, in *LowerInput) {
			in.ConfigMaps["default/cm"] = &corev1.ConfigMap{Data: map[string]string{"a": "1", "../evil": "x"}}
			in.Secrets["default/s"] = &corev1.Secret{Data: map[string][]byte{"a": []byte("1")}}
			items := []corev1.KeyToPath{{Key: "a", Path: "/abs"}, {Key: "a", Path: "x/../../y"}, {Key: "a", Path: "..data"},
				{Key: "a", Path: "ok", Mode: ptr(int32(0o1777))}, {Key: "a", Path: "ok"}, {Key: "zz", Path: "zz"}, {Key: "a", Path: "u", User: ptr(int64(1))}}
			pod.Spec.Volumes = []corev1.Volume{
				{Name: "a", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: cmRef("nope")}}},
				{Name: "b", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope", DefaultMode: ptr(int32(-1))}}},
				{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: cmRef("cm"), Items: items}}},
				{Name: "d", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: cmRef("cm")}}},
				{Name: "e", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultUser: ptr(int64(1)),
					Items: []corev1.KeyToPath{{Key: "b", Path: "b"}}}}},
				{Name: "f", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: cmRef("cm"), Items: []corev1.KeyToPath{{Key: "a", Path: "same"}}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: cmRef("s"), Items: []corev1.KeyToPath{{Key: "a", Path: "same"}}}},
				}}}},
				{Name: "g", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "x", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}},
					{Path: "y"},
					{Path: "z", ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}},
				}}}},
			}
		}, []string{
			p + "spec.volumes[0].configMap: configmap default/nope not found",
			p + "spec.volumes[1].secret.defaultMode: must be between 0 and 0777 (got -01)",
			p + "spec.volumes[1].secret: secret default/nope not found",
			p + `spec.volumes[2].configMap.items[0].path: path "/abs" must be relative`,
			p + `spec.volumes[2].configMap.items[1].path: path "x/../../y" must not contain '..'`,
			p + `spec.volumes[2].configMap.items[2].path: path "..data" must not start with '..'`,
			p + "spec.volumes[2].configMap.items[3].mode: must be between 0 and 0777 (got 01777)",
			p + `spec.volumes[2].configMap.items[4].path: path "ok" is already written by spec.volumes[2].configMap.items[3].path`,
			p + "spec.volumes[2].configMap.items[5].key: key zz not in configmap default/cm",
			p + "spec.volumes[2].configMap.items[6].user: not supported",
			p + `spec.volumes[3].configMap: path "../evil" must not contain '..'`,
			p + "spec.volumes[4].secret.defaultUser: not supported",
			p + "spec.volumes[4].secret.items[0].key: key b not in secret default/s",
			p + `spec.volumes[5].projected.sources[1].secret.items[0].path: path "same" is already written by spec.volumes[5].projected.sources[0].configMap.items[0].path`,
			p + `spec.volumes[6].downwardAPI.items[0].fieldRef.fieldPath: unsupported field "spec.nodeName"`,
			p + "spec.volumes[6].downwardAPI.items[1]: one of fieldRef and resourceFieldRef is required",
			p + "spec.volumes[6].downwardAPI.items[2].resourceFieldRef.containerName: required",
		}},
		{"mounts", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "EMPTY"}}
			pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
				{Name: "v", MountPath: "/a", MountPropagation: ptr(corev1.MountPropagationBidirectional),
					RecursiveReadOnly: ptr(corev1.RecursiveReadOnlyEnabled), BindMountOptions: []string{"x"}},
				{Name: "v", MountPath: "/b", SubPath: "../up"},
				{Name: "v", MountPath: "/c", SubPath: "x", SubPathExpr: "y"},
				{Name: "v", MountPath: "/d", SubPathExpr: "$(EMPTY)/$(UNSET)/$(ALSO)"},
			}
		}, []string{
			p + `spec.containers[0].volumeMounts[0].mountPropagation: "Bidirectional" is not supported (only None)`,
			p + `spec.containers[0].volumeMounts[0].recursiveReadOnly: "Enabled" is not supported`,
			p + "spec.containers[0].volumeMounts[0].bindMountOptions: not supported",
			p + `spec.containers[0].volumeMounts[1].subPath: "../up" must not contain '..'`,
			p + "spec.containers[0].volumeMounts[2]: subPath and subPathExpr are mutually exclusive",
			p + "spec.containers[0].volumeMounts[3].subPathExpr: missing value for ALSO, EMPTY, UNSET",
		}},

		// Registry credentials.
		{"image pull secrets", func(pod *corev1.Pod, in *LowerInput) {
			in.Secrets["default/opaque"] = &corev1.Secret{Type: corev1.SecretTypeOpaque}
			in.Secrets["default/nokey"] = &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson}
			in.Secrets["default/garbled"] = &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson,
				Data: map[string][]byte{".dockerconfigjson": []byte("{")}}
			in.Secrets["default/badauth"] = &corev1.Secret{Type: corev1.SecretTypeDockercfg,
				Data: map[string][]byte{".dockercfg": []byte(`{"r.io": {"auth": "!!"}, "s.io": {"auth": "bm9jb2xvbg=="}, "https://": {"username": "u"}}`)}}
			pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "missing"}, {Name: "opaque"}, {Name: "nokey"}, {Name: "garbled"}, {Name: "badauth"}}
		}, []string{
			p + "spec.imagePullSecrets[0]: secret default/missing not found",
			p + `spec.imagePullSecrets[1]: secret default/opaque: type "Opaque" is not an image pull secret (want kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg)`,
			p + "spec.imagePullSecrets[2]: secret default/nokey: no .dockerconfigjson key",
			p + "spec.imagePullSecrets[3]: secret default/garbled: decode .dockerconfigjson: unexpected end of JSON input",
			p + `spec.imagePullSecrets[4]: secret default/badauth: registry "https://": no host`,
			`decode auth of registry "r.io": illegal base64 data at input byte 0`,
			`decode auth of registry "s.io": want base64 of user:password`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, in := basePod(), defaultTestInput()
			tt.mutate(pod, &in)
			got, err := LowerPod(pod, in)
			if err == nil {
				t.Fatalf("no error; got %+v", got)
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if !cmp.Equal(got, nodeapi.PodSpec{}) {
				t.Errorf("a failed LowerPod returned a spec: %+v", got)
			}
		})
	}
	if _, err := LowerPod(nil, defaultTestInput()); err == nil || err.Error() != "lower pod: no pod given" {
		t.Errorf("LowerPod(nil) = %v", err)
	}
}

// TestLowerPodOptions checks smaller lowering rules that the golden files do
// not show on their own.
func TestLowerPodOptions(t *testing.T) {
	long := strings.Repeat("a", 62) + "-.b"
	tests := []struct {
		name   string
		mutate func(pod *corev1.Pod, in *LowerInput)
		check  func(t *testing.T, got nodeapi.PodSpec)
	}{
		{"long hostnames are cut like kubelet's", func(pod *corev1.Pod, _ *LowerInput) { pod.Name = long },
			func(t *testing.T, got nodeapi.PodSpec) {
				if want := strings.Repeat("a", 62); got.Hostname != want {
					t.Errorf("hostname = %q, want %q", got.Hostname, want)
				}
			}},
		{"hostnameOverride wins", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.Hostname, pod.Spec.HostnameOverride = "h", ptr("over.example")
		}, func(t *testing.T, got nodeapi.PodSpec) {
			if got.Hostname != "over.example" {
				t.Errorf("hostname = %q", got.Hostname)
			}
		}},
		{"dnsPolicy Default keeps the runtime's resolv.conf", func(pod *corev1.Pod, _ *LowerInput) { pod.Spec.DNSPolicy = corev1.DNSDefault },
			func(t *testing.T, got nodeapi.PodSpec) {
				if got.DNS != nil {
					t.Errorf("DNS = %+v, want nil", got.DNS)
				}
			}},
		{"unconfined and default security options are accepted", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
				SupplementalGroupsPolicy: ptr(corev1.SupplementalGroupsPolicyMerge), FSGroupChangePolicy: ptr(corev1.FSGroupChangeOnRootMismatch)}
			pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{ProcMount: ptr(corev1.DefaultProcMount),
				AllowPrivilegeEscalation: ptr(true), Capabilities: &corev1.Capabilities{}, SELinuxOptions: &corev1.SELinuxOptions{}}
			pod.Spec.HostUsers = ptr(true)
			pod.Spec.OS = &corev1.PodOS{Name: corev1.Linux}
		}, func(t *testing.T, got nodeapi.PodSpec) {
			if got.SecurityContext != nil || got.Containers[0].SecurityContext != nil {
				t.Errorf("security contexts = %+v, %+v; want none", got.SecurityContext, got.Containers[0].SecurityContext)
			}
		}},
		{"optional missing references are skipped", func(pod *corev1.Pod, in *LowerInput) {
			in.ConfigMaps["default/cm"] = &corev1.ConfigMap{Data: map[string]string{"a": "1"}}
			pod.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: cmRef("cm"), Optional: ptr(true), Items: []corev1.KeyToPath{{Key: "a", Path: "a"}, {Key: "b", Path: "b"}}}}}}
			pod.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: cmRef("nope"), Optional: ptr(true)}}}
		}, func(t *testing.T, got nodeapi.PodSpec) {
			items := got.Volumes[0].Files.Items
			if len(items) != 1 || items[0].Path != "a" || len(got.Containers[0].Env) != 0 {
				t.Errorf("volume items = %+v, env = %+v", items, got.Containers[0].Env)
			}
		}},
		{"sleep 0 is no hook", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{}}}
		}, func(t *testing.T, got nodeapi.PodSpec) {
			if got.Containers[0].PreStop != nil {
				t.Errorf("preStop = %+v", got.Containers[0].PreStop)
			}
		}},
		{"inventory credentials are deduplicated", func(pod *corev1.Pod, in *LowerInput) {
			a := nodeapi.RegistryAuth{Server: "r.io", Username: "u", Password: "p"}
			in.RegistryAuth = []nodeapi.RegistryAuth{a, a}
		}, func(t *testing.T, got nodeapi.PodSpec) {
			if len(got.RegistryAuth) != 1 {
				t.Errorf("registryAuth = %+v", got.RegistryAuth)
			}
		}},
		{"the result shares no memory with the input", func(pod *corev1.Pod, _ *LowerInput) {
			pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(5)), SupplementalGroups: []int64{1}}
			pod.Labels = map[string]string{"a": "b"}
			pod.Spec.Containers[0].Command = []string{"x"}
		}, func(t *testing.T, got nodeapi.PodSpec) {
			*got.SecurityContext.RunAsUser = 6
			got.SecurityContext.SupplementalGroups[0] = 2
			got.Labels["a"] = "c"
			got.Containers[0].Command[0] = "y"
			*got.Containers[0].SecurityContext.RunAsUser = 7
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, in := basePod(), defaultTestInput()
			tt.mutate(pod, &in)
			before := pod.DeepCopy()
			got, err := LowerPod(pod, in)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
			if diff := cmp.Diff(before, pod); diff != "" {
				t.Errorf("input changed (-before +after):\n%s", diff)
			}
		})
	}
}
