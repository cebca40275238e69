// Package fqdn holds the DNS names of FQDN policy: selectors (matchName,
// matchPattern, as CiliumNetworkPolicy's toFQDNs and rules.dns write them)
// and the cache of addresses learnt from allowed DNS answers, each for its
// TTL. docs/fqdn.md describes both.
package fqdn

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// MaxNameLength is the longest DNS name (RFC 1035 2.3.4), without the
// trailing dot.
const MaxNameLength = 253

// Selector is one entry of toFQDNs or rules.dns: exactly one of MatchName
// (a name, matched exactly, case-insensitively) or MatchPattern (a name in
// which "*" stands for any run of DNS characters within one label; a lone
// "*" matches every name).
type Selector struct {
	MatchName    string `json:"matchName,omitempty"`
	MatchPattern string `json:"matchPattern,omitempty"`
}

// String is the selector as policy YAML writes it.
func (s Selector) String() string {
	if s.MatchPattern != "" {
		return "matchPattern: " + s.MatchPattern
	}
	return "matchName: " + s.MatchName
}

var (
	nameChars    = regexp.MustCompile(`^[-a-zA-Z0-9_.]+$`)
	patternChars = regexp.MustCompile(`^[-a-zA-Z0-9_.*]+$`)
)

// Matcher decides whether a DNS name is selected.
type Matcher struct {
	sel Selector
	re  *regexp.Regexp // nil: exact name
	all bool
}

// Compile checks s and returns its matcher, or an error naming what is
// wrong and what is accepted.
func Compile(s Selector) (*Matcher, error) {
	switch {
	case s.MatchName == "" && s.MatchPattern == "":
		return nil, errors.New("an FQDN selector needs matchName or matchPattern")
	case s.MatchName != "" && s.MatchPattern != "":
		return nil, fmt.Errorf("FQDN selector has both matchName %q and matchPattern %q: give one", s.MatchName, s.MatchPattern)
	case s.MatchName != "":
		n := Normalize(s.MatchName)
		if len(n) > MaxNameLength || !nameChars.MatchString(n) || strings.Contains(n, "..") || strings.HasPrefix(n, ".") {
			return nil, fmt.Errorf("matchName %q: want a DNS name of at most %d characters (letters, digits, '-', '_', labels separated by single dots)", s.MatchName, MaxNameLength)
		}
		return &Matcher{sel: Selector{MatchName: n}}, nil
	}
	p := Normalize(s.MatchPattern)
	if p == "*" {
		return &Matcher{sel: Selector{MatchPattern: p}, all: true}, nil
	}
	if len(p) > MaxNameLength || !patternChars.MatchString(p) || strings.Contains(p, "..") || strings.HasPrefix(p, ".") {
		return nil, fmt.Errorf("matchPattern %q: want a DNS name of at most %d characters in which '*' stands for any characters within one label, e.g. *.example.com", s.MatchPattern, MaxNameLength)
	}
	var b strings.Builder
	b.WriteString("^")
	for i, part := range strings.Split(p, "*") {
		if i > 0 {
			b.WriteString(`[-a-z0-9_]*`)
		}
		b.WriteString(regexp.QuoteMeta(part))
	}
	b.WriteString("$")
	return &Matcher{sel: Selector{MatchPattern: p}, re: regexp.MustCompile(b.String())}, nil
}

// Selector is the normalized selector the matcher was compiled from.
func (m *Matcher) Selector() Selector { return m.sel }

// Match reports whether name (with or without the trailing dot, any case)
// is selected.
func (m *Matcher) Match(name string) bool {
	n := Normalize(name)
	switch {
	case m.all:
		return true
	case m.re != nil:
		return m.re.MatchString(n)
	}
	return n == m.sel.MatchName
}

// Normalize lowercases name and drops its trailing dot.
func Normalize(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}
