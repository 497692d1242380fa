package experiments

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Strict checks of decoded TOML. BurntSushi/toml matches keys to struct
// fields regardless of letter case, so `Particles = 128` would silently
// set particles (and with both spellings in one table the winner would
// change from run to run). TOML keys are case-sensitive: every key must be
// exactly the toml tag of a field of one of the types given, in every
// table; a negative value for an unsigned field (a seed) is an error rather
// than a wrap-around; and absurdly nested values are refused before they
// are decoded.

// maxNesting bounds the nesting of arrays and inline tables in a config.
const maxNesting = 32

// checkNesting refuses TOML text whose arrays or inline tables nest deeper
// than maxNesting (outside strings and comments), before a decoder
// recurses into them.
func checkNesting(b []byte) error {
	depth, line := 0, 1
	var quote byte
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '\n':
			line++
			if quote == '#' {
				quote = 0
			}
		case quote == '#':
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			quote = '#'
		case c == '[' || c == '{':
			depth++
			if depth > maxNesting {
				return fmt.Errorf("line %d: values nested more than %d deep", line, maxNesting)
			}
		case c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}

// strictKeys returns the key paths of raw (a decoded TOML table) that are
// not exactly a field tag of any of the struct types, recursing into
// sub-tables; prefix is the path of raw. A field of map or interface type
// accepts any sub-keys (they are checked where they are decoded). It also
// reports negative values of unsigned fields.
func strictKeys(raw map[string]any, prefix string, types ...reflect.Type) (unknown []string, err error) {
	for k, v := range raw {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		var sub []reflect.Type
		known, free := false, false
		for _, t := range types {
			f, ok := fieldByTag(t, k)
			if !ok {
				continue
			}
			known = true
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				sub = append(sub, ft)
			case reflect.Map, reflect.Interface:
				free = true
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				if n, ok := v.(int64); ok && n < 0 {
					return nil, fmt.Errorf("%s = %d: must be >= 0", path, n)
				}
			}
		}
		if !known {
			unknown = append(unknown, path)
			continue
		}
		if free || len(sub) == 0 {
			continue
		}
		if m, ok := v.(map[string]any); ok {
			u, err := strictKeys(m, path, sub...)
			if err != nil {
				return nil, err
			}
			unknown = append(unknown, u...)
		}
	}
	sort.Strings(unknown)
	return unknown, nil
}

// fieldByTag finds the field of struct type t whose toml tag is exactly
// name (fields without a tag are matched by their exact Go name; "-" is
// never matched).
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// smcKeys are the exact keys of an [smc] table.
func smcKeyKnown(k string) bool {
	_, ok := fieldByTag(reflect.TypeFor[SMCConfig](), k)
	return ok
}
