//go:build amd64

package pause

import "embed"

//go:embed all:image/amd64
var images embed.FS
