package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type tarEntry struct {
	Name, Link string
	Type       byte
	Mode       int64
	Size       int64
	ModTime    time.Time
	Uid, Gid   int
}

func readTar(t *testing.T, r io.Reader) ([]tarEntry, map[string][]byte) {
	t.Helper()
	var entries []tarEntry
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries, files
		}
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, tarEntry{Name: h.Name, Link: h.Linkname, Type: h.Typeflag, Mode: h.Mode, Size: h.Size,
			ModTime: h.ModTime.UTC(), Uid: h.Uid, Gid: h.Gid})
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
}

func TestLayerTar(t *testing.T) {
	entries := []Entry{
		{Path: "/bin/busybox", Type: tar.TypeReg, Mode: 0o755, Data: []byte("BB")},
		{Path: "/bin/sh", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "busybox"},
		{Path: "/tmp", Type: tar.TypeDir, Mode: 0o1777},
		{Path: "etc/motd", Type: tar.TypeReg, Mode: 0o644, Data: []byte("hi\n")},
	}
	data, err := LayerTar(entries)
	if err != nil {
		t.Fatal(err)
	}
	got, files := readTar(t, bytes.NewReader(data))
	epoch := time.Unix(0, 0).UTC()
	want := []tarEntry{
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o755, ModTime: epoch},
		{Name: "bin/busybox", Type: tar.TypeReg, Mode: 0o755, Size: 2, ModTime: epoch},
		{Name: "bin/sh", Link: "busybox", Type: tar.TypeSymlink, Mode: 0o777, ModTime: epoch},
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o755, ModTime: epoch},
		{Name: "etc/motd", Type: tar.TypeReg, Mode: 0o644, Size: 3, ModTime: epoch},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777, ModTime: epoch},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer (-want +got):\n%s", diff)
	}
	if string(files["etc/motd"]) != "hi\n" {
		t.Errorf("motd = %q", files["etc/motd"])
	}
	// The order of the entries does not matter: same bytes.
	rev := append([]Entry(nil), entries...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	data2, err := LayerTar(rev)
	if err != nil || !bytes.Equal(data, data2) {
		t.Errorf("layer depends on entry order (err %v)", err)
	}
}

func TestLayerTarErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"duplicate", []Entry{{Path: "/a", Type: tar.TypeReg}, {Path: "a", Type: tar.TypeReg}}, "given twice"},
		{"root", []Entry{{Path: "/", Type: tar.TypeDir}}, "root directory"},
		{"parent is file", []Entry{{Path: "/a", Type: tar.TypeReg}, {Path: "/a/b", Type: tar.TypeReg}}, "is not a directory"},
		{"bad type", []Entry{{Path: "/dev/null", Type: tar.TypeChar}}, "unsupported type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := LayerTar(tc.entries); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LayerTar: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestBusyboxEntries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		applets []string
		links   []string // symlinks expected, sorted by LayerTar
		err     string
	}{
		{"usual", []string{"bin/sh", "usr/bin/wget", "bin/busybox", "sbin/ifconfig", "bin/sh"}, []string{"bin/sh", "sbin/ifconfig", "usr/bin/wget"}, ""},
		{"no sh", []string{"bin/ls"}, nil, "no sh applet"},
		{"below the binary", []string{"bin/sh", "bin/busybox/x"}, nil, "below a file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := busyboxEntries([]byte("ELF"), tc.applets)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := LayerTar(entries)
			if err != nil {
				t.Fatal(err)
			}
			got, files := readTar(t, bytes.NewReader(data))
			var links []string
			modes := map[string]int64{}
			for _, e := range got {
				modes[e.Name] = e.Mode
				if e.Type == tar.TypeSymlink {
					links = append(links, e.Name)
					if e.Link != "/bin/busybox" {
						t.Errorf("%s -> %s, want /bin/busybox", e.Name, e.Link)
					}
				}
			}
			if diff := cmp.Diff(tc.links, links); diff != "" {
				t.Errorf("symlinks (-want +got):\n%s", diff)
			}
			if modes["tmp/"] != 0o1777 || modes["root/"] != 0o700 || modes["bin/busybox"] != 0o755 {
				t.Errorf("modes: tmp %o, root %o, busybox %o", modes["tmp/"], modes["root/"], modes["bin/busybox"])
			}
			for _, want := range []string{"root:x:0:0:", "nobody:x:65534:65534:"} {
				if !bytes.Contains(files["etc/passwd"], []byte(want)) {
					t.Errorf("/etc/passwd lacks %q:\n%s", want, files["etc/passwd"])
				}
			}
			for _, want := range []string{"root:x:0:", "nobody:x:65534:"} {
				if !bytes.Contains(files["etc/group"], []byte(want)) {
					t.Errorf("/etc/group lacks %q:\n%s", want, files["etc/group"])
				}
			}
		})
	}
}

// requireBusybox skips unless the machine has a busybox Busybox can use.
func requireBusybox(t *testing.T) {
	t.Helper()
	bin, err := findBusybox()
	if err != nil {
		t.Skipf("busybox-static not installed: %v", err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Skip(err)
	}
	if arch, static, err := elfInfo(data); err != nil || !static || arch != runtime.GOARCH {
		t.Skipf("%s is not a static %s binary (%s, static %t, %v)", bin, runtime.GOARCH, arch, static, err)
	}
}

func TestBusybox(t *testing.T) {
	requireBusybox(t)
	img, err := Busybox(runtime.GOARCH, "localhost/clusterctl/busybox:1")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != runtime.GOARCH || cfg.OS != "linux" || !cmp.Equal(cfg.Config.Entrypoint, []string{"/bin/sh"}) ||
		!cfg.Created.Time.Equal(time.Unix(0, 0)) || !cmp.Equal(cfg.Config.Env, []string{DefaultPath}) {
		t.Errorf("config = %+v", cfg)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries, _ := readTar(t, rc)
	byName := map[string]tarEntry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	for _, want := range []string{"bin/sh", "bin/ls", "bin/echo"} {
		if e, ok := byName[want]; !ok || e.Type != tar.TypeSymlink {
			t.Errorf("%s: %+v, want a symlink to /bin/busybox", want, e)
		}
	}
	if len(entries) < 100 {
		t.Errorf("only %d entries: applets missing?", len(entries))
	}

	// Same machine, same inputs: same image.
	img2, err := Busybox(runtime.GOARCH, "other/name:2")
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := img2.Digest()
	if d1 != d2 {
		t.Errorf("two builds differ: %s vs %s", d1, d2)
	}

	for _, tc := range []struct{ arch, ref, want string }{
		{runtime.GOARCH, "Bad Ref", "parse reference"},
		{otherArch(), "x:1", "is built for"},
	} {
		if _, err := Busybox(tc.arch, tc.ref); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Busybox(%s, %q) = %v, want %q", tc.arch, tc.ref, err, tc.want)
		}
	}
}

func otherArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

func TestWriteArchive(t *testing.T) {
	img, err := Build(Spec{Arch: "arm64", Entries: []Entry{{Path: "/pause", Type: tar.TypeReg, Mode: 0o755, Data: []byte("x")}},
		Entrypoint: []string{"/pause"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(p string) []byte {
		t.Helper()
		if err := WriteArchive(p, "localhost/clusterctl/pause:1", img); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	a := write(filepath.Join(dir, "a.tar"))
	b := write(filepath.Join(dir, "sub", "b.tar"))
	if sha256.Sum256(a) != sha256.Sum256(b) {
		t.Fatal("two archives of the same image differ")
	}
	_, files := readTar(t, bytes.NewReader(a))
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || !cmp.Equal(manifest[0].RepoTags, []string{"localhost/clusterctl/pause:1"}) || len(manifest[0].Layers) != 1 {
		t.Errorf("manifest.json = %+v", manifest)
	}
	if err := WriteArchive(filepath.Join(dir, "c.tar"), "Not A Ref", img); err == nil {
		t.Error("WriteArchive with a bad reference: want an error")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
}
