package policy

import (
	"net/http"
	"regexp"
	"testing"
)

// FuzzHTTPRuleMatcher parses an HTTP rule from fuzzed fields the way
// import does and matches a fuzzed request against it: parsing must never
// panic, every rule import accepts must compile, matching must never
// panic, and the decision must agree with the rule read literally (each
// regex matching the whole field, each required header present).
func FuzzHTTPRuleMatcher(f *testing.F) {
	f.Add("POST", "/v1/request-landing", "", "X-Org: empire", "POST", "/v1/request-landing", "deathstar", "X-Org", "empire")
	f.Add("GET|HEAD", "/public/.*", `api\.example\.com`, "X-Trace", "GET", "/public/x?y=1", "api.example.com", "x-trace", "1")
	f.Add("(", "[", "*", ": :", "", "", "", "", "")
	f.Add("", "", "", "", "\x00", "/\xff", "h:1", "A", "")
	f.Fuzz(func(t *testing.T, method, path, host, headerLine, rMethod, rPath, rHost, rName, rValue string) {
		doc := header + "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n      - port: \"80\"\n      rules:\n        http:\n        - method: " +
			quote(method) + "\n          path: " + quote(path) + "\n          host: " + quote(host) + "\n          headers: [" + quote(headerLine) + "]\n"
		ps, err := Parse([]byte(doc))
		if err != nil {
			return
		}
		rules := ps[0].Rules[0].Ingress[0].HTTP[0].HTTP
		m, err := CompileHTTP(rules)
		if err != nil {
			t.Fatalf("accepted rule %+v does not compile: %v", rules, err)
		}
		h := http.Header{}
		h.Add(rName, rValue)
		req := HTTPRequest{Method: rMethod, Path: rPath, Host: rHost, Header: h}
		d := m.Match(req)
		r := rules[0]
		want := whole(r.Method, rMethod) && whole(r.Path, rPath) && whole(r.Host, rHost)
		for _, hm := range r.Headers {
			want = want && headerMatches(h, hm)
		}
		if d.Allowed != want {
			t.Fatalf("rule %+v, request %+v: allowed %t, want %t", r, req, d.Allowed, want)
		}
		if d.Allowed != (d.Rule == 0) || len(d.Actions) != 0 {
			t.Fatalf("decision %+v", d)
		}
	})
}

// quote writes s as a YAML double-quoted string.
func quote(s string) string {
	out := []byte{'"'}
	for _, r := range []byte(s) {
		switch {
		case r == '"' || r == '\\':
			out = append(out, '\\', r)
		case r < 0x20 || r >= 0x7f:
			out = append(out, []byte("\\x")...)
			out = append(out, "0123456789abcdef"[r>>4], "0123456789abcdef"[r&15])
		default:
			out = append(out, r)
		}
	}
	return string(append(out, '"'))
}

// whole reports whether re (empty: anything) matches all of s, found
// independently of the matcher's anchoring: the leftmost-longest match
// spans s exactly when some match does.
func whole(re, s string) bool {
	if re == "" {
		return true
	}
	x := regexp.MustCompile(re)
	x.Longest()
	loc := x.FindStringIndex(s)
	return loc != nil && loc[0] == 0 && loc[1] == len(s)
}
