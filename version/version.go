// Package version holds the build version of clusterctl and agentlet.
//
// Version is the one package-level variable in the project: the linker sets
// it with -ldflags "-X github.com/clusterctl/clusterctl/version.Version=...".
package version

// Version is the release version, "dev" for untagged builds.
var Version = "dev"

// PauseImage is the sandbox (pause) image agentlet ships embedded, imports into
// containerd, and `clusterctl up` configures as containerd's sandbox_image.
// Bump the tag whenever cmd/pause changes.
const PauseImage = "localhost/clusterctl/pause:1"
