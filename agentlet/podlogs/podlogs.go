// Package podlogs reads the CRI container log files agentlet's pods write
// (kubelet's layout under /var/log/pods): it parses the CRI log format,
// reassembles partial lines, applies --tail and --since, and follows a
// file while its container runs.
//
// A CRI log line is `<RFC3339Nano time> <stdout|stderr> <F|P> <message>`:
// P marks a partial line whose continuation follows in the next line, F
// the full (last) part.
package podlogs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Entry is one log line, reassembled from its partial parts.
type Entry struct {
	Time   time.Time // time of its first part
	Stream string    // stdout or stderr
	Msg    []byte    // without the trailing newline
}

// ParseLine parses one CRI log line (without its newline).
func ParseLine(line []byte) (t time.Time, stream string, partial bool, msg []byte, err error) {
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return t, "", false, nil, fmt.Errorf("parse CRI log line %q: no stream", clipLine(line))
	}
	t, err = time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return t, "", false, nil, fmt.Errorf("parse CRI log line %q: %w", clipLine(line), err)
	}
	s, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || string(s) != "stdout" && string(s) != "stderr" {
		return t, "", false, nil, fmt.Errorf("parse CRI log line %q: bad stream", clipLine(line))
	}
	tag, msg, _ := bytes.Cut(rest, []byte{' '})
	// The tag may carry more fields separated by ':' (F:x); only the first counts.
	tags := strings.Split(string(tag), ":")
	switch tags[0] {
	case "P":
		partial = true
	case "F":
	default:
		return t, "", false, nil, fmt.Errorf("parse CRI log line %q: bad tag %q", clipLine(line), tag)
	}
	return t, string(s), partial, msg, nil
}

func clipLine(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

// Assembler joins partial lines into entries, per stream.
type Assembler struct {
	pending map[string]*Entry
}

// Add feeds one parsed line; it returns an entry when one is complete.
func (a *Assembler) Add(t time.Time, stream string, partial bool, msg []byte) (Entry, bool) {
	if a.pending == nil {
		a.pending = map[string]*Entry{}
	}
	p := a.pending[stream]
	if p == nil {
		p = &Entry{Time: t, Stream: stream}
	}
	p.Msg = append(p.Msg, msg...)
	if partial {
		a.pending[stream] = p
		return Entry{}, false
	}
	delete(a.pending, stream)
	return *p, true
}

// Flush returns what is still partial (a container that exited mid-line),
// oldest first.
func (a *Assembler) Flush() []Entry {
	var out []Entry
	for _, e := range a.pending {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	a.pending = nil
	return out
}

// Options select and format entries.
type Options struct {
	Tail       int       // only the last Tail entries; < 0 for all
	Since      time.Time // only entries at or after Since; zero for all
	Timestamps bool      // prefix each line with its RFC3339Nano time
}

func (o Options) keep(e Entry) bool { return o.Since.IsZero() || !e.Time.Before(o.Since) }

// Format writes one entry as `agentlet logs` prints it.
func Format(w io.Writer, e Entry, timestamps bool) error {
	var b []byte
	if timestamps {
		b = append(b, e.Time.UTC().Format(time.RFC3339Nano)...)
		b = append(b, ' ')
	}
	b = append(b, e.Msg...)
	b = append(b, '\n')
	_, err := w.Write(b)
	return err
}

// Read reads a whole log and returns its entries as opts selects them.
// Unparsable lines are skipped. A partial entry at the end is included.
func Read(r io.Reader, opts Options) ([]Entry, error) {
	var asm Assembler
	return read(r, opts, &asm, true)
}

// read reads entries into asm; flush also returns what is left partial.
func read(r io.Reader, opts Options, asm *Assembler, flush bool) ([]Entry, error) {
	var out []Entry
	push := func(e Entry) {
		if !opts.keep(e) {
			return
		}
		out = append(out, e)
		if opts.Tail >= 0 && len(out) > 2*opts.Tail+64 {
			out = append(out[:0:0], out[len(out)-opts.Tail:]...)
		}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte{'\n'})
			if t, stream, partial, msg, perr := ParseLine(line); perr == nil {
				if e, ok := asm.Add(t, stream, partial, msg); ok {
					push(e)
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read log: %w", err)
		}
	}
	if flush {
		for _, e := range asm.Flush() {
			push(e)
		}
	}
	if opts.Tail >= 0 && len(out) > opts.Tail {
		out = out[len(out)-opts.Tail:]
	}
	return out, nil
}

// follower follows one log file after its current end.
type follower struct {
	f   *os.File
	buf []byte // bytes after the last newline
	asm Assembler
}

// Print writes the selected entries of the log file at path and, with a
// non-nil done, keeps following it until done reports true (then the rest
// is drained) or ctx ends. done is polled every poll interval.
func Print(ctx context.Context, w io.Writer, path string, opts Options, done func() bool, poll time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	// Everything up to the last complete line now; a trailing partial
	// write stays for the follower.
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	cut := bytes.LastIndexByte(data, '\n') + 1
	if done == nil {
		cut = len(data)
	}
	fl := &follower{f: f, buf: append([]byte(nil), data[cut:]...)}
	entries, err := read(bytes.NewReader(data[:cut]), opts, &fl.asm, done == nil)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := Format(w, e, opts.Timestamps); err != nil {
			return err
		}
	}
	if done == nil {
		return nil
	}
	since := opts
	since.Tail = -1
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		finished := done()
		if err := fl.pump(w, since, finished); err != nil {
			return err
		}
		if finished {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// pump prints what was appended since the last call; with final, a
// trailing incomplete line is printed too.
func (fl *follower) pump(w io.Writer, opts Options, final bool) error {
	chunk := make([]byte, 64<<10)
	for {
		n, err := fl.f.Read(chunk)
		fl.buf = append(fl.buf, chunk[:n]...)
		if err != nil || n == 0 {
			break
		}
	}
	for {
		i := bytes.IndexByte(fl.buf, '\n')
		if i < 0 {
			break
		}
		line := fl.buf[:i]
		if t, stream, partial, msg, err := ParseLine(line); err == nil {
			if e, ok := fl.asm.Add(t, stream, partial, msg); ok && opts.keep(e) {
				if err := Format(w, e, opts.Timestamps); err != nil {
					return err
				}
			}
		}
		fl.buf = fl.buf[i+1:]
	}
	if final {
		if len(fl.buf) > 0 {
			if t, stream, partial, msg, err := ParseLine(fl.buf); err == nil {
				fl.asm.Add(t, stream, partial, msg)
			}
			fl.buf = nil
		}
		for _, e := range fl.asm.Flush() {
			if opts.keep(e) {
				if err := Format(w, e, opts.Timestamps); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Instances lists the log files of a container directory by restart count,
// oldest first (kubelet layout: <restartCount>.log).
func Instances(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(name)
		if err != nil || n < 0 {
			continue
		}
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}

// File is the path of a container instance's log file.
func File(dir string, restartCount int) string {
	return filepath.Join(dir, strconv.Itoa(restartCount)+".log")
}
