package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// maxStderr is how much of a command's stderr a CommandError keeps (the end).
const maxStderr = 1 << 20

// cancelGrace is how long a cancelled command may take to be killed and wind
// down before Run returns anyway.
const cancelGrace = 2 * time.Second

// Client is an SSH connection to one host. It is safe for concurrent use.
type Client struct {
	name  string
	user  string
	sudo  bool
	ssh   *ssh.Client
	jumps []*ssh.Client // connections to the jump hosts, in dialing order

	sudoPassword func(string) (string, error)
	sudoMu       sync.Mutex
	sudoState    sudoState

	sftpMu sync.Mutex
	sftp   *sftp.Client

	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed by Close
	wg        sync.WaitGroup
}

// Host returns the inventory name of the host.
func (c *Client) Host() string { return c.name }

// User returns the login user.
func (c *Client) User() string { return c.user }

// IsRoot reports whether the login user is root. Commands run as root either
// way unless Config.Sudo is SudoNever.
func (c *Client) IsRoot() bool { return c.user == "root" }

// Run runs cmd through the remote shell, as root (wrapped in sudo when
// needed), with stdin (nil for none) as its input, and returns its stdout. A
// non-zero exit is a *CommandError. When ctx ends, the command's process
// group is sent SIGTERM, its session is closed, and the error wraps ctx.Err().
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	var out bytes.Buffer
	if err := c.exec(ctx, cmd, stdin, &out, nil); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Stream is Run with the command's stdout and stderr copied to the given
// writers (nil discards) as they arrive. A *CommandError still carries the
// end of stderr. Nothing is written to the writers after Stream returns.
func (c *Client) Stream(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	if stdout == nil {
		stdout = io.Discard
	}
	return c.exec(ctx, cmd, stdin, stdout, stderr)
}

func (c *Client) exec(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("run %s on %s: %w", strconv.Quote(cmd), c.name, err)
	}
	var as privileges
	if c.sudo {
		pw, err := c.sudoAuth(ctx)
		if err != nil {
			return fmt.Errorf("run %s on %s: %w", strconv.Quote(cmd), c.name, err)
		}
		as = privileges{sudo: true, password: pw}
	}
	return c.session(ctx, cmd, as, stdin, stdout, stderr)
}

// privileges says how a command is run: as the login user, or with sudo and
// possibly a password.
type privileges struct {
	sudo     bool
	password []byte // the line sudo -S reads, nil when sudo needs none
}

// wrap returns the command line to send and the input to send with it.
func (p privileges) wrap(cmd string, stdin io.Reader) (string, io.Reader) {
	if !p.sudo {
		return cmd, stdin
	}
	if p.password == nil {
		return sudoCommand(cmd, false), stdin
	}
	if stdin == nil {
		stdin = eofReader{}
	}
	return sudoCommand(cmd, true), io.MultiReader(bytes.NewReader(p.password), stdin)
}

// pidMarker starts the first line of stderr of every command: the login
// shell's PID, which is also its process group (sshd runs each session in a
// new session and process group). It is stripped before stderr reaches the
// caller.
const pidMarker = "clusterctl-pid="

// session runs cmd in a new session, with the given privileges.
func (c *Client) session(ctx context.Context, cmd string, as privileges, stdin io.Reader, stdout, stderr io.Writer) error {
	fail := func(err error) error { return fmt.Errorf("run %s on %s: %w", strconv.Quote(cmd), c.name, err) }
	wire, stdin := as.wrap(cmd, stdin)
	s, err := c.ssh.NewSession()
	if err != nil {
		return fail(fmt.Errorf("open session: %w", err))
	}
	defer s.Close()

	// The gates keep x/crypto's copying goroutines away from the caller's
	// reader and writers once we return, even if the host stops answering.
	tail := &tailBuffer{max: maxStderr}
	var errw io.Writer = tail
	if stderr != nil {
		errw = io.MultiWriter(stderr, tail)
	}
	outGate, errGate := &gatedWriter{w: stdout}, &gatedWriter{w: errw}
	pid := newPidSniffer(errGate)
	s.Stdout, s.Stderr = outGate, pid
	var inGate *gatedReader
	if stdin != nil {
		inGate = &gatedReader{r: stdin}
		s.Stdin = inGate
	}
	closeGates := func() {
		pid.flush()
		outGate.close()
		errGate.close()
		if inGate != nil {
			inGate.close()
		}
	}

	if err := s.Start("echo " + pidMarker + "$$ >&2\n" + wire); err != nil {
		closeGates()
		return fail(fmt.Errorf("start: %w", err))
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
		closeGates()
	case <-ctx.Done():
		c.interrupt(ctx, s, as, pid, done)
		closeGates()
		return fail(ctx.Err())
	}

	var ee *ssh.ExitError
	var em *ssh.ExitMissingError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		// The command exited with status 0 without reading all of stdin;
		// like os/exec, that is not an error.
		return nil
	case errors.As(err, &ee):
		return &CommandError{Host: c.name, Cmd: cmd, ExitCode: ee.ExitStatus(), Signal: ee.Signal(), Stderr: tail.String()}
	case errors.As(err, &em):
		return &CommandError{Host: c.name, Cmd: cmd, ExitCode: -1, Stderr: tail.String()}
	}
	return fail(err)
}

// interrupt stops a running command whose context ended and waits a little
// for its session to end. OpenSSH honours the "signal" request only for
// non-root logins (sshd: "session signalling requires privilege
// separation"), so the command's process group is also killed from a second
// session, with sudo when the command ran with it.
func (c *Client) interrupt(ctx context.Context, s *ssh.Session, as privileges, pid *pidSniffer, done <-chan error) {
	grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelGrace)
	defer cancel()
	_ = s.Signal(ssh.SIGTERM)
	// A command cancelled before its shell printed its PID (a short
	// deadline on a loaded host) would otherwise be left running.
	if pgid := pid.wait(grace); pgid > 1 {
		select {
		case <-done: // it ended meanwhile; its PID may be reused
		default:
			// "kill -TERM -PGID": dash's kill does not accept "--".
			kill := "kill -TERM -" + strconv.Itoa(pgid) + " 2>/dev/null || true"
			_ = c.session(grace, kill, as, nil, io.Discard, nil)
		}
	}
	_ = s.Close()
	select {
	case <-done:
	case <-grace.Done():
	}
}

// Upload writes r to remotePath with the given mode, over SFTP, as the login
// user: use a path the login user can write, such as TempPath, and move the
// file into place with Run. The file's mode is set before any data is
// written. A partial file is removed on failure.
func (c *Client) Upload(ctx context.Context, r io.Reader, remotePath string, mode os.FileMode) error {
	fail := func(err error) error { return fmt.Errorf("upload %s to %s: %w", remotePath, c.name, err) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	sc, err := c.sftpClient()
	if err != nil {
		return fail(err)
	}
	f, err := sc.OpenFile(remotePath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fail(err)
	}
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.ReadFromWithConcurrency(&ctxReader{ctx: ctx, r: r}, 0)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = sc.Remove(remotePath)
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fail(err)
	}
	return nil
}

// sftpClient opens the SFTP subsystem on the first call.
func (c *Client) sftpClient() (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	sc, err := sftp.NewClient(c.ssh, sftp.UseConcurrentWrites(true))
	if err != nil {
		return nil, fmt.Errorf("start sftp: %w", err)
	}
	c.sftp = sc
	return sc, nil
}

// TempPath returns a new path under /tmp, prefix followed by a random
// suffix, for Upload. Nothing is created.
func (c *Client) TempPath(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails
	return path.Join("/tmp", prefix+"."+hex.EncodeToString(b))
}

// Close closes the connection and those to the jump hosts. Running commands
// fail. Close may be called more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.sftpMu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
		}
		c.sftpMu.Unlock()
		c.closeErr = c.ssh.Close()
		for i := len(c.jumps) - 1; i >= 0; i-- {
			c.jumps[i].Close()
		}
		c.wg.Wait()
		if c.closeErr != nil {
			c.closeErr = fmt.Errorf("close connection to %s: %w", c.name, c.closeErr)
		}
	})
	return c.closeErr
}

// keepAlive sends keepalive@openssh.com every interval and closes the
// connection when three intervals pass without an answer, like OpenSSH's
// ServerAliveInterval with ServerAliveCountMax 3.
func (c *Client) keepAlive(interval time.Duration) {
	defer c.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		// Ends when the answer arrives or the connection closes.
		go func() {
			_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		dead := time.NewTimer(3 * interval)
		select {
		case <-c.done:
			dead.Stop()
			return
		case err := <-reply:
			dead.Stop()
			if err != nil {
				return
			}
		case <-dead.C:
			c.ssh.Close()
			return
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if len(t.buf) > t.max {
		return string(t.buf[len(t.buf)-t.max:])
	}
	return string(t.buf)
}

// pidSniffer takes the pidMarker line off the start of stderr.
type pidSniffer struct {
	w io.Writer

	mu      sync.Mutex
	pass    bool // the first line has been handled
	pending []byte
	pid     int
	// seen is closed once the first line has been handled (or flushed).
	seen     chan struct{}
	seenOnce sync.Once
}

func newPidSniffer(w io.Writer) *pidSniffer { return &pidSniffer{w: w, seen: make(chan struct{})} }

// markSeen must be called with mu held, after pass is set.
func (p *pidSniffer) markSeen() { p.seenOnce.Do(func() { close(p.seen) }) }

// wait returns the command's PID once its marker line arrived, or 0 when
// ctx ends first (the shell has not started yet).
func (p *pidSniffer) wait(ctx context.Context) int {
	select {
	case <-p.seen:
	case <-ctx.Done():
	}
	return p.get()
}

// maxMarkerLine bounds how much stderr waits for the marker's line end.
const maxMarkerLine = 64

func (p *pidSniffer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pass {
		return p.w.Write(b)
	}
	p.pending = append(p.pending, b...)
	i := bytes.IndexByte(p.pending, '\n')
	if i < 0 && len(p.pending) < maxMarkerLine {
		return len(b), nil
	}
	p.pass = true
	defer p.markSeen()
	rest := p.pending
	if i >= 0 {
		if v, ok := bytes.CutPrefix(p.pending[:i], []byte(pidMarker)); ok {
			if n, err := strconv.Atoi(string(v)); err == nil {
				p.pid, rest = n, p.pending[i+1:]
			}
		}
	}
	p.pending = nil
	if len(rest) > 0 {
		if _, err := p.w.Write(rest); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// flush passes on what is still held back, at the end of the command.
func (p *pidSniffer) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.pass && len(p.pending) > 0 {
		_, _ = p.w.Write(p.pending)
	}
	p.pass, p.pending = true, nil
	p.markSeen()
}

func (p *pidSniffer) get() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// gatedWriter forwards writes until closed and fails them afterwards.
type gatedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, io.ErrClosedPipe
	}
	return g.w.Write(p)
}

func (g *gatedWriter) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// gatedReader forwards reads until closed and reports EOF afterwards. Unlike
// gatedWriter it does not wait for a read in progress: the caller's reader
// may block for ever (a terminal), and that must not block Run.
type gatedReader struct {
	r      io.Reader
	closed atomic.Bool
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.closed.Load() {
		return 0, io.EOF
	}
	return g.r.Read(p)
}

func (g *gatedReader) close() { g.closed.Store(true) }

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
