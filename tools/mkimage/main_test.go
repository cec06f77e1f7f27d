package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/images"
)

type tarEntry struct {
	Name, Link string
	Type       byte
	Mode       int64
	Size       int64
	ModTime    time.Time
	Uid, Gid   int
}

func readTar(t *testing.T, data []byte) ([]tarEntry, map[string][]byte) {
	t.Helper()
	var entries []tarEntry
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
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

func TestParseEntries(t *testing.T) {
	got, err := parseEntries([]string{"/pause=build/pause:0755", "/etc/x=src"}, []string{"/bin/sh=busybox"}, []string{"/tmp:1777", "/data"})
	if err != nil {
		t.Fatal(err)
	}
	want := []images.Entry{
		{Path: "/pause", Type: tar.TypeReg, Mode: 0o755, Src: "build/pause"},
		{Path: "/etc/x", Type: tar.TypeReg, Mode: 0o644, Src: "src"},
		{Path: "/bin/sh", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "busybox"},
		{Path: "/tmp", Type: tar.TypeDir, Mode: 0o1777},
		{Path: "/data", Type: tar.TypeDir, Mode: 0o755},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	_, err = parseEntries([]string{"nodst", "/a=b:99x"}, []string{"/l"}, []string{"/d:9"})
	if err == nil || strings.Count(err.Error(), "\n") != 3 {
		t.Errorf("want all four problems reported, got %v", err)
	}
}

func TestRunReproducibleArchive(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "pause")
	if err := os.WriteFile(bin, []byte("\x7fELF fake pause"), 0o600); err != nil {
		t.Fatal(err)
	}
	build := func(out string) []byte {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := run([]string{"-ref", "localhost/clusterctl/pause:1", "-arch", "arm64", "-file", "/pause=" + bin + ":0755",
			"-entrypoint", "/pause", "-cmd", `["-x","y z"]`, "-env", "A=1", "-o", out}, &stdout, &stderr)
		if err != nil {
			t.Fatalf("run: %v\n%s", err, stderr.String())
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	a := build(filepath.Join(dir, "a.tar"))
	b := build(filepath.Join(dir, "out", "b.tar"))
	if sha256.Sum256(a) != sha256.Sum256(b) {
		t.Fatal("two builds from the same inputs differ")
	}

	// A docker archive: manifest.json naming the tag, config, one layer.
	_, files := readTar(t, a)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || !cmp.Equal(manifest[0].RepoTags, []string{"localhost/clusterctl/pause:1"}) || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest = %+v", manifest)
	}
	var cfg struct {
		Architecture string
		OS           string
		Created      time.Time
		Config       struct {
			Entrypoint, Cmd, Env []string
			WorkingDir           string
		}
	}
	if err := json.Unmarshal(files[manifest[0].Config], &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "arm64" || cfg.OS != "linux" || !cfg.Created.Equal(time.Unix(0, 0)) ||
		!cmp.Equal(cfg.Config.Entrypoint, []string{"/pause"}) || !cmp.Equal(cfg.Config.Cmd, []string{"-x", "y z"}) ||
		!cmp.Equal(cfg.Config.Env, []string{images.DefaultPath, "A=1"}) || cfg.Config.WorkingDir != "/" {
		t.Errorf("config = %+v", cfg)
	}
}

func TestRunUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run([]string{"-file", "bad"}, &stdout, &stderr)
	if !errors.Is(err, errUsage) {
		t.Fatalf("err = %v, want a usage error", err)
	}
	for _, want := range []string{"-ref is required", "-arch is required", "-o is required", `-file "bad"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	err = run([]string{"-ref", "x:1", "-arch", "amd64", "-o", filepath.Join(t.TempDir(), "o.tar"), "-file", "/a=/no/such/file"}, &stdout, &stderr)
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "/no/such/file") {
		t.Errorf("missing source: %v", err)
	}
}
