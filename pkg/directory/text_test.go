package directory

import "testing"

func TestStorableJSON(t *testing.T) {
	for body, want := range map[string]bool{
		`{"displayName":"plain"}`:              true,
		`{"displayName":"caf\u00e9 ☕"}`:        true,
		`{"displayName":"a\\u0000b"}`:          true, // a backslash, then the text u0000
		`{"displayName":"a\\\\u0000b"}`:        true,
		`{"displayName":"a\u0000b"}`:           false,
		`{"displayName":"a\\\u0000b"}`:         false, // a backslash, then a NUL
		"{\"displayName\":\"a\x00b\"}":         false,
		"{\"displayName\":\"bad \xff utf-8\"}": false,
		`{"displayName":"ends with \\"}`:       true,
		`\`:                                    true, // not JSON; the decoder says so
	} {
		if got := StorableJSON([]byte(body)); got != want {
			t.Errorf("StorableJSON(%s) = %v, want %v", body, got, want)
		}
	}
}
