// Package nodeapi is the node contract between clusterctl and agentlet: the
// NodeSpec the CLI pushes to a host and the NodeStatus agentlet reports back.
//
// These are small, versioned JSON types of our own, imported by both binaries.
// They are deliberately not Kubernetes types: the CLI lowers manifests to
// exactly what a node needs, so agentlet never links k8s.io/api.
//
// The package is pure: no I/O beyond the io.Reader handed to the decoders.
package nodeapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// APIVersion is the version of NodeSpec and NodeStatus this build speaks.
const APIVersion = "nodeapi.clusterctl.dev/v1alpha1"

// Well-known paths on a host. Both binaries and the playbooks use them.
const (
	// BinaryPath is where `clusterctl up` installs agentlet.
	BinaryPath = "/usr/local/bin/agentlet"
	// StateDir holds agentlet's persistent state (the NodeSpec it converges to).
	StateDir = "/var/lib/agentlet"
	// SpecPath is the NodeSpec agentlet holds, written atomically by `agentlet apply`.
	SpecPath = StateDir + "/nodespec.json"
	// RunDir holds agentlet's volatile state (status, pid).
	RunDir = "/run/agentlet"
	// StatusPath is where the daemon publishes its current NodeStatus.
	StatusPath = RunDir + "/status.json"
	// PidPath holds the running daemon's PID (and its lock).
	PidPath = RunDir + "/agentlet.pid"
	// ServiceName is the init-system service name of the daemon.
	ServiceName = "agentlet"
	// ChainPrefix prefixes every iptables chain clusterctl owns.
	ChainPrefix = "CLUSTERCTL-"
)

// ClusterInfo is the cluster-wide configuration every node needs.
type ClusterInfo struct {
	Name        string `json:"name"`
	PodCIDR     string `json:"podCIDR"`     // whole cluster pod network, e.g. 10.244.0.0/16
	ServiceCIDR string `json:"serviceCIDR"` // e.g. 10.96.0.0/12
	Domain      string `json:"domain"`      // e.g. cluster.local
}

// NodeSpec is what the CLI wants one node to run. agentlet persists the last
// one it accepted and converges to it with nobody connected.
type NodeSpec struct {
	APIVersion string      `json:"apiVersion"`
	NodeName   string      `json:"nodeName"`
	Cluster    ClusterInfo `json:"cluster"`
	// PodCIDR is this node's slice of Cluster.PodCIDR, allocated by the CLI.
	PodCIDR string `json:"podCIDR"`
	// Generation fences concurrent writers: a node refuses a spec older than
	// the one it holds.
	Generation int64 `json:"generation"`
	// Writer names who produced this spec (user@workstation), for fencing errors.
	Writer string `json:"writer,omitempty"`
	// WrittenAt is when the CLI produced the spec.
	WrittenAt time.Time `json:"writtenAt"`
	// Pods are the pods bound to this node, sorted by namespace/name.
	Pods []PodSpec `json:"pods,omitempty"`
	// Peers are the other nodes, for host-gw routes to their pod CIDRs.
	Peers []Peer `json:"peers,omitempty"`
	// Services are every Service of the cluster with its endpoints.
	Services []ServiceSpec `json:"services,omitempty"`
	// DNS configures the node's cluster DNS server; nil serves none.
	DNS *ClusterDNS `json:"dns,omitempty"`
	// CronJobs are the CronJobs bound to this node, sorted by
	// namespace/name: agentlet fires their runs (cronjobs.go).
	CronJobs []CronJobSpec `json:"cronJobs,omitempty"`
}

// Validate reports every problem with the spec at once.
func (s *NodeSpec) Validate() error {
	var errs []error
	if s.APIVersion != APIVersion {
		errs = append(errs, fmt.Errorf("apiVersion: unsupported %q (want %q)", s.APIVersion, APIVersion))
	}
	if s.NodeName == "" {
		errs = append(errs, errors.New("nodeName: required"))
	}
	if s.Generation < 1 {
		errs = append(errs, fmt.Errorf("generation: must be positive, got %d", s.Generation))
	}
	if s.Cluster.Name == "" {
		errs = append(errs, errors.New("cluster.name: required"))
	}
	cluster, err := netip.ParsePrefix(s.Cluster.PodCIDR)
	if err != nil {
		errs = append(errs, fmt.Errorf("cluster.podCIDR: %w", err))
	}
	if _, err := netip.ParsePrefix(s.Cluster.ServiceCIDR); err != nil {
		errs = append(errs, fmt.Errorf("cluster.serviceCIDR: %w", err))
	}
	node, err2 := netip.ParsePrefix(s.PodCIDR)
	switch {
	case err2 != nil:
		errs = append(errs, fmt.Errorf("podCIDR: %w", err2))
	case err == nil && (!cluster.Contains(node.Addr()) || node.Bits() < cluster.Bits()):
		errs = append(errs, fmt.Errorf("podCIDR: %s is not inside cluster.podCIDR %s", node, cluster))
	}
	seen := map[string]bool{}
	for i := range s.Pods {
		p := &s.Pods[i]
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[p.Key()] {
			errs = append(errs, fmt.Errorf("pod %s: listed twice", p.Key()))
		}
		seen[p.Key()] = true
	}
	seenCron := map[string]bool{}
	for i := range s.CronJobs {
		c := &s.CronJobs[i]
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
		if seenCron[c.Key()] || seenCron[c.UID] {
			errs = append(errs, fmt.Errorf("cronjob %s: listed twice", c.Key()))
		}
		seenCron[c.Key()], seenCron[c.UID] = true, true
	}
	return errors.Join(errs...)
}

// DecodeNodeSpec strictly decodes and validates one NodeSpec.
func DecodeNodeSpec(r io.Reader) (*NodeSpec, error) {
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read node spec: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s NodeSpec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode node spec: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode node spec: trailing data after the JSON object")
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("validate node spec: %w", err)
	}
	return &s, nil
}

// SameContent reports whether two specs ask the node for the same thing: equal
// in everything but who wrote them and when. Re-applying such a spec is a no-op.
func SameContent(a, b *NodeSpec) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.Writer, y.Writer = "", ""
	x.WrittenAt, y.WrittenAt = time.Time{}, time.Time{}
	// Compare encodings: nil and empty lists mean the same on the wire.
	jx, errx := json.Marshal(x)
	jy, erry := json.Marshal(y)
	return errx == nil && erry == nil && bytes.Equal(jx, jy)
}

// ContentSHA256 is a checksum of what a spec asks of its node: everything but
// generation, writer and time. Equal checksums mean SameContent.
func ContentSHA256(s *NodeSpec) string {
	x := *s
	x.Generation, x.Writer, x.WrittenAt = 0, "", time.Time{}
	data, _ := json.Marshal(x) // plain structs: cannot fail
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// StaleGenerationError is returned when a node holds a newer spec than the one
// offered. It names the writer of the newer spec so the user knows whom to ask.
type StaleGenerationError struct {
	Node       string
	Offered    int64
	Held       int64
	HeldWriter string
	HeldAt     time.Time
}

func (e *StaleGenerationError) Error() string {
	return fmt.Sprintf("refuse node spec generation %d on %s: it holds generation %d written by %s at %s; "+
		"your inventory is stale, recover it from the hosts before changing the cluster",
		e.Offered, e.Node, e.Held, e.HeldWriter, e.HeldAt.UTC().Format(time.RFC3339))
}

// CheckFence decides whether offered may replace held (nil when the node holds
// nothing yet). Re-applying the same generation is allowed (idempotent).
func CheckFence(held, offered *NodeSpec) error {
	if held == nil || offered.Generation >= held.Generation {
		return nil
	}
	return &StaleGenerationError{Node: offered.NodeName, Offered: offered.Generation,
		Held: held.Generation, HeldWriter: held.Writer, HeldAt: held.WrittenAt}
}

// Condition types reported in NodeStatus.
const (
	ConditionReady        = "Ready"
	ConditionRuntimeReady = "ContainerRuntimeReady" // CRI answers
	ConditionSandboxImage = "SandboxImageReady"     // the pause image is imported
	ConditionNetworkReady = "NetworkReady"          // CNI config present and runtime network ready
	ConditionSpecApplied  = "SpecApplied"           // the held NodeSpec is converged
)

// Condition statuses.
const (
	True    = "True"
	False   = "False"
	Unknown = "Unknown"
)

// Condition is one aspect of node health, Kubernetes-style.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// Resources is an amount of node resources.
type Resources struct {
	CPUMillis   int64 `json:"cpuMillis"`
	MemoryBytes int64 `json:"memoryBytes"`
	Pods        int64 `json:"pods"`
}

// Sources of NodeUsage.
const (
	// UsageSourceProc: /proc/stat and /proc/meminfo, the kernel's view of
	// the whole machine (every process, not only pods; in the local lab,
	// where hosts share one kernel, every host reports the same machine).
	UsageSourceProc = "proc"
)

// NodeUsage is the host's resource usage over one sampling window, what
// `kubectl top nodes` shows: to be compared with Capacity/Allocatable.
type NodeUsage struct {
	// CPUMillis is the average CPU busy over the window in millicores:
	// user+nice+system+irq+softirq time of /proc/stat's cpu line (guest
	// time included in user and nice; idle, iowait and steal not counted).
	CPUMillis int64 `json:"cpuMillis"`
	// MemoryWorkingSetBytes is MemTotal − MemFree − Inactive(file) from
	// /proc/meminfo at Timestamp: memory in use minus the file cache the
	// kernel reclaims first (the root cgroup's usage − inactive_file that
	// kubelet reports, plus kernel memory no cgroup is charged for).
	MemoryWorkingSetBytes int64 `json:"memoryWorkingSetBytes"`
	// Timestamp is when the counters were read; the window ends there.
	Timestamp time.Time `json:"timestamp"`
	// WindowMillis is how long the CPU average was taken over.
	WindowMillis int64 `json:"windowMillis"`
	// Source says where the numbers come from (UsageSourceProc).
	Source string `json:"source"`
}

// RuntimeInfo describes the container runtime as seen through CRI.
type RuntimeInfo struct {
	Endpoint   string `json:"endpoint"`
	Name       string `json:"name,omitempty"`    // e.g. containerd
	Version    string `json:"version,omitempty"` // e.g. 1.6.20~ds1
	APIVersion string `json:"apiVersion,omitempty"`
	Reachable  bool   `json:"reachable"`
	Error      string `json:"error,omitempty"`
}

// Event is a timestamped message (recent errors, notable transitions).
type Event struct {
	Time    time.Time `json:"time"` // last occurrence
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	// Count is how often the same reason and message occurred since the event
	// was first recorded (repeats update Time and Count instead of piling up).
	Count int `json:"count,omitempty"`
}

// NodeStatus is agentlet's view of its node, published by the daemon and
// returned by `agentlet status`.
type NodeStatus struct {
	APIVersion      string      `json:"apiVersion"`
	NodeName        string      `json:"nodeName,omitempty"`
	Hostname        string      `json:"hostname"`
	AgentletVersion string      `json:"agentletVersion"`
	Kernel          string      `json:"kernel"`
	OS              string      `json:"os"`   // PRETTY_NAME from /etc/os-release
	Arch            string      `json:"arch"` // GOARCH
	CgroupVersion   int         `json:"cgroupVersion"`
	Runtime         RuntimeInfo `json:"runtime"`
	Capacity        Resources   `json:"capacity"`
	Allocatable     Resources   `json:"allocatable"`
	PodCIDR         string      `json:"podCIDR,omitempty"`
	SpecGeneration  int64       `json:"specGeneration"`
	SpecWriter      string      `json:"specWriter,omitempty"`
	Conditions      []Condition `json:"conditions"`
	RecentErrors    []Event     `json:"recentErrors,omitempty"`
	StartedAt       time.Time   `json:"startedAt"`
	HeartbeatAt     time.Time   `json:"heartbeatAt"`
	// HeartbeatIntervalMillis is the daemon's tick interval; a HeartbeatAt
	// older than three intervals means the daemon is not running.
	HeartbeatIntervalMillis int64 `json:"heartbeatIntervalMillis,omitempty"`
	// Pods is the state of every pod agentlet runs, sorted by namespace/name.
	Pods []PodStatus `json:"pods,omitempty"`
	// Usage is the whole host's measured CPU and memory; nil until the
	// daemon has taken two samples, and when it is not running.
	Usage *NodeUsage `json:"usage,omitempty"`
	// DaemonRunning is false when `agentlet status` found no live daemon and
	// answered from the last published file (or from nothing).
	DaemonRunning bool `json:"daemonRunning"`
	// CronJobs are the node-fired CronJob runs and events (cronjobs.go),
	// sorted by namespace/name.
	CronJobs []CronJobStatus `json:"cronJobs,omitempty"`
}

// Condition returns the condition of the given type, if present.
func (s *NodeStatus) Condition(typ string) (Condition, bool) {
	for _, c := range s.Conditions {
		if c.Type == typ {
			return c, true
		}
	}
	return Condition{}, false
}

// Ready reports whether the node's Ready condition is True.
func (s *NodeStatus) Ready() bool {
	c, ok := s.Condition(ConditionReady)
	return ok && c.Status == True
}

// DecodeNodeStatus decodes a NodeStatus, tolerating unknown fields so that an
// older CLI can read a newer agentlet's status.
func DecodeNodeStatus(data []byte) (*NodeStatus, error) {
	var s NodeStatus
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode node status: %w", err)
	}
	if s.APIVersion != APIVersion {
		return nil, fmt.Errorf("decode node status: unsupported apiVersion %q (want %q)", s.APIVersion, APIVersion)
	}
	return &s, nil
}
