package inventory

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with an inventory file, located by line and
// field path.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`            // 1-based; 0 when the problem concerns the whole file
	Field   string `json:"field,omitempty"` // e.g. hosts[1].address; empty for document-level problems
	Message string `json:"message"`
}

// String formats the problem as FILE:LINE: field.path: message, leaving out
// the parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError is returned by Parse and Load when the inventory is
// invalid. It holds every problem found, sorted by line.
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

// sortProblems orders problems by line, keeping the order in which they were
// found for problems on the same line.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
}
