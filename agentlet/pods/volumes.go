package pods

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Volume kinds, the directory names under <pod>/volumes.
const (
	kindEmptyDir = "empty-dir"
	kindFiles    = "files"
)

// Mounter mounts the tmpfs file systems of memory-backed emptyDirs and
// secret volumes. HostMounter is the real one.
type Mounter interface {
	// MountTmpfs mounts a tmpfs at dir unless one is mounted there.
	MountTmpfs(dir string, sizeBytes int64) error
	// UnmountAll unmounts every mount at or below dir, deepest first.
	UnmountAll(dir string) error
}

// prepareVolumes makes every volume of a pod on the host and returns where
// they are. Warnings are problems worked around (a secret volume on disk
// because tmpfs could not be mounted). File contents never appear in errors.
func prepareVolumes(spec *nodeapi.PodSpec, l Layout, m Mounter) (map[string]VolumePath, []string, error) {
	out := map[string]VolumePath{}
	var warnings []string
	var errs []error
	for _, v := range spec.Volumes {
		switch {
		case v.EmptyDir != nil:
			dir := l.VolumeDir(spec.UID, kindEmptyDir, v.Name)
			if err := os.MkdirAll(dir, 0o777); err != nil {
				errs = append(errs, fmt.Errorf("volume %s: %w", v.Name, err))
				continue
			}
			if v.EmptyDir.Medium == "Memory" {
				if err := m.MountTmpfs(dir, v.EmptyDir.SizeLimitBytes); err != nil {
					errs = append(errs, fmt.Errorf("volume %s: %w", v.Name, err))
					continue
				}
			}
			// Anyone in the pod may write, as in Kubernetes (umask-proof).
			if err := os.Chmod(dir, 0o777); err != nil {
				errs = append(errs, fmt.Errorf("volume %s: %w", v.Name, err))
				continue
			}
			out[v.Name] = VolumePath{Path: dir, Dir: true}
		case v.HostPath != nil:
			if err := checkHostPath(v.HostPath); err != nil {
				errs = append(errs, fmt.Errorf("volume %s: %w", v.Name, err))
				continue
			}
			out[v.Name] = VolumePath{Path: v.HostPath.Path, Dir: v.HostPath.Type == "DirectoryOrCreate"}
		case v.Files != nil:
			dir := l.VolumeDir(spec.UID, kindFiles, v.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				errs = append(errs, fmt.Errorf("volume %s: %w", v.Name, err))
				continue
			}
			if v.Files.Secret {
				if err := m.MountTmpfs(dir, 0); err != nil {
					warnings = append(warnings, fmt.Sprintf("secret volume %s is kept on disk: %v", v.Name, err))
				}
			}
			var gid *int64
			if spec.SecurityContext != nil {
				gid = spec.SecurityContext.FSGroup
			}
			if err := writeFiles(dir, v.Files, gid, time.Now()); err != nil {
				errs = append(errs, fmt.Errorf("volume %s: %w", v.Name, err))
				continue
			}
			out[v.Name] = VolumePath{Path: dir, ReadOnly: true}
		}
	}
	return out, warnings, errors.Join(errs...)
}

// checkHostPath applies a hostPath volume's type.
func checkHostPath(h *nodeapi.HostPathVolume) error {
	if !filepath.IsAbs(h.Path) {
		return fmt.Errorf("hostPath %q is not absolute", h.Path)
	}
	fi, err := os.Stat(h.Path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("check hostPath: %w", err)
	}
	want := func(ok bool, what string) error {
		if !exists {
			return fmt.Errorf("hostPath %s: does not exist (type %s)", h.Path, h.Type)
		}
		if !ok {
			return fmt.Errorf("hostPath %s: is not a %s (type %s)", h.Path, what, h.Type)
		}
		return nil
	}
	switch h.Type {
	case "":
		return nil
	case "DirectoryOrCreate":
		if exists {
			return want(fi.IsDir(), "directory")
		}
		if err := os.MkdirAll(h.Path, 0o755); err != nil {
			return fmt.Errorf("create hostPath: %w", err)
		}
		return nil
	case "Directory":
		return want(exists && fi.IsDir(), "directory")
	case "FileOrCreate":
		if exists {
			return want(fi.Mode().IsRegular(), "file")
		}
		if err := os.MkdirAll(filepath.Dir(h.Path), 0o755); err != nil {
			return fmt.Errorf("create hostPath: %w", err)
		}
		f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("create hostPath: %w", err)
		}
		return f.Close()
	case "File":
		return want(exists && fi.Mode().IsRegular(), "file")
	case "Socket":
		return want(exists && fi.Mode()&fs.ModeSocket != 0, "socket")
	case "CharDevice":
		return want(exists && fi.Mode()&fs.ModeCharDevice != 0, "character device")
	case "BlockDevice":
		return want(exists && fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0, "block device")
	default:
		return fmt.Errorf("hostPath %s: unsupported type %q", h.Path, h.Type)
	}
}

// dataLink is the symlink naming the current generation of a files volume.
const dataLink = "..data"

// fileMode is an item's mode: its own, else 0600 for secrets and 0644
// otherwise; with an fsGroup the group may read.
func fileMode(item nodeapi.FileItem, secret bool, gid *int64) os.FileMode {
	mode := os.FileMode(item.Mode) & os.ModePerm
	if item.Mode == 0 {
		mode = 0o644
		if secret {
			mode = 0o600
		}
	}
	if gid != nil {
		mode |= 0o040
	}
	return mode
}

// validItemPath checks a file item's path: relative, clean, no "..", not
// starting with ".." (reserved for the generations).
func validItemPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "..") {
		return fmt.Errorf("file path %q must be relative, clean and not start with ..", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Errorf("file path %q must not contain ..", p)
		}
	}
	return nil
}

// writeFiles makes dir hold exactly the volume's files, atomically, the way
// kubelet's atomic writer does: the files go into a new generation
// directory, the ..data symlink is swapped to it with one rename, and each
// top-level name is a symlink through ..data. A reader sees the old or the
// new set, never a mix. Nothing is written when the content is current.
func writeFiles(dir string, v *nodeapi.FilesVolume, gid *int64, now time.Time) error {
	want := map[string]nodeapi.FileItem{}
	for _, it := range v.Items {
		if err := validItemPath(it.Path); err != nil {
			return err
		}
		want[it.Path] = it
	}
	if current(dir, want, v.Secret, gid) {
		return nil
	}
	gen, err := os.MkdirTemp(dir, ".."+now.UTC().Format("2006_01_02_15_04_05.")+"*")
	if err != nil {
		return fmt.Errorf("write files: %w", err)
	}
	if err := os.Chmod(gen, 0o755); err != nil {
		return fmt.Errorf("write files: %w", err)
	}
	for _, p := range sortedKeys(want) {
		it := want[p]
		dst := filepath.Join(gen, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("write files: %w", err)
		}
		mode := fileMode(it, v.Secret, gid)
		if err := os.WriteFile(dst, it.Data, mode); err != nil {
			return fmt.Errorf("write file %s: %w", p, errors.Unwrap(err))
		}
		if err := os.Chmod(dst, mode); err != nil {
			return fmt.Errorf("chmod file %s: %w", p, err)
		}
		if gid != nil {
			if err := os.Chown(dst, -1, int(*gid)); err != nil {
				return fmt.Errorf("chown file %s: %w", p, err)
			}
		}
	}
	// Swap ..data to the new generation with one rename.
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	tmpLink := filepath.Join(dir, dataLink+"_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(gen), tmpLink); err != nil {
		return fmt.Errorf("write files: %w", err)
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataLink)); err != nil {
		return fmt.Errorf("write files: %w", err)
	}
	// Top-level names point through ..data.
	top := map[string]bool{}
	for p := range want {
		first, _, _ := strings.Cut(p, "/")
		top[first] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("write files: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") || top[name] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("write files: %w", err)
		}
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join(dataLink, name) {
			continue
		}
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join(dataLink, name), link); err != nil {
			return fmt.Errorf("write files: %w", err)
		}
	}
	if old != "" && old != filepath.Base(gen) && strings.HasPrefix(old, "..") {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			return fmt.Errorf("write files: remove old generation: %w", err)
		}
	}
	return nil
}

// current reports whether dir's current generation holds exactly want.
func current(dir string, want map[string]nodeapi.FileItem, secret bool, gid *int64) bool {
	gen := filepath.Join(dir, dataLink)
	if _, err := os.Stat(gen); err != nil {
		return false
	}
	var have []string
	err := filepath.WalkDir(gen+"/", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(gen+"/", p)
		if err != nil {
			return err
		}
		have = append(have, filepath.ToSlash(rel))
		return nil
	})
	if err != nil || len(have) != len(want) {
		return false
	}
	sort.Strings(have)
	for _, p := range have {
		it, ok := want[p]
		if !ok {
			return false
		}
		fi, err := os.Stat(filepath.Join(gen, p))
		if err != nil || fi.Mode().Perm() != fileMode(it, secret, gid) {
			return false
		}
		data, err := os.ReadFile(filepath.Join(gen, p))
		if err != nil || !bytes.Equal(data, it.Data) {
			return false
		}
	}
	return true
}
