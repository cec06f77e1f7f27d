package cri

import (
	"context"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Usage is one cgroup's resource usage as the runtime read it: cumulative
// CPU time and the current memory working set. The Has fields say which
// parts were reported; a zero time means the runtime gave none.
type Usage struct {
	HasCPU bool
	CPUAt  time.Time
	// CPUCoreNanos is the CPU time used since the cgroup was created, in
	// core-nanoseconds (cumulative: a rate needs two samples).
	CPUCoreNanos uint64
	HasMemory    bool
	MemoryAt     time.Time
	// WorkingSetBytes is the memory in use minus the inactive file cache,
	// the number kubelet evicts on and metrics-server reports.
	WorkingSetBytes uint64
}

// ContainerStats is one container's usage as ListContainerStats reports it.
type ContainerStats struct {
	ID      string
	Name    string
	Attempt uint32
	Labels  map[string]string
	Usage
}

// ListContainerStats reports the usage of every container that has a
// running task, in one call, as kubelet's CRI stats provider asks for it.
//
// ListPodSandboxStats is not used: containerd 1.6.20 implements it, but
// it also reads every sandbox's network statistics inside its network
// namespace and costs about six times as much (measured: 10 pods with 20
// containers, ≈200 ms against ≈35 ms), while the pod usage agentlet
// reports is the sum of its containers', as metrics-server computes it.
func (c *Client) ListContainerStats(ctx context.Context) ([]ContainerStats, error) {
	r, err := c.runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
	if err != nil {
		return nil, fmt.Errorf("list container stats: %w", err)
	}
	out := make([]ContainerStats, 0, len(r.GetStats()))
	for _, s := range r.GetStats() {
		a := s.GetAttributes()
		cs := ContainerStats{ID: a.GetId(), Name: a.GetMetadata().GetName(), Attempt: a.GetMetadata().GetAttempt(),
			Labels: a.GetLabels()}
		if cpu := s.GetCpu(); cpu.GetUsageCoreNanoSeconds() != nil {
			cs.HasCPU, cs.CPUAt, cs.CPUCoreNanos = true, unixNano(cpu.GetTimestamp()), cpu.GetUsageCoreNanoSeconds().GetValue()
		}
		if mem := s.GetMemory(); mem.GetWorkingSetBytes() != nil {
			cs.HasMemory, cs.MemoryAt, cs.WorkingSetBytes = true, unixNano(mem.GetTimestamp()), mem.GetWorkingSetBytes().GetValue()
		}
		out = append(out, cs)
	}
	return out, nil
}
