package agentlet

import (
	"path/filepath"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Paths locates agentlet's files on a host. Root prefixes every path (empty
// on real hosts), so tests and labs never touch the real /var/lib or /run.
type Paths struct {
	Root string
}

func (p Paths) join(path string) string {
	if p.Root == "" {
		return path
	}
	return filepath.Join(p.Root, path)
}

// StateDir is nodeapi.StateDir under Root.
func (p Paths) StateDir() string { return p.join(nodeapi.StateDir) }

// SpecPath is nodeapi.SpecPath under Root.
func (p Paths) SpecPath() string { return p.join(nodeapi.SpecPath) }

// RunDir is nodeapi.RunDir under Root.
func (p Paths) RunDir() string { return p.join(nodeapi.RunDir) }

// StatusPath is nodeapi.StatusPath under Root.
func (p Paths) StatusPath() string { return p.join(nodeapi.StatusPath) }

// PidPath is nodeapi.PidPath under Root.
func (p Paths) PidPath() string { return p.join(nodeapi.PidPath) }

// PodsDir is nodeapi.PodsDir under Root.
func (p Paths) PodsDir() string { return p.join(nodeapi.PodsDir) }

// PodLogsDir is nodeapi.PodLogsDir under Root.
func (p Paths) PodLogsDir() string { return p.join(nodeapi.PodLogsDir) }
