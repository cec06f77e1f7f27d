package manifest

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a manifest, located by file, line and
// field path.
type Problem struct {
	File    string `json:"file"`            // as given; "-" for stdin
	Line    int    `json:"line"`            // 1-based; 0 when the problem concerns the whole file
	Field   string `json:"field,omitempty"` // e.g. spec.containers[0].image; empty for document-level problems
	Message string `json:"message"`
}

// String formats the problem as FILE:LINE: field.path: message, leaving out
// the parts that are unknown. Stdin ("-") is shown as <stdin>.
func (p Problem) String() string {
	var b strings.Builder
	file := p.File
	if file == "-" {
		file = "<stdin>"
	}
	switch {
	case file != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", file, p.Line)
	case file != "":
		b.WriteString(file + ": ")
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError is returned by Decode, Read and DecodeStored when the input
// is invalid. It holds every problem found, sorted by file and line; no
// objects are returned with it.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems by file and line, keeping the order in which
// they were found for problems on the same line, and drops exact repeats.
func sortProblems(ps []Problem) []Problem {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return ps[i].Line < ps[j].Line
	})
	seen := make(map[Problem]bool, len(ps))
	out := ps[:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
