package workloads

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// alphanums is the alphabet of k8s.io/apimachinery/pkg/util/rand: no
// vowels, so generated names never spell words.
const alphanums = "bcdfghjklmnpqrstvwxz2456789"

// SafeEncodeString encodes s with the characters of alphanums, as
// k8s.io/apimachinery/pkg/util/rand.SafeEncodeString does (that package is
// off limits here: it holds a global random source).
func SafeEncodeString(s string) string {
	r := make([]byte, len(s))
	for i, b := range []rune(s) {
		r[i] = alphanums[int(b)%len(alphanums)]
	}
	return string(r)
}

// ComputeHash is Kubernetes' controller.ComputeHash: the pod-template-hash
// of a Deployment's ReplicaSets and the controller-revision-hash of a
// DaemonSet's pods. It is the fnv32a sum of the template's spew dump, then
// of collisionCount (when set) as eight little-endian bytes, written in
// decimal and safe-encoded.
func ComputeHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	hasher := fnv.New32a()
	hasher.Write([]byte(dumpForHash(*template)))
	if collisionCount != nil {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, uint32(*collisionCount))
		hasher.Write(b)
	}
	return SafeEncodeString(fmt.Sprint(hasher.Sum32()))
}

// hashControllerRevision is history.HashControllerRevision for a revision
// whose data is raw: fnv32 (not 32a) of raw, then of probe in decimal.
func hashControllerRevision(raw []byte, probe *int32) string {
	hf := fnv.New32()
	hf.Write(raw)
	if probe != nil {
		hf.Write([]byte(strconv.FormatInt(int64(*probe), 10)))
	}
	return SafeEncodeString(fmt.Sprint(hf.Sum32()))
}

// templatePatch is the data of a DaemonSet's or StatefulSet's
// ControllerRevision: a strategic merge patch that replaces spec.template,
// built the way their controllers build it (marshal, decode into generic
// maps, re-marshal), so that the bytes and therefore the hashes match.
func templatePatch(template *corev1.PodTemplateSpec) ([]byte, error) {
	data, err := json.Marshal(template)
	if err != nil {
		return nil, fmt.Errorf("encode pod template: %w", err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("decode pod template: %w", err)
	}
	raw["$patch"] = "replace"
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": raw}})
	if err != nil {
		return nil, fmt.Errorf("encode revision patch: %w", err)
	}
	return patch, nil
}

// templateFromPatch recovers the pod template recorded by templatePatch.
// Applying the patch as a strategic merge patch replaces spec.template
// whole, so decoding it is the same.
func templateFromPatch(raw []byte) (corev1.PodTemplateSpec, error) {
	var p struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return corev1.PodTemplateSpec{}, fmt.Errorf("decode revision patch: %w", err)
	}
	return p.Spec.Template, nil
}

// derive hashes the seed and parts into 32 bytes; every name and UID this
// package makes up comes from it, so the same input gives the same output.
func derive(seed string, parts ...string) [32]byte {
	h := sha256.New()
	h.Write([]byte(seed))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// deriveUID returns a version 8 (custom) RFC 9562 UUID derived from the
// seed and the object's kind, namespace and name.
func deriveUID(seed, kind, namespace, name string) types.UID {
	b := derive(seed, "uid", kind, namespace, name)
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// deriveSuffix returns the n-character suffix for the attempt-th candidate
// name with the given prefix, from the safe alphabet.
func deriveSuffix(seed, namespace, prefix string, attempt int, n int) string {
	b := derive(seed, "name", namespace, prefix, strconv.Itoa(attempt))
	out := make([]byte, n)
	for i := range out {
		out[i] = alphanums[int(b[i])%len(alphanums)]
	}
	return string(out)
}
