package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const day = 24 * time.Hour

// parseDuration reads a duration as time.ParseDuration does ("90s",
// "1h30m"), and also takes days of 24 hours, first: "30d", "1d12h",
// "1.5d". A day here is always 24 hours: retention and expiry count
// elapsed time, not calendar days.
func parseDuration(s string) (time.Duration, error) {
	rest, sign := s, time.Duration(1)
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		if rest[0] == '-' {
			sign = -1
		}
		rest = rest[1:]
	}
	n := strings.IndexFunc(rest, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if n < 0 || rest[n] != 'd' {
		return time.ParseDuration(s)
	}
	f, err := strconv.ParseFloat(rest[:n], 64)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %q is not a number of days", s, rest[:n])
	}
	if f > math.MaxInt64/float64(day) {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	days := time.Duration(f * float64(day))
	rest = rest[n+1:]
	if rest == "" {
		return sign * days, nil
	}
	if rest[0] == '-' || rest[0] == '+' {
		return 0, errors.New("duration " + strconv.Quote(s) + ": a sign goes first, before the days")
	}
	d, err := time.ParseDuration(rest)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	if d > math.MaxInt64-days {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	return sign * (days + d), nil
}

// shortDuration writes a duration as a person would: "30d", "12h", "15m",
// "1h30m", rather than time.Duration's "720h0m0s".
func shortDuration(d time.Duration) string {
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
