package main

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Before the file is decoded into Config, checkKeys reads it as plain TOML
// values and holds each against Config's fields (found by their toml tags,
// as the decoder finds them), so that every problem is found at once and
// said in the operator's words: the key, what it should be, what it is. A
// decoder stops at its first type error, in its own words.
//
// It also reads durations: a string with a unit, where d is a day of 24
// hours ("30d", "1d12h"), rewritten in place in the form time.ParseDuration
// reads, so the fields stay time.Duration. A bare number, which the decoder
// would take as nanoseconds, is refused.
//
// A key with a problem is removed, so the decode that follows keeps its
// default and cannot fail on it; a field of a type not checked here is
// left to the decoder.

// keyCheck collects the problems of one file.
type keyCheck struct {
	problems []string
	bad      []string // the keys with a problem
	known    []toml.Key
}

// checkKeys checks raw, the file as decoded into a map, against def's
// type, and returns the problems, each starting with its key, and the keys
// that have one.
func checkKeys(raw map[string]any, def Config) (problems, bad []string) {
	k := &keyCheck{}
	v := reflect.ValueOf(def)
	k.known = knownKeys(nil, v.Type())
	k.table(nil, raw, v)
	slices.Sort(k.problems) // not the map's order: inFileOrder sorts them
	return k.problems, k.bad
}

func (k *keyCheck) report(key toml.Key, msg string) {
	k.problems = append(k.problems, key.String()+": "+msg)
	k.bad = append(k.bad, key.String())
}

// table checks the keys of one table, whose struct (with the defaults) is
// def.
func (k *keyCheck) table(path toml.Key, m map[string]any, def reflect.Value) {
	fields := tableFields(def)
	for name, v := range m {
		key := append(slices.Clone(path), name)
		f, ok := lookupField(fields, name)
		if !ok {
			k.unknown(key, v)
			delete(m, name)
			continue
		}
		if isTable(f.def.Type()) {
			sub, ok := v.(map[string]any)
			if !ok {
				k.report(key, fmt.Sprintf("a table, [%s], not %s", key, given(key, v)))
				delete(m, name)
				continue
			}
			k.table(key, sub, f.def)
			continue
		}
		nv, msg := checkValue(key, v, f.def)
		if msg != "" {
			k.report(key, msg)
			delete(m, name)
			continue
		}
		m[name] = nv
	}
}

// unknown reports a key that Config does not have, with the nearest ones
// it does (config_suggest.go).
func (k *keyCheck) unknown(key toml.Key, v any) {
	what := "unknown key"
	if _, ok := v.(map[string]any); ok {
		what = "unknown table"
	}
	if near := suggest(key, k.known); len(near) > 0 {
		what += " (did you mean " + orList(near) + "?)"
	}
	k.report(key, what)
}

// field is one key of a table: its name and its default value.
type field struct {
	name string
	def  reflect.Value
}

// tableFields lists the keys of the struct def, named as the decoder names
// them: the toml tag, or the field's name without one; an embedded struct
// without a tag lends its keys.
func tableFields(def reflect.Value) []field {
	var out []field
	t := def.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		switch {
		case !f.IsExported() || tag == "-":
		case f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct:
			out = append(out, tableFields(def.Field(i))...)
		case tag == "":
			out = append(out, field{f.Name, def.Field(i)})
		default:
			out = append(out, field{tag, def.Field(i)})
		}
	}
	return out
}

// lookupField finds a key as the decoder does: by its exact name, else
// ignoring case.
func lookupField(fields []field, name string) (field, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			return f, true
		}
	}
	return field{}, false
}

// knownKeys lists every key of the struct type t, tables and values, in
// the order of the struct.
func knownKeys(path toml.Key, t reflect.Type) []toml.Key {
	var out []toml.Key
	for _, f := range tableFields(reflect.New(t).Elem()) {
		key := append(slices.Clone(path), f.name)
		out = append(out, key)
		if isTable(f.def.Type()) {
			out = append(out, knownKeys(key, f.def.Type())...)
		}
	}
	return out
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	timeType            = reflect.TypeFor[time.Time]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// isTable reports whether a field of type t is a TOML table.
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != timeType && !reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// checkValue checks a value v from the file for the field whose default is
// def (the zero Value for a list's item). It returns the value to decode,
// or a problem in words: what is wanted, then what was given.
func checkValue(key toml.Key, v any, def reflect.Value) (any, string) {
	t := def.Type()
	if t == durationType {
		return checkDuration(key, v, def)
	}
	wrong := func(want string) (any, string) {
		msg := want + ", not " + given(key, v)
		if s, ok := v.(string); ok && quotedLiteral(t, s) {
			msg += " (leave out the quotes)"
		}
		return nil, msg
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if _, ok := v.(string); !ok {
			return wrong("a string in quotes")
		}
		return v, ""
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			return wrong("a string in quotes" + like(def))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return wrong("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(int64)
		if !ok || def.OverflowInt(n) {
			return wrong("a whole number" + unitOf(key) + like(def))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(int64)
		if !ok || n < 0 || def.OverflowUint(uint64(n)) {
			return wrong("a whole number, at least 0" + like(def))
		}
	case reflect.Float32, reflect.Float64:
		switch f := v.(type) {
		case int64:
		case float64:
			// TOML has nan and inf, which no range check refuses.
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return wrong("a number" + like(def))
			}
		default:
			return wrong("a number" + like(def))
		}
	case reflect.Slice:
		want := "a list" + listNoun(key, t) + likeList(def, v)
		items, ok := v.([]any)
		if !ok {
			return wrong(want)
		}
		item := reflect.New(t.Elem()).Elem()
		for i, x := range items {
			nx, msg := checkValue(key, x, item)
			if msg != "" {
				return nil, want + ", not a list holding " + given(key, x)
			}
			items[i] = nx
		}
	}
	return v, ""
}

// checkDuration checks a duration: a string with a unit, "d" for days.
func checkDuration(key toml.Key, v any, def reflect.Value) (any, string) {
	switch v := v.(type) {
	case string:
		d, err := parseDuration(v)
		if err != nil {
			return nil, fmt.Sprintf(`%s is not a duration: write a number and a unit, like "90s", "15m", "12h", "30d" or "1d12h"`, quote(v))
		}
		return d.String(), ""
	case int64, float64:
		n := number(v)
		return nil, fmt.Sprintf(`a duration in quotes, with its unit, like "%[1]ss" or "%[1]sm", not the bare number %[1]s`, n)
	}
	example := `"15m"`
	if d := time.Duration(def.Int()); d > 0 {
		example = strconv.Quote(shortDuration(d))
	}
	return nil, "a duration in quotes, like " + example + ", not " + given(key, v)
}

// quotedLiteral reports whether s, given in quotes for a field of type t,
// is what the field wants without them: "1000" for a number, "true".
func quotedLiteral(t reflect.Type, s string) bool {
	switch t.Kind() {
	case reflect.Bool:
		return s == "true" || s == "false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		_, err := strconv.ParseInt(s, 10, 64)
		return err == nil
	case reflect.Float32, reflect.Float64:
		_, err := strconv.ParseFloat(s, 64)
		return err == nil
	}
	return false
}

// given says what the file holds, in words: a value's type, and the value
// itself unless the key may hold a secret.
func given(key toml.Key, v any) string {
	secret := isSecretKey(key)
	switch v := v.(type) {
	case string:
		if secret {
			return "a string"
		}
		return "the string " + quote(v)
	case int64, float64:
		if secret {
			return "a number"
		}
		return "the number " + number(v)
	case bool:
		if secret {
			return "a boolean"
		}
		return "the boolean " + strconv.FormatBool(v)
	case []any, []map[string]any:
		return "a list"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}

// isSecretKey reports whether a key may hold a password, a token or a DSN
// (with its password), whose value is never repeated in an error.
func isSecretKey(key toml.Key) bool {
	name := strings.ToLower(key.String())
	for _, s := range []string{"password", "secret", "token", "dsn", "api_key"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// quote quotes s as TOML would, cut to 40 characters.
func quote(s string) string {
	if r := []rune(s); len(r) > 40 {
		return strconv.Quote(string(r[:40])) + "…"
	}
	return strconv.Quote(s)
}

func number(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// unitOf names what a whole number counts, when its key says.
func unitOf(key toml.Key) string {
	if strings.HasSuffix(key[len(key)-1], "_bytes") {
		return " of bytes"
	}
	return ""
}

// listNouns names what the lists hold, for the lists that hold more than
// strings.
var listNouns = map[string]string{
	"sms.allowed_countries":  "region codes",
	"relay.trusted_networks": "CIDRs",
	"relay.sender_domains":   "domains",
	"portal.trusted_proxies": "CIDRs",
}

func listNoun(key toml.Key, t reflect.Type) string {
	if n, ok := listNouns[key.String()]; ok {
		return " of " + n
	}
	if t.Elem().Kind() == reflect.String {
		return " of strings"
	}
	return ""
}

// like gives the default as an example, unless it is empty.
func like(def reflect.Value) string {
	if !def.IsValid() || def.IsZero() {
		return ""
	}
	return ", like " + tomlText(def)
}

// likeList gives a list's default as an example, or, when the default is
// empty, the strings given (a string where a list was wanted, as a list).
func likeList(def reflect.Value, v any) string {
	if def.IsValid() && def.Len() > 0 {
		return ", like " + tomlText(def)
	}
	if def.Type().Elem().Kind() != reflect.String {
		return ""
	}
	var items []string
	switch v := v.(type) {
	case string:
		items = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				items = append(items, s)
			}
		}
	}
	if len(items) == 0 {
		return ""
	}
	return ", like " + tomlText(reflect.ValueOf(items))
}

// tomlText writes a default value as it would be written in the file.
func tomlText(v reflect.Value) string {
	if v.Type() == durationType {
		return strconv.Quote(shortDuration(time.Duration(v.Int())))
	}
	switch v.Kind() {
	case reflect.String:
		return quote(v.String())
	case reflect.Float32, reflect.Float64:
		return number(v.Float())
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = tomlText(v.Index(i))
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return fmt.Sprint(v.Interface())
}

// inFileOrder sorts problems by where their keys are in the file, keys
// being in the order toml's MetaData.Keys gives; problems about keys the
// file does not set (defaults that conflict with a value set) follow, in
// their own order.
func inFileOrder(problems []string, keys []toml.Key) []string {
	pos := make(map[string]int, len(keys))
	for i, k := range keys {
		pos[k.String()] = i
	}
	at := func(p string) int {
		key, _, _ := strings.Cut(p, ": ")
		if i, ok := pos[key]; ok {
			return i
		}
		return len(keys)
	}
	out := slices.Clone(problems)
	slices.SortStableFunc(out, func(a, b string) int { return at(a) - at(b) })
	return out
}
