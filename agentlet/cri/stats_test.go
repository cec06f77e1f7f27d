package cri

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// statsServer answers ListContainerStats the way containerd does: one
// entry per container with a task; the second without memory.
type statsServer struct {
	runtimeapi.UnimplementedRuntimeServiceServer
}

func (statsServer) ListContainerStats(context.Context, *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	labels := map[string]string{"clusterctl.dev/pod-uid": "u1"}
	return &runtimeapi.ListContainerStatsResponse{Stats: []*runtimeapi.ContainerStats{
		{
			Attributes: &runtimeapi.ContainerAttributes{Id: "c1", Metadata: &runtimeapi.ContainerMetadata{Name: "web", Attempt: 2}, Labels: labels},
			Cpu:        &runtimeapi.CpuUsage{Timestamp: time.Unix(100, 5).UnixNano(), UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: 7e9}},
			Memory:     &runtimeapi.MemoryUsage{Timestamp: time.Unix(100, 6).UnixNano(), WorkingSetBytes: &runtimeapi.UInt64Value{Value: 1 << 20}},
		},
		{
			Attributes: &runtimeapi.ContainerAttributes{Id: "c2", Metadata: &runtimeapi.ContainerMetadata{Name: "side"}},
			Cpu:        &runtimeapi.CpuUsage{Timestamp: time.Unix(101, 0).UnixNano(), UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: 0}},
		},
	}}, nil
}

func TestClientListContainerStats(t *testing.T) {
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
	runtimeapi.RegisterRuntimeServiceServer(srv, statsServer{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	c, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := c.ListContainerStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []ContainerStats{
		{ID: "c1", Name: "web", Attempt: 2, Labels: map[string]string{"clusterctl.dev/pod-uid": "u1"}, Usage: Usage{
			HasCPU: true, CPUAt: time.Unix(100, 5), CPUCoreNanos: 7e9, HasMemory: true, MemoryAt: time.Unix(100, 6), WorkingSetBytes: 1 << 20}},
		{ID: "c2", Name: "side", Usage: Usage{HasCPU: true, CPUAt: time.Unix(101, 0)}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListContainerStats (-want +got):\n%s", diff)
	}
}

func TestFakeListContainerStats(t *testing.T) {
	f := NewFake()
	f.SetImage("busybox", true)
	ctx := context.Background()
	sb, _ := f.RunPodSandbox(ctx, &SandboxConfig{Name: "p", Namespace: "default", UID: "u1"})
	run, _ := f.CreateContainer(ctx, sb, &ContainerConfig{Name: "run", Image: "busybox", Labels: map[string]string{"k": "v"}}, nil)
	created, _ := f.CreateContainer(ctx, sb, &ContainerConfig{Name: "created", Image: "busybox"}, nil)
	if err := f.StartContainer(ctx, run); err != nil {
		t.Fatal(err)
	}
	u := Usage{HasCPU: true, CPUAt: time.Unix(10, 0), CPUCoreNanos: 5, HasMemory: true, MemoryAt: time.Unix(10, 0), WorkingSetBytes: 9}
	f.SetUsage(run, u)
	f.SetUsage(created, u) // not running: not reported
	got, err := f.ListContainerStats(ctx)
	want := []ContainerStats{{ID: run, Name: "run", Labels: map[string]string{"k": "v"}, Usage: u}}
	if err != nil || !cmp.Equal(want, got) {
		t.Errorf("ListContainerStats = %+v, %v; want %+v", got, err, want)
	}
	f.StatsErr = errors.New("boom")
	if _, err := f.ListContainerStats(ctx); err == nil {
		t.Error("StatsErr not returned")
	}
}
