package cron

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
)

// Pod names follow the API server's generateName for a Job's pods:
// "<job>-" (Indexed: "<job>-<index>-") cut to leave room for a five-character
// suffix from its alphabet. The suffix and the uids derive from the Job's
// uid, so firing the same scheduled time again gives the same names.
const (
	nameAlphabet           = "bcdfghjklmnpqrstvwxz2456789"
	maxNameLength          = 63
	randomLength           = 5
	maxGeneratedNameLength = maxNameLength - randomLength
)

func entropy(parts ...string) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// deriveUID formats entropy as an RFC 4122 version 4 UUID.
func deriveUID(parts ...string) string {
	b := entropy(parts...)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// podIdentity names pod i of a run: index is its completion index, -1 when
// the Job is not Indexed.
func podIdentity(jobName, jobUID string, i, index int) (name, uid string) {
	prefix := jobName + "-"
	if index >= 0 {
		appendIndex := "-" + strconv.Itoa(index) + "-"
		prefix = jobName + appendIndex
		if len(prefix) > maxGeneratedNameLength {
			prefix = prefix[:maxGeneratedNameLength-len(appendIndex)] + appendIndex
		}
	} else if len(prefix) > maxGeneratedNameLength {
		prefix = prefix[:maxGeneratedNameLength]
	}
	b := entropy("pod-name", jobUID, strconv.Itoa(i))
	suffix := make([]byte, randomLength)
	for k := range suffix {
		suffix[k] = nameAlphabet[int(b[k])%len(nameAlphabet)]
	}
	return prefix + string(suffix), deriveUID("pod-uid", jobUID, strconv.Itoa(i))
}
