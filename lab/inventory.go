package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
)

// inventoryMarker is the first line of every inventory the lab writes; the
// lab only ever changes or removes files that still hold it as a line of
// their own (comments may be added above it, tools may move it).
func inventoryMarker(name string) string {
	return "# written by clusterctl lab " + name + "; removed by lab down"
}

func ownsInventory(data, name string) bool {
	marker := inventoryMarker(name)
	for line := range strings.SplitSeq(data, "\n") {
		if strings.TrimSpace(line) == marker {
			return true
		}
	}
	return false
}

var yamlPlainRE = regexp.MustCompile(`^[A-Za-z0-9/_.@+-][A-Za-z0-9/_.@+ -]*[A-Za-z0-9/_.@+-]$|^[A-Za-z0-9/_.@+-]$`)

// yamlString quotes s when a plain scalar would not read back as s.
func yamlString(s string) string {
	if yamlPlainRE.MatchString(s) && !strings.Contains(s, ": ") && !strings.Contains(s, " #") {
		return s
	}
	return fmt.Sprintf("%q", s)
}

// renderInventory is a whole inventory for a lab.
func renderInventory(name, stateDir string, hosts []hostState) string {
	l := layout{dir: stateDir}
	var b strings.Builder
	b.WriteString(inventoryMarker(name) + "\n")
	b.WriteString("apiVersion: clusterctl.dev/v1alpha1\nkind: Inventory\n")
	fmt.Fprintf(&b, "cluster:\n  name: %s\n", name)
	b.WriteString("ssh:\n  user: root\n")
	fmt.Fprintf(&b, "  identityFile: %s\n", yamlString(l.key()))
	fmt.Fprintf(&b, "  knownHosts: %s\n", yamlString(l.knownHosts()))
	b.WriteString("  useAgent: false\n  sshConfig: none\n  connectTimeout: 3s\n")
	b.WriteString("hosts:\n")
	b.WriteString(renderHostEntries(name, hosts, "  "))
	return b.String()
}

func renderHostEntries(name string, hosts []hostState, indent string) string {
	var b strings.Builder
	for _, h := range hosts {
		fmt.Fprintf(&b, "%s- name: %s\n%s  address: %s\n%s  labels: {clusterctl.dev/lab: %s}\n",
			indent, h.Name, indent, h.Address, indent, name)
	}
	return b.String()
}

var (
	listItemRE  = regexp.MustCompile(`^(\s*)-(\s|$)`)
	hostItemRE  = regexp.MustCompile(`^\s*-\s+name:\s*["']?([^"'\s#]+)`)
	hostFieldRE = regexp.MustCompile(`^\s+name:\s*["']?([^"'\s#]+)`)
	topKeyRE    = regexp.MustCompile(`^[^\s#-]`)
)

// mergeInventory adds the hosts missing from an inventory the lab wrote
// earlier. Only the hosts list grows; every other line (a state: section
// written by clusterctl, comments) is kept as it is.
func mergeInventory(data, name string, hosts []hostState) (string, error) {
	if !ownsInventory(data, name) {
		return "", fmt.Errorf("not written by clusterctl lab %s (no line %q)", name, inventoryMarker(name))
	}
	lines := strings.Split(strings.TrimSuffix(data, "\n"), "\n")
	start := -1
	for i, ln := range lines {
		if strings.HasPrefix(ln, "hosts:") {
			start = i
			break
		}
	}
	present := map[string]bool{}
	indent := "  "
	end := len(lines) // insertion point: after the last content line of the block
	if start >= 0 {
		rest := strings.TrimSpace(strings.TrimPrefix(lines[start], "hosts:"))
		switch {
		case rest == "[]" || rest == "[] # none":
			lines[start] = "hosts:"
		case rest != "" && !strings.HasPrefix(rest, "#"):
			return "", fmt.Errorf("cannot extend hosts written in flow style (%q)", lines[start])
		}
		end = start + 1
		first := true
		for i := start + 1; i < len(lines); i++ {
			ln := lines[i]
			if topKeyRE.MatchString(ln) {
				break
			}
			if strings.TrimSpace(ln) == "" || strings.HasPrefix(strings.TrimSpace(ln), "#") {
				continue
			}
			end = i + 1
			if m := listItemRE.FindStringSubmatch(ln); m != nil && first {
				indent, first = m[1], false
			}
			if m := hostItemRE.FindStringSubmatch(ln); m != nil {
				present[m[1]] = true
			} else if m := hostFieldRE.FindStringSubmatch(ln); m != nil {
				present[m[1]] = true
			}
		}
	}
	var add []hostState
	for _, h := range hosts {
		if !present[h.Name] {
			add = append(add, h)
		}
	}
	if len(add) == 0 {
		return data, nil
	}
	entries := strings.TrimSuffix(renderHostEntries(name, add, indent), "\n")
	var out []string
	if start < 0 {
		out = append(append(lines, "hosts:"), entries)
	} else {
		out = append(out, lines[:end]...)
		out = append(out, entries)
		out = append(out, lines[end:]...)
	}
	return strings.Join(out, "\n") + "\n", nil
}

// checkInventory fails if path exists and was not written by this lab.
func checkInventory(path, name string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	if !ownsInventory(string(data), name) {
		return fmt.Errorf("refuse to overwrite inventory %s: it was not written by clusterctl lab %s (remove it or pass --inventory)", path, name)
	}
	return nil
}

// writeInventory creates the inventory or adds missing hosts to it, and the
// lab registry (host:port, "" for none) if it is not listed. It reports
// whether the file changed.
func writeInventory(path, name, stateDir string, hosts []hostState, registry string) (bool, error) {
	data, err := os.ReadFile(path)
	var out string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		out = renderInventory(name, stateDir, hosts)
	case err != nil:
		return false, fmt.Errorf("read inventory: %w", err)
	default:
		out, err = mergeInventory(string(data), name, hosts)
		if err != nil {
			return false, fmt.Errorf("refuse to overwrite inventory %s: %w", path, err)
		}
	}
	if registry != "" {
		if out, err = addRegistry(out, registry); err != nil {
			return false, fmt.Errorf("add the lab registry to inventory %s: %w", path, err)
		}
	}
	if out == string(data) {
		return false, nil
	}
	return true, writeFileAtomic(path, []byte(out), 0o644)
}

var registriesKeyRE = regexp.MustCompile(`^(\s+)registries:\s*(#.*)?$`)

// addRegistry lists the lab registry host (host:port) under
// cluster.registries, as insecure (plain HTTP), unless a registry with that
// host is listed already. It appends to the registries list, or starts one
// at the end of the cluster block; every other line is kept.
func addRegistry(data, host string) (string, error) {
	lines := strings.Split(strings.TrimSuffix(data, "\n"), "\n")
	start := slices.IndexFunc(lines, func(ln string) bool { return strings.HasPrefix(ln, "cluster:") })
	if start < 0 {
		return "", errors.New("no cluster: section")
	}
	if rest := strings.TrimSpace(strings.TrimPrefix(lines[start], "cluster:")); rest != "" && !strings.HasPrefix(rest, "#") {
		return "", fmt.Errorf("cannot extend cluster written in flow style (%q)", lines[start])
	}
	indentOf := func(ln string) string { return ln[:len(ln)-len(strings.TrimLeft(ln, " "))] }
	end, indent := start+1, ""
	key, itemIndent := -1, "" // the registries: line, the indent of its items
	inList := false
	for i := start + 1; i < len(lines); i++ {
		ln := lines[i]
		if topKeyRE.MatchString(ln) {
			break
		}
		trimmed := strings.TrimSpace(ln)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		end = i + 1
		if indent == "" {
			indent = indentOf(ln)
		}
		switch {
		case registriesKeyRE.MatchString(ln) && indentOf(ln) == indent:
			key, inList = i, true
		case strings.HasPrefix(ln, indent+"registries:") && indentOf(ln) == indent:
			return "", fmt.Errorf("cannot extend registries written in flow style (%q)", ln)
		case inList && len(indentOf(ln)) <= len(indent) && !strings.HasPrefix(trimmed, "-"):
			inList = false // a sibling key: the list is over
		case inList:
			if itemIndent == "" && strings.HasPrefix(trimmed, "-") {
				itemIndent = indentOf(ln)
			}
			if strings.Contains(ln, host) {
				return data, nil // listed already, in whatever form
			}
		}
	}
	if indent == "" {
		indent = "  "
	}
	if itemIndent == "" {
		itemIndent = indent + "  "
	}
	item := []string{itemIndent + "- host: " + host, itemIndent + "  insecure: true  # the lab registry: plain HTTP"}
	var out []string
	if key < 0 {
		out = append(out, lines[:end]...)
		out = append(out, indent+"registries:")
		out = append(out, item...)
		out = append(out, lines[end:]...)
	} else {
		out = append(out, lines[:key+1]...)
		out = append(out, item...)
		out = append(out, lines[key+1:]...)
	}
	return strings.Join(out, "\n") + "\n", nil
}

// removeInventory removes path if the lab wrote it. It reports what it did
// ("" when there was nothing to do).
func removeInventory(path, name string) (string, error) {
	if path == "" {
		return "", nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read inventory: %w", err)
	}
	if !ownsInventory(string(data), name) {
		return fmt.Sprintf("kept inventory %s: it no longer holds the line %q", path, inventoryMarker(name)), nil
	}
	if err := os.Remove(path); err != nil {
		return "", fmt.Errorf("remove inventory: %w", err)
	}
	return "removed inventory " + path, nil
}
