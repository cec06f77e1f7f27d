package cri

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// SandboxState is a pod sandbox's state.
type SandboxState int

// Sandbox states.
const (
	SandboxNotReady SandboxState = iota
	SandboxReady
)

func (s SandboxState) String() string {
	if s == SandboxReady {
		return "ready"
	}
	return "notready"
}

// ContainerState is a container's state.
type ContainerState int

// Container states.
const (
	ContainerCreated ContainerState = iota
	ContainerRunning
	ContainerExited
	ContainerUnknown
)

func (s ContainerState) String() string {
	switch s {
	case ContainerCreated:
		return "created"
	case ContainerRunning:
		return "running"
	case ContainerExited:
		return "exited"
	default:
		return "unknown"
	}
}

// DNSConfig is a pod's resolv.conf.
type DNSConfig struct {
	Servers  []string
	Searches []string
	Options  []string
}

// PortMapping maps a host port to a container port.
type PortMapping struct {
	Protocol      string // TCP, UDP, SCTP
	ContainerPort int32
	HostPort      int32
	HostIP        string
}

// SandboxConfig is what RunPodSandbox gets.
type SandboxConfig struct {
	Name, Namespace, UID string
	Attempt              uint32
	Hostname             string
	LogDirectory         string
	DNS                  *DNSConfig
	PortMappings         []PortMapping
	Labels               map[string]string
	Annotations          map[string]string
	CgroupParent         string
	RunAsUser            *int64
	RunAsGroup           *int64
	SupplementalGroups   []int64
	Privileged           bool
}

// KeyValue is one environment variable.
type KeyValue struct{ Key, Value string }

// Mount is a bind mount into a container.
type Mount struct {
	ContainerPath string
	HostPath      string
	Readonly      bool
}

// Resources are a container's cgroup limits (0 = unset).
type Resources struct {
	CPUShares        int64
	CPUQuota         int64
	CPUPeriod        int64
	MemoryLimitBytes int64
}

// ContainerConfig is what CreateContainer gets.
type ContainerConfig struct {
	Name               string
	Attempt            uint32
	Image              string
	Command            []string
	Args               []string
	WorkingDir         string
	Env                []KeyValue
	Mounts             []Mount
	Labels             map[string]string
	Annotations        map[string]string
	LogPath            string // relative to the sandbox's LogDirectory
	Stdin, StdinOnce   bool
	TTY                bool
	Resources          Resources
	RunAsUser          *int64
	RunAsGroup         *int64
	SupplementalGroups []int64
	ReadonlyRootfs     bool
	Privileged         bool
}

// Sandbox is a pod sandbox as ListPodSandbox reports it.
type Sandbox struct {
	ID                   string
	Name, Namespace, UID string
	Attempt              uint32
	State                SandboxState
	CreatedAt            time.Time
	Labels               map[string]string
	Annotations          map[string]string
}

// SandboxStatus is a sandbox with its network status.
type SandboxStatus struct {
	Sandbox
	IP string
}

// Container is a container as ListContainers reports it.
type Container struct {
	ID          string
	SandboxID   string
	Name        string
	Attempt     uint32
	Image       string
	ImageRef    string
	State       ContainerState
	CreatedAt   time.Time
	Labels      map[string]string
	Annotations map[string]string
}

// ContainerStatus is a container with the details ContainerStatus reports.
type ContainerStatus struct {
	Container
	StartedAt  time.Time
	FinishedAt time.Time
	ExitCode   int32
	Reason     string // e.g. Completed, Error, OOMKilled
	Message    string
	LogPath    string // absolute
}

// ExecResult is what ExecSync returns.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int32
}

// Auth is a registry credential for PullImage.
type Auth struct {
	Username, Password, Auth, ServerAddress string
}

// FsUsage is one image file system as ImageFsInfo reports it.
type FsUsage struct {
	Mountpoint string
	UsedBytes  uint64
	InodesUsed uint64
}

// IsNotFound reports whether err says the sandbox, container or image does not exist.
func IsNotFound(err error) bool {
	return err != nil && status.Code(err) == codes.NotFound
}

// IsDeadline reports whether err is a timeout of the call or of the operation in the runtime.
func IsDeadline(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded
}

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func int64Value(v *int64) *runtimeapi.Int64Value {
	if v == nil {
		return nil
	}
	return &runtimeapi.Int64Value{Value: *v}
}

func protocol(p string) runtimeapi.Protocol {
	switch p {
	case "UDP":
		return runtimeapi.Protocol_UDP
	case "SCTP":
		return runtimeapi.Protocol_SCTP
	default:
		return runtimeapi.Protocol_TCP
	}
}

// SandboxConfigProto converts c to the CRI message.
func SandboxConfigProto(c *SandboxConfig) *runtimeapi.PodSandboxConfig {
	if c == nil {
		return nil
	}
	pc := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: c.Name, Namespace: c.Namespace, Uid: c.UID, Attempt: c.Attempt},
		Hostname:     c.Hostname,
		LogDirectory: c.LogDirectory,
		Labels:       c.Labels,
		Annotations:  c.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: c.CgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_POD,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
				RunAsUser:          int64Value(c.RunAsUser),
				RunAsGroup:         int64Value(c.RunAsGroup),
				SupplementalGroups: c.SupplementalGroups,
				Privileged:         c.Privileged,
			},
		},
	}
	if c.DNS != nil {
		pc.DnsConfig = &runtimeapi.DNSConfig{Servers: c.DNS.Servers, Searches: c.DNS.Searches, Options: c.DNS.Options}
	}
	for _, p := range c.PortMappings {
		pc.PortMappings = append(pc.PortMappings, &runtimeapi.PortMapping{
			Protocol: protocol(p.Protocol), ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP,
		})
	}
	return pc
}

func containerConfigProto(c *ContainerConfig) *runtimeapi.ContainerConfig {
	cc := &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: c.Attempt},
		Image:       &runtimeapi.ImageSpec{Image: c.Image},
		Command:     c.Command,
		Args:        c.Args,
		WorkingDir:  c.WorkingDir,
		Labels:      c.Labels,
		Annotations: c.Annotations,
		LogPath:     c.LogPath,
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{
				CpuShares:          c.Resources.CPUShares,
				CpuQuota:           c.Resources.CPUQuota,
				CpuPeriod:          c.Resources.CPUPeriod,
				MemoryLimitInBytes: c.Resources.MemoryLimitBytes,
			},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Privileged: c.Privileged,
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_POD,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
				RunAsUser:          int64Value(c.RunAsUser),
				RunAsGroup:         int64Value(c.RunAsGroup),
				ReadonlyRootfs:     c.ReadonlyRootfs,
				SupplementalGroups: c.SupplementalGroups,
			},
		},
	}
	for _, e := range c.Env {
		cc.Envs = append(cc.Envs, &runtimeapi.KeyValue{Key: e.Key, Value: []byte(e.Value)})
	}
	for _, m := range c.Mounts {
		cc.Mounts = append(cc.Mounts, &runtimeapi.Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.Readonly})
	}
	return cc
}

func sandboxFrom(p *runtimeapi.PodSandbox) Sandbox {
	md := p.GetMetadata()
	st := SandboxNotReady
	if p.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
		st = SandboxReady
	}
	return Sandbox{
		ID: p.GetId(), Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid(), Attempt: md.GetAttempt(),
		State: st, CreatedAt: unixNano(p.GetCreatedAt()), Labels: p.GetLabels(), Annotations: p.GetAnnotations(),
	}
}

func containerState(s runtimeapi.ContainerState) ContainerState {
	switch s {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return ContainerCreated
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return ContainerRunning
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return ContainerExited
	default:
		return ContainerUnknown
	}
}

// RunPodSandbox creates and starts a pod sandbox and returns its ID.
func (c *Client) RunPodSandbox(ctx context.Context, cfg *SandboxConfig) (string, error) {
	r, err := c.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: SandboxConfigProto(cfg)})
	if err != nil {
		return "", fmt.Errorf("run pod sandbox %s/%s: %w", cfg.Namespace, cfg.Name, err)
	}
	return r.GetPodSandboxId(), nil
}

// StopPodSandbox stops a sandbox and every container in it (they get no grace period).
func (c *Client) StopPodSandbox(ctx context.Context, id string) error {
	if _, err := c.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("stop pod sandbox %s: %w", short(id), err)
	}
	return nil
}

// RemovePodSandbox removes a stopped sandbox and its containers.
func (c *Client) RemovePodSandbox(ctx context.Context, id string) error {
	if _, err := c.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("remove pod sandbox %s: %w", short(id), err)
	}
	return nil
}

// PodSandboxStatus reports a sandbox's state and IP.
func (c *Client) PodSandboxStatus(ctx context.Context, id string) (SandboxStatus, error) {
	r, err := c.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		return SandboxStatus{}, fmt.Errorf("get pod sandbox status of %s: %w", short(id), err)
	}
	s := r.GetStatus()
	if s == nil {
		return SandboxStatus{}, fmt.Errorf("get pod sandbox status of %s: runtime returned no status", short(id))
	}
	sb := sandboxFrom(&runtimeapi.PodSandbox{Id: s.GetId(), Metadata: s.GetMetadata(), State: s.GetState(),
		CreatedAt: s.GetCreatedAt(), Labels: s.GetLabels(), Annotations: s.GetAnnotations()})
	return SandboxStatus{Sandbox: sb, IP: s.GetNetwork().GetIp()}, nil
}

// ListPodSandbox lists every sandbox.
func (c *Client) ListPodSandbox(ctx context.Context) ([]Sandbox, error) {
	r, err := c.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("list pod sandboxes: %w", err)
	}
	out := make([]Sandbox, 0, len(r.GetItems()))
	for _, p := range r.GetItems() {
		out = append(out, sandboxFrom(p))
	}
	return out, nil
}

// CreateContainer creates a container in a sandbox and returns its ID.
func (c *Client) CreateContainer(ctx context.Context, sandboxID string, cfg *ContainerConfig, sandbox *SandboxConfig) (string, error) {
	r, err := c.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: sandboxID, Config: containerConfigProto(cfg), SandboxConfig: SandboxConfigProto(sandbox),
	})
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", cfg.Name, err)
	}
	return r.GetContainerId(), nil
}

// StartContainer starts a created container.
func (c *Client) StartContainer(ctx context.Context, id string) error {
	if _, err := c.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("start container %s: %w", short(id), err)
	}
	return nil
}

// StopContainer stops a container: its stop signal, then SIGKILL after timeout.
func (c *Client) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	if _, err := c.runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: int64(timeout / time.Second)}); err != nil {
		return fmt.Errorf("stop container %s: %w", short(id), err)
	}
	return nil
}

// RemoveContainer removes a container (stopping it first if needed).
func (c *Client) RemoveContainer(ctx context.Context, id string) error {
	if _, err := c.runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("remove container %s: %w", short(id), err)
	}
	return nil
}

// ListContainers lists every container.
func (c *Client) ListContainers(ctx context.Context) ([]Container, error) {
	r, err := c.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Container, 0, len(r.GetContainers()))
	for _, x := range r.GetContainers() {
		out = append(out, Container{
			ID: x.GetId(), SandboxID: x.GetPodSandboxId(), Name: x.GetMetadata().GetName(), Attempt: x.GetMetadata().GetAttempt(),
			Image: x.GetImage().GetImage(), ImageRef: x.GetImageRef(), State: containerState(x.GetState()),
			CreatedAt: unixNano(x.GetCreatedAt()), Labels: x.GetLabels(), Annotations: x.GetAnnotations(),
		})
	}
	return out, nil
}

// ContainerStatus reports a container's details.
func (c *Client) ContainerStatus(ctx context.Context, id string) (ContainerStatus, error) {
	r, err := c.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return ContainerStatus{}, fmt.Errorf("get container status of %s: %w", short(id), err)
	}
	s := r.GetStatus()
	if s == nil {
		return ContainerStatus{}, fmt.Errorf("get container status of %s: runtime returned no status", short(id))
	}
	return ContainerStatus{
		Container: Container{
			ID: s.GetId(), Name: s.GetMetadata().GetName(), Attempt: s.GetMetadata().GetAttempt(),
			Image: s.GetImage().GetImage(), ImageRef: s.GetImageRef(), State: containerState(s.GetState()),
			CreatedAt: unixNano(s.GetCreatedAt()), Labels: s.GetLabels(), Annotations: s.GetAnnotations(),
		},
		StartedAt: unixNano(s.GetStartedAt()), FinishedAt: unixNano(s.GetFinishedAt()), ExitCode: s.GetExitCode(),
		Reason: s.GetReason(), Message: s.GetMessage(), LogPath: s.GetLogPath(),
	}, nil
}

// ExecSync runs cmd in a running container and waits for it, at most
// timeout (0: no limit in the runtime; ctx still applies).
func (c *Client) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error) {
	secs := int64(0)
	if timeout > 0 {
		secs = max(int64((timeout+time.Second-1)/time.Second), 1)
	}
	r, err := c.runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: secs})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in container %s: %w", short(id), err)
	}
	return ExecResult{Stdout: r.GetStdout(), Stderr: r.GetStderr(), ExitCode: r.GetExitCode()}, nil
}

// PullImage pulls ref with optional credentials and returns the image ref the runtime resolved.
func (c *Client) PullImage(ctx context.Context, ref string, auth *Auth, sandbox *SandboxConfig) (string, error) {
	req := &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}, SandboxConfig: SandboxConfigProto(sandbox)}
	if auth != nil {
		req.Auth = &runtimeapi.AuthConfig{Username: auth.Username, Password: auth.Password, Auth: auth.Auth, ServerAddress: auth.ServerAddress}
	}
	r, err := c.images.PullImage(ctx, req)
	if err != nil {
		return "", fmt.Errorf("pull image %s: %w", ref, err)
	}
	return r.GetImageRef(), nil
}

// ListImages lists every image.
func (c *Client) ListImages(ctx context.Context) ([]Image, error) {
	r, err := c.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]Image, 0, len(r.GetImages()))
	for _, img := range r.GetImages() {
		out = append(out, Image{Present: true, ID: img.GetId(), RepoTags: img.GetRepoTags(), RepoDigests: img.GetRepoDigests(),
			Size: img.GetSize(), Pinned: img.GetPinned()})
	}
	return out, nil
}

// RemoveImage removes an image by ID or reference.
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	if _, err := c.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
		return fmt.Errorf("remove image %s: %w", short(ref), err)
	}
	return nil
}

// ImageFsInfo reports the image file systems' usage.
func (c *Client) ImageFsInfo(ctx context.Context) ([]FsUsage, error) {
	r, err := c.images.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		return nil, fmt.Errorf("get image file system info: %w", err)
	}
	var out []FsUsage
	for _, f := range r.GetImageFilesystems() {
		out = append(out, FsUsage{Mountpoint: f.GetFsId().GetMountpoint(), UsedBytes: f.GetUsedBytes().GetValue(),
			InodesUsed: f.GetInodesUsed().GetValue()})
	}
	return out, nil
}

// short abbreviates a 64-hex ID for messages.
func short(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}
