package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Splitting files into documents, and syntax errors.

// chunk is one document of a file.
type chunk struct {
	line int    // file line of the chunk's first byte
	data []byte // the document's text
	json bool   // the file is a stream of JSON documents
}

// splitDocuments splits a file into documents: a stream of JSON values when
// the file starts with '{' and parses as JSON, YAML documents separated by
// "---" lines otherwise.
func splitDocuments(file string, data []byte) ([]chunk, []Problem) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		chunks, err := splitJSON(data)
		if err == nil {
			return chunks, nil
		}
		if strings.HasSuffix(strings.ToLower(file), ".json") {
			return nil, []Problem{jsonSyntaxProblem(file, data, err)}
		}
		// Not JSON after all: flow-style YAML such as {apiVersion: v1, ...}.
	}
	return splitYAML(file, data)
}

// splitJSON splits a stream of JSON values.
func splitJSON(data []byte) ([]chunk, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var chunks []chunk
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return chunks, nil
		} else if err != nil {
			return nil, err
		}
		end := int(dec.InputOffset())
		start := end - len(raw)
		chunks = append(chunks, chunk{line: lineAt(data, start), data: data[start:end], json: true})
	}
}

// lineAt returns the 1-based line of byte offset off.
func lineAt(data []byte, off int) int {
	off = min(max(off, 0), len(data))
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

func jsonSyntaxProblem(file string, data []byte, err error) Problem {
	line := lineAt(data, len(data))
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line = lineAt(data, int(se.Offset)-1)
	}
	msg := err.Error()
	if errors.Is(err, io.ErrUnexpectedEOF) {
		msg = "unexpected end of input"
	}
	return Problem{File: file, Line: line, Message: "invalid JSON: " + msg}
}

// splitYAML splits YAML text on document separators the way kubectl does: a
// line that starts with "---", followed by nothing but blanks or a comment.
func splitYAML(file string, data []byte) ([]chunk, []Problem) {
	var chunks []chunk
	var problems []Problem
	start, startLine, line := 0, 1, 1
	for off := 0; off < len(data); line++ {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			next = off + end + 1
		}
		text := data[off:next]
		if rest, ok := bytes.CutPrefix(text, []byte("---")); ok && (len(bytes.TrimSpace(rest)) == 0 || rest[0] == ' ' || rest[0] == '\t') {
			if r := bytes.TrimSpace(rest); len(r) > 0 && r[0] != '#' {
				problems = append(problems, Problem{File: file, Line: line,
					Message: "invalid document separator: only a comment may follow \"---\"; start the document on the next line"})
			}
			chunks = append(chunks, chunk{line: startLine, data: data[start:off]})
			start, startLine = next, line+1
		}
		off = next
	}
	chunks = append(chunks, chunk{line: startLine, data: data[start:]})
	return chunks, problems
}

// jsonNode builds a node tree for a JSON document without line information;
// every node is placed on the document's first line.
func jsonNode(data []byte) (yaml.Node, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return yaml.Node{}, err
	}
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return yaml.Node{}, err
	}
	var fix func(*yaml.Node)
	fix = func(n *yaml.Node) {
		n.Line = 1
		if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
			n.Style = yaml.DoubleQuotedStyle
		}
		for _, c := range n.Content {
			fix(c)
		}
	}
	fix(&n)
	return n, nil
}

// yamlSyntaxProblem turns a yaml.v3 error such as "yaml: line 4: did not
// find expected key" into a problem on the right file line.
//
// For errors in the block structure (usually bad indentation) yaml.v3 names
// the line where the enclosing map or list starts, not the line that breaks
// it; the culprit is found by parsing ever longer prefixes of the document.
func yamlSyntaxProblem(file string, c chunk, err error) Problem {
	rel, msg := 1, strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, text, ok := strings.Cut(rest, ": "); ok {
			if i, err := strconv.Atoi(n); err == nil {
				rel, msg = i, text
			}
		}
	}
	for _, structural := range []string{"did not find expected key", "did not find expected '-' indicator", "mapping values are not allowed"} {
		if strings.Contains(msg, structural) {
			rel = breakingLine(c.data, rel)
			break
		}
	}
	if strings.Contains(msg, "cannot start any token") && hasTabIndent(c.data, rel) {
		msg += " (tabs are not allowed for indentation; use spaces)"
	}
	return Problem{File: file, Line: c.line + rel - 1, Message: "invalid YAML: " + msg}
}

// breakingLine returns the first line, from line from on, whose addition
// makes data's prefix fail to parse (with something other than an
// unexpected end), or from when there is none. A binary search: once a
// prefix is broken, every longer one is too.
func breakingLine(data []byte, from int) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	broken := func(k int) bool {
		var n yaml.Node
		err := yaml.Unmarshal(bytes.Join(lines[:k], nil), &n)
		return err != nil && !strings.Contains(err.Error(), "end of stream")
	}
	lo, hi := max(from, 1), len(lines)
	if lo > hi || !broken(hi) {
		return from
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if broken(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// hasTabIndent reports whether line n (1-based) of data is indented with a tab.
func hasTabIndent(data []byte, n int) bool {
	lines := bytes.Split(data, []byte("\n"))
	if n < 1 || n > len(lines) {
		return false
	}
	indent := lines[n-1][:len(lines[n-1])-len(bytes.TrimLeft(lines[n-1], " \t"))]
	return bytes.IndexByte(indent, '\t') >= 0
}
