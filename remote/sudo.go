package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Quote quotes s for a POSIX shell: it is returned unchanged when it only
// holds characters no shell treats specially, and in single quotes otherwise.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Wire forms of the sudo invocations. -n never prompts; -S -k with an empty -p reads the
// password from stdin without a prompt, and -k makes sudo ask for it every
// time, so the password line is always consumed and never reaches the
// command as input.
const (
	sudoProbe           = "sudo -n true"
	sudoPasswordCheck   = "sudo -S -k -p '' true"
	sudoNoPassword      = "sudo -n -- sh -c "
	sudoWithPassword    = "sudo -S -k -p '' -- sh -c "
	sudoNotInstalledRC  = 127
	sudoPasswordMissing = "password"
)

// sudoCommand wraps cmd so that sudo runs it with sh.
func sudoCommand(cmd string, password bool) string {
	if password {
		return sudoWithPassword + Quote(cmd)
	}
	return sudoNoPassword + Quote(cmd)
}

// sudoState is what the first sudo command learned about the host.
type sudoState struct {
	done      bool   // the outcome below is final
	password  []byte // password line to send, nil if sudo needs none
	err       error  // sudo cannot be used
	asked     bool   // SudoPassword was called
	answer    string
	answerErr error
}

// sudoAuth finds out, once per Client, whether sudo needs a password, asks
// for it and checks it. It returns the line to send ahead of stdin, or nil.
// Errors of the connection itself are not remembered, so a later command
// tries again; SudoPassword is still called at most once.
func (c *Client) sudoAuth(ctx context.Context) ([]byte, error) {
	c.sudoMu.Lock()
	defer c.sudoMu.Unlock()
	st := &c.sudoState
	if st.done {
		return st.password, st.err
	}
	final := func(pw []byte, err error) ([]byte, error) {
		st.done, st.password, st.err = true, pw, err
		return pw, err
	}

	err := c.session(ctx, sudoProbe, privileges{}, nil, io.Discard, nil)
	var ce *CommandError
	switch {
	case err == nil:
		return final(nil, nil)
	case !errors.As(err, &ce):
		return nil, err
	case ce.ExitCode == sudoNotInstalledRC:
		return final(nil, fmt.Errorf("use sudo as %s: sudo is not installed; install it or log in as root", c.user))
	case !strings.Contains(ce.Stderr, sudoPasswordMissing):
		return final(nil, fmt.Errorf("use sudo as %s: %s", c.user, lastLines(ce.Stderr, commandErrorLines)))
	}

	if c.sudoPassword == nil {
		return final(nil, fmt.Errorf("use sudo as %s: sudo asks for a password; allow passwordless sudo (NOPASSWD) for %s or run clusterctl on a terminal to be asked for it", c.user, c.user))
	}
	if !st.asked {
		st.asked = true
		st.answer, st.answerErr = c.sudoPassword(c.name)
	}
	if st.answerErr != nil {
		return final(nil, fmt.Errorf("get sudo password: %w", st.answerErr))
	}
	if strings.ContainsAny(st.answer, "\r\n") {
		return final(nil, errors.New("use sudo: the password contains a line break"))
	}
	pw := []byte(st.answer + "\n")
	err = c.session(ctx, sudoPasswordCheck, privileges{}, strings.NewReader(string(pw)), io.Discard, nil)
	switch {
	case err == nil:
		return final(pw, nil)
	case errors.As(err, &ce):
		return final(nil, fmt.Errorf("use sudo as %s: password rejected: %s", c.user, lastLines(ce.Stderr, commandErrorLines)))
	}
	return nil, err
}
