package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Dial connects to t, through the configured jump hosts, verifies every host
// key and logs in. It gives up when ctx ends or a hop takes longer than
// Config.ConnectTimeout. Failures are *DialError, *HostKeyMismatchError,
// *UnknownHostKeyError, or plain errors for a bad configuration.
func Dial(ctx context.Context, t Target, cfg Config) (*Client, error) {
	name := firstNonEmpty(t.Name, t.Address)
	if cfg.KnownHostsFile == "" {
		return nil, errors.New("dial: a known hosts file is required")
	}
	sc, err := loadSSHConfig(cfg.SSHConfigFile)
	if err != nil {
		return nil, err
	}
	hops, err := route(sc, t, cfg)
	if err != nil {
		return nil, err
	}
	var extra []string
	for _, h := range hops {
		extra = append(extra, h.knownHostsFiles...)
	}
	hk, err := newHostKeys(name, expandHome(cfg.KnownHostsFile, cfg.getenv("HOME")), extra, cfg.AcceptNewHostKeys)
	if err != nil {
		return nil, err
	}
	cr, err := loadCredentials(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// The agent is only needed to sign during authentication.
	defer cr.close()

	clients := make([]*ssh.Client, 0, len(hops))
	closeAll := func() {
		for i := len(clients) - 1; i >= 0; i-- {
			clients[i].Close()
		}
	}
	var via []string
	for i, h := range hops {
		var prev *ssh.Client
		if i > 0 {
			prev = clients[i-1]
		}
		d := hopDialer{name: name, hop: h, jump: i < len(hops)-1, via: slices.Clone(via), hk: hk, cr: cr,
			timeout: cfg.connectTimeout()}
		c, err := d.dial(ctx, prev)
		if err != nil {
			closeAll()
			return nil, err
		}
		clients = append(clients, c)
		via = append(via, h.addr())
	}

	target := hops[len(hops)-1]
	c := &Client{
		name:         name,
		user:         target.user,
		ssh:          clients[len(clients)-1],
		jumps:        clients[:len(clients)-1],
		sudoPassword: cfg.SudoPassword,
		done:         make(chan struct{}),
	}
	switch cfg.Sudo {
	case SudoAlways:
		c.sudo = true
	case SudoAuto:
		c.sudo = target.user != "root"
	}
	if cfg.KeepAlive > 0 {
		c.wg.Add(1)
		go c.keepAlive(cfg.KeepAlive)
	}
	return c, nil
}

// hopDialer dials one hop.
type hopDialer struct {
	name    string // inventory name of the target
	hop     hop
	jump    bool
	via     []string
	hk      *hostKeys
	cr      *credentials
	timeout time.Duration

	mu         sync.Mutex // guards the fields below, set during the handshake
	hostKeyErr error
	verified   bool
	authTried  bool
}

func (d *hopDialer) fail(op DialOp, err error) *DialError {
	return &DialError{Host: d.name, Op: op, User: d.hop.user, Address: d.hop.addr(), Jump: d.jump, Via: d.via, Err: err}
}

// dial connects to d.hop directly (prev == nil) or through prev.
func (d *hopDialer) dial(ctx context.Context, prev *ssh.Client) (*ssh.Client, error) {
	addr := d.hop.addr()
	signers, methods, err := d.cr.signersFor(d.hop)
	if err != nil {
		return nil, err
	}
	if len(signers) == 0 {
		e := d.fail(OpAuthenticate, errors.New("no keys to offer"))
		e.Methods = methods
		return nil, e
	}
	known, err := d.hk.knownKeys(addr)
	if err != nil {
		return nil, err
	}

	hctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	// cause replaces errors caused by the deadline or cancellation with ctx's
	// own error or a timeout that says how long we waited.
	cause := func(op DialOp, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if hctx.Err() != nil {
			return &timeoutError{op: op, after: d.timeout.String()}
		}
		return err
	}

	var conn net.Conn
	if prev == nil {
		var nd net.Dialer
		conn, err = nd.DialContext(hctx, "tcp", addr)
	} else {
		conn, err = prev.DialContext(hctx, "tcp", addr)
	}
	if err != nil {
		return nil, d.fail(OpConnect, cause(OpConnect, err))
	}

	config := &ssh.ClientConfig{
		User: d.hop.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			d.mu.Lock()
			d.authTried = true
			d.mu.Unlock()
			return signers, nil
		})},
		HostKeyCallback:   d.verifyHostKey,
		HostKeyAlgorithms: hostKeyAlgorithms(known),
	}
	// Closing the connection is the only way to interrupt a handshake, and
	// works for TCP and jump-host channels alike.
	stop := context.AfterFunc(hctx, func() { conn.Close() })
	sconn, chans, reqs, err := ssh.NewClientConn(conn, addr, config)
	interrupted := !stop()

	d.mu.Lock()
	hostKeyErr, verified, authTried := d.hostKeyErr, d.verified, d.authTried
	d.mu.Unlock()

	if interrupted {
		if err == nil {
			sconn.Close()
		}
		op := OpHandshake
		if verified {
			op = OpAuthenticate
		}
		e := d.fail(op, cause(op, context.DeadlineExceeded))
		if op == OpAuthenticate {
			e.Methods = methods
		}
		return nil, e
	}
	if err != nil {
		if hostKeyErr != nil {
			return nil, hostKeyErr
		}
		if verified && (authTried || strings.Contains(err.Error(), "unable to authenticate")) {
			e := d.fail(OpAuthenticate, errors.New("permission denied"))
			if !strings.Contains(err.Error(), "unable to authenticate") {
				e.Err = err
			}
			e.Methods = methods
			return nil, e
		}
		if len(known) > 0 && strings.Contains(err.Error(), "no common algorithm for host key") {
			err = fmt.Errorf("%w: the server offers none of the key types %s recorded for %s in %s:%d; its host key has changed",
				err, strings.Join(keyTypes(known), ", "), knownhosts.Normalize(addr), known[0].Filename, known[0].Line)
		}
		return nil, d.fail(OpHandshake, err)
	}
	return ssh.NewClient(sconn, chans, reqs), nil
}

func (d *hopDialer) verifyHostKey(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := d.hk.verify(hostname, remote, key)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.hostKeyErr = err
	} else {
		d.verified = true
	}
	return err
}

func keyTypes(known []knownhosts.KnownKey) []string {
	var types []string
	for _, k := range known {
		if !slices.Contains(types, k.Key.Type()) {
			types = append(types, k.Key.Type())
		}
	}
	return types
}
