package main

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// What a value of the configuration should be, and what it is, in the
// words an operator reads: "a whole number of bytes, like 104857600, not
// the string "25MB"".

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
