// Package cri is agentlet's narrow client of the Kubernetes Container Runtime
// Interface (k8s.io/cri-api v1 over gRPC on a unix socket), exposing only what
// the node agent uses, in small types of its own so that callers and fakes do
// not depend on the generated protobuf types.
//
// Fake is an in-memory stand-in for tests: it records calls and injects errors.
package cri

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultEndpoint is containerd's CRI socket.
const DefaultEndpoint = "unix:///run/containerd/containerd.sock"

// CRI runtime condition types (as reported by RuntimeStatus).
const (
	ConditionRuntimeReady = runtimeapi.RuntimeReady
	ConditionNetworkReady = runtimeapi.NetworkReady
)

// Version describes the runtime behind the socket.
type Version struct {
	RuntimeName       string // e.g. containerd
	RuntimeVersion    string // e.g. 1.6.20~ds1
	RuntimeAPIVersion string // e.g. v1
}

// Condition is one CRI runtime condition.
type Condition struct {
	Type    string
	Status  bool
	Reason  string
	Message string
}

// Status is the runtime's view of its own health.
type Status struct {
	Conditions []Condition
}

// Condition returns the condition of the given type, if reported.
func (s Status) Condition(typ string) (Condition, bool) {
	for _, c := range s.Conditions {
		if c.Type == typ {
			return c, true
		}
	}
	return Condition{}, false
}

// Image is what ImageStatus reports about one image reference.
type Image struct {
	Present     bool
	ID          string
	RepoTags    []string
	RepoDigests []string
	Size        uint64
	Pinned      bool
}

// Client talks CRI to one runtime endpoint. It is safe for concurrent use.
type Client struct {
	endpoint string
	conn     *grpc.ClientConn
	runtime  runtimeapi.RuntimeServiceClient
	images   runtimeapi.ImageServiceClient
}

// Dial prepares a client for endpoint ("unix:///path" or a bare socket path).
// It does not connect: the connection is made on the first call and re-made
// after the runtime restarts, with a back-off capped at two seconds so a
// restarted containerd is seen again within one agent tick or two.
func Dial(endpoint string) (*Client, error) {
	target, err := Target(endpoint)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   2 * time.Second,
			},
			MinConnectTimeout: 2 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("create CRI client for %s: %w", endpoint, err)
	}
	return &Client{
		endpoint: endpoint,
		conn:     conn,
		runtime:  runtimeapi.NewRuntimeServiceClient(conn),
		images:   runtimeapi.NewImageServiceClient(conn),
	}, nil
}

// Target turns an endpoint into a gRPC target; only unix sockets are accepted.
func Target(endpoint string) (string, error) {
	path, err := SocketPath(endpoint)
	if err != nil {
		return "", err
	}
	return "unix://" + path, nil
}

// SocketPath returns the file system path of a unix socket endpoint.
func SocketPath(endpoint string) (string, error) {
	switch {
	case strings.HasPrefix(endpoint, "unix://"):
		endpoint = strings.TrimPrefix(endpoint, "unix://")
	case strings.Contains(endpoint, "://"):
		return "", fmt.Errorf("parse runtime endpoint %q: only unix:// sockets are supported", endpoint)
	}
	if !strings.HasPrefix(endpoint, "/") {
		return "", fmt.Errorf("parse runtime endpoint %q: want an absolute socket path", endpoint)
	}
	return endpoint, nil
}

// Endpoint returns the endpoint the client was dialled with.
func (c *Client) Endpoint() string { return c.endpoint }

// Version asks the runtime for its name and version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	r, err := c.runtime.Version(ctx, &runtimeapi.VersionRequest{Version: "v1"})
	if err != nil {
		return Version{}, fmt.Errorf("get CRI version: %w", err)
	}
	return Version{
		RuntimeName:       r.GetRuntimeName(),
		RuntimeVersion:    r.GetRuntimeVersion(),
		RuntimeAPIVersion: r.GetRuntimeApiVersion(),
	}, nil
}

// Status asks the runtime for its conditions (RuntimeReady, NetworkReady).
func (c *Client) Status(ctx context.Context) (Status, error) {
	r, err := c.runtime.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return Status{}, fmt.Errorf("get CRI status: %w", err)
	}
	if r.GetStatus() == nil {
		return Status{}, errors.New("get CRI status: runtime returned no status")
	}
	var s Status
	for _, c := range r.GetStatus().GetConditions() {
		s.Conditions = append(s.Conditions, Condition{
			Type: c.GetType(), Status: c.GetStatus(), Reason: c.GetReason(), Message: c.GetMessage(),
		})
	}
	return s, nil
}

// ImageStatus reports whether ref is present in the runtime's image store.
func (c *Client) ImageStatus(ctx context.Context, ref string) (Image, error) {
	r, err := c.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		return Image{}, fmt.Errorf("get CRI image status of %s: %w", ref, err)
	}
	img := r.GetImage()
	if img == nil {
		return Image{}, nil
	}
	return Image{Present: true, ID: img.GetId(), RepoTags: img.GetRepoTags(), RepoDigests: img.GetRepoDigests(),
		Size: img.GetSize(), Pinned: img.GetPinned()}, nil
}

// Close releases the connection.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("close CRI client: %w", err)
	}
	return nil
}
