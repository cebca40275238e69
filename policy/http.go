package policy

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// MaxHTTPRegex bounds the length of one method, path or host regular
// expression of an HTTP rule.
const MaxHTTPRegex = 1024

// HTTPPortRule is the L7 part of one toPorts entry: requests to Ports from
// the peers of the enclosing PeerRule must match one of HTTP.
type HTTPPortRule struct {
	// Ports are TCP ports (Proto 6, or 0 for ANY: HTTP is carried on TCP).
	Ports []PortRange
	HTTP  []HTTPRule
	// Field is where the rules came from, e.g. spec.ingress[0].toPorts[0].rules.http.
	Field string
}

// HTTPRule is one rules.http entry, as Cilium documents it. A request
// matches when every field given matches; an empty rule matches every
// request.
type HTTPRule struct {
	// Method, Path and Host are regular expressions (RE2 syntax) that must
	// match the whole method, request target (path and query, as sent) and
	// Host header. Empty: any.
	Method, Path, Host string
	// Headers must be present; those with a Value must have it.
	Headers []HeaderMatch
	// HeaderMatches are matched like Headers unless they have a Mismatch
	// action: then a request without the value still matches and the
	// action is applied to it.
	HeaderMatches []HeaderMatch
}

// HeaderMatch is a header a request must carry: with Value when it is
// set, else with any value.
type HeaderMatch struct {
	Name, Value string
	// Mismatch is empty (a request without the header does not match) or
	// one of the MismatchActions.
	Mismatch MismatchAction
}

// MismatchAction says what happens to a request whose header does not
// match a headerMatches entry (Cilium's names).
type MismatchAction string

// Mismatch actions.
const (
	// MismatchLog lets the request through unchanged; the mismatch is
	// reported with the request's flow record.
	MismatchLog MismatchAction = "LOG"
	// MismatchAdd adds the header with the rule's value.
	MismatchAdd MismatchAction = "ADD"
	// MismatchDelete removes the header.
	MismatchDelete MismatchAction = "DELETE"
	// MismatchReplace sets the header to the rule's value.
	MismatchReplace MismatchAction = "REPLACE"
)

var mismatchActions = []string{string(MismatchLog), string(MismatchAdd), string(MismatchDelete), string(MismatchReplace)}

// httpRules reads toPorts[].rules.http.
func (d *decoder) httpRules(path string, v any) []HTTPRule {
	list := d.list(path, v)
	if v != nil && len(list) == 0 {
		d.fail(path, "an empty list allows no request; accepted is at least one rule ({} allows every request)")
	}
	var out []HTTPRule
	for i, h := range list {
		p := index(path, i)
		m := d.object(p, h, "method", "path", "host", "headers", "headerMatches")
		if m == nil {
			if h == nil {
				d.fail(p, "expected an object with method, path, host, headers or headerMatches ({} allows every request)")
			}
			continue
		}
		r := HTTPRule{
			Method: d.httpRegex(join(p, "method"), m["method"]),
			Path:   d.httpRegex(join(p, "path"), m["path"]),
			Host:   d.httpRegex(join(p, "host"), m["host"]),
		}
		for j, hv := range d.list(join(p, "headers"), m["headers"]) {
			hp := index(join(p, "headers"), j)
			s, ok := d.str(hp, hv)
			if !ok {
				continue
			}
			if hm, ok := parseHeaderLine(s); ok {
				r.Headers = append(r.Headers, hm)
			} else {
				d.fail(hp, "%q is not a header; accepted are \"Name\" (present) and \"Name: value\" or \"Name value\" (equal)", s)
			}
		}
		for j, hv := range d.list(join(p, "headerMatches"), m["headerMatches"]) {
			if hm, ok := d.headerMatch(index(join(p, "headerMatches"), j), hv); ok {
				r.HeaderMatches = append(r.HeaderMatches, hm)
			}
		}
		out = append(out, r)
	}
	return out
}

// httpRegex reads a regular expression of an HTTP rule.
func (d *decoder) httpRegex(path string, v any) string {
	if v == nil {
		return ""
	}
	s, ok := d.str(path, v)
	if !ok {
		return ""
	}
	if len(s) > MaxHTTPRegex {
		d.fail(path, "%d characters; accepted are regular expressions of at most %d", len(s), MaxHTTPRegex)
		return ""
	}
	if _, err := regexp.Compile(anchored(s)); err != nil {
		d.fail(path, "%q is not a regular expression (%v); accepted is RE2 syntax, e.g. \"/v1/.*\"", s, regexErr(err))
		return ""
	}
	return s
}

// regexErr is err without the "error parsing regexp: " prefix.
func regexErr(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// headerMatch reads one headerMatches entry.
func (d *decoder) headerMatch(path string, v any) (HeaderMatch, bool) {
	m := d.object(path, v, "name", "value", "mismatch", "secret")
	if m == nil {
		if v == nil {
			d.fail(path, "expected an object with name, value and mismatch")
		}
		return HeaderMatch{}, false
	}
	before := len(d.errs)
	var hm HeaderMatch
	if _, ok := m["secret"]; ok {
		d.fail(join(path, "secret"), "header values from secrets are not supported yet; accepted is value")
	}
	if nv, ok := m["name"]; !ok {
		d.fail(join(path, "name"), "required: the header's name")
	} else if name, ok := d.str(join(path, "name"), nv); ok {
		if !ValidHeaderName(name) {
			d.fail(join(path, "name"), "%q is not a header name; accepted are letters, digits and !#$%%&'*+-.^_`|~", name)
		}
		hm.Name = name
	}
	if vv, ok := m["value"]; ok {
		hm.Value, _ = d.str(join(path, "value"), vv)
	}
	if av, ok := m["mismatch"]; ok {
		if s, ok := d.str(join(path, "mismatch"), av); ok {
			if !contains(mismatchActions, s) {
				d.fail(join(path, "mismatch"), "%q is not a mismatch action; accepted are %s (or none: the request is denied)", s, strings.Join(mismatchActions, ", "))
			}
			hm.Mismatch = MismatchAction(s)
		}
	}
	if (hm.Mismatch == MismatchAdd || hm.Mismatch == MismatchReplace) && hm.Value == "" {
		d.fail(join(path, "value"), "required by mismatch %s: the value to set", hm.Mismatch)
	}
	return hm, len(d.errs) == before
}

// parseHeaderLine reads a headers entry as Cilium does: "Name" needs the
// header present, "Name: value" or "Name value" needs that value.
func parseHeaderLine(s string) (HeaderMatch, bool) {
	name, value, _ := strings.Cut(strings.TrimSpace(s), " ")
	name = strings.TrimSuffix(name, ":")
	if !ValidHeaderName(name) {
		return HeaderMatch{}, false
	}
	return HeaderMatch{Name: name, Value: strings.TrimSpace(value)}, true
}

// ValidHeaderName reports whether s is an HTTP token (RFC 9110 5.6.2),
// the form of a header name.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func anchored(re string) string { return "^(?:" + re + ")$" }

// String describes the rule, e.g. "POST /v1/request-landing".
func (r HTTPRule) String() string {
	var parts []string
	add := func(what, v string) {
		if v != "" {
			parts = append(parts, what+v)
		}
	}
	add("", r.Method)
	add("", r.Path)
	add("host ", r.Host)
	for _, h := range r.Headers {
		parts = append(parts, "header "+h.String())
	}
	for _, h := range r.HeaderMatches {
		parts = append(parts, "header "+h.String())
	}
	if len(parts) == 0 {
		return "any request"
	}
	return strings.Join(parts, " ")
}

func (h HeaderMatch) String() string {
	s := http.CanonicalHeaderKey(h.Name)
	if h.Value != "" {
		s += "=" + fmt.Sprintf("%q", h.Value)
	}
	if h.Mismatch != "" {
		s += " (mismatch " + string(h.Mismatch) + ")"
	}
	return s
}
