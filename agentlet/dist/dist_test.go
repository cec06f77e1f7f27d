package dist

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
)

func TestBinaryMissing(t *testing.T) {
	_, err := Binary("mips64le")
	want := "clusterctl built without agentlet for linux/mips64le; run make build"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	if _, err := SHA256("mips64le"); err == nil {
		t.Error("SHA256 of a missing binary succeeded")
	}
	if slices.Contains(Arches(), "mips64le") {
		t.Error("Arches lists a missing binary")
	}
}

// TestArches checks every listed binary, when `make build` produced any.
func TestArches(t *testing.T) {
	arches := Arches()
	if len(arches) == 0 {
		t.Skip("no embedded agentlet binaries (clean checkout; run make build)")
	}
	if !slices.IsSorted(arches) {
		t.Errorf("Arches() = %v, not sorted", arches)
	}
	for _, a := range arches {
		bin, err := Binary(a)
		if err != nil {
			t.Fatal(err)
		}
		if len(bin) < 4 || string(bin[1:4]) != "ELF" {
			t.Errorf("%s: not an ELF binary", a)
		}
		sum := sha256.Sum256(bin)
		got, err := SHA256(a)
		if err != nil || got != hex.EncodeToString(sum[:]) {
			t.Errorf("SHA256(%s) = %s, %v", a, got, err)
		}
	}
}
