package pods

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// fakeMounter records tmpfs mounts instead of mounting.
type fakeMounter struct {
	mounted   map[string]int64
	unmounted []string
	err       error
}

func (f *fakeMounter) MountTmpfs(dir string, size int64) error {
	if f.err != nil {
		return f.err
	}
	if f.mounted == nil {
		f.mounted = map[string]int64{}
	}
	f.mounted[dir] = size
	return nil
}

func (f *fakeMounter) UnmountAll(dir string) error {
	for p := range f.mounted {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			delete(f.mounted, p)
			f.unmounted = append(f.unmounted, p)
		}
	}
	return nil
}

// tree lists a directory: "path mode [-> target]".
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(rel, "..20") {
			rel = "..GEN" + rel[strings.Index(rel+"/", "/"):]
			rel = strings.TrimSuffix(rel, "/")
		}
		s := rel + " " + fi.Mode().String()
		if fi.Mode()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			if strings.HasPrefix(target, "..20") {
				target = "..GEN"
			}
			s = rel + " -> " + target
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	v := &nodeapi.FilesVolume{Secret: true, Items: []nodeapi.FileItem{
		{Path: "token", Data: []byte("s3cret")},
		{Path: "conf/app.yaml", Data: []byte("a: 1\n"), Mode: 0o644},
	}}
	if err := writeFiles(dir, v, nil, at(0)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"..GEN drwxr-xr-x", "..GEN/conf drwxr-xr-x", "..GEN/conf/app.yaml -rw-r--r--", "..GEN/token -rw-------",
		"..data -> ..GEN", "conf -> ..data/conf", "token -> ..data/token",
	}
	if diff := cmp.Diff(want, tree(t, dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "conf/app.yaml")); err != nil || string(data) != "a: 1\n" {
		t.Errorf("read through the links: %q %v", data, err)
	}

	// Unchanged: nothing is rewritten.
	gen, _ := os.Readlink(filepath.Join(dir, dataLink))
	if err := writeFiles(dir, v, nil, at(time.Second)); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, dataLink)); again != gen {
		t.Errorf("unchanged content was rewritten: %s → %s", gen, again)
	}

	// Changed: a new generation, the old one and dropped names gone.
	v2 := &nodeapi.FilesVolume{Secret: true, Items: []nodeapi.FileItem{{Path: "token", Data: []byte("n3w"), Mode: 0o400}}}
	if err := writeFiles(dir, v2, nil, at(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	want = []string{"..GEN drwxr-xr-x", "..GEN/token -r--------", "..data -> ..GEN", "token -> ..data/token"}
	if diff := cmp.Diff(want, tree(t, dir)); diff != "" {
		t.Errorf("tree after update (-want +got):\n%s", diff)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "token")); string(data) != "n3w" {
		t.Errorf("token = %q", data)
	}

	for _, bad := range []string{"/abs", "../up", "a/../../b", "..data", "a//b", ""} {
		err := writeFiles(dir, &nodeapi.FilesVolume{Items: []nodeapi.FileItem{{Path: bad, Data: []byte("x")}}}, nil, at(0))
		if err == nil {
			t.Errorf("path %q accepted", bad)
		} else if strings.Contains(err.Error(), "x") && !strings.Contains(bad, "x") {
			t.Errorf("error mentions file data: %v", err)
		}
	}
}

func TestPrepareVolumes(t *testing.T) {
	root := t.TempDir()
	l := Layout{PodsDir: filepath.Join(root, "pods"), LogsDir: filepath.Join(root, "logs")}
	host := filepath.Join(root, "host")
	p := podOf("web", nodeapi.RestartAlways, "web")
	p.Volumes = []nodeapi.VolumeSpec{
		{Name: "scratch", EmptyDir: &nodeapi.EmptyDirVolume{}},
		{Name: "mem", EmptyDir: &nodeapi.EmptyDirVolume{Medium: "Memory", SizeLimitBytes: 1 << 20}},
		{Name: "made", HostPath: &nodeapi.HostPathVolume{Path: filepath.Join(host, "made"), Type: "DirectoryOrCreate"}},
		{Name: "file", HostPath: &nodeapi.HostPathVolume{Path: filepath.Join(host, "f.txt"), Type: "FileOrCreate"}},
		{Name: "secret", Files: &nodeapi.FilesVolume{Secret: true, Items: []nodeapi.FileItem{{Path: "k", Data: []byte("v")}}}},
	}
	m := &fakeMounter{}
	vols, warnings, err := prepareVolumes(&p, l, m)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("prepareVolumes: %v %v", err, warnings)
	}
	pod := l.PodDir(p.UID)
	want := map[string]VolumePath{
		"scratch": {Path: filepath.Join(pod, "volumes/empty-dir/scratch"), Dir: true},
		"mem":     {Path: filepath.Join(pod, "volumes/empty-dir/mem"), Dir: true},
		"made":    {Path: filepath.Join(host, "made"), Dir: true},
		"file":    {Path: filepath.Join(host, "f.txt")},
		"secret":  {Path: filepath.Join(pod, "volumes/files/secret"), ReadOnly: true},
	}
	if diff := cmp.Diff(want, vols); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int64{want["mem"].Path: 1 << 20, want["secret"].Path: 0}, m.mounted); diff != "" {
		t.Errorf("tmpfs mounts (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(want["scratch"].Path); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("emptyDir: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(host, "f.txt")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("FileOrCreate: %v %v", fi, err)
	}

	// A secret volume whose tmpfs cannot be mounted stays on disk, with a warning.
	_, warnings, err = prepareVolumes(&p, l, &fakeMounter{err: errors.New("EPERM")})
	if err == nil || len(warnings) != 1 || !strings.Contains(warnings[0], "secret volume secret is kept on disk") {
		t.Errorf("mount failure: %v %v", err, warnings)
	}
}

func TestCheckHostPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	tests := []struct {
		path, typ string
		ok        bool
	}{
		{dir, "", true}, {filepath.Join(dir, "missing"), "", true},
		{dir, "Directory", true}, {file, "Directory", false}, {filepath.Join(dir, "missing"), "Directory", false},
		{file, "File", true}, {dir, "File", false},
		{sock, "Socket", true}, {file, "Socket", false},
		{filepath.Join(dir, "new/sub"), "DirectoryOrCreate", true}, {file, "DirectoryOrCreate", false},
		{filepath.Join(dir, "new2/f"), "FileOrCreate", true}, {dir, "FileOrCreate", false},
		{"/dev/null", "CharDevice", true}, {file, "CharDevice", false},
		{"relative", "", false}, {dir, "Bogus", false},
	}
	for _, tt := range tests {
		err := checkHostPath(&nodeapi.HostPathVolume{Path: tt.path, Type: tt.typ})
		if (err == nil) != tt.ok {
			t.Errorf("checkHostPath(%s, %q) = %v, want ok=%v", tt.path, tt.typ, err, tt.ok)
		}
	}
}

func TestMountsBelow(t *testing.T) {
	mi := `22 1 8:1 / / rw - ext4 /dev/vda rw
100 22 0:50 / /var/lib/agentlet/pods/u1/volumes/files/s rw - tmpfs tmpfs rw
101 22 0:51 / /var/lib/agentlet/pods/u1/volumes/empty-dir/my\040dir rw - tmpfs tmpfs rw
102 22 0:52 / /var/lib/agentlet/pods/u10/volumes/files/s rw - tmpfs tmpfs rw
`
	got := mountsBelow([]byte(mi), "/var/lib/agentlet/pods/u1")
	want := []string{"/var/lib/agentlet/pods/u1/volumes/empty-dir/my dir", "/var/lib/agentlet/pods/u1/volumes/files/s"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mountsBelow (-want +got):\n%s", diff)
	}
}

func TestSelfCgroup(t *testing.T) {
	tests := []struct{ in, want string }{
		{"12:memory:/process_api/abc\n11:cpu,cpuacct:/\n0::/\n", "/process_api/abc"},
		{"4:cpu,cpuacct:/lab/h1\n1:name=systemd:/x\n", "/lab/h1"},
		{"0::/system.slice/agentlet.service\n", "/system.slice/agentlet.service"},
		{"1:name=systemd:/user.slice\n0::/user.slice/u.scope\n", "/user.slice/u.scope"},
		{"", "/"},
	}
	for _, tt := range tests {
		if got := SelfCgroup([]byte(tt.in)); got != tt.want {
			t.Errorf("SelfCgroup(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := (Cgroups{Driver: DriverCgroupfs, Root: "/lab/h1"}).PodParent("u-1"); got != "/lab/h1/kubepods/podu-1" {
		t.Errorf("cgroupfs parent %q", got)
	}
	if got := (Cgroups{Driver: DriverCgroupfs, Root: "/"}).PodParent("u-1"); got != "/kubepods/podu-1" {
		t.Errorf("cgroupfs parent at the root %q", got)
	}
	if got := (Cgroups{Driver: DriverSystemd}).PodParent("a-b-c"); got != "kubepods-poda_b_c.slice" {
		t.Errorf("systemd parent %q", got)
	}
}

func TestRemoveCgroup(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"memory/h/kubepods/podu/c1", "memory/h/kubepods/podu/sb", "cpu/h/kubepods/podu", "cpu/h/kubepods/podv"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveCgroup(context.Background(), root, "/h/kubepods/podu"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"memory/h/kubepods/podu", "cpu/h/kubepods/podu"} {
		if _, err := os.Stat(filepath.Join(root, d)); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "cpu/h/kubepods/podv")); err != nil {
		t.Errorf("another pod's cgroup removed: %v", err)
	}
	if err := RemoveCgroup(context.Background(), root, "kubepods-podu.slice"); err != nil {
		t.Errorf("systemd slice: %v", err)
	}
}
