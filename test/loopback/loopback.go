// Package loopback finds free loopback ports for tests that must name a
// port before anything listens on it: an issuer naming its own port, a
// process started with its addresses as flags.
package loopback

import (
	"net"
	"testing"
)

// Addrs returns n distinct 127.0.0.1 addresses that were free a moment
// ago: all are held until each is known, so none is given twice.
func Addrs(t testing.TB, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out[i] = l.Addr().String()
	}
	return out
}

// Ports is Addrs' ports.
func Ports(t testing.TB, n int) []string {
	t.Helper()
	out := Addrs(t, n)
	for i, a := range out {
		_, out[i], _ = net.SplitHostPort(a)
	}
	return out
}
