package remote

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshdPath is the OpenSSH server the integration tests run.
const sshdPath = "/usr/sbin/sshd"

// requireSSHD skips the test unless a real sshd can be started here.
func requireSSHD(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping sshd integration test in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: starting a private sshd needs root (privilege separation, logging in as root)")
	}
	if _, err := os.Stat(sshdPath); err != nil {
		t.Skipf("skipping: %s not found; install openssh-server to run the SSH integration tests", sshdPath)
	}
}

// sshdOptions customises a test sshd.
type sshdOptions struct {
	hostKeyTypes []string // "ed25519" (default), "ecdsa", "rsa"
	config       []string // extra sshd_config lines
}

// testSSHD is a private OpenSSH server on 127.0.0.1, stopped at cleanup.
type testSSHD struct {
	dir            string
	port           int
	hostKeys       []ssh.PublicKey
	authorizedKeys string
	log            *syncBuffer
}

func (s *testSSHD) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// knownHostsLine is the known_hosts entry for the server's first host key.
func (s *testSSHD) knownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.addr())}, s.hostKeys[0])
}

// authorize adds a client key to authorized_keys.
func (s *testSSHD) authorize(t *testing.T, pub ssh.PublicKey) {
	t.Helper()
	f, err := os.OpenFile(s.authorizedKeys, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(ssh.MarshalAuthorizedKey(pub)); err != nil {
		t.Fatal(err)
	}
}

// logins counts successful logins so far.
func (s *testSSHD) logins() int { return strings.Count(s.log.String(), "Accepted publickey") }

// waitLogins waits until the log shows n logins, since sshd writes it asynchronously.
func (s *testSSHD) waitLogins(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.logins() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.logins(); got != n {
		t.Fatalf("sshd logged %d logins, want %d; log:\n%s", got, n, s.log)
	}
}

func startSSHD(t *testing.T, opt sshdOptions) *testSSHD {
	t.Helper()
	requireSSHD(t)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation directory
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &testSSHD{dir: dir, authorizedKeys: filepath.Join(dir, "authorized_keys"), log: &syncBuffer{}}
	if err := os.WriteFile(s.authorizedKeys, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	types := opt.hostKeyTypes
	if len(types) == 0 {
		types = []string{"ed25519"}
	}
	var hostKeyLines []string
	for _, typ := range types {
		signer, pemBytes := newKeyOfType(t, typ)
		p := filepath.Join(dir, "host_"+typ+"_key")
		if err := os.WriteFile(p, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		s.hostKeys = append(s.hostKeys, signer.PublicKey())
		hostKeyLines = append(hostKeyLines, "HostKey "+p)
	}

	for attempt := 0; attempt < 5; attempt++ {
		s.port = freePort(t)
		conf := append([]string{
			"Port " + strconv.Itoa(s.port),
			"ListenAddress 127.0.0.1",
			"AuthorizedKeysFile " + s.authorizedKeys,
			"StrictModes no",
			"UsePAM no",
			"PidFile none",
			"Subsystem sftp internal-sftp",
			"PubkeyAuthentication yes",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PermitRootLogin prohibit-password",
			"LogLevel INFO",
		}, hostKeyLines...)
		conf = append(conf, opt.config...)
		confPath := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s.log.Reset()
		cmd := exec.Command(sshdPath, "-D", "-e", "-f", confPath)
		cmd.Stdout, cmd.Stderr = s.log, s.log
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sshd: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill() // only the sshd we started
			<-exited
		}
		if waitBanner(s.addr(), exited) {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("sshd %s log:\n%s", s.addr(), s.log)
				}
			})
			return s
		}
		stop()
		if !strings.Contains(s.log.String(), "Address already in use") {
			t.Fatalf("sshd did not start; log:\n%s", s.log)
		}
	}
	t.Fatalf("sshd did not find a free port; log:\n%s", s.log)
	return nil
}

// waitBanner waits up to 5s for an SSH banner at addr.
func waitBanner(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if strings.HasPrefix(line, "SSH-2.0-") {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newKeyOfType returns a fresh private key and its OpenSSH PEM encoding.
func newKeyOfType(t *testing.T, typ string) (ssh.Signer, []byte) {
	t.Helper()
	var priv any
	var err error
	switch typ {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("unknown key type %q", typ)
	}
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

// writeIdentity writes a new ed25519 identity file and returns its signer and path.
func writeIdentity(t *testing.T, dir string) (ssh.Signer, string) {
	t.Helper()
	signer, pemBytes := newKeyOfType(t, "ed25519")
	p := filepath.Join(dir, "id_"+strings.ReplaceAll(ssh.FingerprintSHA256(signer.PublicKey())[7:15], "/", "_"))
	if err := os.WriteFile(p, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return signer, p
}

// fixture is a running sshd that trusts a client key, and a Config that
// trusts the sshd.
type fixture struct {
	sshd     *testSSHD
	key      ssh.Signer
	identity string
	cfg      Config
	target   Target
}

func newFixture(t *testing.T, opt sshdOptions) *fixture {
	t.Helper()
	s := startSSHD(t, opt)
	clientDir := t.TempDir()
	key, identity := writeIdentity(t, clientDir)
	s.authorize(t, key.PublicKey())
	kh := filepath.Join(clientDir, "known_hosts")
	if err := os.WriteFile(kh, []byte(s.knownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &fixture{
		sshd:     s,
		key:      key,
		identity: identity,
		cfg: Config{
			IdentityFiles:  []string{identity},
			KnownHostsFile: kh,
			ConnectTimeout: 5 * time.Second,
			Getenv:         envMap{"HOME": clientDir}.get,
		},
		target: Target{Name: "h1", Address: "127.0.0.1", Port: s.port},
	}
}

// dial dials the fixture's sshd and closes the client at cleanup.
func (f *fixture) dial(t *testing.T) *Client {
	t.Helper()
	c, err := Dial(context.Background(), f.target, f.cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// envMap is a Config.Getenv that sees only its own entries.
type envMap map[string]string

func (m envMap) get(key string) string { return m[key] }

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// mustRun runs cmd and fails the test on error.
func mustRun(t *testing.T, c *Client, cmd string) string {
	t.Helper()
	out, err := c.Run(context.Background(), cmd, nil)
	if err != nil {
		t.Fatalf("Run(%q): %v", cmd, err)
	}
	return string(out)
}
