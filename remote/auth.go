package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// credentials are the keys Dial offers, shared by all hops.
type credentials struct {
	files      map[string]ssh.Signer // parsed identity files, by path
	agentKeys  []ssh.Signer
	agentNote  string // why the agent offers nothing, for error messages
	agentConn  net.Conn
	skipped    map[string]string // identity files not used, by path: reason
	explicitID []string          // Config.IdentityFiles, in order
}

// loadCredentials reads Config.IdentityFiles and connects to the agent.
// Encrypted identity files are an error unless the agent is available, since
// the agent may hold the key; Close releases the agent connection.
func loadCredentials(ctx context.Context, cfg Config) (*credentials, error) {
	cr := &credentials{files: map[string]ssh.Signer{}, skipped: map[string]string{}}
	if cfg.UseAgent {
		cr.connectAgent(ctx, cfg.getenv("SSH_AUTH_SOCK"))
	}
	for _, path := range cfg.IdentityFiles {
		path = expandHome(path, cfg.getenv("HOME"))
		cr.explicitID = append(cr.explicitID, path)
		if err := cr.loadFile(path, true); err != nil {
			cr.close()
			return nil, err
		}
	}
	return cr, nil
}

func (cr *credentials) connectAgent(ctx context.Context, sock string) {
	if sock == "" {
		cr.agentNote = "ssh-agent: SSH_AUTH_SOCK is not set"
		return
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		cr.agentNote = "ssh-agent: " + err.Error()
		return
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		cr.agentNote = "ssh-agent: list keys: " + err.Error()
		return
	}
	if len(signers) == 0 {
		cr.agentNote = "ssh-agent: no keys"
	}
	cr.agentConn, cr.agentKeys = conn, signers
}

// loadFile parses an identity file. Missing files are an error when explicit,
// and skipped when they come from ssh_config.
func (cr *credentials) loadFile(path string, explicit bool) error {
	if _, ok := cr.files[path]; ok {
		return nil
	}
	if _, ok := cr.skipped[path]; ok {
		return nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			cr.skipped[path] = "missing"
			return nil
		}
		return fmt.Errorf("read identity file: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var pme *ssh.PassphraseMissingError
	if errors.As(err, &pme) {
		if cr.agentConn != nil {
			cr.skipped[path] = "encrypted, using ssh-agent instead"
			return nil
		}
		return fmt.Errorf("load identity file %s: the key is encrypted with a passphrase, which clusterctl does not prompt for: "+
			"add it to ssh-agent (ssh-add %s) and enable the agent", path, Quote(path))
	}
	if err != nil {
		return fmt.Errorf("load identity file %s: %w", path, err)
	}
	cr.files[path] = signer
	return nil
}

// signersFor returns the keys to offer to a hop: explicit identity files,
// then the hop's ssh_config identity files, then agent keys not already
// offered, with a description of each for error messages.
func (cr *credentials) signersFor(h hop) ([]ssh.Signer, []string, error) {
	for _, p := range h.identityFiles {
		if err := cr.loadFile(p, false); err != nil {
			return nil, nil, err
		}
	}
	var (
		signers []ssh.Signer
		methods []string
		seen    = map[string]bool{}
	)
	add := func(s ssh.Signer, desc string) {
		blob := string(s.PublicKey().Marshal())
		if seen[blob] {
			return
		}
		seen[blob] = true
		signers = append(signers, s)
		methods = append(methods, fmt.Sprintf("publickey %s %s (%s)", s.PublicKey().Type(), Fingerprint(s.PublicKey()), desc))
	}
	for _, p := range append(append([]string(nil), cr.explicitID...), h.identityFiles...) {
		if s, ok := cr.files[p]; ok {
			add(s, p)
		} else if why, ok := cr.skipped[p]; ok && why != "missing" {
			methods = append(methods, fmt.Sprintf("%s (%s)", p, why))
		}
	}
	for i, s := range cr.agentKeys {
		add(s, "ssh-agent key "+strconv.Itoa(i+1))
	}
	if cr.agentNote != "" {
		methods = append(methods, cr.agentNote)
	}
	return signers, methods, nil
}

func (cr *credentials) close() {
	if cr.agentConn != nil {
		cr.agentConn.Close()
	}
}
