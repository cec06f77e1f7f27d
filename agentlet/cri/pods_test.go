package cri

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podServer answers the pod calls and records the requests.
type podServer struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer
	run    *runtimeapi.RunPodSandboxRequest
	create *runtimeapi.CreateContainerRequest
	exec   *runtimeapi.ExecSyncRequest
	stop   *runtimeapi.StopContainerRequest
	pull   *runtimeapi.PullImageRequest
}

func (s *podServer) RunPodSandbox(_ context.Context, r *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	s.run = r
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: "sb1"}, nil
}

func (s *podServer) PodSandboxStatus(_ context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	if r.PodSandboxId != "sb1" {
		return nil, status.Error(codes.NotFound, "no such sandbox")
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{Id: "sb1", State: runtimeapi.PodSandboxState_SANDBOX_READY,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u1", Attempt: 2},
		Network:  &runtimeapi.PodSandboxNetworkStatus{Ip: "10.244.1.9"}}}, nil
}

func (s *podServer) CreateContainer(_ context.Context, r *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	s.create = r
	return &runtimeapi.CreateContainerResponse{ContainerId: "c1"}, nil
}

func (s *podServer) StopContainer(_ context.Context, r *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	s.stop = r
	return &runtimeapi.StopContainerResponse{}, nil
}

func (s *podServer) ContainerStatus(_ context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: "c1", State: runtimeapi.ContainerState_CONTAINER_EXITED,
		Metadata: &runtimeapi.ContainerMetadata{Name: "web", Attempt: 3}, ExitCode: 137, Reason: "OOMKilled",
		StartedAt: time.Unix(100, 0).UnixNano(), FinishedAt: time.Unix(200, 0).UnixNano(), LogPath: "/var/log/pods/x/web/3.log"}}, nil
}

func (s *podServer) ExecSync(_ context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	s.exec = r
	return &runtimeapi.ExecSyncResponse{Stdout: []byte("out"), Stderr: []byte("err"), ExitCode: 3}, nil
}

func (s *podServer) PullImage(_ context.Context, r *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	s.pull = r
	return &runtimeapi.PullImageResponse{ImageRef: "sha256:1"}, nil
}

func TestClientPods(t *testing.T) {
	dir, err := os.MkdirTemp("", "cri-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "cri.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	s := &podServer{}
	runtimeapi.RegisterRuntimeServiceServer(srv, s)
	runtimeapi.RegisterImageServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	c, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	uid := int64(1000)
	sc := &SandboxConfig{Name: "web", Namespace: "default", UID: "u1", Attempt: 1, Hostname: "web", LogDirectory: "/var/log/pods/default_web_u1",
		DNS: &DNSConfig{Servers: []string{"10.96.0.10"}}, PortMappings: []PortMapping{{Protocol: "UDP", ContainerPort: 53, HostPort: 5353}},
		CgroupParent: "/kubepods/podu1", RunAsUser: &uid}
	if id, err := c.RunPodSandbox(ctx, sc); err != nil || id != "sb1" {
		t.Fatalf("RunPodSandbox = %q, %v", id, err)
	}
	if s.run.Config.Linux.CgroupParent != "/kubepods/podu1" || s.run.Config.Linux.SecurityContext.RunAsUser.Value != 1000 ||
		s.run.Config.PortMappings[0].Protocol != runtimeapi.Protocol_UDP || s.run.Config.DnsConfig.Servers[0] != "10.96.0.10" ||
		s.run.Config.Linux.SecurityContext.NamespaceOptions.Network != runtimeapi.NamespaceMode_POD {
		t.Errorf("sandbox request: %v", s.run)
	}
	st, err := c.PodSandboxStatus(ctx, "sb1")
	if err != nil || st.IP != "10.244.1.9" || st.State != SandboxReady || st.Attempt != 2 {
		t.Errorf("PodSandboxStatus = %+v, %v", st, err)
	}
	if _, err := c.PodSandboxStatus(ctx, "nope"); !IsNotFound(err) {
		t.Errorf("missing sandbox: %v (not found: %v)", err, IsNotFound(err))
	}
	cc := &ContainerConfig{Name: "web", Attempt: 3, Image: "busybox", Env: []KeyValue{{Key: "A", Value: "b"}},
		Mounts: []Mount{{ContainerPath: "/x", HostPath: "/h", Readonly: true}}, LogPath: "web/3.log",
		Resources: Resources{CPUShares: 102, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimitBytes: 1 << 26}, ReadonlyRootfs: true}
	if id, err := c.CreateContainer(ctx, "sb1", cc, sc); err != nil || id != "c1" {
		t.Fatalf("CreateContainer = %q, %v", id, err)
	}
	cfg := s.create.Config
	if string(cfg.Envs[0].Value) != "b" || !cfg.Mounts[0].Readonly || cfg.Linux.Resources.MemoryLimitInBytes != 1<<26 ||
		cfg.Linux.Resources.CpuQuota != 50000 || !cfg.Linux.SecurityContext.ReadonlyRootfs || cfg.LogPath != "web/3.log" ||
		s.create.SandboxConfig.Metadata.Uid != "u1" {
		t.Errorf("container request: %v", s.create)
	}
	cs, err := c.ContainerStatus(ctx, "c1")
	want := ContainerStatus{Container: Container{ID: "c1", Name: "web", Attempt: 3, State: ContainerExited},
		StartedAt: time.Unix(100, 0), FinishedAt: time.Unix(200, 0), ExitCode: 137, Reason: "OOMKilled", LogPath: "/var/log/pods/x/web/3.log"}
	if err != nil || !cmp.Equal(want, cs) {
		t.Errorf("ContainerStatus = %+v, %v", cs, err)
	}
	r, err := c.ExecSync(ctx, "c1", []string{"sh"}, 1500*time.Millisecond)
	if err != nil || string(r.Stdout) != "out" || string(r.Stderr) != "err" || r.ExitCode != 3 || s.exec.Timeout != 2 {
		t.Errorf("ExecSync = %+v %v (timeout %d)", r, err, s.exec.Timeout)
	}
	if err := c.StopContainer(ctx, "c1", 30*time.Second); err != nil || s.stop.Timeout != 30 {
		t.Errorf("StopContainer: %v timeout %d", err, s.stop.Timeout)
	}
	if ref, err := c.PullImage(ctx, "reg:5000/x", &Auth{Username: "u", Password: "p", ServerAddress: "reg:5000"}, sc); err != nil ||
		ref != "sha256:1" || s.pull.Auth.Username != "u" || s.pull.Auth.ServerAddress != "reg:5000" {
		t.Errorf("PullImage = %q %v %v", ref, err, s.pull)
	}
}
