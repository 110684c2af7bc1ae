// Package expression is the language of flexible federated identity
// credentials (claimsMatchingExpression, languageVersion 1):
//
//	claims['sub'] matches 'repo:contoso/*:ref:refs/heads/*' and claims['aud'] eq 'api://AzureADTokenExchange'
//
// A comparison names a claim and compares it with a quoted string: eq for
// equality, matches for a glob where * matches any run of characters and ?
// one character. Comparisons are joined with and. Inside a quoted string a
// backslash escapes a quote or a backslash. Only string claims compare.
package expression

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxLength bounds an expression, as Entra bounds credential values.
const MaxLength = 600

// Expr is a parsed expression.
type Expr struct {
	terms []term
}

type term struct {
	claim   string
	op      string // "eq" or "matches"
	operand string
}

// Parse parses s; errors give the byte offset of the problem.
func Parse(s string) (*Expr, error) {
	if len(s) > MaxLength {
		return nil, fmt.Errorf("expression is longer than %d characters", MaxLength)
	}
	p := &parser{src: s}
	e := &Expr{}
	for {
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		e.terms = append(e.terms, t)
		p.space()
		if p.done() {
			return e, nil
		}
		if !p.keyword("and") {
			return nil, p.errorf("want 'and' or the end of the expression")
		}
	}
}

type parser struct {
	src string
	pos int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *parser) done() bool { return p.pos >= len(p.src) }

func (p *parser) space() {
	for !p.done() && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

// keyword consumes word followed by a space or the end.
func (p *parser) keyword(word string) bool {
	p.space()
	end := p.pos + len(word)
	if end > len(p.src) || p.src[p.pos:end] != word || (end < len(p.src) && p.src[end] != ' ' && p.src[end] != '\t') {
		return false
	}
	p.pos = end
	return true
}

func (p *parser) literal(lit string) bool {
	p.space()
	if strings.HasPrefix(p.src[p.pos:], lit) {
		p.pos += len(lit)
		return true
	}
	return false
}

func (p *parser) term() (term, error) {
	var t term
	if !p.literal("claims[") {
		return t, p.errorf("want claims['name']")
	}
	name, err := p.quoted()
	if err != nil {
		return t, err
	}
	if name == "" {
		return t, p.errorf("the claim name is empty")
	}
	if !p.literal("]") {
		return t, p.errorf("want ]")
	}
	switch {
	case p.keyword("eq"):
		t.op = "eq"
	case p.keyword("matches"):
		t.op = "matches"
	default:
		return t, p.errorf("want eq or matches")
	}
	operand, err := p.quoted()
	if err != nil {
		return t, err
	}
	t.claim, t.operand = name, operand
	return t, nil
}

func (p *parser) quoted() (string, error) {
	p.space()
	if p.done() || p.src[p.pos] != '\'' {
		return "", p.errorf("want a quoted string")
	}
	p.pos++
	var b strings.Builder
	for !p.done() {
		c := p.src[p.pos]
		switch c {
		case '\\':
			if p.pos+1 >= len(p.src) || (p.src[p.pos+1] != '\'' && p.src[p.pos+1] != '\\') {
				return "", p.errorf(`a backslash escapes only ' or \`)
			}
			b.WriteByte(p.src[p.pos+1])
			p.pos += 2
		case '\'':
			p.pos++
			if !utf8.ValidString(b.String()) {
				return "", p.errorf("the string is not valid UTF-8")
			}
			return b.String(), nil
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	return "", p.errorf("unterminated string")
}

// Eval reports whether claims satisfy every comparison.
func (e *Expr) Eval(claims map[string]any) bool {
	for _, t := range e.terms {
		v, ok := claims[t.claim].(string)
		if !ok {
			return false
		}
		if t.op == "eq" && v != t.operand || t.op == "matches" && !glob(t.operand, v) {
			return false
		}
	}
	return true
}

// glob matches s against pattern in O(len(pattern)·len(s)) at worst, with
// no backtracking blow-up.
func glob(pattern, s string) bool {
	p, str := []rune(pattern), []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(str) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == str[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// Check reports whether s is a valid expression; it is the directory's
// ExpressionParser.
func Check(s string) error {
	_, err := Parse(s)
	return err
}
