package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/clusterctl/clusterctl/playbooks"
)

// progress renders playbook events: one live line per host on a terminal,
// plain appended lines otherwise (cron, CI, pipes).
type progress struct {
	mu    sync.Mutex
	out   io.Writer
	tty   bool
	hosts []string
	lines map[string]string
	start time.Time
	drawn int
	width int
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newProgress(out io.Writer, hosts []string) *progress {
	p := &progress{out: out, tty: isTerminal(out), hosts: hosts, lines: map[string]string{}, start: time.Now()}
	for _, h := range hosts {
		if len(h) > p.width {
			p.width = len(h)
		}
		p.lines[h] = "waiting"
	}
	if p.tty {
		p.redraw()
	}
	return p
}

// Event is the playbooks.Progress callback.
func (p *progress) Event(ev playbooks.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var line string
	switch ev.State {
	case playbooks.Running:
		line = ev.Step + " …"
	case playbooks.Changed:
		line = ev.Step + ": " + ev.Message
	case playbooks.Unchanged:
		if !p.tty {
			return // plain mode: only changes, failures and the result
		}
		line = ev.Step + ": ok"
	case playbooks.Failed:
		line = "FAILED " + ev.Message
	case playbooks.HostDone:
		line = "done: " + ev.Message
	}
	if !p.tty {
		if ev.State == playbooks.Running {
			return
		}
		fmt.Fprintf(p.out, "%-*s  %s\n", p.width, ev.Host, line)
		return
	}
	if ev.State == playbooks.Failed {
		line = "\x1b[31m✗\x1b[0m " + firstLine(ev.Message)
	} else if ev.State == playbooks.HostDone {
		line = "\x1b[32m✓\x1b[0m " + ev.Message
	}
	p.lines[ev.Host] = line
	p.redraw()
}

func (p *progress) redraw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, h := range p.hosts {
		fmt.Fprintf(&b, "\x1b[2K%-*s  %s\n", p.width, h, p.lines[h])
	}
	p.drawn = len(p.hosts)
	io.WriteString(p.out, b.String())
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
