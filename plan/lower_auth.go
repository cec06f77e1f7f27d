package plan

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// registryAuth resolves imagePullSecrets into per-registry-host credentials
// and appends the inventory's, in order of preference: the pod's secrets in
// the order listed (hosts sorted within a secret), then the inventory's.
// Exact duplicates are dropped.
func (l *lowerer) registryAuth() []nodeapi.RegistryAuth {
	var out []nodeapi.RegistryAuth
	for i, ref := range l.pod.Spec.ImagePullSecrets {
		path := fmt.Sprintf("spec.imagePullSecrets[%d]", i)
		sec, data, ok := l.secretData(ref.Name)
		if !ok {
			l.fail(path, "secret %s not found", l.objectKey(ref.Name))
			continue
		}
		auths, err := dockerAuths(sec.Type, data)
		if err != nil {
			l.fail(path, "secret %s: %w", l.objectKey(ref.Name), err)
			continue
		}
		out = append(out, auths...)
	}
	out = append(out, l.in.RegistryAuth...)
	var dedup []nodeapi.RegistryAuth
	for _, a := range out {
		if !slices.Contains(dedup, a) {
			dedup = append(dedup, a)
		}
	}
	return dedup
}

// dockerConfigEntry is one registry's entry of a docker config file.
type dockerConfigEntry struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

// dockerAuths decodes a kubernetes.io/dockerconfigjson or legacy
// kubernetes.io/dockercfg secret, one RegistryAuth per registry host.
func dockerAuths(typ corev1.SecretType, data map[string][]byte) ([]nodeapi.RegistryAuth, error) {
	var entries map[string]dockerConfigEntry
	switch typ {
	case corev1.SecretTypeDockerConfigJson:
		raw, ok := data[corev1.DockerConfigJsonKey]
		if !ok {
			return nil, fmt.Errorf("no %s key", corev1.DockerConfigJsonKey)
		}
		var cfg struct {
			Auths map[string]dockerConfigEntry `json:"auths"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("decode %s: %w", corev1.DockerConfigJsonKey, err)
		}
		entries = cfg.Auths
	case corev1.SecretTypeDockercfg:
		raw, ok := data[corev1.DockerConfigKey]
		if !ok {
			return nil, fmt.Errorf("no %s key", corev1.DockerConfigKey)
		}
		if err := json.Unmarshal(raw, &entries); err != nil {
			return nil, fmt.Errorf("decode %s: %w", corev1.DockerConfigKey, err)
		}
	default:
		return nil, fmt.Errorf("type %q is not an image pull secret (want %s or %s)",
			typ, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg)
	}
	var out []nodeapi.RegistryAuth
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(entries)) {
		e := entries[key]
		host, err := registryHost(key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		user, pass := e.Username, e.Password
		if e.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				errs = append(errs, fmt.Errorf("decode auth of registry %q: %w", key, err))
				continue
			}
			u, p, ok := strings.Cut(string(dec), ":")
			if !ok {
				errs = append(errs, fmt.Errorf("decode auth of registry %q: want base64 of user:password", key))
				continue
			}
			user, pass = u, p // kubelet lets auth win over username/password
		}
		if user == "" && pass == "" {
			continue // anonymous: nothing to send
		}
		out = append(out, nodeapi.RegistryAuth{Server: host, Username: user, Password: pass,
			Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))})
	}
	return out, errors.Join(errs...)
}

// registryHost reduces a docker config key ("https://host:port/v1/",
// "host/path", "host") to the registry host. Docker Hub's aliases become
// docker.io, the registry domain of image references such as "nginx".
func registryHost(key string) (string, error) {
	s := strings.ToLower(key)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	host, _, _ := strings.Cut(s, "/")
	if host == "" {
		return "", fmt.Errorf("registry %q: no host", key)
	}
	switch host {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		host = "docker.io"
	}
	return host, nil
}
