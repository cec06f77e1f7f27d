package podlogs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		line    string
		stream  string
		partial bool
		msg     string
		err     bool
	}{
		{"2026-11-21T12:00:00.123456789Z stdout F hello world", "stdout", false, "hello world", false},
		{"2026-11-21T12:00:00Z stderr P part", "stderr", true, "part", false},
		{"2026-11-21T12:00:00+01:00 stdout F ", "stdout", false, "", false},
		{"2026-11-21T12:00:00Z stdout F", "stdout", false, "", false},
		{"2026-11-21T12:00:00Z stdout F:extra msg", "stdout", false, "msg", false},
		{"2026-11-21T12:00:00Z stdin F x", "", false, "", true},
		{"yesterday stdout F x", "", false, "", true},
		{"2026-11-21T12:00:00Z stdout X x", "", false, "", true},
		{"garbage", "", false, "", true},
	}
	for _, tt := range tests {
		_, stream, partial, msg, err := ParseLine([]byte(tt.line))
		if (err != nil) != tt.err || err == nil && (stream != tt.stream || partial != tt.partial || string(msg) != tt.msg) {
			t.Errorf("ParseLine(%q) = %q %v %q %v", tt.line, stream, partial, msg, err)
		}
	}
}

const sample = `2026-11-21T12:00:01Z stdout F one
2026-11-21T12:00:02Z stdout P tw
2026-11-21T12:00:02.5Z stderr F err-a
2026-11-21T12:00:03Z stdout F o
not a log line
2026-11-21T12:00:04Z stdout F three
2026-11-21T12:00:05Z stderr F err-b
`

func messages(es []Entry, ts bool) string {
	var b bytes.Buffer
	for _, e := range es {
		Format(&b, e, ts)
	}
	return b.String()
}

func TestRead(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"all, partial lines joined", Options{Tail: -1}, "one\nerr-a\ntwo\nthree\nerr-b\n"},
		{"tail 2", Options{Tail: 2}, "three\nerr-b\n"},
		{"tail 0", Options{Tail: 0}, ""},
		{"tail beyond", Options{Tail: 100}, "one\nerr-a\ntwo\nthree\nerr-b\n"},
		{"since (a joined line counts from its first part)", Options{Tail: -1, Since: time.Date(2026, 11, 21, 12, 0, 2, 0, time.UTC)}, "err-a\ntwo\nthree\nerr-b\n"},
		{"since and tail", Options{Tail: 1, Since: time.Date(2026, 11, 21, 12, 0, 2, 0, time.UTC)}, "err-b\n"},
		{"timestamps", Options{Tail: 1, Timestamps: true}, "2026-11-21T12:00:05Z err-b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := Read(strings.NewReader(sample), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := messages(es, tt.opts.Timestamps); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// A container that died mid-line: the partial line is still shown.
	es, _ := Read(strings.NewReader("2026-11-21T12:00:01Z stdout P unfinished"), Options{Tail: -1})
	if got := messages(es, false); got != "unfinished\n" {
		t.Errorf("trailing partial: %q", got)
	}
	// Tail over many lines keeps the last ones.
	var big strings.Builder
	for i := 0; i < 1000; i++ {
		big.WriteString("2026-11-21T12:00:01Z stdout F line\n")
	}
	big.WriteString("2026-11-21T12:00:02Z stdout F last\n")
	es, _ = Read(strings.NewReader(big.String()), Options{Tail: 2})
	if got := messages(es, false); got != "line\nlast\n" {
		t.Errorf("big tail: %q", got)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPrintFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte("2026-11-21T12:00:01Z stdout F old\n2026-11-21T12:00:02Z stdout P half-"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	var mu sync.Mutex
	finished := false
	done := func() bool { mu.Lock(); defer mu.Unlock(); return finished }
	errc := make(chan error, 1)
	go func() { errc <- Print(context.Background(), &out, path, Options{Tail: -1}, done, 10*time.Millisecond) }()

	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	time.Sleep(50 * time.Millisecond)
	if got := out.String(); got != "old\n" {
		t.Errorf("before the rest: %q", got)
	}
	f.WriteString("\n2026-11-21T12:00:03Z stdout F done\n2026-11-21T12:00:04Z std") // the line after "half-", then a torn write
	time.Sleep(50 * time.Millisecond)
	f.WriteString("out F new\n2026-11-21T12:00:05Z stdout P tail-end")
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	finished = true
	mu.Unlock()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Print did not return after done")
	}
	if diff := cmp.Diff("old\nhalf-done\nnew\ntail-end\n", out.String()); diff != "" {
		t.Errorf("followed (-want +got):\n%s", diff)
	}
}

func TestInstances(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"0.log", "10.log", "2.log", "x.log", "3.log.20261121-120000.gz"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	got, err := Instances(dir)
	if err != nil || !cmp.Equal([]int{0, 2, 10}, got) {
		t.Errorf("Instances = %v %v", got, err)
	}
	if File(dir, 2) != filepath.Join(dir, "2.log") {
		t.Error("File")
	}
}
