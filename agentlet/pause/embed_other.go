//go:build !amd64 && !arm64

package pause

import "embed"

// images is empty: clusterctl ships agentlet for amd64 and arm64 only.
var images embed.FS
