package remote

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Fingerprint returns the SHA256 fingerprint of k as OpenSSH prints it,
// e.g. "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s".
func Fingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

// hostKeys verifies host keys against known_hosts files.
type hostKeys struct {
	host      string // inventory name, for errors
	file      string // Config.KnownHostsFile: read and, with acceptNew, written
	extra     []string
	acceptNew bool
	check     ssh.HostKeyCallback
}

// newHostKeys loads file (which may not exist yet) and the extra files (which
// are skipped when missing).
func newHostKeys(host, file string, extra []string, acceptNew bool) (*hostKeys, error) {
	hk := &hostKeys{host: host, file: file, extra: extra, acceptNew: acceptNew}
	if err := hk.load(); err != nil {
		return nil, err
	}
	return hk, nil
}

func (hk *hostKeys) load() error {
	var files []string
	for _, f := range append([]string{hk.file}, hk.extra...) {
		if slices.Contains(files, f) {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("read known hosts: %w", err)
		}
		files = append(files, f)
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return fmt.Errorf("read known hosts: %w", err)
	}
	hk.check = cb
	return nil
}

// knownKeys returns the keys recorded for address ("host:port"), found by
// checking a throwaway key, which can only fail, and reading the keys the
// failure lists.
func (hk *hostKeys) knownKeys(address string) ([]knownhosts.KnownKey, error) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("generate probe key: %w", err)
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("generate probe key: %w", err)
	}
	// knownhosts prefers the host name it is given and only needs the remote
	// address to be well-formed.
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	err = hk.check(address, remote, probe)
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		return ke.Want, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up known hosts for %s: %w", address, err)
	}
	return nil, nil
}

// hostKeyAlgorithms lists the host key algorithms that can produce the keys
// in known, in the order of known, or nil when none are known (no
// restriction). Restricting the handshake to them keeps a server with keys of
// several types from presenting one we have no record of, which knownhosts
// would report as a mismatch.
func hostKeyAlgorithms(known []knownhosts.KnownKey) []string {
	var algos []string
	for _, k := range known {
		for _, a := range algorithmsForKeyType(k.Key.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

// algorithmsForKeyType maps a key type to the signature algorithms a server
// holding such a key can use: RSA keys sign with SHA-2 or SHA-1.
func algorithmsForKeyType(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSAv01}
	}
	return []string{t}
}

func (hk *hostKeys) verify(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := hk.check(hostname, remote, key)
	if err == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		if len(ke.Want) > 0 {
			return hk.mismatch(hostname, ke.Want, key)
		}
		if !hk.acceptNew {
			return &UnknownHostKeyError{
				Host:           hk.host,
				Address:        knownhosts.Normalize(hostname),
				KeyType:        key.Type(),
				Fingerprint:    Fingerprint(key),
				KnownHostsFile: hk.file,
			}
		}
		return hk.accept(hostname, remote, key)
	}
	var re *knownhosts.RevokedError
	if errors.As(err, &re) {
		return fmt.Errorf("verify host key of %s: key %s is revoked (%s:%d)",
			knownhosts.Normalize(hostname), Fingerprint(key), re.Revoked.Filename, re.Revoked.Line)
	}
	return fmt.Errorf("verify host key of %s: %w", knownhosts.Normalize(hostname), err)
}

func (hk *hostKeys) mismatch(hostname string, want []knownhosts.KnownKey, key ssh.PublicKey) error {
	e := &HostKeyMismatchError{
		Host:           hk.host,
		Address:        knownhosts.Normalize(hostname),
		GotFingerprint: Fingerprint(key),
	}
	// Point at the entry of the presented key's type: that is the one that changed.
	at := want[0]
	for _, w := range want {
		e.KnownFingerprints = append(e.KnownFingerprints, Fingerprint(w.Key))
		if w.Key.Type() == key.Type() && at.Key.Type() != key.Type() {
			at = w
		}
	}
	e.KnownHostsFile, e.Line = at.Filename, at.Line
	return e
}

// accept records key for hostname in hk.file. Under the file's lock it reads
// the file again: a parallel Dial may have recorded this host meanwhile, with
// this key (fine) or another one (a mismatch).
func (hk *hostKeys) accept(hostname string, remote net.Addr, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(hk.file), 0o700); err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	f, err := os.OpenFile(hk.file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	defer f.Close()
	unlock, err := lockFile(f)
	if err != nil {
		return fmt.Errorf("record host key: lock %s: %w", hk.file, err)
	}
	defer unlock()

	fresh, err := newHostKeys(hk.host, hk.file, nil, false)
	if err != nil {
		return err
	}
	err = fresh.check(hostname, remote, key)
	var ke *knownhosts.KeyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ke) && len(ke.Want) > 0:
		return hk.mismatch(hostname, ke.Want, key)
	case !errors.As(err, &ke):
		return fmt.Errorf("record host key: %w", err)
	}

	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err != nil && err != io.EOF {
			return fmt.Errorf("record host key: %w", err)
		}
		if last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	return nil
}
