package pause

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"runtime"
	"strings"
	"testing"
)

func TestArchiveMissing(t *testing.T) {
	_, err := Archive("mips64le")
	want := "agentlet built without the pause image for mips64le; run make build"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// TestArchive checks the embedded archive of this machine's architecture
// when `make build` produced it: a docker archive naming Ref.
func TestArchive(t *testing.T) {
	data, err := Archive(runtime.GOARCH)
	if err != nil {
		t.Skipf("no embedded pause image (clean checkout; run make build): %v", err)
	}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatal("archive has no manifest.json")
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []struct{ RepoTags []string }
		if err := json.NewDecoder(tr).Decode(&m); err != nil {
			t.Fatal(err)
		}
		if len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != Ref {
			t.Fatalf("manifest = %+v, want one image tagged %s", m, Ref)
		}
		return
	}
}

func TestKeepFileEmbedded(t *testing.T) {
	// The .keep file makes the embed pattern valid on a clean checkout, and
	// only this architecture's directory is embedded.
	if _, err := fs.Stat(images, "image/"+runtime.GOARCH+"/.keep"); err != nil {
		t.Errorf("image/%s/.keep not embedded: %v", runtime.GOARCH, err)
	}
	for _, other := range []string{"amd64", "arm64"} {
		if _, err := fs.Stat(images, "image/"+other); other != runtime.GOARCH && err == nil {
			t.Errorf("image/%s is embedded in a %s build", other, runtime.GOARCH)
		}
	}
	if !strings.HasSuffix(FileName("arm64"), "pause-linux-arm64.tar") {
		t.Errorf("FileName = %s", FileName("arm64"))
	}
}
