package agentlet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// The audit trail: every change the CLI records on a host (who, when, the
// command, the generation, what changed) is one JSON line in AuditFile,
// 0600. When the file would grow past its limit it is renamed to
// AuditFile.1 (replacing the previous one), so a host keeps between one and
// two limits' worth of history. agentlet checks only that a record is a
// JSON object with a numeric generation; the CLI owns the schema.
const (
	AuditFile = "audit.jsonl"
	// DefaultAuditMax is the size at which the audit trail rotates.
	DefaultAuditMax = 1 << 20
	// maxAuditRecord bounds one record (the CLI caps its change lists).
	maxAuditRecord = 256 << 10
)

// AuditPath is the current audit trail.
func (p Paths) AuditPath() string { return filepath.Join(p.StateDir(), AuditFile) }

// AuditLog appends to and reads a host's audit trail.
type AuditLog struct {
	Paths    Paths
	MaxBytes int64 // rotate at this size; 0: DefaultAuditMax
}

// auditLine checks one record and returns it compacted to a single line.
func auditLine(raw []byte) ([]byte, error) {
	var head struct {
		Generation json.RawMessage `json:"generation"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&head); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	if head.Generation == nil {
		return nil, errors.New("generation: required")
	}
	if _, err := strconv.ParseInt(string(head.Generation), 10, 64); err != nil {
		return nil, fmt.Errorf("generation: want an integer, got %s", head.Generation)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	if buf.Len() > maxAuditRecord {
		return nil, fmt.Errorf("record of %d bytes is larger than %d KiB", buf.Len(), maxAuditRecord>>10)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// Append checks a record and appends it, rotating first when it would
// push the file past MaxBytes. It takes the state directory's lock.
func (a AuditLog) Append(raw []byte) error {
	line, err := auditLine(raw)
	if err != nil {
		return &InvalidInputError{fmt.Errorf("audit record: %w", err)}
	}
	unlock, err := lockStateDir(a.Paths)
	if err != nil {
		return err
	}
	defer unlock()
	return a.append(line)
}

// append writes one checked line; the caller holds the lock.
func (a AuditLog) append(line []byte) error {
	path := a.Paths.AuditPath()
	limit := a.MaxBytes
	if limit <= 0 {
		limit = DefaultAuditMax
	}
	st, err := os.Stat(path)
	switch {
	case err == nil && st.Size() > 0 && st.Size()+int64(len(line)) > limit:
		if err := os.Rename(path, path+".1"); err != nil {
			return fmt.Errorf("rotate audit trail: %w", err)
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("append audit record: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	// A record torn by a crash must not swallow the next one.
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("append audit record: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("append audit record: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	return nil
}

// List writes the records, oldest first (the rotated file, then the
// current one), one per line; with tail > 0 only the last tail. Lines that
// are not records (torn by a crash) are skipped and counted.
func (a AuditLog) List(w io.Writer, tail int) (skipped int, err error) {
	var lines [][]byte
	for _, path := range []string{a.Paths.AuditPath() + ".1", a.Paths.AuditPath()} {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return skipped, fmt.Errorf("read audit trail: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), maxAuditRecord+1)
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			line, err := auditLine(sc.Bytes())
			if err != nil {
				skipped++
				continue
			}
			lines = append(lines, line)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return skipped, fmt.Errorf("read audit trail %s: %w", path, err)
		}
	}
	if tail > 0 && len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	for _, l := range lines {
		if _, err := w.Write(l); err != nil {
			return skipped, err
		}
	}
	return skipped, nil
}

const auditUsage = `usage: agentlet audit append|list [--root DIR] [--tail N]

  append  append the audit record (a JSON object with a generation) read from stdin
  list    print the audit trail, oldest first, one JSON record per line
`

func auditCmd(env Env, args []string) error {
	if len(args) == 0 || (args[0] != "append" && args[0] != "list") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(env.Out, auditUsage)
			return nil
		}
		fmt.Fprint(env.Err, auditUsage)
		return &usageError{errors.New("want append or list")}
	}
	fs := newFlags(env, "audit "+args[0])
	root := rootFlag(fs)
	tail := 0
	if args[0] == "list" {
		fs.IntVar(&tail, "tail", 0, "print only the last N records (0: all)")
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	log := AuditLog{Paths: Paths{Root: *root}}
	if args[0] == "list" {
		skipped, err := log.List(env.Out, tail)
		if skipped > 0 {
			fmt.Fprintf(env.Err, "agentlet audit list: warning: skipped %d unreadable lines\n", skipped)
		}
		return err
	}
	data, err := io.ReadAll(io.LimitReader(env.In, maxAuditRecord+1))
	if err != nil {
		return fmt.Errorf("read audit record: %w", err)
	}
	err = log.Append(data)
	var invalid *InvalidInputError
	if errors.As(err, &invalid) {
		return &usageError{invalid.Err}
	}
	return err
}
