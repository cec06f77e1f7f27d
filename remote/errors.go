package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// HostKeyMismatchError reports that a host presented a key other than the one
// recorded in known_hosts. The connection was abandoned before authentication.
type HostKeyMismatchError struct {
	Host              string   // inventory name of the target
	Address           string   // as looked up in known_hosts: "host", or "[host]:port" for ports other than 22
	KnownFingerprints []string // fingerprints recorded for Address
	GotFingerprint    string   // fingerprint the server presented
	KnownHostsFile    string   // file holding the recorded key
	Line              int      // line of the recorded key in KnownHostsFile
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("host key for %s changed: known_hosts has %s (%s:%d), server presented %s; "+
		"this could be a man-in-the-middle attack. If the change is expected, remove the old key with: ssh-keygen -R %s -f %s",
		e.Address, strings.Join(e.KnownFingerprints, ", "), e.KnownHostsFile, e.Line, e.GotFingerprint,
		Quote(e.Address), Quote(e.KnownHostsFile))
}

// UnknownHostKeyError reports that known_hosts holds no key for a host and
// Config.AcceptNewHostKeys is off.
type UnknownHostKeyError struct {
	Host           string // inventory name of the target
	Address        string // as looked up in known_hosts
	KeyType        string // type of the presented key, e.g. "ssh-ed25519"
	Fingerprint    string // fingerprint of the presented key
	KnownHostsFile string // file that would record it
}

func (e *UnknownHostKeyError) Error() string {
	return fmt.Sprintf("host key for %s is unknown: server presented %s %s, which is not in %s; "+
		"verify the fingerprint and rerun with --accept-new-host-keys to trust it",
		e.Address, e.KeyType, e.Fingerprint, e.KnownHostsFile)
}

// DialOp is the stage of Dial that failed.
type DialOp string

// The stages of Dial.
const (
	OpConnect      DialOp = "connect"      // TCP connect (or the jump host's forwarding)
	OpHandshake    DialOp = "handshake"    // SSH banner and key exchange
	OpAuthenticate DialOp = "authenticate" // user authentication
)

// DialError reports a failure to reach or log into a host. Host key problems
// are reported as *HostKeyMismatchError and *UnknownHostKeyError instead.
// Its message does not name the inventory host, the caller adds it once:
//
//	connect 10.250.0.12:22: i/o timeout
type DialError struct {
	Host    string   // inventory name of the target
	Op      DialOp   // failed stage
	User    string   // login user (for OpAuthenticate)
	Address string   // "host:port" of the hop that failed
	Jump    bool     // the failing hop is a jump host, not the target
	Via     []string // jump hosts ("host:port") used to reach Address
	Methods []string // authentication methods offered (for OpAuthenticate)
	Err     error
}

func (e *DialError) Error() string {
	var b strings.Builder
	switch e.Op {
	case OpAuthenticate:
		fmt.Fprintf(&b, "authenticate %s@%s", e.User, e.Address)
	case OpHandshake:
		fmt.Fprintf(&b, "ssh handshake with %s", e.Address)
	default:
		fmt.Fprintf(&b, "%s %s", e.Op, e.Address)
	}
	if e.Jump {
		b.WriteString(" (jump host)")
	}
	if len(e.Via) > 0 {
		fmt.Fprintf(&b, " via %s", strings.Join(e.Via, ","))
	}
	b.WriteString(": ")
	b.WriteString(describeNetErr(e.Err))
	if e.Op == OpAuthenticate {
		if len(e.Methods) == 0 {
			b.WriteString(" (no methods available: set identity files or use ssh-agent)")
		} else {
			fmt.Fprintf(&b, " (tried: %s)", strings.Join(e.Methods, "; "))
		}
	}
	return b.String()
}

func (e *DialError) Unwrap() error { return e.Err }

// Timeout reports whether the hop did not answer within the connect timeout.
func (e *DialError) Timeout() bool {
	if errors.Is(e.Err, os.ErrDeadlineExceeded) || errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// Refused reports whether the TCP connection was refused.
func (e *DialError) Refused() bool {
	if errors.Is(e.Err, syscall.ECONNREFUSED) {
		return true
	}
	var oce *ssh.OpenChannelError
	return errors.As(e.Err, &oce) && oce.Reason == ssh.ConnectionFailed &&
		strings.Contains(strings.ToLower(oce.Message), "refused")
}

// AuthFailed reports whether the host rejected every credential offered.
func (e *DialError) AuthFailed() bool { return e.Op == OpAuthenticate }

// describeNetErr shortens the errors of the net package to what a user needs:
// "dial tcp 1.2.3.4:22: connect: connection refused" becomes
// "connection refused", a deadline becomes "i/o timeout".
func describeNetErr(err error) string {
	if err == nil {
		return "unknown error"
	}
	var te *timeoutError
	if errors.As(err, &te) {
		return te.Error()
	}
	if errors.Is(err, context.Canceled) {
		return context.Canceled.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Error()
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return os.ErrDeadlineExceeded.Error()
	}
	return strings.TrimPrefix(err.Error(), "ssh: handshake failed: ")
}

// timeoutError is Config.ConnectTimeout running out.
type timeoutError struct {
	op    DialOp
	after string
}

func (e *timeoutError) Error() string {
	if e.op == OpHandshake {
		return "i/o timeout (no SSH server answer within " + e.after + ")"
	}
	return "i/o timeout (after " + e.after + ")"
}
func (e *timeoutError) Unwrap() error { return os.ErrDeadlineExceeded }
func (e *timeoutError) Timeout() bool { return true }

// CommandError reports a remote command that exited with a non-zero status or
// was killed by a signal.
type CommandError struct {
	Host     string // inventory name of the host
	Cmd      string // the command as given to Run or Stream (before sudo wrapping)
	ExitCode int    // exit status; 128+n when killed by signal n; -1 when the server sent none
	Signal   string // signal name without "SIG" when killed by a signal, e.g. "TERM"
	Stderr   string // standard error (the last maxStderr bytes of it)
}

// commandErrorLines is how many lines of stderr CommandError.Error shows. The
// CLI prints Stderr in full.
const commandErrorLines = 5

// commandErrorCmdLen caps the command quoted in CommandError.Error.
const commandErrorCmdLen = 200

func (e *CommandError) Error() string {
	cmd := e.Cmd
	if len(cmd) > commandErrorCmdLen {
		cmd = cmd[:commandErrorCmdLen] + "..."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "run %s on %s: ", strconv.Quote(cmd), e.Host)
	switch {
	case e.Signal != "":
		fmt.Fprintf(&b, "killed by signal %s", e.Signal)
	case e.ExitCode < 0:
		b.WriteString("no exit status")
	default:
		fmt.Fprintf(&b, "exit code %d", e.ExitCode)
	}
	if tail := lastLines(e.Stderr, commandErrorLines); tail != "" {
		b.WriteString(": ")
		b.WriteString(tail)
	}
	return b.String()
}

// lastLines returns the last n non-empty lines of s, joined by newlines.
func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n\r\t ")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
