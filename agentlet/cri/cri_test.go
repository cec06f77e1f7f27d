package cri

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// server is a CRI runtime on a unix socket answering the calls the client
// makes, the way containerd does.
type server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer
	images map[string]*runtimeapi.Image
}

func (s *server) Version(_ context.Context, r *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "containerd", RuntimeVersion: "1.6.20~ds1", RuntimeApiVersion: "v1"}, nil
}

func (s *server) Status(context.Context, *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		{Type: runtimeapi.NetworkReady, Status: false, Reason: "NetworkPluginNotReady", Message: "cni plugin not initialized"},
	}}}, nil
}

func (s *server) ImageStatus(_ context.Context, r *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	return &runtimeapi.ImageStatusResponse{Image: s.images[r.GetImage().GetImage()]}, nil
}

func startServer(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cri-test-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "cri.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	s := &server{images: map[string]*runtimeapi.Image{
		"localhost/clusterctl/pause:1": {Id: "sha256:abc", RepoTags: []string{"localhost/clusterctl/pause:1"}, Size: 1234},
	}}
	runtimeapi.RegisterRuntimeServiceServer(srv, s)
	runtimeapi.RegisterImageServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return sock
}

func TestClient(t *testing.T) {
	sock := startServer(t)
	c, err := Dial("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Version{RuntimeName: "containerd", RuntimeVersion: "1.6.20~ds1", RuntimeAPIVersion: "v1"}, v); diff != "" {
		t.Errorf("Version (-want +got):\n%s", diff)
	}

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := st.Condition(ConditionRuntimeReady); !ok || !c.Status {
		t.Errorf("RuntimeReady = %+v, %v", c, ok)
	}
	want := Condition{Type: ConditionNetworkReady, Reason: "NetworkPluginNotReady", Message: "cni plugin not initialized"}
	if c, _ := st.Condition(ConditionNetworkReady); c != want {
		t.Errorf("NetworkReady = %+v, want %+v", c, want)
	}

	img, err := c.ImageStatus(ctx, "localhost/clusterctl/pause:1")
	if err != nil {
		t.Fatal(err)
	}
	if !img.Present || img.ID != "sha256:abc" || img.Size != 1234 {
		t.Errorf("ImageStatus(pause) = %+v", img)
	}
	img, err = c.ImageStatus(ctx, "docker.io/library/absent:1")
	if err != nil || img.Present {
		t.Errorf("ImageStatus(absent) = %+v, %v; want not present", img, err)
	}
}

func TestClientRuntimeDown(t *testing.T) {
	c, err := Dial(filepath.Join(t.TempDir(), "missing.sock")) // bare path form
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.Version(ctx)
	if err == nil || !strings.Contains(err.Error(), "get CRI version") {
		t.Fatalf("err = %v, want a wrapped connection error", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("a missing socket took %s to fail; calls must fail fast", time.Since(start))
	}
}

func TestSocketPath(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "unix:///run/containerd/containerd.sock", want: "/run/containerd/containerd.sock"},
		{in: "/run/x.sock", want: "/run/x.sock"},
		{in: "tcp://1.2.3.4:5", wantErr: "only unix://"},
		{in: "unix://relative.sock", wantErr: "absolute"},
		{in: "x.sock", wantErr: "absolute"},
	}
	for _, tt := range tests {
		got, err := SocketPath(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("SocketPath(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("SocketPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestFake(t *testing.T) {
	f := NewFake()
	ctx := context.Background()
	if img, _ := f.ImageStatus(ctx, "x"); img.Present {
		t.Error("fresh fake has images")
	}
	f.SetImage("x", true)
	if img, _ := f.ImageStatus(ctx, "x"); !img.Present {
		t.Error("SetImage did not add")
	}
	f.VersionErr = errors.New("boom")
	if _, err := f.Version(ctx); err == nil {
		t.Error("VersionErr not injected")
	}
	f.SetCondition(ConditionNetworkReady, false, "R", "M")
	st, _ := f.Status(ctx)
	if c, _ := st.Condition(ConditionNetworkReady); c.Status || c.Reason != "R" {
		t.Errorf("SetCondition: %+v", c)
	}
	want := []string{"ImageStatus x", "ImageStatus x", "Version", "Status"}
	if diff := cmp.Diff(want, f.TakeCalls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
