package images

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BusyboxPaths are where Busybox looks for a statically linked busybox
// (Debian's busybox-static), in order.
func BusyboxPaths() []string { return []string{"/bin/busybox", "/usr/bin/busybox"} }

// Busybox builds a small test image for arch from the machine's
// busybox-static: /bin/busybox with every applet it lists (busybox
// --list-full) as a symlink to it, /tmp (1777), /root (0700), /etc/passwd and
// /etc/group with root and nobody, entrypoint /bin/sh. ref (the name the
// image will be written or pushed as) is checked here so that a bad name
// fails early. The binary must be statically linked and built for arch: the
// machine's busybox serves its own architecture only.
func Busybox(arch, ref string) (v1.Image, error) {
	if _, err := name.NewTag(ref); err != nil {
		return nil, fmt.Errorf("build busybox image: parse reference %q: %w", ref, err)
	}
	bin, err := findBusybox()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("build busybox image: %w", err)
	}
	binArch, static, err := elfInfo(data)
	if err != nil {
		return nil, fmt.Errorf("build busybox image: inspect %s: %w", bin, err)
	}
	switch {
	case !static:
		return nil, fmt.Errorf("build busybox image: %s is dynamically linked; install busybox-static", bin)
	case binArch != arch:
		return nil, fmt.Errorf("build busybox image: %s is built for %s, not %s", bin, binArch, arch)
	case arch != runtime.GOARCH:
		return nil, fmt.Errorf("build busybox image: cannot list the applets of a %s busybox on %s", arch, runtime.GOARCH)
	}
	out, err := exec.Command(bin, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("build busybox image: list applets: %w", err)
	}
	entries, err := busyboxEntries(data, strings.Fields(string(out)))
	if err != nil {
		return nil, fmt.Errorf("build busybox image: %w", err)
	}
	img, err := Build(Spec{Arch: arch, Entries: entries, Entrypoint: []string{"/bin/sh"}, CreatedBy: "clusterctl images.Busybox"})
	if err != nil {
		return nil, fmt.Errorf("build busybox image: %w", err)
	}
	return img, nil
}

func findBusybox() (string, error) {
	for _, p := range BusyboxPaths() {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("build busybox image: no busybox in %s (apt-get install busybox-static)", strings.Join(BusyboxPaths(), ", "))
}

// busyboxEntries is the layer of the busybox image: the binary, one symlink
// per applet path (as busybox --list-full prints them, relative to /), and
// the few files every image needs.
func busyboxEntries(binary []byte, applets []string) ([]Entry, error) {
	entries := []Entry{
		{Path: "/bin/busybox", Type: tar.TypeReg, Mode: 0o755, Data: binary},
		{Path: "/tmp", Type: tar.TypeDir, Mode: 0o1777},
		{Path: "/root", Type: tar.TypeDir, Mode: 0o700},
		{Path: "/etc/passwd", Type: tar.TypeReg, Mode: 0o644, Data: []byte(
			"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "/etc/group", Type: tar.TypeReg, Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\n")},
	}
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Path] = true
	}
	for _, a := range applets {
		p := path.Clean("/" + a)
		if p == "/" || seen[p] {
			continue
		}
		if slices.ContainsFunc(entries, func(e Entry) bool { return e.Type == tar.TypeReg && strings.HasPrefix(p, e.Path+"/") }) {
			return nil, fmt.Errorf("applet %s lies below a file", p)
		}
		seen[p] = true
		entries = append(entries, Entry{Path: p, Type: tar.TypeSymlink, Mode: 0o777, Linkname: "/bin/busybox"})
	}
	if !seen["/bin/sh"] {
		return nil, errors.New("busybox has no sh applet")
	}
	return entries, nil
}

// elfInfo returns the GOARCH an ELF binary is built for and whether it is
// statically linked (no program interpreter).
func elfInfo(data []byte) (arch string, static bool, err error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		arch = "amd64"
	case elf.EM_AARCH64:
		arch = "arm64"
	case elf.EM_386:
		arch = "386"
	case elf.EM_ARM:
		arch = "arm"
	case elf.EM_RISCV:
		arch = "riscv64"
	case elf.EM_S390:
		arch = "s390x"
	case elf.EM_PPC64:
		arch = "ppc64le"
	default:
		return "", false, fmt.Errorf("unknown ELF machine %s", f.Machine)
	}
	static = true
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			static = false
		}
	}
	return arch, static, nil
}
