package loopback

import (
	"net"
	"slices"
	"strconv"
	"testing"
)

func TestAddrsAreDistinctAndFree(t *testing.T) {
	addrs := Addrs(t, 8)
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s given twice: %v", a, addrs)
		}
		seen[a] = true
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s is not free: %v", a, err)
		}
		l.Close()
	}
	for _, p := range Ports(t, 3) {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 || slices.Contains(addrs, p) {
			t.Errorf("port %q", p)
		}
	}
}
