package cli

import (
	"fmt"
	"io"
	"strings"

	sigsyaml "sigs.k8s.io/yaml"
)

// printDiff writes a unified-style line diff of two objects rendered as YAML,
// with "-" for lines only in before and "+" for lines only in after.
func printDiff(w io.Writer, title string, before, after any) error {
	a, err := sigsyaml.Marshal(before)
	if err != nil {
		return fmt.Errorf("render %s: %w", title, err)
	}
	b, err := sigsyaml.Marshal(after)
	if err != nil {
		return fmt.Errorf("render %s: %w", title, err)
	}
	fmt.Fprintf(w, "--- %s (stored)\n+++ %s (applied)\n", title, title)
	for _, l := range lineDiff(strings.Split(strings.TrimRight(string(a), "\n"), "\n"), strings.Split(strings.TrimRight(string(b), "\n"), "\n")) {
		fmt.Fprintln(w, l)
	}
	return nil
}

// lineDiff returns the lines of a and b marked " ", "-" or "+", from a longest
// common subsequence (objects are small, so O(n·m) is fine).
func lineDiff(a, b []string) []string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			out = append(out, "  "+a[i])
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, "- "+a[i])
			i++
		default:
			out = append(out, "+ "+b[j])
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, "- "+a[i])
	}
	for ; j < m; j++ {
		out = append(out, "+ "+b[j])
	}
	return out
}
