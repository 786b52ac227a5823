package main

import (
	"strings"

	"github.com/BurntSushi/toml"
)

// suggest finds the known keys an unknown key most likely meant: the
// nearest names by edit distance (a letter added, dropped, changed, or two
// swapped), ignoring case, and close enough for the name's length. A key
// of the same table wins a tie, so "smtp.domian" suggests smtp.domain;
// otherwise a key of another table is named, for a key put in the wrong
// section ("smtp.retention" suggests store.retention; "domain", before any
// [table], suggests smtp.domain). It returns at most three, in the order
// of Config, or none when nothing is close.
func suggest(key toml.Key, known []toml.Key) []string {
	name := strings.ToLower(key[len(key)-1])
	limit := max(1, len([]rune(name))/4)
	best := limit + 1
	var near []toml.Key
	for _, k := range known {
		d := editDistance(name, strings.ToLower(k[len(k)-1]))
		switch {
		case d > best:
		case d < best:
			best, near = d, []toml.Key{k}
		default:
			near = append(near, k)
		}
	}
	var same, out []string
	for _, k := range near {
		if sameTable(k, key) {
			same = append(same, k.String())
		}
		out = append(out, k.String())
	}
	if len(same) > 0 {
		out = same
	}
	return out[:min(len(out), 3)]
}

// sameTable reports whether keys a and b are in the same table.
func sameTable(a, b toml.Key) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) - 1 {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// editDistance counts the edits from a to b: a rune added, dropped or
// changed, or two neighbours swapped (the optimal string alignment
// distance).
func editDistance(a, b string) int {
	s, t := []rune(a), []rune(b)
	// d[i][j] is the distance between s[:i] and t[:j].
	d := make([][]int, len(s)+1)
	for i := range d {
		d[i] = make([]int, len(t)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(s); i++ {
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(s)][len(t)]
}

// orList joins words as a sentence does: "a", "a or b", "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
