package policy

import (
	"fmt"
	"net/http"
	"regexp"
)

// HTTPMatcher decides HTTP requests against the rules of one toPorts
// entry (one endpoint, port and direction): a request is allowed when one
// of the rules matches it. It is what the L7 proxy enforces; it is safe
// for concurrent use.
type HTTPMatcher struct {
	rules []compiledHTTPRule
}

type compiledHTTPRule struct {
	method, path, host *regexp.Regexp // nil: any
	headers            []HeaderMatch  // must match
	actions            []HeaderMatch  // with a mismatch action
}

// HTTPRequest is what a matcher looks at: the method, the request target
// as sent (path and query), the Host header and the other headers.
type HTTPRequest struct {
	Method, Path, Host string
	Header             http.Header
}

// HTTPDecision is a matcher's answer for one request.
type HTTPDecision struct {
	Allowed bool
	// Rule is the index of the first rule that matched (-1: none).
	Rule int
	// Actions are the mismatch actions of that rule whose header did not
	// match: the proxy applies them to the request before forwarding it.
	Actions []HeaderMatch
}

// CompileHTTP compiles rules (as Parse accepted them) into a matcher.
func CompileHTTP(rules []HTTPRule) (*HTTPMatcher, error) {
	m := &HTTPMatcher{rules: make([]compiledHTTPRule, 0, len(rules))}
	for i, r := range rules {
		var c compiledHTTPRule
		for _, re := range []struct {
			field, expr string
			dst         **regexp.Regexp
		}{{"method", r.Method, &c.method}, {"path", r.Path, &c.path}, {"host", r.Host, &c.host}} {
			if re.expr == "" {
				continue
			}
			x, err := regexp.Compile(anchored(re.expr))
			if err != nil {
				return nil, fmt.Errorf("compile rule %d %s %q: %w", i, re.field, re.expr, err)
			}
			*re.dst = x
		}
		c.headers = append(c.headers, r.Headers...)
		for _, h := range r.HeaderMatches {
			if h.Mismatch == "" {
				c.headers = append(c.headers, h)
			} else {
				c.actions = append(c.actions, h)
			}
		}
		m.rules = append(m.rules, c)
	}
	return m, nil
}

// Match decides req: allowed by the first rule that matches it, with that
// rule's mismatch actions; denied when none does.
func (m *HTTPMatcher) Match(req HTTPRequest) HTTPDecision {
	for i, r := range m.rules {
		if !r.matches(req) {
			continue
		}
		d := HTTPDecision{Allowed: true, Rule: i}
		for _, a := range r.actions {
			if !headerMatches(req.Header, a) {
				d.Actions = append(d.Actions, a)
			}
		}
		return d
	}
	return HTTPDecision{Rule: -1}
}

func (r compiledHTTPRule) matches(req HTTPRequest) bool {
	if r.method != nil && !r.method.MatchString(req.Method) {
		return false
	}
	if r.path != nil && !r.path.MatchString(req.Path) {
		return false
	}
	if r.host != nil && !r.host.MatchString(req.Host) {
		return false
	}
	for _, h := range r.headers {
		if !headerMatches(req.Header, h) {
			return false
		}
	}
	return true
}

// headerMatches reports whether header carries h: present, and with h's
// value among its values when h has one. Names are case-insensitive.
func headerMatches(header http.Header, h HeaderMatch) bool {
	values := header.Values(h.Name)
	if len(values) == 0 {
		return false
	}
	if h.Value == "" {
		return true
	}
	for _, v := range values {
		if v == h.Value {
			return true
		}
	}
	return false
}

// Apply applies the decision's mismatch actions to header: ADD adds the
// rule's value, REPLACE sets it, DELETE removes the header, LOG changes
// nothing.
func (d HTTPDecision) Apply(header http.Header) {
	for _, a := range d.Actions {
		switch a.Mismatch {
		case MismatchAdd:
			header.Add(a.Name, a.Value)
		case MismatchReplace:
			header.Set(a.Name, a.Value)
		case MismatchDelete:
			header.Del(a.Name)
		}
	}
}
