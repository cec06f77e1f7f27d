//go:build arm64

package pause

import "embed"

//go:embed all:image/arm64
var images embed.FS
