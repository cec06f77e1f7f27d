package images

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Push uploads img to the registry named in ref (host[:port]/repo:tag). See
// PushContext.
func Push(ref string, img v1.Image, insecure bool) error {
	return PushContext(context.Background(), ref, img, insecure)
}

// PushContext uploads img to the registry named in ref, anonymously, with
// the OCI distribution API: every blob the registry lacks (monolithic
// upload), then the manifest under ref's tag or digest. With insecure the
// registry is spoken to over plain HTTP, as containerd does for an insecure
// registry in clusterctl's hosts.toml (the lab's registry); otherwise over
// HTTPS with verified certificates. It connects directly: proxy environment
// variables are ignored, since the registries it is meant for (the lab's, a
// local one) are never behind a proxy.
//
// (go-containerregistry's remote package would do the same, but it needs
// modules this repository does not pin: docker/cli and its credential
// helpers.)
func PushContext(ctx context.Context, ref string, img v1.Image, insecure bool) error {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return fmt.Errorf("parse reference %q: %w", ref, err)
	}
	p := &pusher{
		client: &http.Client{Transport: transport()},
		base:   &url.URL{Scheme: "https", Host: r.Context().RegistryStr(), Path: "/v2/" + r.Context().RepositoryStr() + "/"},
	}
	if insecure {
		p.base.Scheme = "http"
	}
	if err := p.push(ctx, r.Identifier(), img); err != nil {
		return fmt.Errorf("push %s: %w", r, err)
	}
	return nil
}

// transport is a plain http.Transport without proxies.
func transport() http.RoundTripper {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

type pusher struct {
	client *http.Client
	base   *url.URL // scheme://host/v2/REPO/
}

func (p *pusher) push(ctx context.Context, tag string, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("read layers: %w", err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("digest layer: %w", err)
		}
		size, err := l.Size()
		if err != nil {
			return fmt.Errorf("size layer %s: %w", d, err)
		}
		if err := p.blob(ctx, d, size, l.Compressed); err != nil {
			return err
		}
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	cd, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("digest config: %w", err)
	}
	if err := p.blob(ctx, cd, int64(len(cfg)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(cfg)), nil }); err != nil {
		return err
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return fmt.Errorf("read manifest media type: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.base.JoinPath("manifests", tag).String(), bytes.NewReader(manifest))
	if err != nil {
		return fmt.Errorf("put manifest: %w", err)
	}
	req.Header.Set("Content-Type", string(mt))
	if _, err := p.do(req, http.StatusCreated); err != nil {
		return fmt.Errorf("put manifest: %w", err)
	}
	return nil
}

// blob uploads one blob unless the registry has it already.
func (p *pusher) blob(ctx context.Context, d v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, p.base.JoinPath("blobs", d.String()).String(), nil)
	if err != nil {
		return fmt.Errorf("check blob %s: %w", d, err)
	}
	resp, err := p.do(req, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return fmt.Errorf("check blob %s: %w", d, err)
	}
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.base.JoinPath("blobs", "uploads").String()+"/", nil)
	if err != nil {
		return fmt.Errorf("start upload of %s: %w", d, err)
	}
	resp, err = p.do(req, http.StatusAccepted)
	if err != nil {
		return fmt.Errorf("start upload of %s: %w", d, err)
	}
	loc, err := p.base.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return fmt.Errorf("start upload of %s: bad Location %q", d, resp.Header.Get("Location"))
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	body, err := open()
	if err != nil {
		return fmt.Errorf("read blob %s: %w", d, err)
	}
	defer body.Close()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), body)
	if err != nil {
		return fmt.Errorf("upload %s: %w", d, err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	if _, err := p.do(req, http.StatusCreated); err != nil {
		return fmt.Errorf("upload %s: %w", d, err)
	}
	return nil
}

// do sends req and fails unless the answer has one of the wanted codes. The
// body is drained and closed; headers stay readable.
func (p *pusher) do(req *http.Request, want ...int) (*http.Response, error) {
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, errors.New("the registry wants authentication; Push is anonymous")
	}
	return nil, fmt.Errorf("%s %s: %s%s", req.Method, req.URL.Redacted(), resp.Status, registryErrors(body))
}

// registryErrors formats a distribution API error body, if it is one.
func registryErrors(body []byte) string {
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	parts := make([]string, len(e.Errors))
	for i, x := range e.Errors {
		parts[i] = x.Code + ": " + x.Message
	}
	return " (" + strings.Join(parts, "; ") + ")"
}
