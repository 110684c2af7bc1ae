// Package hostname reads the host name a request asks for, in the one form
// the listeners' host allowlists (the Entra listener's entra.allowed_hosts,
// the discovery provider's allowed hosts) compare: a Host header or a
// forwarded host can carry a port, IPv6 brackets and any case.
package hostname

import (
	"net"
	"strings"
)

// Of is host without its port, lower case, IPv6 brackets removed:
// "Example.COM:8443" and "[::1]:443" are "example.com" and "::1".
func Of(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && i > strings.LastIndexByte(host, ']') { // a port
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	// strings.Trim(host, "[]") without building its set of bytes: every
	// request to the discovery provider and the Entra listener comes here.
	for host != "" && (host[0] == '[' || host[0] == ']') {
		host = host[1:]
	}
	for host != "" && (host[len(host)-1] == '[' || host[len(host)-1] == ']') {
		host = host[:len(host)-1]
	}
	return strings.ToLower(host)
}
