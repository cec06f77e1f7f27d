package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Keys and fingerprints printed by OpenSSH 9.2 `ssh-keygen -lf`.
const (
	ed25519Pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIoWyjDU1idsQzpVGWzPRtwCp9ZGg/eK1QHy3nT2jAWi"
	ed25519FP  = "SHA256:EhTCeqISKPA6JqmITnIZ0xIH+MjrbVet8vFp6cZSoaM"
	rsaPub     = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDNkpN18gnyllSgUkgLEjtQzRyo1WOLjYbtaWGHpZyP6QQVU321soJRR7txJIlP5gz+ztpLB02PFPHDlrboWTg1a3JrCdHssFkC0lcpCejfTeEwIRrIO4VH+wnBVcVH/JiGHOTzMq/7q5x4Imq6YoskeRgmwN/yXftgxDjMGhj7Tw=="
	rsaFP      = "SHA256:VYfQPbUl7lcaF93M6NIvSwBWQYWCys5hYiq1JaQMG00"
)

func parsePub(t *testing.T, s string) ssh.PublicKey {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestFingerprint(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{ed25519Pub, ed25519FP},
		{rsaPub, rsaFP},
	} {
		if got := Fingerprint(parsePub(t, tc.key)); got != tc.want {
			t.Errorf("Fingerprint(%.20s...) = %s, want %s", tc.key, got, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"plain", "plain"},
		{"/usr/local/bin/agentlet", "/usr/local/bin/agentlet"},
		{"a=b,c:d@e%f+g", "a=b,c:d@e%f+g"},
		{"two words", "'two words'"},
		{"it's", `'it'\''s'`},
		{"$HOME", "'$HOME'"},
		{"a\nb", "'a\nb'"},
		{`back\slash "dq" *glob* ~tilde`, `'back\slash "dq" *glob* ~tilde'`},
		{"'", `''\'''`},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestQuoteRoundTrip has a real sh parse quoted strings back.
func TestQuoteRoundTrip(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	for _, in := range []string{"", "x", "it's", "''", `"; rm -rf / #`, "$(id) `id` $((1+1))", "a\nb\tc", "ünï cödé", `\'\`} {
		out, err := exec.Command("sh", "-c", "printf %s "+Quote(in)).Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		if string(out) != in {
			t.Errorf("sh printf %s = %q, want %q", Quote(in), out, in)
		}
	}
}

func TestSudoCommand(t *testing.T) {
	for _, tc := range []struct {
		cmd      string
		password bool
		want     string
	}{
		{"true", false, "sudo -n -- sh -c true"},
		{"id -u", false, "sudo -n -- sh -c 'id -u'"},
		{"echo 'hi there' > /tmp/x", true, `sudo -S -k -p '' -- sh -c 'echo '\''hi there'\'' > /tmp/x'`},
	} {
		if got := sudoCommand(tc.cmd, tc.password); got != tc.want {
			t.Errorf("sudoCommand(%q, %v) = %s, want %s", tc.cmd, tc.password, got, tc.want)
		}
	}
}

// TestSudoCommandRoundTrip runs the wrapped command through two real shells,
// the login shell and sudo's sh -c, with a shell function standing in for
// sudo (sudo is not installed on the test machine), and checks that the
// command arrives intact.
func TestSudoCommandRoundTrip(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	const fakeSudo = `sudo() { while [ "$1" != "--" ]; do shift; done; shift; "$@"; }; `
	for _, tc := range []struct{ cmd, want string }{
		{`printf '%s|' "a b" 'it'"'"'s' $((1+2))`, "a b|it's|3|"},
		{"x=1; echo \"$x\" 'single' \\$x", "1 single $x\n"},
		{"printf 'line1\\nline2'", "line1\nline2"},
	} {
		for _, pw := range []bool{false, true} {
			out, err := exec.Command("sh", "-c", fakeSudo+sudoCommand(tc.cmd, pw)).CombinedOutput()
			if err != nil {
				t.Fatalf("sh -c %s: %v: %s", sudoCommand(tc.cmd, pw), err, out)
			}
			if string(out) != tc.want {
				t.Errorf("wrapped %q printed %q, want %q", tc.cmd, out, tc.want)
			}
		}
	}
}

func TestParseSudoMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    SudoMode
		wantErr bool
	}{
		{"", SudoAuto, false},
		{"auto", SudoAuto, false},
		{"always", SudoAlways, false},
		{"never", SudoNever, false},
		{"yes", SudoAuto, true},
	} {
		got, err := ParseSudoMode(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseSudoMode(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err == nil && tc.in != "" && got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
}

func TestParseProxyJump(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []JumpHost
		wantErr string
	}{
		{in: ""},
		{in: "none"},
		{in: "  NONE "},
		{in: "bastion", want: []JumpHost{{Host: "bastion"}}},
		{in: "admin@bastion:2222", want: []JumpHost{{User: "admin", Host: "bastion", Port: 2222}}},
		{in: "a@j1,j2:23, b@10.0.0.1", want: []JumpHost{{User: "a", Host: "j1"}, {Host: "j2", Port: 23}, {User: "b", Host: "10.0.0.1"}}},
		{in: "[::1]:2200", want: []JumpHost{{Host: "::1", Port: 2200}}},
		{in: "u@[fe80::1]", want: []JumpHost{{User: "u", Host: "fe80::1"}}},
		{in: "fe80::1", want: []JumpHost{{Host: "fe80::1"}}},
		{in: "ssh://me@jump.example.com:2022", want: []JumpHost{{User: "me", Host: "jump.example.com", Port: 2022}}},
		{in: "user@domain@bastion", want: []JumpHost{{User: "user@domain", Host: "bastion"}}},
		{in: "bastion:", wantErr: "empty port"},
		{in: "bastion:ssh", wantErr: "invalid port"},
		{in: "bastion:70000", wantErr: "invalid port"},
		{in: "@bastion", wantErr: "empty user"},
		{in: "a,,b", wantErr: "empty jump host"},
		{in: "[::1", wantErr: "missing ]"},
		{in: "[::1]x", wantErr: "unexpected"},
		{in: "u@:22", wantErr: "empty host"},
	} {
		got, err := ParseProxyJump(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseProxyJump(%q) error = %v, want it to contain %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseProxyJump(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseProxyJump(%q) (-want +got):\n%s", tc.in, diff)
		}
		// String is the inverse of parsing.
		for _, j := range got {
			again, err := ParseProxyJump(j.String())
			if err != nil || len(again) != 1 || again[0] != j {
				t.Errorf("ParseProxyJump(%q) = %v, %v; want %v", j.String(), again, err, j)
			}
		}
	}
}

// TestRoute checks the precedence of explicit values, ssh_config and defaults.
func TestRoute(t *testing.T) {
	const sshConfigText = `
Host alias
  HostName 10.0.0.5
  Port 2200
  User cfguser
  IdentityFile ~/.ssh/alias_key
  IdentityFile /keys/%r@%h
  UserKnownHostsFile ~/.ssh/known_hosts /dev/null

Host viajump
  HostName %h.internal
  ProxyJump admin@bastion:2022,bastion2

Host bastion2
  HostName 192.0.2.2
  User jumper
  Port 2323

Host proxied
  ProxyCommand nc %h %p

Host *
  User wildcard
`
	dir := t.TempDir()
	path := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(path, []byte(sshConfigText), 0o600); err != nil {
		t.Fatal(err)
	}
	sc, err := loadSSHConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	env := envMap{"HOME": "/home/me"}.get

	for _, tc := range []struct {
		name    string
		target  Target
		cfg     Config
		sc      *sshConfig
		want    []hop
		wantErr string
	}{
		{
			name:   "defaults without ssh_config",
			target: Target{Address: "10.0.0.9"},
			want:   []hop{{name: "10.0.0.9", host: "10.0.0.9", port: 22, user: "root"}},
		},
		{
			name:   "config defaults without ssh_config",
			target: Target{Address: "10.0.0.9"},
			cfg:    Config{User: "ubuntu", Port: 2222},
			want:   []hop{{name: "10.0.0.9", host: "10.0.0.9", port: 2222, user: "ubuntu"}},
		},
		{
			name:   "ssh_config alias fills what is not set",
			target: Target{Address: "alias"},
			sc:     sc,
			want: []hop{{name: "alias", host: "10.0.0.5", port: 2200, user: "cfguser",
				identityFiles:   []string{"/home/me/.ssh/alias_key", "/keys/cfguser@10.0.0.5"},
				knownHostsFiles: []string{"/home/me/.ssh/known_hosts", "/dev/null"}}},
		},
		{
			name:   "inventory-wide user and port beat ssh_config",
			target: Target{Address: "alias"},
			cfg:    Config{User: "ubuntu", Port: 22},
			sc:     sc,
			want: []hop{{name: "alias", host: "10.0.0.5", port: 22, user: "ubuntu",
				identityFiles:   []string{"/home/me/.ssh/alias_key", "/keys/ubuntu@10.0.0.5"},
				knownHostsFiles: []string{"/home/me/.ssh/known_hosts", "/dev/null"}}},
		},
		{
			name:   "per-host user and port beat everything",
			target: Target{Address: "alias", User: "hostuser", Port: 2201},
			cfg:    Config{User: "ubuntu", Port: 22},
			sc:     sc,
			want: []hop{{name: "alias", host: "10.0.0.5", port: 2201, user: "hostuser",
				identityFiles:   []string{"/home/me/.ssh/alias_key", "/keys/hostuser@10.0.0.5"},
				knownHostsFiles: []string{"/home/me/.ssh/known_hosts", "/dev/null"}}},
		},
		{
			name:   "Host * applies to names without their own block",
			target: Target{Address: "10.1.1.1"},
			sc:     sc,
			want:   []hop{{name: "10.1.1.1", host: "10.1.1.1", port: 22, user: "wildcard"}},
		},
		{
			name:   "ssh_config ProxyJump; jump hosts resolved with ssh_config, not Config.Port",
			target: Target{Address: "viajump"},
			cfg:    Config{Port: 2222},
			sc:     sc,
			want: []hop{
				{name: "bastion", host: "bastion", port: 2022, user: "admin"},
				{name: "bastion2", host: "192.0.2.2", port: 2323, user: "jumper"},
				{name: "viajump", host: "viajump.internal", port: 2222, user: "wildcard",
					proxyJump: "admin@bastion:2022,bastion2"},
			},
		},
		{
			name:   "Config.ProxyJump beats ssh_config; Config.User is the jump's fallback",
			target: Target{Address: "viajump"},
			cfg:    Config{ProxyJump: "j.example.com", User: "ubuntu"},
			want: []hop{
				{name: "j.example.com", host: "j.example.com", port: 22, user: "ubuntu"},
				{name: "viajump", host: "viajump", port: 22, user: "ubuntu"},
			},
		},
		{
			name:   "ProxyJump none disables ssh_config's",
			target: Target{Address: "viajump"},
			cfg:    Config{ProxyJump: "none"},
			sc:     sc,
			want: []hop{{name: "viajump", host: "viajump.internal", port: 22, user: "wildcard",
				proxyJump: "admin@bastion:2022,bastion2"}},
		},
		{
			name:    "ProxyCommand is refused",
			target:  Target{Address: "proxied"},
			sc:      sc,
			wantErr: "ProxyCommand, which is not supported",
		},
		{
			name:    "bad ProxyJump",
			target:  Target{Address: "x"},
			cfg:     Config{ProxyJump: "a@"},
			wantErr: "empty host",
		},
		{
			name:    "empty address",
			target:  Target{Name: "h1"},
			wantErr: "empty address",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Getenv = env
			got, err := route(tc.sc, tc.target, tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("route error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(hop{})); diff != "" {
				t.Errorf("route (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadSSHConfigErrors(t *testing.T) {
	if _, err := loadSSHConfig(filepath.Join(t.TempDir(), "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("loadSSHConfig(missing) = %v, want ErrNotExist", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("Match exec \"true\"\n  User x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSSHConfig(bad); err == nil || !strings.Contains(err.Error(), "parse ssh config") {
		t.Errorf("loadSSHConfig(Match exec) = %v, want a parse error", err)
	}
}

// writeKnownHosts writes lines to a new known_hosts file.
func writeKnownHosts(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHostKeys covers known_hosts lookups without a network: entry forms,
// the algorithms offered, and the typed errors.
func TestHostKeys(t *testing.T) {
	ed, rsaKey := parsePub(t, ed25519Pub), parsePub(t, rsaPub)
	other, _ := newKeyOfType(t, "ed25519")
	remote := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 22}
	file := writeKnownHosts(t,
		"# comment",
		"10.0.0.1 "+ed25519Pub,
		"[10.0.0.1]:2222 "+rsaPub,
		knownhosts.HashHostname("[10.0.0.2]:2200")+" "+ed25519Pub,
		knownhosts.HashHostname("10.0.0.2")+" "+rsaPub,
		"web*.example.com "+ed25519Pub,
	)
	hk, err := newHostKeys("h1", file, []string{filepath.Join(t.TempDir(), "missing")}, false)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		addr      string
		wantAlgos []string
		wantLine  int
	}{
		{"10.0.0.1:22", []string{"ssh-ed25519"}, 2},
		{"10.0.0.1:2222", []string{"rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"}, 3},
		{"10.0.0.2:2200", []string{"ssh-ed25519"}, 4},
		{"10.0.0.2:22", []string{"rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"}, 5},
		{"web3.example.com:22", []string{"ssh-ed25519"}, 6},
		{"10.0.0.3:22", nil, 0},
	} {
		known, err := hk.knownKeys(tc.addr)
		if err != nil {
			t.Fatalf("knownKeys(%s): %v", tc.addr, err)
		}
		if diff := cmp.Diff(tc.wantAlgos, hostKeyAlgorithms(known)); diff != "" {
			t.Errorf("hostKeyAlgorithms(%s) (-want +got):\n%s", tc.addr, diff)
		}
		if tc.wantLine > 0 && (len(known) != 1 || known[0].Line != tc.wantLine) {
			t.Errorf("knownKeys(%s) = %v, want one key at line %d", tc.addr, known, tc.wantLine)
		}
	}

	// The recorded keys verify.
	for addr, key := range map[string]ssh.PublicKey{"10.0.0.1:22": ed, "10.0.0.1:2222": rsaKey, "10.0.0.2:2200": ed} {
		if err := hk.verify(addr, remote, key); err != nil {
			t.Errorf("verify(%s): %v", addr, err)
		}
	}

	// A different key is a mismatch naming both fingerprints and the line.
	err = hk.verify("10.0.0.2:2200", remote, other.PublicKey())
	var mm *HostKeyMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("verify(changed key) = %v, want *HostKeyMismatchError", err)
	}
	want := &HostKeyMismatchError{Host: "h1", Address: "[10.0.0.2]:2200", KnownFingerprints: []string{ed25519FP},
		GotFingerprint: Fingerprint(other.PublicKey()), KnownHostsFile: file, Line: 4}
	if diff := cmp.Diff(want, mm); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	for _, s := range []string{ed25519FP, Fingerprint(other.PublicKey()), file + ":4", "ssh-keygen -R '[10.0.0.2]:2200' -f " + file} {
		if !strings.Contains(mm.Error(), s) {
			t.Errorf("mismatch message %q does not contain %q", mm.Error(), s)
		}
	}

	// An unknown host is an UnknownHostKeyError suggesting the flag.
	err = hk.verify("10.0.0.3:22", remote, ed)
	var uk *UnknownHostKeyError
	if !errors.As(err, &uk) {
		t.Fatalf("verify(unknown) = %v, want *UnknownHostKeyError", err)
	}
	wantUK := &UnknownHostKeyError{Host: "h1", Address: "10.0.0.3", KeyType: "ssh-ed25519", Fingerprint: ed25519FP, KnownHostsFile: file}
	if diff := cmp.Diff(wantUK, uk); diff != "" {
		t.Errorf("unknown (-want +got):\n%s", diff)
	}
	if !strings.Contains(uk.Error(), "--accept-new-host-keys") {
		t.Errorf("unknown message %q does not suggest --accept-new-host-keys", uk.Error())
	}

	// Revoked keys are refused.
	revoked := writeKnownHosts(t, "@revoked * "+ed25519Pub, "10.0.0.1 "+ed25519Pub)
	hkr, err := newHostKeys("h1", revoked, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := hkr.verify("10.0.0.1:22", remote, ed); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("verify(revoked) = %v, want a revoked error", err)
	}
}

// TestAcceptNewConcurrent has many goroutines trust the same and other hosts
// at once: each host must be recorded exactly once, on intact lines.
func TestAcceptNewConcurrent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "known_hosts") // the directory is created too
	key, _ := newKeyOfType(t, "ed25519")
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hk, err := newHostKeys("h", file, nil, true)
			if err == nil {
				err = hk.verify(fmt.Sprintf("10.0.0.%d:22", i%4), remote, key.PublicKey())
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 4 {
		t.Fatalf("known_hosts has %d lines, want 4:\n%s", len(lines), data)
	}
	st, _ := os.Stat(file)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode = %v, want 0600", st.Mode().Perm())
	}
	hk, err := newHostKeys("h", file, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := hk.verify(fmt.Sprintf("10.0.0.%d:22", i), remote, key.PublicKey()); err != nil {
			t.Errorf("host %d not recorded: %v", i, err)
		}
	}
	// A file without a final newline gets one before the new line.
	noNL := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(noNL, []byte("10.9.9.9 "+ed25519Pub), 0o600); err != nil {
		t.Fatal(err)
	}
	hk, err = newHostKeys("h", noNL, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := hk.verify("10.0.0.1:22", remote, key.PublicKey()); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(noNL)
	if got := strings.Count(string(data), "\n"); got != 2 {
		t.Errorf("known_hosts = %q, want two terminated lines", data)
	}
}

func TestCommandErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  CommandError
		want string
	}{
		{CommandError{Host: "h1", Cmd: "false", ExitCode: 1}, `run "false" on h1: exit code 1`},
		{CommandError{Host: "h1", Cmd: "ls /x", ExitCode: 2, Stderr: "ls: cannot access '/x'\n"},
			`run "ls /x" on h1: exit code 2: ls: cannot access '/x'`},
		{CommandError{Host: "h2", Cmd: "a\nb", ExitCode: 3, Stderr: "1\n2\n3\n4\n5\n6\n7\n\n"},
			"run \"a\\nb\" on h2: exit code 3: 3\n4\n5\n6\n7"},
		{CommandError{Host: "h1", Cmd: "sleep 9", ExitCode: 143, Signal: "TERM"}, `run "sleep 9" on h1: killed by signal TERM`},
		{CommandError{Host: "h1", Cmd: "x", ExitCode: -1}, `run "x" on h1: no exit status`},
		{CommandError{Host: "h1", Cmd: strings.Repeat("y", 300), ExitCode: 1},
			`run "` + strings.Repeat("y", 200) + `..." on h1: exit code 1`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestDialErrorMessage(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		err                      DialError
		want                     string
		timeout, refused, denied bool
	}{
		{err: DialError{Host: "h2", Op: OpConnect, Address: "10.250.0.12:22", Err: &timeoutError{op: OpConnect, after: "10s"}},
			want: "connect 10.250.0.12:22: i/o timeout (after 10s)", timeout: true},
		{err: DialError{Host: "h2", Op: OpConnect, Address: "10.250.0.12:22", Err: refused},
			want: "connect 10.250.0.12:22: connection refused", refused: true},
		{err: DialError{Host: "h2", Op: OpHandshake, Address: "10.250.0.12:22", Err: &timeoutError{op: OpHandshake, after: "2s"}},
			want: "ssh handshake with 10.250.0.12:22: i/o timeout (no SSH server answer within 2s)", timeout: true},
		{err: DialError{Host: "h2", Op: OpConnect, Address: "10.0.0.2:22", Via: []string{"bastion:22"},
			Err: &ssh.OpenChannelError{Reason: ssh.ConnectionFailed, Message: "Connection refused"}},
			want: `connect 10.0.0.2:22 via bastion:22: ssh: rejected: connect failed ("Connection refused")`, refused: true},
		{err: DialError{Host: "h2", Op: OpAuthenticate, User: "root", Address: "b:22", Jump: true, Err: errors.New("permission denied"),
			Methods: []string{"publickey ssh-ed25519 SHA256:x (/k)", "ssh-agent: no keys"}},
			want: "authenticate root@b:22 (jump host): permission denied (tried: publickey ssh-ed25519 SHA256:x (/k); ssh-agent: no keys)", denied: true},
		{err: DialError{Host: "h2", Op: OpAuthenticate, User: "root", Address: "b:22", Err: errors.New("no keys to offer")},
			want: "authenticate root@b:22: no keys to offer (no methods available: set identity files or use ssh-agent)", denied: true},
	} {
		e := &tc.err
		if got := e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if e.Timeout() != tc.timeout || e.Refused() != tc.refused || e.AuthFailed() != tc.denied {
			t.Errorf("%q: Timeout, Refused, AuthFailed = %v, %v, %v; want %v, %v, %v",
				tc.want, e.Timeout(), e.Refused(), e.AuthFailed(), tc.timeout, tc.refused, tc.denied)
		}
	}
	timeout := &DialError{Op: OpConnect, Err: &timeoutError{op: OpConnect, after: "1s"}}
	if !errors.Is(timeout, os.ErrDeadlineExceeded) {
		t.Error("a timeout DialError is not os.ErrDeadlineExceeded")
	}
}

func TestPidSniffer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		writes  []string
		wantPID int
		wantOut string
	}{
		{"one write", []string{"clusterctl-pid=123\nerr\n"}, 123, "err\n"},
		{"split marker", []string{"cluster", "ctl-pid=4", "5\n", "a", "b"}, 45, "ab"},
		{"marker only", []string{"clusterctl-pid=7\n"}, 7, ""},
		{"no marker", []string{"plain error\n", "more"}, 0, "plain error\nmore"},
		{"no newline, short", []string{"oops"}, 0, "oops"},
		{"long first line", []string{strings.Repeat("z", 100)}, 0, strings.Repeat("z", 100)},
		{"bad pid", []string{"clusterctl-pid=x\nrest"}, 0, "clusterctl-pid=x\nrest"},
	} {
		var out strings.Builder
		p := newPidSniffer(&out)
		for _, w := range tc.writes {
			if n, err := p.Write([]byte(w)); err != nil || n != len(w) {
				t.Fatalf("%s: Write = %d, %v", tc.name, n, err)
			}
		}
		p.flush()
		if p.get() != tc.wantPID || out.String() != tc.wantOut {
			t.Errorf("%s: pid %d, out %q; want %d, %q", tc.name, p.get(), out.String(), tc.wantPID, tc.wantOut)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 10}
	for i := range 100 {
		fmt.Fprintf(tb, "%d,", i)
	}
	if got, want := tb.String(), "96,97,98,99,"[2:]; got != want {
		t.Errorf("tail = %q, want %q", got, want)
	}
}

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"\n\n", 3, ""},
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb", 5, "a\nb"},
	} {
		if got := lastLines(tc.in, tc.n); got != tc.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestTempPath(t *testing.T) {
	c := &Client{}
	a, b := c.TempPath("agentlet"), c.TempPath("agentlet")
	if a == b || !strings.HasPrefix(a, "/tmp/agentlet.") || len(a) != len("/tmp/agentlet.")+16 {
		t.Errorf("TempPath = %q, %q; want distinct /tmp/agentlet.<16 hex>", a, b)
	}
}
