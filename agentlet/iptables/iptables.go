// Package iptables is agentlet's edge to the host's iptables tools: it runs
// iptables, iptables-save and iptables-restore. What to load is decided by the
// pure agentlet/netfilter package; this package only executes.
//
// Fake records calls and injects errors for tests.
package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Exec runs the real binaries. The zero value uses iptables, iptables-save
// and iptables-restore from PATH (whichever backend, nft or legacy, the host
// selected). Set the fields to use other binaries, e.g. iptables-legacy.
type Exec struct {
	IptablesBin string // default "iptables"
	SaveBin     string // default "iptables-save"
	RestoreBin  string // default "iptables-restore"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Restore loads payload with `iptables-restore -w --noflush`: only the chains
// the payload declares are flushed, every other rule stays.
func (e Exec) Restore(ctx context.Context, payload []byte) error {
	_, err := run(ctx, payload, orDefault(e.RestoreBin, "iptables-restore"), "-w", "--noflush")
	if err != nil {
		return fmt.Errorf("load rules: %w", err)
	}
	return nil
}

// Save returns `iptables-save -t table`. A table the kernel does not have
// yet is reported as empty output, not as an error.
func (e Exec) Save(ctx context.Context, table string) ([]byte, error) {
	out, err := run(ctx, nil, orDefault(e.SaveBin, "iptables-save"), "-t", table)
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) && strings.Contains(ee.Stderr, "does not exist") {
			return nil, nil
		}
		return nil, fmt.Errorf("save table %s: %w", table, err)
	}
	return out, nil
}

// Check reports whether chain in table holds the rule (`iptables -w -C`).
// Exit status 1 means "no such rule" (or no such chain): false, no error.
func (e Exec) Check(ctx context.Context, table, chain string, rule []string) (bool, error) {
	args := append([]string{"-w", "-t", table, "-C", chain}, rule...)
	_, err := run(ctx, nil, orDefault(e.IptablesBin, "iptables"), args...)
	var ee *ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.Code == 1:
		return false, nil
	default:
		return false, fmt.Errorf("check rule in %s/%s: %w", table, chain, err)
	}
}

// Insert puts the rule first in chain (`iptables -w -I`).
func (e Exec) Insert(ctx context.Context, table, chain string, rule []string) error {
	args := append([]string{"-w", "-t", table, "-I", chain}, rule...)
	if _, err := run(ctx, nil, orDefault(e.IptablesBin, "iptables"), args...); err != nil {
		return fmt.Errorf("insert rule in %s/%s: %w", table, chain, err)
	}
	return nil
}

// ExitError is a tool that ran and failed. Stderr is trimmed to its first
// 512 bytes; it never contains the payload that was fed on stdin.
type ExitError struct {
	Cmd    string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("%s exited with status %d", e.Cmd, e.Code)
	}
	return fmt.Sprintf("%s exited with status %d: %s", e.Cmd, e.Code, e.Stderr)
}

func run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.Bytes(), nil
	case errors.As(err, &ee) && ee.Exited():
		return nil, &ExitError{Cmd: name, Code: ee.ExitCode(), Stderr: trim(stderr.String())}
	case errors.Is(err, exec.ErrNotFound):
		return nil, fmt.Errorf("run %s: not installed (not found in PATH): %w", name, err)
	default:
		return nil, fmt.Errorf("run %s: %w", name, err)
	}
}

func trim(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	return s
}

// NotInstalled reports whether err means a tool is not installed on the host.
func NotInstalled(err error) bool { return errors.Is(err, exec.ErrNotFound) }
