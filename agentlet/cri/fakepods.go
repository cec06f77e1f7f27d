package cri

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The pod half of Fake: an in-memory runtime with sandboxes, containers and
// images, enough to drive agentlet's pod manager without containerd.
// Containers only change state through calls and the test helpers Exit and
// StopPodSandbox; nothing runs.

type fakeSandbox struct {
	SandboxStatus
	Config SandboxConfig
}

type fakePods struct {
	seq        int
	sandboxes  map[string]*fakeSandbox
	containers map[string]*ContainerStatus
	configs    map[string]ContainerConfig
	usage      map[string]Usage // by container ID, set by SetUsage
}

func (f *Fake) pods() *fakePods {
	if f.podState == nil {
		f.podState = &fakePods{sandboxes: map[string]*fakeSandbox{}, containers: map[string]*ContainerStatus{},
			configs: map[string]ContainerConfig{}, usage: map[string]Usage{}}
	}
	return f.podState
}

func (f *Fake) now() time.Time {
	if f.Clock != nil {
		return f.Clock()
	}
	return time.Now()
}

func notFound(what, id string) error {
	return status.Errorf(codes.NotFound, "%s %q: not found", what, id)
}

// RunPodSandbox implements the CRI call.
func (f *Fake) RunPodSandbox(_ context.Context, cfg *SandboxConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RunPodSandbox " + cfg.Namespace + "/" + cfg.Name)
	if f.RunPodSandboxErr != nil {
		return "", f.RunPodSandboxErr
	}
	p := f.pods()
	p.seq++
	id := fmt.Sprintf("sb%d", p.seq)
	p.sandboxes[id] = &fakeSandbox{
		SandboxStatus: SandboxStatus{
			Sandbox: Sandbox{ID: id, Name: cfg.Name, Namespace: cfg.Namespace, UID: cfg.UID, Attempt: cfg.Attempt,
				State: SandboxReady, CreatedAt: f.now(), Labels: cfg.Labels, Annotations: cfg.Annotations},
			IP: fmt.Sprintf("10.244.1.%d", 1+p.seq%250),
		},
		Config: *cfg,
	}
	return id, nil
}

// StopPodSandbox implements the CRI call: the sandbox's running containers exit with 137.
func (f *Fake) StopPodSandbox(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("StopPodSandbox " + id)
	p := f.pods()
	sb, ok := p.sandboxes[id]
	if !ok {
		return notFound("sandbox", id)
	}
	sb.State = SandboxNotReady
	for _, c := range p.containers {
		if c.SandboxID == id && c.State != ContainerExited {
			f.exit(c, 137, "Error")
		}
	}
	return nil
}

// RemovePodSandbox implements the CRI call.
func (f *Fake) RemovePodSandbox(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemovePodSandbox " + id)
	p := f.pods()
	if _, ok := p.sandboxes[id]; !ok {
		return nil // CRI: removing a missing sandbox succeeds
	}
	delete(p.sandboxes, id)
	for cid, c := range p.containers {
		if c.SandboxID == id {
			delete(p.containers, cid)
			delete(p.usage, cid)
		}
	}
	return nil
}

// PodSandboxStatus implements the CRI call.
func (f *Fake) PodSandboxStatus(_ context.Context, id string) (SandboxStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("PodSandboxStatus " + id)
	sb, ok := f.pods().sandboxes[id]
	if !ok {
		return SandboxStatus{}, notFound("sandbox", id)
	}
	return sb.SandboxStatus, nil
}

// ListPodSandbox implements the CRI call (sorted by ID).
func (f *Fake) ListPodSandbox(context.Context) ([]Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListPodSandbox")
	if f.ListErr != nil {
		return nil, f.ListErr
	}
	var out []Sandbox
	for _, sb := range f.pods().sandboxes {
		out = append(out, sb.Sandbox)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// CreateContainer implements the CRI call; the image must be present.
func (f *Fake) CreateContainer(_ context.Context, sandboxID string, cfg *ContainerConfig, _ *SandboxConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(fmt.Sprintf("CreateContainer %s %s#%d", sandboxID, cfg.Name, cfg.Attempt))
	if err := f.CreateErr[cfg.Name]; err != nil {
		return "", err
	}
	p := f.pods()
	if _, ok := p.sandboxes[sandboxID]; !ok {
		return "", notFound("sandbox", sandboxID)
	}
	if !f.Images[cfg.Image].Present {
		return "", notFound("image", cfg.Image)
	}
	for _, c := range p.containers {
		if c.SandboxID == sandboxID && c.Name == cfg.Name && c.Attempt == cfg.Attempt {
			return "", status.Errorf(codes.AlreadyExists, "container %s attempt %d is reserved", cfg.Name, cfg.Attempt)
		}
	}
	p.seq++
	id := fmt.Sprintf("c%d-%s", p.seq, cfg.Name)
	p.containers[id] = &ContainerStatus{
		Container: Container{ID: id, SandboxID: sandboxID, Name: cfg.Name, Attempt: cfg.Attempt, Image: cfg.Image,
			ImageRef: f.Images[cfg.Image].ID, State: ContainerCreated, CreatedAt: f.now(), Labels: cfg.Labels, Annotations: cfg.Annotations},
		LogPath: p.sandboxes[sandboxID].Config.LogDirectory + "/" + cfg.LogPath,
	}
	p.configs[id] = *cfg
	return id, nil
}

// StartContainer implements the CRI call.
func (f *Fake) StartContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("StartContainer " + id)
	c, ok := f.pods().containers[id]
	if !ok {
		return notFound("container", id)
	}
	if err := f.StartErr[c.Name]; err != nil {
		f.exit(c, 128, "StartError")
		return err
	}
	if c.State != ContainerCreated {
		return status.Errorf(codes.FailedPrecondition, "container %s is %s", id, c.State)
	}
	c.State, c.StartedAt = ContainerRunning, f.now()
	return nil
}

// StopContainer implements the CRI call: a running container exits with
// StopExitCode (default 143, as after SIGTERM).
func (f *Fake) StopContainer(_ context.Context, id string, timeout time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(fmt.Sprintf("StopContainer %s %s", id, timeout))
	c, ok := f.pods().containers[id]
	if !ok {
		return notFound("container", id)
	}
	if c.State == ContainerRunning || c.State == ContainerCreated {
		code := f.StopExitCode
		if code == 0 {
			code = 143
		}
		f.exit(c, code, "Error")
	}
	return nil
}

// RemoveContainer implements the CRI call.
func (f *Fake) RemoveContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemoveContainer " + id)
	delete(f.pods().containers, id)
	delete(f.pods().usage, id)
	return nil
}

// ListContainerStats implements the CRI call: the running containers
// (sorted by ID) with the usage SetUsage gave them (none by default).
func (f *Fake) ListContainerStats(context.Context) ([]ContainerStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListContainerStats")
	if f.StatsErr != nil {
		return nil, f.StatsErr
	}
	p := f.pods()
	var out []ContainerStats
	for id, c := range p.containers {
		if c.State != ContainerRunning {
			continue
		}
		out = append(out, ContainerStats{ID: id, Name: c.Name, Attempt: c.Attempt, Labels: c.Labels, Usage: p.usage[id]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// SetUsage sets what ListContainerStats reports for a container.
func (f *Fake) SetUsage(id string, u Usage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods().usage[id] = u
}

// ListContainers implements the CRI call (sorted by ID).
func (f *Fake) ListContainers(context.Context) ([]Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListContainers")
	if f.ListErr != nil {
		return nil, f.ListErr
	}
	var out []Container
	for _, c := range f.pods().containers {
		out = append(out, c.Container)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ContainerStatus implements the CRI call.
func (f *Fake) ContainerStatus(_ context.Context, id string) (ContainerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ContainerStatus " + id)
	c, ok := f.pods().containers[id]
	if !ok {
		return ContainerStatus{}, notFound("container", id)
	}
	return *c, nil
}

// ExecSync implements the CRI call with ExecFunc (default: exit 0, no output).
func (f *Fake) ExecSync(_ context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error) {
	f.mu.Lock()
	f.record(fmt.Sprintf("ExecSync %s %s", id, strings.Join(cmd, " ")))
	c, ok := f.pods().containers[id]
	fn := f.ExecFunc
	f.mu.Unlock()
	if !ok || c.State != ContainerRunning {
		return ExecResult{}, status.Errorf(codes.NotFound, "container %s is not running", id)
	}
	if fn == nil {
		return ExecResult{}, nil
	}
	return fn(id, cmd, timeout)
}

// PullImage implements the CRI call; PullErr injects per-reference errors.
func (f *Fake) PullImage(_ context.Context, ref string, auth *Auth, _ *SandboxConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := "PullImage " + ref
	if auth != nil {
		call += " auth=" + auth.ServerAddress
	}
	f.record(call)
	if err := f.PullErr[ref]; err != nil {
		return "", err
	}
	f.Images[ref] = Image{Present: true, ID: "sha256:fake-" + ref, RepoTags: []string{ref}, Size: 1 << 20}
	return f.Images[ref].ID, nil
}

// ListImages implements the CRI call (one entry per image ID, sorted).
func (f *Fake) ListImages(context.Context) ([]Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListImages")
	byID := map[string]Image{}
	for _, img := range f.Images {
		if img.Present {
			byID[img.ID] = img
		}
	}
	var out []Image
	for _, img := range byID {
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// RemoveImage implements the CRI call (by ID or reference).
func (f *Fake) RemoveImage(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemoveImage " + ref)
	for k, img := range f.Images {
		if k == ref || img.ID == ref {
			delete(f.Images, k)
		}
	}
	return nil
}

// ImageFsInfo implements the CRI call with FsInfo.
func (f *Fake) ImageFsInfo(context.Context) ([]FsUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ImageFsInfo")
	return append([]FsUsage(nil), f.FsInfo...), nil
}

func (f *Fake) exit(c *ContainerStatus, code int32, reason string) {
	if c.State == ContainerExited {
		return
	}
	if code == 0 {
		reason = "Completed"
	}
	c.State, c.ExitCode, c.Reason, c.FinishedAt = ContainerExited, code, reason, f.now()
}

// Exit makes a container exit with code; reason defaults to Completed or Error.
func (f *Fake) Exit(id string, code int32, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.pods().containers[id]
	if !ok {
		return
	}
	if reason == "" {
		reason = "Error"
	}
	f.exit(c, code, reason)
}

// SetSandboxState changes a sandbox's state (e.g. NotReady after a reboot).
func (f *Fake) SetSandboxState(id string, st SandboxState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sb, ok := f.pods().sandboxes[id]; ok {
		sb.State = st
	}
}

// Sandboxes returns every sandbox with its config, sorted by ID.
func (f *Fake) Sandboxes() []SandboxStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []SandboxStatus
	for _, sb := range f.pods().sandboxes {
		out = append(out, sb.SandboxStatus)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SandboxConfigOf returns the config a sandbox was created with.
func (f *Fake) SandboxConfigOf(id string) (SandboxConfig, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sb, ok := f.pods().sandboxes[id]
	if !ok {
		return SandboxConfig{}, false
	}
	return sb.Config, true
}

// Containers returns every container's status, sorted by ID.
func (f *Fake) Containers() []ContainerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ContainerStatus
	for _, c := range f.pods().containers {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ContainerConfigOf returns the config a container was created with.
func (f *Fake) ContainerConfigOf(id string) (ContainerConfig, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.pods().configs[id]
	return c, ok
}
