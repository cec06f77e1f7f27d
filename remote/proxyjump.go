package remote

import (
	"fmt"
	"strconv"
	"strings"
)

// JumpHost is one entry of a ProxyJump list. Zero Port and empty User mean
// "not set".
type JumpHost struct {
	User string
	Host string
	Port int
}

// ParseProxyJump parses an OpenSSH ProxyJump value: a comma-separated list of
// [user@]host[:port] or ssh://[user@]host[:port], where host may be a
// bracketed IPv6 address. "" and "none" yield no jump hosts.
func ParseProxyJump(s string) ([]JumpHost, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return nil, nil
	}
	var out []JumpHost
	for _, part := range strings.Split(s, ",") {
		j, err := parseJumpHost(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("parse proxy jump %q: %w", s, err)
		}
		out = append(out, j)
	}
	return out, nil
}

func parseJumpHost(s string) (JumpHost, error) {
	var j JumpHost
	if s == "" {
		return j, fmt.Errorf("empty jump host")
	}
	if rest, ok := strings.CutPrefix(s, "ssh://"); ok {
		s = strings.TrimSuffix(rest, "/")
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		j.User, s = s[:i], s[i+1:]
		if j.User == "" {
			return j, fmt.Errorf("empty user in jump host %q", s)
		}
	}
	hostPart, portPart := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return j, fmt.Errorf("missing ] in jump host %q", s)
		}
		hostPart, portPart = s[1:end], s[end+1:]
		if portPart != "" {
			p, ok := strings.CutPrefix(portPart, ":")
			if !ok {
				return j, fmt.Errorf("unexpected %q after ] in jump host %q", portPart, s)
			}
			portPart = p
			if portPart == "" {
				return j, fmt.Errorf("empty port in jump host %q", s)
			}
		}
	case strings.Count(s, ":") == 1:
		hostPart, portPart, _ = strings.Cut(s, ":")
		if portPart == "" {
			return j, fmt.Errorf("empty port in jump host %q", s)
		}
	}
	if hostPart == "" {
		return j, fmt.Errorf("empty host in jump host %q", s)
	}
	if strings.ContainsAny(hostPart, " \t/@") {
		return j, fmt.Errorf("invalid host %q in jump host", hostPart)
	}
	j.Host = hostPart
	if portPart != "" {
		p, err := strconv.Atoi(portPart)
		if err != nil || p < 1 || p > 65535 {
			return j, fmt.Errorf("invalid port %q in jump host %q", portPart, s)
		}
		j.Port = p
	}
	return j, nil
}

// String formats j back into ProxyJump syntax.
func (j JumpHost) String() string {
	var b strings.Builder
	if j.User != "" {
		b.WriteString(j.User)
		b.WriteByte('@')
	}
	host := j.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	b.WriteString(host)
	if j.Port != 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(j.Port))
	}
	return b.String()
}
