package strictyaml

import (
	"errors"
	"strings"
	"testing"
)

type inner struct {
	Issuer string `json:"issuer"`
}

type doc struct {
	inner
	Count  int             `json:"count"`
	Flag   *bool           `json:"flag"`
	Items  []inner         `json:"items"`
	Labels map[string]int  `json:"labels"`
	Rest   map[string]any  `json:"rest"`
	Nested struct{ A int } `json:"nested"`
}

func TestDecodeSetsGoodValuesAndReportsEveryProblem(t *testing.T) {
	var d doc
	err := Decode([]byte(`
issuer: https://a
count: 1.5
flag: true
items:
  - issuer: x
  - isuer: y
  - 3
labels: {a: 1, b: two}
rest: {anything: [1, {x: y}]}
nested: {A: 1, b: 2}
zzz: 1
`), &d)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		"count: 1.5 is not a whole number in range",
		"items[1].isuer: unknown key; did you mean items[1].issuer?",
		"items[2]: want a mapping of keys, not the number 3",
		"labels.b: want a number, not the string \"two\"",
		"nested.b: unknown key; did you mean nested.A?",
		"zzz: unknown key; the keys here are count, flag, issuer, items, labels, nested, rest",
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if d.Issuer != "https://a" || d.Flag == nil || !*d.Flag || len(d.Items) != 3 || d.Items[0].Issuer != "x" || d.Labels["a"] != 1 || d.Nested.A != 1 || d.Rest["anything"] == nil {
		t.Errorf("the good values were not all set: %+v", d)
	}
}

func TestDecodeSyntaxAndRepeatedKeys(t *testing.T) {
	for body, want := range map[string]string{
		"a: [\n":               "is not valid YAML: yaml: line 1",
		"count: 1\ncount: 2\n": `"count" already set`,
	} {
		err := Decode([]byte(body), &doc{})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "JSON") {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}
