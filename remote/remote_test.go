package remote

// Integration tests against real OpenSSH sshd processes on 127.0.0.1 (see
// sshd_test.go). They skip themselves when not root or sshd is missing.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	c := f.dial(t)
	if !c.IsRoot() || c.Host() != "h1" || c.User() != "root" {
		t.Errorf("IsRoot, Host, User = %v, %q, %q; want true, h1, root", c.IsRoot(), c.Host(), c.User())
	}
	out, err := c.Run(context.Background(), "echo hello; echo noise >&2; id -u", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "hello\n0\n" {
		t.Errorf("stdout = %q, want %q", out, "hello\n0\n")
	}
}

func TestRunNonZeroExit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	c := f.dial(t)
	const cmd = "echo out; printf 'first\\nsecond\\n' >&2; exit 3"
	out, err := c.Run(context.Background(), cmd, nil)
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("Run = %q, %v; want *CommandError", out, err)
	}
	want := &CommandError{Host: "h1", Cmd: cmd, ExitCode: 3, Stderr: "first\nsecond\n"}
	if diff := cmp.Diff(want, ce); diff != "" {
		t.Errorf("CommandError (-want +got):\n%s", diff)
	}
	if got, want := err.Error(), `run "echo out; printf 'first\\nsecond\\n' >&2; exit 3" on h1: exit code 3: first`+"\nsecond"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}

	// A command killed by a signal.
	_, err = c.Run(context.Background(), "kill -KILL $$", nil)
	if !errors.As(err, &ce) || ce.ExitCode != 137 {
		t.Errorf("Run(kill -KILL $$) = %v, want exit code 137", err)
	}
}

func TestRunStdin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	c := f.dial(t)
	ctx := context.Background()

	out, err := c.Run(ctx, "tr a-z A-Z", strings.NewReader("piped input\n"))
	if err != nil || string(out) != "PIPED INPUT\n" {
		t.Errorf("Run(tr) = %q, %v; want %q", out, err, "PIPED INPUT\n")
	}

	big := make([]byte, 3<<20)
	rand.Read(big)
	sum := sha256.Sum256(big)
	out, err = c.Run(ctx, "sha256sum", bytes.NewReader(big))
	if err != nil || !strings.HasPrefix(string(out), hex.EncodeToString(sum[:])) {
		t.Errorf("Run(sha256sum) = %q, %v; want %x", out, err, sum)
	}

	// A command that does not read its input still succeeds.
	if _, err := c.Run(ctx, "true", bytes.NewReader(big)); err != nil {
		t.Errorf("Run(true) with unread stdin: %v", err)
	}
	// A stdin that never ends does not block a command that ignores it.
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan error, 1)
	go func() { _, err := c.Run(ctx, "echo done", pr); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run with open stdin: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run with an open, idle stdin did not return")
	}
}

func TestStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	c := f.dial(t)
	var stdout, stderr bytes.Buffer
	err := c.Stream(context.Background(), "for i in 1 2 3; do echo $i; echo e$i >&2; done", nil, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "1\n2\n3\n" || stderr.String() != "e1\ne2\ne3\n" {
		t.Errorf("stdout, stderr = %q, %q", stdout.String(), stderr.String())
	}
	stderr.Reset()
	err = c.Stream(context.Background(), "echo bad >&2; exit 4", nil, nil, &stderr)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 4 || ce.Stderr != "bad\n" || stderr.String() != "bad\n" {
		t.Errorf("Stream = %v (stderr %q), want exit code 4 with stderr bad", err, stderr.String())
	}
}

// TestRunCancel checks that cancelling a command returns promptly and kills
// the remote processes, including children of a compound command, although
// OpenSSH ignores "signal" requests for root logins.
func TestRunCancel(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	c := f.dial(t)
	for i, cmd := range []string{"sleep 300.%s", "sleep 300.%s; echo never", "sh -c 'sleep 300.%s' & wait"} {
		marker := fmt.Sprintf("%d%d", time.Now().UnixNano()%1e9, i)
		cmd = fmt.Sprintf(cmd, marker)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		_, err := c.Run(ctx, cmd, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run(%q) = %v, want context.DeadlineExceeded", cmd, err)
		}
		// Not a timing assertion: the command sleeps 300 s; returning at
		// all well before that shows the cancellation did not wait for it
		// (the bound leaves room for a loaded machine).
		if d := time.Since(start); d > 60*time.Second {
			t.Errorf("Run(%q) returned after %v: the cancellation waited for the command", cmd, d)
		}
		// No process of the command is left.
		probe := "ps -eo args | grep -c '^sleep 300[.]" + marker + "$' || true"
		deadline := time.Now().Add(15 * time.Second)
		for {
			if n := strings.TrimSpace(mustRun(t, c, probe)); n == "0" {
				break
			} else if time.Now().After(deadline) {
				t.Errorf("Run(%q): %s remote sleep processes survive the cancellation", cmd, n)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// A context that is already done runs nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Run(ctx, "true", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestUpload(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	c := f.dial(t)
	ctx := context.Background()
	for _, tc := range []struct {
		size int
		mode os.FileMode
	}{
		{0, 0o600},
		{100, 0o640},
		{5 << 20, 0o755}, // large enough for concurrent SFTP writes
	} {
		data := make([]byte, tc.size)
		rand.Read(data)
		sum := sha256.Sum256(data)
		p := c.TempPath("clusterctl-test")
		t.Cleanup(func() { os.Remove(p) })
		// Wrapped so the size is unknown to the SFTP client.
		if err := c.Upload(ctx, io.MultiReader(bytes.NewReader(data)), p, tc.mode); err != nil {
			t.Fatalf("Upload %d bytes: %v", tc.size, err)
		}
		got := mustRun(t, c, "sha256sum "+Quote(p)+" && stat -c %a "+Quote(p))
		want := fmt.Sprintf("%x  %s\n%o\n", sum, p, tc.mode)
		if got != want {
			t.Errorf("uploaded file: got %q, want %q", got, want)
		}
	}

	// Overwriting truncates.
	p := c.TempPath("clusterctl-test")
	t.Cleanup(func() { os.Remove(p) })
	for _, s := range []string{"a long first version\n", "short\n"} {
		if err := c.Upload(ctx, strings.NewReader(s), p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustRun(t, c, "cat "+p); got != "short\n" {
		t.Errorf("after overwrite: %q, want %q", got, "short\n")
	}

	// A failing upload names the path and the host.
	err := c.Upload(ctx, strings.NewReader("x"), "/nonexistent-dir/file", 0o644)
	if err == nil || !strings.Contains(err.Error(), "upload /nonexistent-dir/file to h1") {
		t.Errorf("Upload to a missing directory = %v", err)
	}
	// A cancelled upload stops and leaves no file behind.
	ctx2, cancel := context.WithCancel(ctx)
	p2 := c.TempPath("clusterctl-test")
	err = c.Upload(ctx2, &cancelAfter{n: 1 << 20, cancel: cancel}, p2, 0o644)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Upload = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(p2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cancelled Upload left %s behind (%v)", p2, err)
	}

	// Everything above, SFTP included, used the one connection.
	f.sshd.waitLogins(t, 1)
}

// cancelAfter yields n zero bytes, then cancels its context and keeps yielding.
type cancelAfter struct {
	n      int
	cancel func()
}

func (r *cancelAfter) Read(p []byte) (int, error) {
	if r.n <= 0 {
		r.cancel()
	}
	r.n -= len(p)
	clear(p)
	return len(p), nil
}

func TestUnknownHostKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	f.cfg.KnownHostsFile = filepath.Join(t.TempDir(), "new", "known_hosts") // does not exist yet

	_, err := Dial(context.Background(), f.target, f.cfg)
	var uk *UnknownHostKeyError
	if !errors.As(err, &uk) {
		t.Fatalf("Dial = %v, want *UnknownHostKeyError", err)
	}
	want := &UnknownHostKeyError{Host: "h1", Address: knownhosts.Normalize(f.sshd.addr()), KeyType: "ssh-ed25519",
		Fingerprint: Fingerprint(f.sshd.hostKeys[0]), KnownHostsFile: f.cfg.KnownHostsFile}
	if diff := cmp.Diff(want, uk); diff != "" {
		t.Errorf("UnknownHostKeyError (-want +got):\n%s", diff)
	}

	// Trust on first use records the key ...
	tofu := f.cfg
	tofu.AcceptNewHostKeys = true
	c, err := Dial(context.Background(), f.target, tofu)
	if err != nil {
		t.Fatalf("Dial with AcceptNewHostKeys: %v", err)
	}
	c.Close()
	data, err := os.ReadFile(f.cfg.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != f.sshd.knownHostsLine() {
		t.Errorf("known_hosts = %q, want %q", got, f.sshd.knownHostsLine())
	}
	// ... and a second dial succeeds without it.
	mustRun(t, f.dial(t), "true")
}

func TestHostKeyMismatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	impostor, _ := newKeyOfType(t, "ed25519")
	addr := knownhosts.Normalize(f.sshd.addr())
	for _, tc := range []struct {
		name  string
		entry string
	}{
		{"plain", addr},
		{"hashed", knownhosts.HashHostname(addr)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.cfg.KnownHostsFile = writeKnownHosts(t, "# recorded earlier", tc.entry+" "+string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(impostor.PublicKey()))))
			for _, accept := range []bool{false, true} { // accepting new keys never accepts changed ones
				cfg := f.cfg
				cfg.AcceptNewHostKeys = accept
				_, err := Dial(context.Background(), f.target, cfg)
				var mm *HostKeyMismatchError
				if !errors.As(err, &mm) {
					t.Fatalf("Dial = %v, want *HostKeyMismatchError", err)
				}
				want := &HostKeyMismatchError{Host: "h1", Address: addr, KnownFingerprints: []string{Fingerprint(impostor.PublicKey())},
					GotFingerprint: Fingerprint(f.sshd.hostKeys[0]), KnownHostsFile: f.cfg.KnownHostsFile, Line: 2}
				if diff := cmp.Diff(want, mm); diff != "" {
					t.Errorf("HostKeyMismatchError (-want +got):\n%s", diff)
				}
				for _, s := range []string{want.KnownFingerprints[0], want.GotFingerprint, f.cfg.KnownHostsFile + ":2", "ssh-keygen -R"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("message %q does not contain %q", err, s)
					}
				}
			}
			data, _ := os.ReadFile(f.cfg.KnownHostsFile)
			if strings.Count(string(data), "\n") != 2 {
				t.Errorf("known_hosts was modified:\n%s", data)
			}
		})
	}
	// Nothing logged in: the only login the server saw is this one.
	f.cfg.KnownHostsFile = writeKnownHosts(t, f.sshd.knownHostsLine())
	mustRun(t, f.dial(t), "true")
	f.sshd.waitLogins(t, 1)
}

// TestHostKeyAlgorithms: a server with ECDSA and Ed25519 host keys, of which
// known_hosts records one. x/crypto prefers ECDSA, so without restricting the
// algorithms a host known by its Ed25519 key reports a false mismatch.
func TestHostKeyAlgorithms(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{hostKeyTypes: []string{"ed25519", "ecdsa"}})
	addr := knownhosts.Normalize(f.sshd.addr())
	for i, typ := range []string{"ed25519", "ecdsa"} {
		f.cfg.KnownHostsFile = writeKnownHosts(t, knownhosts.Line([]string{addr}, f.sshd.hostKeys[i]))
		c, err := Dial(context.Background(), f.target, f.cfg)
		if err != nil {
			t.Fatalf("Dial with only the %s key known: %v", typ, err)
		}
		c.Close()
	}

	// The pitfall is real: plain x/crypto with knownhosts fails here.
	f.cfg.KnownHostsFile = writeKnownHosts(t, knownhosts.Line([]string{addr}, f.sshd.hostKeys[0]))
	cb, err := knownhosts.New(f.cfg.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ssh.Dial("tcp", f.sshd.addr(), &ssh.ClientConfig{User: "root", HostKeyCallback: cb,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(f.key)}, Timeout: 5 * time.Second})
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		t.Errorf("unrestricted x/crypto dial = %v, want a knownhosts key mismatch", err)
	}
}

func TestProxyJump(t *testing.T) {
	t.Parallel()
	target := newFixture(t, sshdOptions{})
	jump := startSSHD(t, sshdOptions{})
	jump.authorize(t, target.key.PublicKey())
	noForward := startSSHD(t, sshdOptions{config: []string{"AllowTcpForwarding no"}})
	noForward.authorize(t, target.key.PublicKey())
	target.cfg.KnownHostsFile = writeKnownHosts(t, target.sshd.knownHostsLine(), jump.knownHostsLine(), noForward.knownHostsLine())

	t.Run("Config.ProxyJump", func(t *testing.T) {
		cfg := target.cfg
		cfg.ProxyJump = "root@" + jump.addr()
		c, err := Dial(context.Background(), target.target, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := mustRun(t, c, "echo via jump"); got != "via jump\n" {
			t.Errorf("Run = %q", got)
		}
		p := c.TempPath("clusterctl-test")
		defer os.Remove(p)
		if err := c.Upload(context.Background(), strings.NewReader("payload"), p, 0o600); err != nil {
			t.Fatal(err)
		}
		if got := mustRun(t, c, "cat "+p); got != "payload" {
			t.Errorf("uploaded %q", got)
		}
		jump.waitLogins(t, 1)
	})

	t.Run("ssh_config ProxyJump", func(t *testing.T) {
		sshConfig := filepath.Join(t.TempDir(), "config")
		writeFile(t, sshConfig, fmt.Sprintf("Host node\n  HostName 127.0.0.1\n  Port %d\n  ProxyJump bastion\n\nHost bastion\n  HostName 127.0.0.1\n  Port %d\n",
			target.sshd.port, jump.port))
		cfg := target.cfg
		cfg.SSHConfigFile = sshConfig
		c, err := Dial(context.Background(), Target{Name: "h1", Address: "node"}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		mustRun(t, c, "true")
		jump.waitLogins(t, 2)
	})

	t.Run("jump host refuses forwarding", func(t *testing.T) {
		cfg := target.cfg
		cfg.ProxyJump = noForward.addr()
		_, err := Dial(context.Background(), target.target, cfg)
		var de *DialError
		if !errors.As(err, &de) || de.Op != OpConnect || de.Jump || len(de.Via) != 1 || de.Via[0] != noForward.addr() {
			t.Fatalf("Dial = %#v, want a connect DialError via %s", err, noForward.addr())
		}
		if want := "connect " + target.sshd.addr() + " via " + noForward.addr() + ": "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("message %q does not start with %q", err, want)
		}
	})

	t.Run("jump host down", func(t *testing.T) {
		cfg := target.cfg
		port := freePort(t)
		cfg.ProxyJump = fmt.Sprintf("127.0.0.1:%d", port)
		_, err := Dial(context.Background(), target.target, cfg)
		var de *DialError
		if !errors.As(err, &de) || !de.Jump || !de.Refused() {
			t.Fatalf("Dial = %v, want a refused DialError for the jump host", err)
		}
		if want := fmt.Sprintf("connect 127.0.0.1:%d (jump host): connection refused", port); err.Error() != want {
			t.Errorf("Error() = %q, want %q", err, want)
		}
	})

	t.Run("jump host key is verified", func(t *testing.T) {
		cfg := target.cfg
		cfg.KnownHostsFile = writeKnownHosts(t, target.sshd.knownHostsLine())
		cfg.ProxyJump = jump.addr()
		_, err := Dial(context.Background(), target.target, cfg)
		var uk *UnknownHostKeyError
		if !errors.As(err, &uk) || uk.Address != knownhosts.Normalize(jump.addr()) {
			t.Fatalf("Dial = %v, want *UnknownHostKeyError for the jump host", err)
		}
	})

	t.Run("target behind jump host is verified", func(t *testing.T) {
		cfg := target.cfg
		cfg.KnownHostsFile = writeKnownHosts(t, jump.knownHostsLine())
		cfg.ProxyJump = jump.addr()
		_, err := Dial(context.Background(), target.target, cfg)
		var uk *UnknownHostKeyError
		if !errors.As(err, &uk) || uk.Address != knownhosts.Normalize(target.sshd.addr()) {
			t.Fatalf("Dial = %v, want *UnknownHostKeyError for the target", err)
		}
	})
}

func TestSSHConfigAlias(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	dir := t.TempDir()
	// known_hosts and identity come from ssh_config only; ~ is HOME from Config.Getenv.
	if err := os.Rename(f.identity, filepath.Join(dir, "id_alias")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "user_known_hosts"), f.sshd.knownHostsLine()+"\n")
	sshConfig := filepath.Join(dir, "config")
	writeFile(t, sshConfig, fmt.Sprintf(`Host myalias
  HostName 127.0.0.1
  Port %d
  User root
  IdentityFile ~/id_alias
  IdentityFile ~/does_not_exist
  UserKnownHostsFile ~/user_known_hosts
`, f.sshd.port))
	cfg := Config{
		KnownHostsFile: filepath.Join(dir, "clusterctl_known_hosts"), // does not exist
		SSHConfigFile:  sshConfig,
		ConnectTimeout: 5 * time.Second,
		Getenv:         envMap{"HOME": dir}.get,
	}
	c, err := Dial(context.Background(), Target{Name: "h1", Address: "myalias"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := mustRun(t, c, "echo $USER"); got != "root\n" {
		t.Errorf("USER = %q", got)
	}
	// ssh's rule: an explicit port beats the config file.
	_, err = Dial(context.Background(), Target{Name: "h1", Address: "myalias", Port: freePort(t)}, cfg)
	var de *DialError
	if !errors.As(err, &de) || !de.Refused() {
		t.Errorf("Dial with an explicit wrong port = %v, want connection refused", err)
	}
}

func TestAgentAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	// An in-memory agent holding the authorized key, on a unix socket.
	keyring := agent.NewKeyring()
	priv := loadRawKey(t, f.identity)
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer conn.Close(); _ = agent.ServeAgent(keyring, conn) }()
		}
	}()

	cfg := f.cfg
	cfg.IdentityFiles = nil
	cfg.UseAgent = true
	cfg.Getenv = envMap{"SSH_AUTH_SOCK": sock}.get
	c, err := Dial(context.Background(), f.target, cfg)
	if err != nil {
		t.Fatalf("Dial with agent: %v", err)
	}
	mustRun(t, c, "true")
	c.Close()

	// An encrypted identity file is skipped when the agent is there ...
	encrypted := writeEncrypted(t, priv)
	cfg.IdentityFiles = []string{encrypted}
	c, err = Dial(context.Background(), f.target, cfg)
	if err != nil {
		t.Fatalf("Dial with encrypted key and agent: %v", err)
	}
	c.Close()
	// ... and a clear error without it.
	cfg.UseAgent = false
	_, err = Dial(context.Background(), f.target, cfg)
	if err == nil || !strings.Contains(err.Error(), "encrypted") || !strings.Contains(err.Error(), "ssh-add") {
		t.Errorf("Dial with encrypted key, no agent = %v, want advice to use ssh-add", err)
	}
	// UseAgent without SSH_AUTH_SOCK and no other key: an authentication error that says why.
	cfg.UseAgent, cfg.IdentityFiles, cfg.Getenv = true, nil, envMap{}.get
	_, err = Dial(context.Background(), f.target, cfg)
	var de *DialError
	if !errors.As(err, &de) || !de.AuthFailed() || !strings.Contains(err.Error(), "SSH_AUTH_SOCK is not set") {
		t.Errorf("Dial without credentials = %v", err)
	}
}

func TestAuthFailed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	stranger, path := writeIdentity(t, t.TempDir())
	f.cfg.IdentityFiles = []string{path}
	_, err := Dial(context.Background(), f.target, f.cfg)
	var de *DialError
	if !errors.As(err, &de) || !de.AuthFailed() {
		t.Fatalf("Dial = %v, want an authentication DialError", err)
	}
	want := fmt.Sprintf("authenticate root@%s: permission denied (tried: publickey ssh-ed25519 %s (%s))",
		f.sshd.addr(), Fingerprint(stranger.PublicKey()), path)
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	// A missing explicit identity file is an error before dialing.
	f.cfg.IdentityFiles = []string{filepath.Join(t.TempDir(), "missing")}
	if _, err := Dial(context.Background(), f.target, f.cfg); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dial with a missing identity file = %v, want ErrNotExist", err)
	}
}

// TestSudo runs commands through sudo. sudo is not installed on the test
// machine, so the sshd's PATH puts a stand-in first that implements the
// options clusterctl uses (-n, -S, -k, -p, --) and checks a password; the
// wrapping, quoting and password protocol go through real shells and sshd.
// The pure wrapping is also covered by TestSudoCommandRoundTrip.
func TestSudo(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	writeFile(t, filepath.Join(bin, "sudo"), fakeSudo)
	if err := os.Chmod(filepath.Join(bin, "sudo"), 0o755); err != nil {
		t.Fatal(err)
	}
	passwordFile := filepath.Join(bin, "password")
	sudoLog := filepath.Join(bin, "log")
	hangFile := filepath.Join(bin, "hang")
	f := newFixture(t, sshdOptions{config: []string{
		"SetEnv PATH=" + bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin FAKE_SUDO_PASSWORD_FILE=" + passwordFile + " FAKE_SUDO_LOG=" + sudoLog + " FAKE_SUDO_HANG_FILE=" + hangFile,
	}})
	f.cfg.Sudo = SudoAlways
	const tricky = `printf '%s|' "a b" 'it'"'"'s' "$((1+2))"; cat`

	t.Run("passwordless", func(t *testing.T) {
		c := f.dial(t)
		out, err := c.Run(context.Background(), tricky, strings.NewReader("stdin"))
		if err != nil || string(out) != "a b|it's|3|stdin" {
			t.Errorf("Run = %q, %v", out, err)
		}
		log, _ := os.ReadFile(sudoLog)
		if !strings.Contains(string(log), "-n -- sh -c "+tricky+"\n") {
			t.Errorf("sudo was not called as sudo -n -- sh -c CMD; log:\n%s", log)
		}
	})

	t.Run("password", func(t *testing.T) {
		writeFile(t, passwordFile, "s3cr3t\n")
		var calls atomic.Int32
		cfg := f.cfg
		cfg.SudoPassword = func(host string) (string, error) {
			calls.Add(1)
			if host != "h1" {
				t.Errorf("SudoPassword(%q), want h1", host)
			}
			return "s3cr3t", nil
		}
		c, err := Dial(context.Background(), f.target, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 3 {
			in := fmt.Sprintf("input %d", i)
			out, err := c.Run(context.Background(), tricky, strings.NewReader(in))
			if err != nil || string(out) != "a b|it's|3|"+in {
				t.Errorf("Run = %q, %v", out, err)
			}
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("SudoPassword called %d times, want 1", n)
		}
		// A cancelled command under sudo is killed too.
		marker := fmt.Sprint(time.Now().UnixNano() % 1e9)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := c.Run(ctx, "sleep 300."+marker, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Run returned after %v, want soon after the 300ms deadline", d)
		}
		deadline := time.Now().Add(3 * time.Second)
		for strings.TrimSpace(mustRun(t, c, "ps -eo args | grep -c '^sleep 300[.]"+marker+"$' || true")) != "0" {
			if time.Now().After(deadline) {
				t.Fatal("the cancelled sudo command survives")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		writeFile(t, passwordFile, "s3cr3t\n")
		cfg := f.cfg
		cfg.SudoPassword = func(string) (string, error) { return "wrong", nil }
		c, err := Dial(context.Background(), f.target, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Run(context.Background(), "true", nil)
		if err == nil || !strings.Contains(err.Error(), "password rejected") {
			t.Errorf("Run = %v, want password rejected", err)
		}
	})

	t.Run("password needed but no prompt", func(t *testing.T) {
		writeFile(t, passwordFile, "s3cr3t\n")
		c := f.dial(t)
		_, err := c.Run(context.Background(), "true", nil)
		if err == nil || !strings.Contains(err.Error(), "passwordless sudo") || !strings.Contains(err.Error(), "terminal") {
			t.Errorf("Run = %v, want advice about passwordless sudo or a terminal", err)
		}
	})

	t.Run("cancelled while checking sudo", func(t *testing.T) {
		os.Remove(passwordFile)
		marker := fmt.Sprint(time.Now().UnixNano() % 1e9)
		writeFile(t, hangFile, marker)
		c := f.dial(t)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := c.Run(ctx, "true", nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Run returned after %v", d)
		}
		// The outcome of an interrupted check is not remembered.
		os.Remove(hangFile)
		if out, err := c.Run(context.Background(), "echo ok", nil); err != nil || string(out) != "ok\n" {
			t.Errorf("Run after an interrupted sudo check = %q, %v", out, err)
		}
		if n := strings.TrimSpace(mustRun(t, c, "ps -eo args | grep -c '^sleep 300[.]"+marker+"$' || true")); n != "0" {
			t.Errorf("%s hanging sudo processes survive", n)
		}
	})

	t.Run("never", func(t *testing.T) {
		cfg := f.cfg
		cfg.Sudo = SudoNever
		c, err := Dial(context.Background(), f.target, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		os.Remove(sudoLog)
		mustRun(t, c, "true")
		if _, err := os.Stat(sudoLog); err == nil {
			t.Error("SudoNever ran sudo")
		}
	})
}

// fakeSudo stands in for sudo(8): it accepts -n, -S, -k, -p PROMPT and --,
// requires the password in $FAKE_SUDO_PASSWORD_FILE when that file exists,
// reads it from stdin with -S exactly as sudo does (one line), and runs the
// command. It logs its arguments to $FAKE_SUDO_LOG, and hangs while
// $FAKE_SUDO_HANG_FILE exists.
const fakeSudo = `#!/bin/sh
printf '%s\n' "$*" >> "$FAKE_SUDO_LOG"
if [ -f "$FAKE_SUDO_HANG_FILE" ]; then sleep 300.$(cat "$FAKE_SUDO_HANG_FILE"); fi
nonint=0 stdin=0
while [ $# -gt 0 ]; do
	case "$1" in
	-n) nonint=1 ;;
	-S) stdin=1 ;;
	-k) ;;
	-p) shift ;;
	--) shift; break ;;
	-*) echo "sudo: unsupported option $1" >&2; exit 1 ;;
	*) break ;;
	esac
	shift
done
if [ -f "$FAKE_SUDO_PASSWORD_FILE" ]; then
	if [ $stdin = 1 ]; then
		IFS= read -r pw || pw=
		if [ "$pw" != "$(cat "$FAKE_SUDO_PASSWORD_FILE")" ]; then
			echo "Sorry, try again." >&2
			echo "sudo: 1 incorrect password attempt" >&2
			exit 1
		fi
	else
		echo "sudo: a password is required" >&2
		exit 1
	fi
fi
exec "$@"
`

// TestConnectTimeout dials a listener that accepts connections and never
// speaks, like a frozen host.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, silent
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	port := l.Addr().(*net.TCPAddr).Port
	_, identity := writeIdentity(t, t.TempDir())
	cfg := Config{
		IdentityFiles:  []string{identity},
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"),
		ConnectTimeout: 500 * time.Millisecond,
		Getenv:         envMap{}.get,
	}
	target := Target{Name: "frozen", Address: "127.0.0.1", Port: port}

	start := time.Now()
	_, err = Dial(context.Background(), target, cfg)
	elapsed := time.Since(start)
	var de *DialError
	if !errors.As(err, &de) || !de.Timeout() || de.Op != OpHandshake || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Dial = %v, want a handshake timeout DialError", err)
	}
	if elapsed < 450*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("Dial gave up after %v, want about 500ms", elapsed)
	}
	if want := fmt.Sprintf("ssh handshake with 127.0.0.1:%d: i/o timeout (no SSH server answer within 500ms)", port); err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}

	// Cancelling the context interrupts the handshake.
	cfg.ConnectTimeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	_, err = Dial(ctx, target, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Dial = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Dial returned %v after cancellation", d)
	}

	// A context deadline shorter than ConnectTimeout wins.
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, target, cfg)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &de) || !de.Timeout() {
		t.Errorf("Dial = %v, want context.DeadlineExceeded", err)
	}
}

func TestConnectRefused(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	_, identity := writeIdentity(t, t.TempDir())
	cfg := Config{IdentityFiles: []string{identity}, KnownHostsFile: filepath.Join(t.TempDir(), "kh"), Getenv: envMap{}.get}
	_, err := Dial(context.Background(), Target{Name: "h9", Address: "127.0.0.1", Port: port}, cfg)
	var de *DialError
	if !errors.As(err, &de) || !de.Refused() || de.Host != "h9" {
		t.Fatalf("Dial = %v, want a refused DialError", err)
	}
	if want := fmt.Sprintf("connect 127.0.0.1:%d: connection refused", port); err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if _, err := Dial(context.Background(), Target{Address: "127.0.0.1"}, Config{}); err == nil || !strings.Contains(err.Error(), "known hosts file is required") {
		t.Errorf("Dial without KnownHostsFile = %v", err)
	}
}

func TestKeepAlive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	f.cfg.KeepAlive = 50 * time.Millisecond
	c := f.dial(t)
	time.Sleep(300 * time.Millisecond)
	mustRun(t, c, "true")
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Run(context.Background(), "true", nil); err == nil {
		t.Error("Run after Close succeeded")
	}
}

// TestConcurrentUse runs commands and uploads on one Client from several goroutines.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sshdOptions{})
	c := f.dial(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := c.TempPath("clusterctl-test")
			defer os.Remove(p)
			want := fmt.Sprintf("worker %d\n", i)
			if err := c.Upload(context.Background(), strings.NewReader(want), p, 0o600); err != nil {
				t.Error(err)
				return
			}
			out, err := c.Run(context.Background(), "cat "+p, nil)
			if err != nil || string(out) != want {
				t.Errorf("Run = %q, %v; want %q", out, err, want)
			}
		}()
	}
	wg.Wait()
	f.sshd.waitLogins(t, 1)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// loadRawKey parses an unencrypted private key file into its crypto key.
func loadRawKey(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeEncrypted writes key as a passphrase-protected identity file.
func writeEncrypted(t *testing.T, key any) string {
	t.Helper()
	block, err := ssh.MarshalPrivateKeyWithPassphrase(key, "", []byte("passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "id_encrypted")
	writeFile(t, p, string(pem.EncodeToMemory(block)))
	return p
}
