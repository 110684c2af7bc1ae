package directory

import (
	"bytes"
	"unicode/utf8"
)

// StorableJSON reports whether a JSON request body holds only text the
// directory can store and give back: valid UTF-8 (invalid bytes would come
// back as U+FFFD) without NUL, raw or escaped as \u0000 (it breaks the
// clients and tools that read the directory). An escaped backslash
// followed by "u0000" is text, not a NUL. Graph and ARM both refuse a body
// for which it is false.
func StorableJSON(body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case 0:
			return false
		case '\\':
			if bytes.HasPrefix(body[i+1:], []byte("u0000")) {
				return false
			}
			i++ // the escaped character, a backslash included
		}
	}
	return true
}
