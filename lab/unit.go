package lab

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Restart policies labinit understands.
const (
	restartAlways    = "always"
	restartOnFailure = "on-failure"
	restartNo        = "no"
)

// execCommand is one ExecStart= or ExecStartPre= line.
type execCommand struct {
	Path          string   // executable; argv[0] unless the line started with "@"
	Argv          []string // as written, variables not yet expanded
	IgnoreFailure bool     // "-" prefix
}

// unitFile is the part of a systemd unit labinit honours.
type unitFile struct {
	ExecStart    execCommand
	ExecStartPre []execCommand
	Restart      string
	RestartSec   time.Duration
	Environment  []string // KEY=VALUE, in order
}

// parseUnit parses systemd unit syntax: [Section] headers, Key=Value lines,
// # and ; comments, backslash line continuation. Only [Service] is read.
func parseUnit(data []byte) (unitFile, error) {
	u := unitFile{Restart: restartNo, RestartSec: time.Second}
	section := ""
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return u, fmt.Errorf("line %d: bad section header %q", lineNo, line)
			}
			section = line[1 : len(line)-1]
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return u, fmt.Errorf("line %d: want Key=Value, got %q", lineNo, line)
		}
		if section != "Service" {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		var err error
		switch key {
		case "ExecStart":
			u.ExecStart = execCommand{}
			if val != "" {
				u.ExecStart, err = parseExec(val)
			}
		case "ExecStartPre":
			if val == "" {
				u.ExecStartPre = nil
				break
			}
			var c execCommand
			if c, err = parseExec(val); err == nil {
				u.ExecStartPre = append(u.ExecStartPre, c)
			}
		case "Restart":
			switch val {
			case restartAlways, restartOnFailure, restartNo:
				u.Restart = val
			default:
				err = fmt.Errorf("unsupported Restart=%s (want always, on-failure or no)", val)
			}
		case "RestartSec":
			u.RestartSec, err = parseTimespan(val)
		case "Environment":
			if val == "" {
				u.Environment = nil
				break
			}
			var words []string
			if words, err = splitWords(val); err == nil {
				for _, w := range words {
					if k, _, ok := strings.Cut(w, "="); !ok || k == "" {
						err = fmt.Errorf("bad Environment assignment %q", w)
						break
					}
					u.Environment = append(u.Environment, w)
				}
			}
		}
		if err != nil {
			return u, fmt.Errorf("line %d: %s: %w", lineNo, key, err)
		}
	}
	if len(u.ExecStart.Argv) == 0 {
		return u, errors.New("no ExecStart= in [Service]")
	}
	return u, nil
}

// parseExec parses a command line with systemd's prefixes: "-" ignores
// failure, "@" makes the second word argv[0], "+", "!", "!!" and ":" are
// accepted and ignored.
func parseExec(s string) (execCommand, error) {
	var c execCommand
	at := false
prefixes:
	for len(s) > 0 {
		switch s[0] {
		case '-':
			c.IgnoreFailure = true
		case '@':
			at = true
		case '+', '!', ':':
		default:
			break prefixes
		}
		s = s[1:]
	}
	words, err := splitWords(s)
	if err != nil {
		return c, err
	}
	if len(words) == 0 || at && len(words) < 2 {
		return c, errors.New("empty command")
	}
	c.Path = words[0]
	if at {
		words = words[1:]
	}
	c.Argv = words
	return c, nil
}

// splitWords splits on whitespace; "double" quotes (with \ escapes) and
// 'single' quotes group, as in systemd command lines.
func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote byte
	)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote == '\'':
			if ch == '\'' {
				quote = 0
			} else {
				cur.WriteByte(ch)
			}
		case quote == '"':
			switch {
			case ch == '"':
				quote = 0
			case ch == '\\' && i+1 < len(s):
				i++
				cur.WriteByte(s[i])
			default:
				cur.WriteByte(ch)
			}
		case ch == '"' || ch == '\'':
			quote, in = ch, true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case ch == ' ' || ch == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// parseTimespan parses systemd time spans: "5" (seconds), "500ms",
// "1min 30s", "2h".
func parseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty time span")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 {
			return 0, fmt.Errorf("negative time span %q", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	units := map[string]time.Duration{
		"us": time.Microsecond, "usec": time.Microsecond,
		"ms": time.Millisecond, "msec": time.Millisecond,
		"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
		"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
	}
	var total time.Duration
	rest := s
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t")
		n := 0
		for n < len(rest) && (rest[n] >= '0' && rest[n] <= '9' || rest[n] == '.') {
			n++
		}
		if n == 0 {
			return 0, fmt.Errorf("bad time span %q", s)
		}
		f, err := strconv.ParseFloat(rest[:n], 64)
		if err != nil {
			return 0, fmt.Errorf("bad time span %q", s)
		}
		rest = strings.TrimLeft(rest[n:], " \t")
		u := 0
		for u < len(rest) && rest[u] >= 'a' && rest[u] <= 'z' {
			u++
		}
		unit, ok := units[rest[:u]]
		if !ok {
			return 0, fmt.Errorf("bad time span %q: unknown unit %q", s, rest[:u])
		}
		total += time.Duration(f * float64(unit))
		rest = rest[u:]
	}
	return total, nil
}

// serviceEnv is base with the unit's assignments applied in order (later
// ones win).
func serviceEnv(base, assignments []string) []string {
	out := append([]string(nil), base...)
	for _, a := range assignments {
		k, _, _ := strings.Cut(a, "=")
		replaced := false
		for i, e := range out {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				out[i], replaced = a, true
				break
			}
		}
		if !replaced {
			out = append(out, a)
		}
	}
	return out
}

// expandVars replaces $VAR and ${VAR} with their values in env ("" when
// unset) and $$ with $. Unlike systemd, a lone $VAR is not split into words.
func expandVars(s string, env []string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	lookup := func(k string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if ek, v, _ := strings.Cut(env[i], "="); ek == k {
				return v
			}
		}
		return ""
	}
	isName := func(c byte, first bool) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				b.WriteByte('$')
				continue
			}
			b.WriteString(lookup(s[i+2 : i+2+end]))
			i += 2 + end
		case isName(next, true):
			j := i + 1
			for j < len(s) && isName(s[j], false) {
				j++
			}
			b.WriteString(lookup(s[i+1 : j]))
			i = j - 1
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
