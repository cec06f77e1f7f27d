package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// MaxOutput caps the output a probe run keeps (for events).
const MaxOutput = 1024

// Execer runs a command in a container (CRI ExecSync).
type Execer interface {
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (cri.ExecResult, error)
}

// Handlers runs probe and lifecycle handlers: exec through the runtime,
// HTTP GET and TCP connect from the node to the pod IP (the node shares
// the pod network, so the pod IP is reachable directly).
type Handlers struct {
	Exec      Execer
	UserAgent string // e.g. agentlet/1.2.3
}

// Run implements Runner.
func (h Handlers) Run(ctx context.Context, t Target, timeout time.Duration) (bool, string) {
	return h.Do(ctx, t.ContainerID, t.PodIP, t.Probe.Handler, timeout)
}

// Do runs one handler against a container; ok reports success, output
// what it said (truncated to MaxOutput).
func (h Handlers) Do(ctx context.Context, containerID, podIP string, hd nodeapi.Handler, timeout time.Duration) (bool, string) {
	ok, out := h.do(ctx, containerID, podIP, hd, timeout)
	return ok, truncate(strings.TrimSpace(out))
}

func (h Handlers) do(ctx context.Context, containerID, podIP string, hd nodeapi.Handler, timeout time.Duration) (bool, string) {
	switch {
	case len(hd.Exec) > 0:
		return h.exec(ctx, containerID, hd.Exec, timeout)
	case hd.HTTPGet != nil:
		return h.httpGet(ctx, podIP, hd.HTTPGet, timeout)
	case hd.TCPSocket != nil:
		return tcpConnect(ctx, podIP, hd.TCPSocket, timeout)
	case hd.SleepSeconds > 0:
		d := time.Duration(hd.SleepSeconds) * time.Second
		select {
		case <-time.After(min(d, timeout)):
			return d <= timeout, ""
		case <-ctx.Done():
			return false, ctx.Err().Error()
		}
	default:
		return false, "no handler"
	}
}

func (h Handlers) exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (bool, string) {
	// The runtime enforces timeout; the call gets some slack on top.
	cctx, cancel := context.WithTimeout(ctx, timeout+2*time.Second)
	defer cancel()
	r, err := h.Exec.ExecSync(cctx, id, cmd, timeout)
	if err != nil {
		if cri.IsDeadline(err) {
			return false, fmt.Sprintf("command %q timed out after %s", strings.Join(cmd, " "), timeout)
		}
		return false, err.Error()
	}
	out := string(r.Stdout) + string(r.Stderr)
	if r.ExitCode != 0 && strings.TrimSpace(out) == "" {
		out = fmt.Sprintf("command %q exited with %d", strings.Join(cmd, " "), r.ExitCode)
	}
	return r.ExitCode == 0, out
}

func (h Handlers) httpGet(ctx context.Context, podIP string, g *nodeapi.HTTPGetAction, timeout time.Duration) (bool, string) {
	host := g.Host
	if host == "" {
		host = podIP
	}
	if host == "" {
		return false, "pod has no IP yet"
	}
	scheme := strings.ToLower(g.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(int(g.Port)))}
	target := u.String() + path
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, target, nil)
	if err != nil {
		return false, err.Error()
	}
	ua := h.UserAgent
	if ua == "" {
		ua = "agentlet"
	}
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Accept", "*/*")
	for _, hd := range g.Headers {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
			continue
		}
		req.Header.Set(hd.Name, hd.Value)
	}
	resp, err := roundTrip(cctx, req, scheme == "https")
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() || errors.Is(cctx.Err(), context.DeadlineExceeded) {
			return false, fmt.Sprintf("Get %q: timed out after %s", target, timeout)
		}
		return false, fmt.Sprintf("Get %q: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 10<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, string(body)
	}
	out := fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	if b := bytes.TrimSpace(body); len(b) > 0 {
		out += ": " + string(b)
	}
	return false, out
}

// roundTrip sends one request on a fresh connection and reads the answer.
// It is deliberately not net/http's Client: one GET without redirects,
// keep-alive or proxies needs none of its (large) Transport. HTTPS does not
// verify the certificate, as in Kubernetes.
func roundTrip(ctx context.Context, req *http.Request, useTLS bool) (*http.Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", req.URL.Host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if useTLS {
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: req.URL.Hostname()}) //nolint:gosec
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	resp.Body = closer{resp.Body, conn}
	return resp, nil
}

// closer closes the connection with the body.
type closer struct {
	io.ReadCloser
	conn net.Conn
}

func (c closer) Close() error {
	c.ReadCloser.Close()
	return c.conn.Close()
}

func tcpConnect(ctx context.Context, podIP string, s *nodeapi.TCPSocketAction, timeout time.Duration) (bool, string) {
	host := s.Host
	if host == "" {
		host = podIP
	}
	if host == "" {
		return false, "pod has no IP yet"
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(s.Port))))
	if err != nil {
		return false, err.Error()
	}
	conn.Close()
	return true, ""
}

func truncate(s string) string {
	if len(s) <= MaxOutput {
		return s
	}
	cut := MaxOutput
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
