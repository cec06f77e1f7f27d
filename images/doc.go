// Package images builds clusterctl's own small container images with
// go-containerregistry and hands them to containerd: as a docker-archive
// tarball for `ctr images import` and `clusterctl image load`, or pushed to a
// registry such as the local lab's.
//
//   - Build assembles a single-layer image from in-memory file entries
//     (tools/mkimage is its command-line front end; the pause image is made
//     with it). Every timestamp is the Unix epoch and entries are sorted, so
//     the same inputs always give the same bytes.
//   - Busybox is a test image built from the machine's busybox-static: every
//     applet as a symlink, /tmp 1777, /etc/passwd and /etc/group with root
//     and nobody, entrypoint /bin/sh.
//   - WriteArchive writes an image as a docker-archive tarball; Push and
//     PushContext upload it to a registry, over plain HTTP when insecure.
//
// Nothing shipped imports this package: the clusterctl and agentlet binaries
// stay free of go-containerregistry. Build tools and tests use it.
package images
