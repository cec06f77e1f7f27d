package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/clusterctl/clusterctl/inventory"
)

// fakeHost is an in-process SSH server on 127.0.0.1 that accepts one client
// key and answers every exec request with a fixed exit status, recording the
// commands it was sent.
type fakeHost struct {
	addr   *net.TCPAddr
	pub    ssh.PublicKey
	status uint32

	mu       sync.Mutex
	commands []string
	conns    int // connections that completed the handshake
	closed   int // of those, connections the client closed
}

func (h *fakeHost) record(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

func (h *fakeHost) snapshot() (cmds []string, conns, closed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.commands...), h.conns, h.closed
}

func newSigner(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

func startFakeHost(t *testing.T, client ssh.PublicKey, status uint32) *fakeHost {
	t.Helper()
	hostKey, _ := newSigner(t)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(k.Marshal(), client.Marshal()) {
			return nil, nil
		}
		return nil, fmt.Errorf("unknown key")
	}}
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHost{addr: ln.Addr().(*net.TCPAddr), pub: hostKey.PublicKey(), status: status}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { h.serve(c, cfg) })
		}
	})
	return h
}

func (h *fakeHost) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	h.record(func() { h.conns++ })
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for r := range creqs {
				if r.Type != "exec" {
					r.Reply(false, nil)
					continue
				}
				var p struct{ Command string }
				if err := ssh.Unmarshal(r.Payload, &p); err != nil {
					r.Reply(false, nil)
					return
				}
				h.record(func() { h.commands = append(h.commands, p.Command) })
				r.Reply(true, nil)
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{h.status}))
				return
			}
		}()
	}
	sc.Wait()
	h.record(func() { h.closed++ })
}

// fixture writes a client key, a known_hosts file holding the keys of the
// hosts listed in known, and an inventory of all hosts.
func fixture(t *testing.T, hosts []*fakeHost, known []bool, priv ed25519.PrivateKey) *inventory.Inventory {
	t.Helper()
	dir := t.TempDir()
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	var kh, yaml strings.Builder
	fmt.Fprintf(&yaml, "apiVersion: clusterctl.dev/v1alpha1\nkind: Inventory\ncluster:\n  name: floor\n"+
		"ssh:\n  user: root\n  identityFile: %s\n  knownHosts: %s\n  useAgent: false\n  sshConfig: none\n  connectTimeout: 5s\nhosts:\n",
		key, filepath.Join(dir, "known_hosts"))
	for i, h := range hosts {
		fmt.Fprintf(&yaml, "  - name: h%d\n    address: 127.0.0.1\n    port: %d\n", i+1, h.addr.Port)
		if known[i] {
			kh.WriteString(knownhosts.Line([]string{knownhosts.Normalize(h.addr.String())}, h.pub) + "\n")
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	invPath := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(invPath, []byte(yaml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestFloor(t *testing.T) {
	tests := []struct {
		name     string
		parallel int
		status   []uint32 // exit status of each host's command
		known    []bool   // host key in known_hosts
		wantErr  []string // substrings of the error; nil: success
		wantRan  []bool   // host received the command
	}{
		{name: "all hosts at once", status: []uint32{0, 0, 0, 0}, known: []bool{true, true, true, true},
			wantRan: []bool{true, true, true, true}},
		{name: "one at a time", parallel: 1, status: []uint32{0, 0, 0}, known: []bool{true, true, true},
			wantRan: []bool{true, true, true}},
		{name: "unknown host key is refused before the command", status: []uint32{0, 0, 0}, known: []bool{true, false, true},
			wantErr: []string{"dial h2:"}, wantRan: []bool{true, false, true}},
		{name: "failing command names its host", status: []uint32{0, 0, 1}, known: []bool{true, true, true},
			wantErr: []string{`run "true" on h3`, "exit"}, wantRan: []bool{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signer, priv := newSigner(t)
			hosts := make([]*fakeHost, len(tt.status))
			for i, st := range tt.status {
				hosts[i] = startFakeHost(t, signer.PublicKey(), st)
			}
			inv := fixture(t, hosts, tt.known, priv)
			d, err := Floor(context.Background(), inv, tt.parallel, "true")
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Floor: %v", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("Floor succeeded, want an error containing %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if d <= 0 {
				t.Errorf("elapsed %v, want > 0", d)
			}
			for i, h := range hosts {
				cmds, conns, _ := h.snapshot()
				ran := len(cmds) == 1 && regexp.MustCompile(`(?m)^true$`).MatchString(cmds[0])
				if ran != tt.wantRan[i] || len(cmds) > 1 {
					t.Errorf("h%d: commands %q, want the command run once: %v", i+1, cmds, tt.wantRan[i])
				}
				if tt.known[i] && conns != 1 {
					t.Errorf("h%d: %d connections, want 1", i+1, conns)
				}
			}
		})
	}
}

func TestFloorClosesConnections(t *testing.T) {
	signer, priv := newSigner(t)
	hosts := []*fakeHost{startFakeHost(t, signer.PublicKey(), 0), startFakeHost(t, signer.PublicKey(), 0)}
	inv := fixture(t, hosts, []bool{true, true}, priv)
	if _, err := Floor(context.Background(), inv, 0, "true"); err != nil {
		t.Fatal(err)
	}
	// The client closed its side; each server notices and counts it.
	for i, h := range hosts {
		for range 200 {
			if _, _, closed := h.snapshot(); closed == 1 {
				break
			}
			waitABit()
		}
		if _, conns, closed := h.snapshot(); conns != 1 || closed != 1 {
			t.Errorf("h%d: %d connections, %d closed; want 1 and 1", i+1, conns, closed)
		}
	}
}

func TestRun(t *testing.T) {
	signer, priv := newSigner(t)
	hosts := []*fakeHost{startFakeHost(t, signer.PublicKey(), 0), startFakeHost(t, signer.PublicKey(), 0)}
	inv := fixture(t, hosts, []bool{true, true}, priv)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // regexp
		wantErr  string // substring
	}{
		{name: "two rounds", args: []string{"-i", inv.Path, "-n", "2"}, wantCode: 0,
			wantOut: `^(sshfloor: 2 hosts, dial \+ "true" in [0-9.]+[µm]?s\n){2}$`},
		{name: "missing inventory", args: []string{"-i", filepath.Join(t.TempDir(), "none.yaml")}, wantCode: 1, wantErr: "read inventory"},
		{name: "stray argument", args: []string{"-i", inv.Path, "extra"}, wantCode: 2, wantErr: "usage"},
		{name: "zero rounds", args: []string{"-i", inv.Path, "-n", "0"}, wantCode: 2, wantErr: "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tt.args, &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, errb.String())
			}
			if tt.wantOut != "" && !regexp.MustCompile(tt.wantOut).MatchString(out.String()) {
				t.Errorf("stdout %q does not match %s", out.String(), tt.wantOut)
			}
			if !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", errb.String(), tt.wantErr)
			}
		})
	}
	for i, h := range hosts {
		if cmds, _, _ := h.snapshot(); len(cmds) != 2 {
			t.Errorf("h%d ran %d commands over the runs, want 2 (one per round)", i+1, len(cmds))
		}
	}
}

// waitABit lets a server goroutine notice a closed connection.
func waitABit() { time.Sleep(10 * time.Millisecond) }

func TestRunWarmHoldsConnections(t *testing.T) {
	signer, priv := newSigner(t)
	hosts := []*fakeHost{startFakeHost(t, signer.PublicKey(), 0), startFakeHost(t, signer.PublicKey(), 0), startFakeHost(t, signer.PublicKey(), 0)}
	inv := fixture(t, hosts, []bool{true, true, true}, priv)
	var out, errb bytes.Buffer
	if code := run([]string{"-i", inv.Path, "-warm", "-n", "3", "-parallel", "2"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := `^sshfloor: 3 hosts, dial in [0-9.]+[µm]?s\n(sshfloor: 3 hosts, "true" over held connections in [0-9.]+[µm]?s\n){3}$`
	if !regexp.MustCompile(want).MatchString(out.String()) {
		t.Errorf("stdout %q does not match %s", out.String(), want)
	}
	for i, h := range hosts {
		cmds, conns, _ := h.snapshot()
		if len(cmds) != 3 || conns != 1 {
			t.Errorf("h%d: %d commands over %d connections, want 3 over 1", i+1, len(cmds), conns)
		}
	}
}

func TestRunWarmFailsOnUnknownHostKey(t *testing.T) {
	signer, priv := newSigner(t)
	hosts := []*fakeHost{startFakeHost(t, signer.PublicKey(), 0), startFakeHost(t, signer.PublicKey(), 0)}
	inv := fixture(t, hosts, []bool{true, false}, priv)
	var out, errb bytes.Buffer
	if code := run([]string{"-i", inv.Path, "-warm"}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q", code, out.String())
	}
	if !strings.Contains(errb.String(), "dial h2:") {
		t.Errorf("stderr %q does not name h2", errb.String())
	}
	if cmds, _, _ := hosts[0].snapshot(); len(cmds) != 0 {
		t.Errorf("h1 ran %q although the round could not start", cmds)
	}
}
