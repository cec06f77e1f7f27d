package playbooks

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
)

// RegistryHostsDir is containerd's registry host configuration directory
// (config_path of the CRI registry section): one DIR/<host>/hosts.toml per
// registry host, read on every pull, so changes need no restart.
const RegistryHostsDir = "/etc/containerd/certs.d"

// RegistryHost is a registry as containerd's hosts.toml needs it. Its
// credentials are not here: they never reach containerd's configuration.
type RegistryHost struct {
	// Host is host[:port], as in image references.
	Host string
	// Insecure registries are reached over plain HTTP.
	Insecure bool
	// Mirrors are the hosts this registry is a pull-through mirror for.
	Mirrors []string
}

// registryHostsPath is the hosts.toml of host.
func registryHostsPath(host string) string {
	return path.Join(RegistryHostsDir, host, "hosts.toml")
}

// upstreamServer is where containerd pulls from when no mirror answers.
func upstreamServer(host string) string {
	if host == "docker.io" {
		return "https://registry-1.docker.io"
	}
	return "https://" + host
}

// RenderRegistryHosts renders containerd's hosts.toml files, keyed by path:
// one per registry (server and host: itself) and one per mirrored host (server:
// the upstream; hosts: the registries mirroring it, in inventory order).
// Registries only pull and resolve; insecure ones are spoken to over plain
// HTTP (skip_verify is set too, should one redirect to HTTPS).
func RenderRegistryHosts(regs []RegistryHost) map[string][]byte {
	url := func(r RegistryHost) string {
		if r.Insecure {
			return "http://" + r.Host
		}
		return "https://" + r.Host
	}
	hostEntry := func(b *strings.Builder, r RegistryHost) {
		fmt.Fprintf(b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", url(r))
		if r.Insecure {
			b.WriteString("  skip_verify = true\n")
		}
	}
	out := map[string][]byte{}
	mirrored := map[string][]RegistryHost{}
	var order []string
	for _, r := range regs {
		var b strings.Builder
		fmt.Fprintf(&b, "%s\n# registry %s\nserver = %q\n", ManagedMarker, r.Host, url(r))
		hostEntry(&b, r)
		out[registryHostsPath(r.Host)] = []byte(b.String())
		for _, m := range r.Mirrors {
			if _, ok := mirrored[m]; !ok {
				order = append(order, m)
			}
			mirrored[m] = append(mirrored[m], r)
		}
	}
	for _, m := range order {
		var b strings.Builder
		fmt.Fprintf(&b, "%s\n# %s, mirrored by clusterctl's registries\nserver = %q\n", ManagedMarker, m, upstreamServer(m))
		for _, r := range mirrored[m] {
			hostEntry(&b, r)
		}
		out[registryHostsPath(m)] = []byte(b.String())
	}
	return out
}

// registryHostsFacts is the facts script part that reports every hosts.toml
// below RegistryHostsDir: regsum:PATH=SHA256 for clusterctl's (they hold the
// managed marker), regforeign=PATH for the others.
func registryHostsFacts() string {
	return fmt.Sprintf(`for f in %s/*/hosts.toml; do
  [ -f "$f" ] || continue
  if grep -qF 'managed by clusterctl' "$f"; then echo "regsum:$f=$(sha256sum "$f" | cut -d' ' -f1)"; else echo "regforeign=$f"; fi
done
`, RegistryHostsDir)
}

// syncRegistryHosts makes the hosts.toml files clusterctl manages on the
// host exactly want: missing or different ones are written, ones no longer
// wanted are removed (with their directory, when empty). A file in the way
// that clusterctl did not write is an error, never overwritten. It returns
// the change summary ("" for none).
func syncRegistryHosts(ctx context.Context, h Host, f *Facts, want map[string][]byte) (string, error) {
	var conflicts, written, removed []string
	for _, p := range slices.Sorted(maps.Keys(want)) {
		switch {
		case f.RegistryHosts[p] == sha256Hex(want[p]):
		case slices.Contains(f.ForeignRegistryHosts, p):
			conflicts = append(conflicts, p)
		default:
			written = append(written, p)
		}
	}
	if len(conflicts) > 0 {
		return "", fmt.Errorf("refuse to replace %s: not written by clusterctl (remove it, or drop that registry or mirror from the inventory)",
			strings.Join(conflicts, ", "))
	}
	for _, p := range written {
		if err := writeFile(ctx, h, p, want[p], 0o644); err != nil {
			return "", err
		}
	}
	for _, p := range slices.Sorted(maps.Keys(f.RegistryHosts)) {
		if _, ok := want[p]; !ok {
			removed = append(removed, p)
		}
	}
	if len(removed) > 0 {
		var cmd strings.Builder
		for _, p := range removed {
			fmt.Fprintf(&cmd, "rm -f %s && { rmdir %s 2>/dev/null || true; } && ", shellQuote(p), shellQuote(path.Dir(p)))
		}
		cmd.WriteString("true")
		if _, err := h.Run(ctx, cmd.String(), nil); err != nil {
			return "", fmt.Errorf("remove registry hosts: %w", err)
		}
	}
	var parts []string
	if len(written) > 0 {
		parts = append(parts, "registry hosts "+strings.Join(registryNames(written), " "))
	}
	if len(removed) > 0 {
		parts = append(parts, "removed registry hosts "+strings.Join(registryNames(removed), " "))
	}
	return strings.Join(parts, "; "), nil
}

// registryNames turns hosts.toml paths back into registry hosts.
func registryNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = path.Base(path.Dir(p))
	}
	return out
}
