package agentlet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// CtrImporter imports image archives with containerd's `ctr` tool, which
// ships with containerd: `ctr --address SOCKET -n k8s.io images import -`,
// the archive on stdin. CRI has no import call; the k8s.io namespace is the
// one containerd's CRI plugin serves.
type CtrImporter struct {
	Ctr     string // path or name of ctr; default "ctr" from PATH
	Address string // containerd socket path
}

// Import loads archive into containerd's k8s.io namespace.
func (c CtrImporter) Import(ctx context.Context, archive []byte) error {
	name := c.Ctr
	if name == "" {
		name = "ctr"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("import sandbox image: %s not found (ctr ships with containerd; is containerd installed?): %w", name, err)
	}
	cmd := exec.CommandContext(ctx, path, "--address", c.Address, "-n", "k8s.io", "images", "import", "-")
	cmd.Stdin = bytes.NewReader(archive)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return fmt.Errorf("import sandbox image with %s: %w: %s", name, err, msg)
		}
		return fmt.Errorf("import sandbox image with %s: %w", name, err)
	}
	return nil
}
