package agentlet

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Logger writes plain lines to stderr: `time level msg key=value ...`.
// Values with blanks, quotes or '=' are quoted.
type Logger struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewLogger logs to w, stamping lines with now.
func NewLogger(w io.Writer, now func() time.Time) *Logger {
	return &Logger{w: w, now: now}
}

// Info logs a notable change.
func (l *Logger) Info(msg string, kv ...any) { l.log("INFO", msg, kv) }

// Warn logs a degraded state.
func (l *Logger) Warn(msg string, kv ...any) { l.log("WARN", msg, kv) }

// Error logs a failure.
func (l *Logger) Error(msg string, kv ...any) { l.log("ERROR", msg, kv) }

func (l *Logger) log(level, msg string, kv []any) {
	if l == nil || l.w == nil {
		return
	}
	var b strings.Builder
	b.WriteString(l.now().UTC().Format("2006-01-02T15:04:05.000Z"))
	b.WriteByte(' ')
	b.WriteString(level)
	b.WriteByte(' ')
	b.WriteString(msg)
	for i := 0; i < len(kv); i += 2 {
		b.WriteByte(' ')
		b.WriteString(fmt.Sprint(kv[i]))
		b.WriteByte('=')
		if i+1 < len(kv) {
			b.WriteString(quote(fmt.Sprint(kv[i+1])))
		}
	}
	b.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, b.String())
}

func quote(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=\\") {
		return strconv.Quote(s)
	}
	return s
}
