package expression

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseAndEval(t *testing.T) {
	claims := map[string]any{"sub": "repo:contoso/app:ref:refs/heads/main", "repository_owner": "contoso", "run": 7.0, "quote": "it's"}
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{`claims['sub'] eq 'repo:contoso/app:ref:refs/heads/main'`, true},
		{`claims['sub'] eq 'repo:contoso/app'`, false},
		{`claims['sub'] matches 'repo:contoso/*'`, true},
		{`claims['sub'] matches 'repo:contoso/*:ref:refs/heads/*'`, true},
		{`claims['sub'] matches 'repo:contoso/???:ref:refs/heads/main'`, true},
		{`claims['sub'] matches 'repo:contoso/??:ref:refs/heads/main'`, false},
		{`claims['sub'] matches '*'`, true},
		{`claims['sub'] matches 'repo:fabrikam/*'`, false},
		{`claims['sub'] matches 'REPO:contoso/*'`, false},
		{`claims['sub'] matches 'repo:contoso/*' and claims['repository_owner'] eq 'contoso'`, true},
		{`claims['sub'] matches 'repo:contoso/*' and claims['repository_owner'] eq 'fabrikam'`, false},
		{`claims['missing'] matches '*'`, false},
		{`claims['run'] eq '7'`, false},
		{`claims['quote'] eq 'it\'s'`, true},
		{`  claims[ 'sub' ]   matches   'repo:*'  `, true},
	} {
		e, err := Parse(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if got := e.Eval(claims); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.expr, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for expr, says := range map[string]string{
		``:                       "at offset 0: want claims['name']",
		`claims['sub']`:          "want eq or matches",
		`claims['sub'] like 'x'`: "want eq or matches",
		`claims['sub'] eq x`:     "want a quoted string",
		`claims['sub'] eq 'x`:    "unterminated string",
		`claims[''] eq 'x'`:      "the claim name is empty",
		`claims['sub' eq 'x'`:    "want ]",
		`claims['sub'] eq 'x' or claims['a'] eq 'b'`:          "want 'and'",
		`claims['sub'] eq 'x' and`:                            "want claims['name']",
		`claims['sub'] eq 'a\b'`:                              `a backslash escapes only`,
		`claims['sub'] eq '` + strings.Repeat("x", 600) + `'`: "longer than 600",
	} {
		if _, err := Parse(expr); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%.40q: err = %v, want %q", expr, err, says)
		}
	}
}

func TestGlobIsLinear(t *testing.T) {
	// A pattern that makes naive backtracking exponential.
	pattern := strings.Repeat("*a", 30) + "b"
	s := strings.Repeat("a", 500)
	if glob(pattern, s) {
		t.Error("matched")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`claims['sub'] eq 'x'`, `claims['a'] matches '*?' and claims['b'] eq 'c\''`, `claims[`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		_ = e.Eval(map[string]any{"sub": s, "a": "b"})
	})
}

func FuzzGlob(f *testing.F) {
	f.Add("repo:*:ref:*", "repo:x:ref:main")
	f.Add("a?c", "abc")
	f.Add("*a*a*b", "aaaaaaab")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 || !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			return
		}
		// The oracle: the same glob as a regular expression.
		var re strings.Builder
		re.WriteString("(?s)^")
		for _, r := range pattern {
			switch r {
			case '*':
				re.WriteString(".*")
			case '?':
				re.WriteString(".")
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		re.WriteString("$")
		if want := regexp.MustCompile(re.String()).MatchString(s); glob(pattern, s) != want {
			t.Fatalf("glob(%q, %q) = %v, want %v", pattern, s, !want, want)
		}
	})
}
