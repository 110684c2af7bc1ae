package graph

import "strings"

// parseQuoted reads a whole OData string literal, quotes doubled inside.
func parseQuoted(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '\'' || s[len(s)-1] != '\'' {
		return "", false
	}
	inner := s[1 : len(s)-1]
	if strings.Count(inner, "'")%2 != 0 {
		return "", false
	}
	return strings.ReplaceAll(inner, "''", "'"), true
}

// parseStartsWith reads `startswith(prop,'value')`, the filter az ad app
// create sends to look for an application of the same name.
func parseStartsWith(f string) (prop, value string, ok bool) {
	inner, ok := strings.CutPrefix(strings.TrimSpace(f), "startswith(")
	if !ok {
		return "", "", false
	}
	inner, ok = strings.CutSuffix(inner, ")")
	if !ok {
		return "", "", false
	}
	prop, lit, ok := strings.Cut(inner, ",")
	if !ok {
		return "", "", false
	}
	value, ok = parseQuoted(lit)
	return strings.TrimSpace(prop), value, ok
}

// parseAnyEq reads `coll/any(c:c eq 'value')`, the filter az ad sp create
// sends on servicePrincipalNames.
func parseAnyEq(f string) (coll, value string, ok bool) {
	coll, rest, ok := strings.Cut(strings.TrimSpace(f), "/any(")
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutSuffix(strings.TrimSpace(rest), ")")
	if !ok {
		return "", "", false
	}
	v, cond, ok := strings.Cut(rest, ":")
	if !ok {
		return "", "", false
	}
	lhs, lit, ok := strings.Cut(cond, " eq ")
	if !ok || strings.TrimSpace(lhs) != strings.TrimSpace(v) {
		return "", "", false
	}
	value, ok = parseQuoted(lit)
	return strings.TrimSpace(coll), value, ok
}
