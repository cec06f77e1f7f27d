package lab

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// ensureKey returns the public half of the ed25519 key at path, generating
// it (OpenSSH format, path and path.pub) if it does not exist yet.
func ensureKey(path, comment string) (ssh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		signer, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("parse key %s: %w", path, err)
		}
		return signer.PublicKey(), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read key: %w", err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	if err := writeFileAtomic(path+".pub", authorizedLine(sshPub, comment), 0o644); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return sshPub, nil
}

// authorizedLine is "TYPE BASE64 COMMENT\n".
func authorizedLine(k ssh.PublicKey, comment string) []byte {
	line := bytes.TrimSuffix(ssh.MarshalAuthorizedKey(k), []byte("\n"))
	if comment != "" {
		line = append(append(line, ' '), comment...)
	}
	return append(line, '\n')
}

// knownHostsFile renders known_hosts for hosts whose public keys are given
// in authorized_keys format.
func knownHostsFile(hosts []hostState, keys map[string][]byte) []byte {
	var b bytes.Buffer
	for _, h := range hosts {
		k, ok := keys[h.Name]
		if !ok {
			continue
		}
		fields := strings.Fields(string(k))
		if len(fields) < 2 {
			continue
		}
		fmt.Fprintf(&b, "%s %s %s\n", h.Address, fields[0], fields[1])
	}
	return b.Bytes()
}

func sshdConfig(addr string) string {
	return `# written by clusterctl lab
ListenAddress ` + addr + `
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
MaxStartups 100:30:200
`
}

// containerdConfig is the initial, distro-like containerd configuration of
// a host. `clusterctl up` replaces it with its own.
func containerdConfig() string {
	return `# written by clusterctl lab (initial configuration; clusterctl up replaces it)
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # pod network namespaces under /run/containerd (per-host tmpfs), not /run/netns
  netns_mounts_under_state_dir = true
  # machines without CAP_SYS_RESOURCE cannot give pause oom_score_adj=-998
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
`
}

const sshdService = `# written by clusterctl lab
[Unit]
Description=OpenSSH server

[Service]
ExecStartPre=/bin/mkdir -p -m 0755 /run/sshd
ExecStart=/usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
Restart=always
`

const containerdService = `# written by clusterctl lab
[Unit]
Description=containerd container runtime

[Service]
ExecStart=/usr/bin/containerd --config /etc/containerd/config.toml
Restart=always
`

// prepareHostDisk creates host h's directories and, where missing, its
// initial configuration: sshd, containerd, labinit units, host key, root's
// authorized_keys. Files that exist are left alone, so a reboot keeps what
// the host (or `clusterctl up`) changed.
func prepareHostDisk(l layout, h hostState, authorized []byte) error {
	hd := l.host(h.Name)
	if err := os.MkdirAll(hd, 0o755); err != nil {
		return fmt.Errorf("create host dir: %w", err)
	}
	for _, m := range hostMounts() {
		d := filepath.Join(hd, m.dir)
		if m.overlay {
			for _, sub := range []string{"upper", "work"} {
				if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
					return fmt.Errorf("create host dir: %w", err)
				}
			}
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create host dir: %w", err)
		}
		if err := os.Chmod(d, m.mode); err != nil {
			return fmt.Errorf("create host dir: %w", err)
		}
	}
	etc := l.upperEtc(h.Name)
	for _, d := range []string{"ssh", "containerd", "labinit"} {
		if err := os.MkdirAll(filepath.Join(etc, d), 0o755); err != nil {
			return fmt.Errorf("create host dir: %w", err)
		}
	}
	sshDir := filepath.Join(hd, "root", ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		return fmt.Errorf("create host dir: %w", err)
	}
	keyPath := filepath.Join(etc, "ssh", "ssh_host_ed25519_key")
	pub, err := ensureKey(keyPath, "root@"+h.Name)
	if err != nil {
		return err
	}
	files := []struct {
		path string
		data string
		perm fs.FileMode
	}{
		{filepath.Join(etc, "ssh", "sshd_config"), sshdConfig(h.Address), 0o644},
		{filepath.Join(etc, "containerd", "config.toml"), containerdConfig(), 0o644},
		{filepath.Join(etc, "labinit", "sshd.service"), sshdService, 0o644},
		{filepath.Join(etc, "labinit", "containerd.service"), containerdService, 0o644},
		{filepath.Join(etc, "hostname"), h.Name + "\n", 0o644},
		{filepath.Join(etc, "hosts"), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" + h.Address + "\t" + h.Name + "\n", 0o644},
		{filepath.Join(sshDir, "authorized_keys"), string(authorized), 0o600},
	}
	for _, f := range files {
		if err := writeFileIfMissing(f.path, []byte(f.data), f.perm); err != nil {
			return err
		}
	}
	// The workstation reads host keys from here, not from the host's /etc.
	return writeFileIfMissing(l.hostKey(h.Name), authorizedLine(pub, "root@"+h.Name), 0o644)
}
