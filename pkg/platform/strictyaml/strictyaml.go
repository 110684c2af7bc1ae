// Package strictyaml decodes the gateway's YAML files (the configuration
// and the seed) into structs with json tags, refusing unknown keys like
// yaml.UnmarshalStrict but reporting every problem at once, each under its
// full key path (tenants[0].applications[2].federatedCredentials[0].subjet),
// with a suggestion for a misspelt key and in YAML's words, not JSON's.
package strictyaml

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Problem is one key that could not be decoded.
type Problem struct {
	Key     string // full key path; empty for the document itself
	Message string
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.Message
	}
	return p.Key + ": " + p.Message
}

// Problems is every problem of a document, ordered by key.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Decode decodes the YAML document data into v, a pointer to a struct.
// Values of keys without problems are set even when others have some, so
// that a caller can go on to check them; the error, if any, is Problems,
// or a syntax error naming the line.
func Decode(data []byte, v any) error {
	raw, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return fmt.Errorf("is not valid YAML: %s", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return fmt.Errorf("is not valid YAML: %w", err)
	}
	d := &decoder{}
	d.value(tree, reflect.ValueOf(v).Elem(), "")
	if len(d.problems) > 0 {
		return d.problems
	}
	return nil
}

type decoder struct{ problems Problems }

func (d *decoder) bad(key, format string, args ...any) {
	d.problems = append(d.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// value decodes node into target, reporting under key.
func (d *decoder) value(node any, target reflect.Value, key string) {
	if node == nil {
		return // null: the default stays
	}
	if reflect.PointerTo(target.Type()).Implements(unmarshalerType) {
		raw, _ := json.Marshal(node)
		if err := target.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			d.bad(key, "%v", err)
		}
		return
	}
	switch target.Kind() {
	case reflect.Pointer:
		p := reflect.New(target.Type().Elem())
		if target.IsNil() {
			d.value(node, p.Elem(), key)
			target.Set(p)
			return
		}
		d.value(node, target.Elem(), key)
	case reflect.Struct:
		m, ok := node.(map[string]any)
		if !ok {
			d.bad(key, "want a mapping of keys, not %s", describe(node))
			return
		}
		fields := fieldsOf(target)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			f, ok := fields[k]
			if !ok {
				d.bad(join(key, k), "unknown key%s", suggest(key, k, fields))
				continue
			}
			d.value(m[k], target.FieldByIndex(f), join(key, k))
		}
	case reflect.Slice:
		list, ok := node.([]any)
		if !ok {
			d.bad(key, "want a list, not %s", describe(node))
			return
		}
		s := reflect.MakeSlice(target.Type(), len(list), len(list))
		for i, item := range list {
			d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", key, i))
		}
		target.Set(s)
	case reflect.Map:
		m, ok := node.(map[string]any)
		if !ok {
			d.bad(key, "want a mapping, not %s", describe(node))
			return
		}
		if target.IsNil() {
			target.Set(reflect.MakeMap(target.Type()))
		}
		for k, item := range m {
			e := reflect.New(target.Type().Elem()).Elem()
			d.value(item, e, join(key, k))
			target.SetMapIndex(reflect.ValueOf(k).Convert(target.Type().Key()), e)
		}
	case reflect.Interface:
		target.Set(reflect.ValueOf(node))
	case reflect.String:
		s, ok := node.(string)
		if !ok {
			d.bad(key, "want a string, not %s (quote it)", describe(node))
			return
		}
		target.SetString(s)
	case reflect.Bool:
		b, ok := node.(bool)
		if !ok {
			d.bad(key, "want true or false, not %s", describe(node))
			return
		}
		target.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		n, ok := node.(json.Number)
		if !ok {
			d.bad(key, "want a number, not %s", describe(node))
			return
		}
		if err := json.Unmarshal([]byte(n), target.Addr().Interface()); err != nil {
			d.bad(key, "%s is not a %s", n, numberKind(target.Kind()))
		}
	default:
		d.bad(key, "cannot be set from a file")
	}
}

func numberKind(k reflect.Kind) string {
	switch k {
	case reflect.Float32, reflect.Float64:
		return "number in range"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole number of 0 or more in range"
	}
	return "whole number in range"
}

// describe names a decoded YAML value's kind, as a person reads the file.
func describe(node any) string {
	switch v := node.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("the string %q", v)
	case bool:
		return fmt.Sprintf("%v", v)
	case json.Number:
		return "the number " + v.String()
	}
	return fmt.Sprintf("%v", node)
}

func join(key, k string) string {
	if key == "" {
		return k
	}
	return key + "." + k
}

// fieldsOf maps the json names of t's fields, with those of embedded
// structs without a name of their own, to their index paths.
func fieldsOf(v reflect.Value) map[string][]int {
	out := map[string][]int{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(slices.Clone(prefix), i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if name == "" {
				name = f.Name
			}
			out[name] = idx
		}
	}
	walk(v.Type(), nil)
	return out
}

// suggest names the key meant by a misspelt one: the known key nearest to
// it (by edit distance, case ignored) when near enough, else the keys
// allowed there when they are few.
func suggest(parent, k string, fields map[string][]int) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	best, bestD := "", 1<<30
	for _, n := range names {
		if d := distance(strings.ToLower(k), strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" && bestD <= max(2, len(k)/3) {
		return "; did you mean " + join(parent, best) + "?"
	}
	if len(names) <= 12 {
		return "; the keys here are " + strings.Join(names, ", ")
	}
	return ""
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
