package main

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
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

// decode reads data over c, which holds the defaults, checks it and
// validates the result. Its error is a *ConfigError, or a syntax error
// with the line.
func (c *Config) decode(data []byte) error {
	var raw map[string]any
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&raw)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			if perr.LastKey != "" {
				return fmt.Errorf("config: %s: line %d: %s", perr.LastKey, perr.Position.Line, perr.Message)
			}
			return fmt.Errorf("config: line %d: %s", perr.Position.Line, perr.Message)
		}
		return fmt.Errorf("config: %w", err)
	}
	problems, bad := checkKeys(raw, *c)
	// What is left has the types of Config's fields, and decodes.
	var checked bytes.Buffer
	if err := toml.NewEncoder(&checked).Encode(raw); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	md2, err := toml.NewDecoder(&checked).Decode(c)
	if err != nil {
		// A field of a type that checkValue leaves to the decoder.
		var perr toml.ParseError
		if errors.As(err, &perr) && perr.LastKey != "" {
			err = fmt.Errorf("%s: %s", perr.LastKey, perr.Message)
		}
		problems = append(problems, err.Error())
		return &ConfigError{Problems: inFileOrder(problems, md.Keys())}
	}
	for _, k := range md2.Undecoded() {
		problems = append(problems, fmt.Sprintf("%s: unknown key", k))
	}
	for _, p := range c.validate() {
		// A key with the wrong type kept its default: what is wrong is
		// said already.
		if key, _, _ := strings.Cut(p, ": "); !slices.ContainsFunc(bad, func(b string) bool {
			return key == b || strings.HasPrefix(key, b+".")
		}) {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return &ConfigError{Problems: inFileOrder(problems, md.Keys())}
	}
	return nil
}

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
