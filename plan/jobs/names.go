package jobs

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// JobNameForSchedule is the name of the Job a CronJob runs for a scheduled
// time, as Kubernetes names it: the CronJob's name and the scheduled time in
// minutes since the Unix epoch. The name is the run's identity: the CLI and
// agentlet both derive it, and a Job that exists under it is never created
// again.
func JobNameForSchedule(cronJobName string, scheduled time.Time) string {
	return nodeapi.CronRunName(cronJobName, scheduled)
}

// ScheduledTimeFromJobName is JobNameForSchedule's inverse: the scheduled
// time (at minute precision) of a Job named after cronJobName, and whether
// the name has that form.
func ScheduledTimeFromJobName(cronJobName, jobName string) (time.Time, bool) {
	prefix := cronJobName + "-"
	if len(jobName) <= len(prefix) || jobName[:len(prefix)] != prefix {
		return time.Time{}, false
	}
	minutes, err := strconv.ParseInt(jobName[len(prefix):], 10, 64)
	if err != nil || minutes < 0 {
		return time.Time{}, false
	}
	return time.Unix(minutes*60, 0).UTC(), true
}

// nameAlphabet is the API server's alphabet for generateName suffixes
// (k8s.io/apimachinery/pkg/util/rand): no vowels, no confusable characters.
const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// Name limits of the API server's generateName.
const (
	maxNameLength          = 63
	randomLength           = 5
	maxGeneratedNameLength = maxNameLength - randomLength
)

// entropy derives deterministic bytes from the pass seed and the parts that
// make a name or UID unique. Same input, same output.
func entropy(seed string, parts ...string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(seed))
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

// deriveUID formats entropy as an RFC 4122 UUID (version 4 layout, as the
// API server's UIDs, but derived rather than random).
func deriveUID(seed string, parts ...string) types.UID {
	b := entropy(seed, parts...)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// generateName appends the API server's five-character suffix, derived from
// the seed and parts, to base (cut to leave room for it).
func generateName(base, seed string, parts ...string) string {
	if len(base) > maxGeneratedNameLength {
		base = base[:maxGeneratedNameLength]
	}
	b := entropy(seed, parts...)
	suffix := make([]byte, randomLength)
	for i := range suffix {
		suffix[i] = nameAlphabet[int(b[i])%len(nameAlphabet)]
	}
	return base + string(suffix)
}

func timeKey(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

// podNamePrefix is the generateName of a Job's pods: "<job>-", or for an
// Indexed Job "<job>-<index>-", with the job name cut so that the index is
// kept (Kubernetes' podGenerateNameWithIndex).
func podNamePrefix(jobName string, index int) string {
	if index < 0 {
		return jobName + "-"
	}
	appendIndex := "-" + strconv.Itoa(index) + "-"
	prefix := jobName + appendIndex
	if len(prefix) > maxGeneratedNameLength {
		prefix = prefix[:maxGeneratedNameLength-len(appendIndex)] + appendIndex
	}
	return prefix
}
