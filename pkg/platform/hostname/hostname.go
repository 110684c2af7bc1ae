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
	if strings.LastIndexByte(host, ':') > strings.LastIndexByte(host, ']') { // a port
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	return strings.ToLower(strings.Trim(host, "[]"))
}
