package plan

import "strings"

// expand replaces $(NAME) references in input the way kubelet does
// (k8s.io/kubernetes/third_party/forked/golang/expansion):
//
//   - $(NAME) is replaced by lookup(NAME) when it reports ok, and is left as
//     written ("$(NAME)") otherwise;
//   - $$ is an escaped $ and becomes a single $ (so $$(NAME) is the literal
//     text "$(NAME)");
//   - a $ followed by anything else, an unterminated "$(" and a trailing $
//     are copied through unchanged.
//
// Nothing is expanded recursively: a value that itself contains $(X) is
// inserted as is.
func expand(input string, lookup func(name string) (string, bool)) string {
	if !strings.Contains(input, "$") {
		return input
	}
	var buf strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(input); cursor++ {
		if input[cursor] != '$' || cursor+1 >= len(input) {
			continue
		}
		buf.WriteString(input[checkpoint:cursor])
		read, isVar, advance := readVariableName(input[cursor+1:])
		if isVar {
			if v, ok := lookup(read); ok {
				buf.WriteString(v)
			} else {
				buf.WriteString("$(" + read + ")")
			}
		} else {
			buf.WriteString(read)
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	return buf.String() + input[checkpoint:]
}

// readVariableName reads what follows a '$': it returns the text to emit (or
// the variable name), whether it is a variable reference, and how many bytes
// of input it consumed.
func readVariableName(input string) (string, bool, int) {
	switch input[0] {
	case '$': // escaped operator
		return "$", false, 1
	case '(':
		for i := 1; i < len(input); i++ {
			if input[i] == ')' {
				return input[1:i], true, i + 1
			}
		}
		return "$(", false, 1 // incomplete reference
	default: // not a reference: emit the operator and the byte after it
		return "$" + input[0:1], false, 1
	}
}

// references lists the $(NAME) references expand would look up in input, in
// order, with duplicates.
func references(input string) []string {
	var names []string
	expand(input, func(name string) (string, bool) {
		names = append(names, name)
		return "", false
	})
	return names
}
