package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// UnknownEnv lists, sorted, the BFF_* variables of environ (KEY=VALUE, as
// os.Environ) that name no config field: a typo such as
// BFF_OIDC_CLIENT_SECERT would otherwise be ignored without a word.
func UnknownEnv(environ []string) []string {
	// The names applyEnv itself asks for, so the two cannot drift.
	known := map[string]bool{"BFF_CONFIG": true}
	applyEnv(reflect.ValueOf(&fileConfig{}).Elem(), "BFF", "", func(name string) string {
		known[name] = true
		return ""
	})
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "BFF_") && !known[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// applyEnv overlays BFF_<PATH> variables onto the struct's scalar and
// []string fields, recursively; path is the dotted YAML path so far.
func applyEnv(v reflect.Value, prefix, path string, getenv func(string) string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		field := tag
		if path != "" {
			field = path + "." + tag
		}
		if fv.Kind() == reflect.Struct {
			if err := applyEnv(fv, name, field, getenv); err != nil {
				return err
			}
			continue
		}
		val := getenv(name)
		if val == "" {
			continue
		}
		switch p := fv.Addr().Interface().(type) {
		case *string:
			*p = val
		case *int:
			n, err := strconv.Atoi(val)
			if err != nil {
				return &configError{field, "must be a whole number (from " + name + ")"}
			}
			*p = n
		case *bool:
			b, err := strconv.ParseBool(val)
			if err != nil {
				return &configError{field, "must be true or false (from " + name + ")"}
			}
			*p = b
		case *duration:
			if _, err := duration(val).parse(field); err != nil {
				return &configError{field, fmt.Sprintf("%q is not a duration like 90s or 8h (from %s)", val, name)}
			}
			*p = duration(val)
		case *[]string:
			var items []string
			for s := range strings.SplitSeq(val, ",") {
				if s = strings.TrimSpace(s); s != "" {
					items = append(items, s)
				}
			}
			*p = items
		default:
			return &configError{field, "cannot be set from the environment"}
		}
	}
	return nil
}
