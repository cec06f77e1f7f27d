package playbooks

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/remote"
)

// writeTar writes a tar of name → content to a temp file.
func writeTar(t *testing.T, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenImageArchive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  map[string]string
		format string
		names  []string
		err    string
	}{
		{"docker", map[string]string{"manifest.json": `[{"Config":"c","RepoTags":["localhost/a:1","localhost/b:2"],"Layers":["l"]}]`}, "docker",
			[]string{"localhost/a:1", "localhost/b:2"}, ""},
		{"oci", map[string]string{"oci-layout": `{}`, "index.json": `{"manifests":[{"annotations":{"io.containerd.image.name":"docker.io/x/y:1"}},{"annotations":{"org.opencontainers.image.ref.name":"latest"}},{}]}`},
			"oci", []string{"docker.io/x/y:1", "latest"}, ""},
		{"neither", map[string]string{"hello.txt": "hi"}, "", nil, "neither a docker archive"},
		{"bad manifest", map[string]string{"manifest.json": `{`}, "", nil, "parse manifest.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTar(t, tc.files)
			a, err := OpenImageArchive(p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			data, _ := os.ReadFile(p)
			sum := sha256.Sum256(data)
			if a.Format != tc.format || a.Size != int64(len(data)) || a.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("archive = %+v", a)
			}
			if diff := cmp.Diff(tc.names, a.Names); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := OpenImageArchive(filepath.Join(t.TempDir(), "missing.tar")); err == nil {
		t.Error("missing file: no error")
	}
	notTar := filepath.Join(t.TempDir(), "x.tar")
	os.WriteFile(notTar, bytes.Repeat([]byte("x"), 2000), 0o644)
	if _, err := OpenImageArchive(notTar); err == nil || !strings.Contains(err.Error(), "not a tar") {
		t.Errorf("not a tar: %v", err)
	}
}

func TestParseImageImport(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      []string
		err       string
	}{
		{"one", "unpacking localhost/a:1 (sha256:abc)...done\n" + imageImportMarker + "\nlocalhost/a:1\nother:2\n", []string{"localhost/a:1"}, ""},
		{"two", "unpacking a:1 (sha256:1)...done\nunpacking b:2 (sha256:2)...done\n" + imageImportMarker + "\nb:2\na:1\n", []string{"a:1", "b:2"}, ""},
		{"not ready", "unpacking a:1 (sha256:1)...done\n" + imageImportMarker + "\n", nil, "not ready"},
		{"nothing", imageImportMarker + "\nx:1\n", nil, "no named image"},
		{"no marker", "unpacking a:1 (sha256:1)...done\n", nil, "no ready list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseImageImport([]byte(tc.out))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadImage(t *testing.T) {
	a, err := OpenImageArchive(writeTar(t, map[string]string{"manifest.json": `[{"RepoTags":["localhost/a:1"]}]`}))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	good := &fakeHost{answer: func(cmd string, _ []byte) ([]byte, error) {
		if !strings.Contains(cmd, a.SHA256) || !strings.Contains(cmd, "-n k8s.io images import --snapshotter overlayfs") {
			return nil, errors.New("unexpected command " + cmd)
		}
		return []byte("unpacking localhost/a:1 (sha256:abc)...done\n" + imageImportMarker + "\nlocalhost/a:1\n"), nil
	}}
	bad := &fakeHost{answer: func(cmd string, _ []byte) ([]byte, error) {
		return nil, &remote.CommandError{Host: "h2", Cmd: cmd, ExitCode: 1, Stderr: "checksum mismatch after upload"}
	}}
	var events []Event
	res := LoadImage(context.Background(), ImageLoadOptions{
		Archive: a, Hosts: []string{"h1", "h2"}, Parallel: 1,
		Dial: func(_ context.Context, name string) (Host, error) {
			if name == "h1" {
				return good, nil
			}
			return bad, nil
		},
		Progress: func(e Event) { events = append(events, e) },
	})
	if res[0].Err != nil || !cmp.Equal(res[0].Images, []string{"localhost/a:1"}) || len(good.uploads) != 1 || len(good.cmds) != 1 {
		t.Errorf("h1: %+v, uploads %v, cmds %d", res[0], good.uploads, len(good.cmds))
	}
	var se *StepError
	if !errors.As(res[1].Err, &se) || se.Step != "import" || res[1].Images != nil {
		t.Errorf("h2: want an import StepError, got %+v", res[1])
	}
	if !strings.Contains(good.cmds[0], good.uploads[0]) || !strings.Contains(good.cmds[0], "trap 'rm -f \"$f\"' EXIT") {
		t.Errorf("the import does not verify and remove the uploaded file:\n%s", good.cmds[0])
	}
	last := map[string]Event{}
	for _, e := range events {
		last[e.Host] = e
	}
	if last["h1"].State != HostDone || last["h1"].Message != "imported localhost/a:1" || last["h2"].State != Failed {
		t.Errorf("final events = %+v", last)
	}
}
