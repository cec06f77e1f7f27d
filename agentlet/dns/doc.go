// Package dns is agentlet's cluster DNS server.
package dns

import _ "github.com/miekg/dns" // pinned for the node DNS server
