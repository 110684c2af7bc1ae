package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

var durationType = reflect.TypeFor[Duration]()

// applyEnv sets every key named by a GATEWAY_... variable in env. Lists of
// objects (oidc.additional_domains) have no override.
func applyEnv(c *Config, env []string) error {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			vars[k] = v
		}
	}
	if len(vars) == 0 {
		return nil
	}
	var errs []string
	walk(reflect.ValueOf(c).Elem(), "", func(key string, v reflect.Value) {
		name := EnvName(key)
		raw, ok := vars[name]
		if !ok {
			return
		}
		if err := setFromString(v, raw); err != nil {
			errs = append(errs, fmt.Sprintf("%s (%s): %v", name, key, err))
		}
	})
	if len(errs) > 0 {
		slices.Sort(errs)
		return fmt.Errorf("environment overrides:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// UnknownEnv returns the GATEWAY_ variables in env that name no key, for
// the caller to warn about: a misspelt override should not pass unseen.
// They are not errors, because other software sets such variables too
// (Kubernetes, for a Service named "gateway", sets GATEWAY_PORT and more),
// and dev.env and the test suites use GATEWAY_DEV_ and GATEWAY_TEST_.
func UnknownEnv(env []string) []string {
	known := map[string]bool{}
	for _, key := range Keys() {
		known[EnvName(key)] = true
	}
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) && !known[name] &&
			!strings.HasPrefix(name, "GATEWAY_DEV_") && !strings.HasPrefix(name, "GATEWAY_TEST_") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// EnvName is the environment variable that overrides key, such as
// GATEWAY_OIDC_ISSUER for "oidc.issuer".
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Keys returns every key an environment variable can set, in the order of
// the Config struct.
func Keys() []string {
	var keys []string
	c := Defaults()
	walk(reflect.ValueOf(&c).Elem(), "", func(key string, _ reflect.Value) { keys = append(keys, key) })
	return keys
}

// walk calls fn for every scalar or string-list field, with its dotted key.
func walk(v reflect.Value, prefix string, fn func(string, reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		fv := v.Field(i)
		if f.Anonymous {
			walk(fv, prefix, fn)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		key := prefix + name
		switch {
		case f.Type == durationType:
			fn(key, fv)
		case f.Type.Kind() == reflect.Struct:
			walk(fv, key+".", fn)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() != reflect.String:
			// lists of objects are set in the file only
		default:
			fn(key, fv)
		}
	}
}

func setFromString(v reflect.Value, raw string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 30s or 5m", raw)
		}
		v.Set(reflect.ValueOf(Duration{d}))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Bool || (v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Bool):
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		if v.Kind() == reflect.Pointer {
			v.Set(reflect.ValueOf(&b))
		} else {
			v.SetBool(b)
		}
	case v.Kind() == reflect.Slice:
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
