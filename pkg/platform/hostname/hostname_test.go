package hostname

import "testing"

func TestOf(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":         "example.com",
		"Example.COM:8443":    "example.com",
		"localhost:":          "localhost",
		"127.0.0.1:443":       "127.0.0.1",
		"[::1]:8443":          "::1",
		"[::1]":               "::1",
		"::1":                 "::1",
		"[FE80::1%25eth0]:80": "fe80::1%25eth0",
		"":                    "",
		"a:b:c":               "a:b:c",
		"[[Example.org]]":     "example.org",
		"]x[":                 "x",
		"[]":                  "",
	} {
		if got := Of(in); got != want {
			t.Errorf("Of(%q) = %q, want %q", in, got, want)
		}
	}
}
