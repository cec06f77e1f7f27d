package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"golang.org/x/crypto/ssh"
)

// Size is a terminal size in character cells.
type Size struct{ Width, Height int }

// Interactive runs cmd as root on a pseudo-terminal of the given type and
// size, for `exec -it`: the terminal merges the command's stderr into stdout.
// Sizes sent on resize are forwarded. When ctx ends the session is closed,
// which hangs up the terminal (SIGHUP to the command). A non-zero exit is a
// *CommandError carrying the exit code.
func (c *Client) Interactive(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer, term string, size Size, resize <-chan Size) error {
	fail := func(err error) error { return fmt.Errorf("run %s on %s: %w", strconv.Quote(cmd), c.name, err) }
	var as privileges
	if c.sudo {
		pw, err := c.sudoAuth(ctx)
		if err != nil {
			return fail(err)
		}
		as = privileges{sudo: true, password: pw}
	}
	wire, stdin := as.wrap(cmd, stdin)
	s, err := c.ssh.NewSession()
	if err != nil {
		return fail(fmt.Errorf("open session: %w", err))
	}
	defer s.Close()
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	if err := s.RequestPty(term, size.Height, size.Width, modes); err != nil {
		return fail(fmt.Errorf("request terminal: %w", err))
	}
	out := &gatedWriter{w: stdout}
	s.Stdout, s.Stderr = out, out
	var in *gatedReader
	if stdin != nil {
		in = &gatedReader{r: stdin}
		s.Stdin = in
	}
	defer func() {
		out.close()
		if in != nil {
			in.close()
		}
	}()
	if err := s.Start(wire); err != nil {
		return fail(fmt.Errorf("start: %w", err))
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	for {
		select {
		case err = <-done:
			var ee *ssh.ExitError
			switch {
			case err == nil, errors.Is(err, io.EOF):
				return nil
			case errors.As(err, &ee):
				return &CommandError{Host: c.name, Cmd: cmd, ExitCode: ee.ExitStatus(), Signal: ee.Signal()}
			}
			return fail(err)
		case sz, ok := <-resize:
			if !ok {
				resize = nil
				continue
			}
			_ = s.WindowChange(sz.Height, sz.Width)
		case <-ctx.Done():
			_ = s.Close()
			return fail(ctx.Err())
		}
	}
}
