package connectivity

import (
	"fmt"
	"regexp"
	"strings"
)

// Selection picks scenarios by name, as cilium-cli's --test does: a
// scenario runs when it matches one of the include patterns (or there is
// none) and none of the exclude patterns (those given with a leading "!").
type Selection struct {
	include, exclude []*regexp.Regexp
}

// ParseSelection compiles --test patterns: Go regular expressions, "!" in
// front to exclude.
func ParseSelection(patterns []string) (Selection, error) {
	var s Selection
	for _, p := range patterns {
		exclude := strings.HasPrefix(p, "!")
		expr := strings.TrimPrefix(p, "!")
		if expr == "" {
			return Selection{}, fmt.Errorf("--test %q: empty pattern; give a regular expression such as 'cross-node' or '!udp'", p)
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return Selection{}, fmt.Errorf("--test %q: %w: accepted is a Go regular expression, '!' in front to exclude", p, err)
		}
		if exclude {
			s.exclude = append(s.exclude, re)
		} else {
			s.include = append(s.include, re)
		}
	}
	return s, nil
}

// Match reports whether the scenario name is selected.
func (s Selection) Match(name string) bool {
	for _, re := range s.exclude {
		if re.MatchString(name) {
			return false
		}
	}
	if len(s.include) == 0 {
		return true
	}
	for _, re := range s.include {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// String is the patterns as given.
func (s Selection) String() string {
	var out []string
	for _, re := range s.include {
		out = append(out, re.String())
	}
	for _, re := range s.exclude {
		out = append(out, "!"+re.String())
	}
	return strings.Join(out, " ")
}
