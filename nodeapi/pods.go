package nodeapi

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Pod specs: what the CLI lowers a Kubernetes Pod to. Everything that needs a
// view of the cluster (ConfigMap and Secret contents, the node binding,
// registry credentials) is resolved by the CLI; only what is known on the
// node alone (the pod IP for fieldRef status.podIP) is left to agentlet.

// Restart policies.
const (
	RestartAlways    = "Always"
	RestartOnFailure = "OnFailure"
	RestartNever     = "Never"
)

// Image pull policies.
const (
	PullAlways       = "Always"
	PullIfNotPresent = "IfNotPresent"
	PullNever        = "Never"
)

// PodSpec is one pod a node must run.
type PodSpec struct {
	// UID identifies this incarnation of the pod (metadata.uid); a new UID for
	// the same namespace/name means delete the old pod and create a new one.
	UID       string            `json:"uid"`
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Hostname is the pod's hostname (defaults to Name).
	Hostname                      string              `json:"hostname,omitempty"`
	RestartPolicy                 string              `json:"restartPolicy"`
	TerminationGracePeriodSeconds int64               `json:"terminationGracePeriodSeconds"`
	InitContainers                []ContainerSpec     `json:"initContainers,omitempty"`
	Containers                    []ContainerSpec     `json:"containers"`
	Volumes                       []VolumeSpec        `json:"volumes,omitempty"`
	SecurityContext               *PodSecurityContext `json:"securityContext,omitempty"`
	// RegistryAuth holds credentials for pulling this pod's images, resolved
	// from imagePullSecrets and the inventory. Secret: never logged or reported.
	RegistryAuth []RegistryAuth `json:"registryAuth,omitempty"`
	// DNS is the resolv.conf content for the pod; empty keeps the runtime's default.
	DNS *DNSConfig `json:"dns,omitempty"`
}

// Key is namespace/name.
func (p *PodSpec) Key() string { return p.Namespace + "/" + p.Name }

// PodSecurityContext is the pod-level security context.
type PodSecurityContext struct {
	RunAsUser          *int64  `json:"runAsUser,omitempty"`
	RunAsGroup         *int64  `json:"runAsGroup,omitempty"`
	SupplementalGroups []int64 `json:"supplementalGroups,omitempty"`
	FSGroup            *int64  `json:"fsGroup,omitempty"`
}

// DNSConfig is what goes into the pod's resolv.conf.
type DNSConfig struct {
	Nameservers []string `json:"nameservers,omitempty"`
	Searches    []string `json:"searches,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// RegistryAuth is a credential for one registry host (e.g. "10.250.0.2:5000").
type RegistryAuth struct {
	Server   string `json:"server"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Auth     string `json:"auth,omitempty"` // base64 user:password, as in docker config.json
}

// ContainerSpec is one container of a pod.
type ContainerSpec struct {
	Name            string   `json:"name"`
	Image           string   `json:"image"`
	ImagePullPolicy string   `json:"imagePullPolicy"`
	Command         []string `json:"command,omitempty"`
	Args            []string `json:"args,omitempty"`
	WorkingDir      string   `json:"workingDir,omitempty"`
	// Env is resolved by the CLI, in order, with $(VAR) references expanded
	// the way Kubernetes does, except values from FieldPodIP.
	Env             []EnvVar                  `json:"env,omitempty"`
	Ports           []ContainerPort           `json:"ports,omitempty"`
	Resources       ContainerResources        `json:"resources"`
	VolumeMounts    []VolumeMount             `json:"volumeMounts,omitempty"`
	LivenessProbe   *Probe                    `json:"livenessProbe,omitempty"`
	ReadinessProbe  *Probe                    `json:"readinessProbe,omitempty"`
	StartupProbe    *Probe                    `json:"startupProbe,omitempty"`
	PreStop         *Handler                  `json:"preStop,omitempty"`
	SecurityContext *ContainerSecurityContext `json:"securityContext,omitempty"`
	TTY             bool                      `json:"tty,omitempty"`
	Stdin           bool                      `json:"stdin,omitempty"`
	// TerminationMessagePath is read into the terminated state's message.
	TerminationMessagePath string `json:"terminationMessagePath,omitempty"`
}

// FieldPodIP marks an env var whose value is the pod's IP (fieldRef status.podIP).
const FieldPodIP = "status.podIP"

// EnvVar is one environment variable. FieldPath, when set, is FieldPodIP and
// Value is ignored.
type EnvVar struct {
	Name      string `json:"name"`
	Value     string `json:"value,omitempty"`
	FieldPath string `json:"fieldPath,omitempty"`
}

// ContainerPort is a port a container exposes; HostPort > 0 maps it on the node.
type ContainerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	HostPort      int32  `json:"hostPort,omitempty"`
	HostIP        string `json:"hostIP,omitempty"`
	Protocol      string `json:"protocol"` // TCP, UDP, SCTP
}

// ContainerResources are a container's requests and limits (0 = unset).
type ContainerResources struct {
	CPURequestMillis   int64 `json:"cpuRequestMillis,omitempty"`
	CPULimitMillis     int64 `json:"cpuLimitMillis,omitempty"`
	MemoryRequestBytes int64 `json:"memoryRequestBytes,omitempty"`
	MemoryLimitBytes   int64 `json:"memoryLimitBytes,omitempty"`
}

// VolumeMount mounts a pod volume into a container.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	SubPath   string `json:"subPath,omitempty"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// VolumeSpec is one pod volume; exactly one source is set. ConfigMap, Secret
// and projected volumes are lowered by the CLI to Files.
type VolumeSpec struct {
	Name     string          `json:"name"`
	EmptyDir *EmptyDirVolume `json:"emptyDir,omitempty"`
	HostPath *HostPathVolume `json:"hostPath,omitempty"`
	Files    *FilesVolume    `json:"files,omitempty"`
}

// EmptyDirVolume is scratch space living as long as the pod.
type EmptyDirVolume struct {
	Medium         string `json:"medium,omitempty"` // "" (node disk) or "Memory" (tmpfs)
	SizeLimitBytes int64  `json:"sizeLimitBytes,omitempty"`
}

// HostPathVolume is a path on the node.
type HostPathVolume struct {
	Path string `json:"path"`
	Type string `json:"type,omitempty"` // "", DirectoryOrCreate, Directory, FileOrCreate, File, Socket
}

// FilesVolume is a read-only set of files (ConfigMap, Secret, projected).
// Secret volumes are written on tmpfs where available, files 0600 unless
// Mode says otherwise, and their contents are never logged or reported.
type FilesVolume struct {
	Secret bool       `json:"secret,omitempty"`
	Items  []FileItem `json:"items"`
}

// FileItem is one file of a FilesVolume.
type FileItem struct {
	Path string `json:"path"` // relative, no ".."
	Data []byte `json:"data"` // base64 in JSON
	Mode int32  `json:"mode"` // permission bits, e.g. 0644
}

// Probe is a liveness, readiness or startup probe.
type Probe struct {
	Handler
	InitialDelaySeconds int32 `json:"initialDelaySeconds,omitempty"`
	PeriodSeconds       int32 `json:"periodSeconds"`
	TimeoutSeconds      int32 `json:"timeoutSeconds"`
	SuccessThreshold    int32 `json:"successThreshold"`
	FailureThreshold    int32 `json:"failureThreshold"`
}

// Handler is an action run in or against a container; exactly one is set.
type Handler struct {
	Exec         []string         `json:"exec,omitempty"`
	HTTPGet      *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket    *TCPSocketAction `json:"tcpSocket,omitempty"`
	SleepSeconds int64            `json:"sleepSeconds,omitempty"`
}

// HTTPGetAction probes http(s)://HOST:PORT/PATH; HOST defaults to the pod IP.
type HTTPGetAction struct {
	Path    string       `json:"path,omitempty"`
	Port    int32        `json:"port"` // named ports are resolved by the CLI
	Host    string       `json:"host,omitempty"`
	Scheme  string       `json:"scheme,omitempty"` // HTTP or HTTPS
	Headers []HTTPHeader `json:"headers,omitempty"`
}

// HTTPHeader is one header of an HTTPGetAction.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocketAction probes a TCP connect to HOST:PORT; HOST defaults to the pod IP.
type TCPSocketAction struct {
	Port int32  `json:"port"`
	Host string `json:"host,omitempty"`
}

// ContainerSecurityContext is the container-level security context.
type ContainerSecurityContext struct {
	RunAsUser              *int64 `json:"runAsUser,omitempty"`
	RunAsGroup             *int64 `json:"runAsGroup,omitempty"`
	ReadOnlyRootFilesystem bool   `json:"readOnlyRootFilesystem,omitempty"`
	Privileged             bool   `json:"privileged,omitempty"`
}

// Validate reports every structural problem of a pod spec at once. (The CLI
// validated the manifest; this guards the node against a malformed spec.)
func (p *PodSpec) Validate() error {
	var errs []error
	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("pod %s: "+format, append([]any{p.Key()}, a...)...))
	}
	if p.UID == "" || p.Namespace == "" || p.Name == "" {
		add("uid, namespace and name are required")
	}
	// The UID names the pod's directory on the node.
	if p.UID == "." || p.UID == ".." || strings.ContainsAny(p.UID, "/\x00") || len(p.UID) > 128 {
		add("uid %q: must be one path element of at most 128 bytes", p.UID)
	}
	switch p.RestartPolicy {
	case RestartAlways, RestartOnFailure, RestartNever:
	default:
		add("restartPolicy: unsupported %q", p.RestartPolicy)
	}
	if len(p.Containers) == 0 {
		add("containers: at least one is required")
	}
	names := map[string]bool{}
	for _, c := range append(append([]ContainerSpec{}, p.InitContainers...), p.Containers...) {
		if c.Name == "" || c.Image == "" {
			add("container %q: name and image are required", c.Name)
		}
		if names[c.Name] {
			add("container %q: duplicate name", c.Name)
		}
		names[c.Name] = true
	}
	vols := map[string]bool{}
	for _, v := range p.Volumes {
		n := 0
		if v.EmptyDir != nil {
			n++
		}
		if v.HostPath != nil {
			n++
		}
		if v.Files != nil {
			n++
		}
		if n != 1 {
			add("volume %q: exactly one source is required", v.Name)
		}
		vols[v.Name] = true
	}
	for _, c := range append(append([]ContainerSpec{}, p.InitContainers...), p.Containers...) {
		for _, m := range c.VolumeMounts {
			if !vols[m.Name] {
				add("container %q: volumeMount %q names no volume", c.Name, m.Name)
			}
		}
	}
	return errors.Join(errs...)
}

// Pod phases, as Kubernetes reports them.
const (
	PodPending   = "Pending"
	PodRunning   = "Running"
	PodSucceeded = "Succeeded"
	PodFailed    = "Failed"
	PodUnknown   = "Unknown"
)

// Pod condition types.
const (
	PodScheduled         = "PodScheduled"
	PodInitialized       = "Initialized"
	PodContainersReady   = "ContainersReady"
	PodReady             = "Ready"
	PodReadyToStartConts = "PodReadyToStartContainers"
)

// PodStatus is what agentlet reports about one pod.
type PodStatus struct {
	UID                   string            `json:"uid"`
	Namespace             string            `json:"namespace"`
	Name                  string            `json:"name"`
	Phase                 string            `json:"phase"`
	Reason                string            `json:"reason,omitempty"`
	Message               string            `json:"message,omitempty"`
	PodIP                 string            `json:"podIP,omitempty"`
	StartTime             *time.Time        `json:"startTime,omitempty"`
	Conditions            []Condition       `json:"conditions,omitempty"`
	InitContainerStatuses []ContainerStatus `json:"initContainerStatuses,omitempty"`
	ContainerStatuses     []ContainerStatus `json:"containerStatuses,omitempty"`
	// Events are recent node-side events for this pod (pulls, starts,
	// back-off, probe failures with their output), oldest first, at most 20.
	Events []Event `json:"events,omitempty"`
	// Usage is the pod's measured CPU and memory; nil until two samples of
	// every running container exist (see PodUsage).
	Usage *PodUsage `json:"usage,omitempty"`
}

// PodUsage is a pod's resource usage over one sampling window, with the
// meaning metrics-server gives it (what HPA and `kubectl top pods` read):
// the sum over the pod's running containers, measured by the runtime in
// the containers' cgroups (CRI ListContainerStats). The pod sandbox
// (pause) and exited containers are not counted. A pod has no usage while
// one of its running containers has only one sample (it just started or
// restarted), so a partial sum is never reported.
type PodUsage struct {
	// CPUMillis is the average CPU used over the window in millicores
	// (1000 = one core busy): the growth of the containers' cumulative
	// usageCoreNanoSeconds divided by the time between the two samples.
	CPUMillis int64 `json:"cpuMillis"`
	// MemoryWorkingSetBytes is the memory in use at Timestamp minus the
	// inactive file cache (cgroup usage − inactive_file), what kubelet
	// evicts on and the OOM killer cannot reclaim cheaply.
	MemoryWorkingSetBytes int64 `json:"memoryWorkingSetBytes"`
	// Timestamp is when the runtime read the counters (the earliest of the
	// pod's containers); the window ends there.
	Timestamp time.Time `json:"timestamp"`
	// WindowMillis is how long the CPU average was taken over.
	WindowMillis int64 `json:"windowMillis"`
	// Containers is each running container's share, sorted by name.
	Containers []ContainerUsage `json:"containers,omitempty"`
}

// ContainerUsage is one container's part of a PodUsage (same window).
type ContainerUsage struct {
	Name                  string `json:"name"`
	CPUMillis             int64  `json:"cpuMillis"`
	MemoryWorkingSetBytes int64  `json:"memoryWorkingSetBytes"`
}

// ContainerStatus is the state of one container.
type ContainerStatus struct {
	Name                 string         `json:"name"`
	Image                string         `json:"image"`
	ImageID              string         `json:"imageID,omitempty"`
	ContainerID          string         `json:"containerID,omitempty"`
	Ready                bool           `json:"ready"`
	Started              bool           `json:"started"`
	RestartCount         int32          `json:"restartCount"`
	State                ContainerState `json:"state"`
	LastTerminationState ContainerState `json:"lastState"`
}

// ContainerState is exactly one of waiting, running or terminated (or none).
type ContainerState struct {
	Waiting    *StateWaiting    `json:"waiting,omitempty"`
	Running    *StateRunning    `json:"running,omitempty"`
	Terminated *StateTerminated `json:"terminated,omitempty"`
}

// StateWaiting: e.g. ContainerCreating, ErrImagePull, ImagePullBackOff, CrashLoopBackOff.
type StateWaiting struct {
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// StateRunning is a running container.
type StateRunning struct {
	StartedAt time.Time `json:"startedAt"`
}

// StateTerminated is an exited container: Reason is Completed, Error, OOMKilled, ...
type StateTerminated struct {
	ExitCode   int32     `json:"exitCode"`
	Signal     int32     `json:"signal,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// Container state reasons agentlet reports, with Kubernetes' names.
const (
	// Waiting reasons.
	ReasonContainerCreating          = "ContainerCreating"
	ReasonPodInitializing            = "PodInitializing"
	ReasonErrImagePull               = "ErrImagePull"
	ReasonImagePullBackOff           = "ImagePullBackOff"
	ReasonErrImageNeverPull          = "ErrImageNeverPull"
	ReasonCrashLoopBackOff           = "CrashLoopBackOff"
	ReasonCreateContainerError       = "CreateContainerError"
	ReasonCreateContainerConfigError = "CreateContainerConfigError"
	ReasonRunContainerError          = "RunContainerError"
	// Terminated reasons.
	ReasonCompleted = "Completed"
	ReasonError     = "Error"
	ReasonOOMKilled = "OOMKilled"
)

// Runtime labels agentlet puts on the sandboxes and containers it creates;
// on start it adopts what carries LabelPodUID.
const (
	LabelPodUID        = "clusterctl.dev/pod-uid"
	LabelPodName       = "clusterctl.dev/pod-name"
	LabelPodNamespace  = "clusterctl.dev/pod-namespace"
	LabelContainerName = "clusterctl.dev/container-name"
)

// Per-pod paths on a host.
const (
	// PodsDir holds one directory per pod UID: volumes, termination
	// message files and state.json (restart bookkeeping, events).
	PodsDir = StateDir + "/pods"
	// PodLogsDir holds the CRI log files, kubelet's layout:
	// <namespace>_<name>_<uid>/<container>/<restartCount>.log.
	PodLogsDir = "/var/log/pods"
)

// Ready reports whether the pod's Ready condition is True.
func (s *PodStatus) Ready() bool {
	for _, c := range s.Conditions {
		if c.Type == PodReady {
			return c.Status == True
		}
	}
	return false
}
