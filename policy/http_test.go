package policy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/state/records"
)

// TestParseDeathstarL7: Cilium's L7 getting-started rule parses verbatim
// into its HTTP rule on 80/TCP for org=empire, and the port is opened to
// org=empire only through the L7 proxy (redirect entries), never at L3/L4.
func TestParseDeathstarL7(t *testing.T) {
	ps, err := Parse(readFile(t, "deathstar-l7.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pr := ps[0].Rules[0].Ingress[0]
	if got, want := pr.String(), "allow endpoints {any:org=empire, k8s:io.kubernetes.pod.namespace=default} on 80/TCP HTTP {POST /v1/request-landing}"; got != want {
		t.Errorf("rule: got %q, want %q", got, want)
	}
	if len(pr.HTTP) != 1 || pr.HTTP[0].Field != "spec.ingress[0].toPorts[0].rules.http" {
		t.Fatalf("HTTP rules: %+v", pr.HTTP)
	}
	u := NewUniverse()
	u.Upsert(300, pod("default", "org=empire", "class=tiefighter"))
	deathstar := pod("default", "org=empire", "class=deathstar")
	u.Upsert(302, deathstar)
	repo := NewRepository()
	repo.Upsert(ps[0])
	got := repo.Compute(deathstar, u).Policy
	redirect := func(id records.ID) datapath.Rule {
		return datapath.Rule{Identity: uint32(id), Port: 80, Proto: datapath.ProtoTCP, Redirect: true}
	}
	if want := fmt.Sprint([]datapath.Rule{allow(records.IDHost, 0, 0), redirect(300), redirect(302)}); !got.IngressEnforced || fmt.Sprint(got.Ingress) != want {
		t.Errorf("deathstar ingress %v (enforced %t), want %v: port 80 redirected to the proxy for org=empire, closed to the rest", got.Ingress, got.IngressEnforced, want)
	}

	m, err := CompileHTTP(pr.HTTP[0].HTTP)
	if err != nil {
		t.Fatal(err)
	}
	if d := m.Match(HTTPRequest{Method: "POST", Path: "/v1/request-landing", Host: "deathstar"}); !d.Allowed {
		t.Error("POST /v1/request-landing denied")
	}
	if d := m.Match(HTTPRequest{Method: "PUT", Path: "/v1/exhaust-port", Host: "deathstar"}); d.Allowed {
		t.Error("PUT /v1/exhaust-port allowed")
	}
}

func TestParseHTTPRules(t *testing.T) {
	doc := header + `spec:
  endpointSelector: {}
  egress:
  - toPorts:
    - ports:
      - port: "8080"
        protocol: ANY
      - port: "9000"
        endPort: 9001
      rules:
        http:
        - method: "GET|HEAD"
          path: "/public/.*"
          host: "api\\.example\\.com"
          headers: ["X-Team: blue", "X-Trace"]
          headerMatches:
          - name: X-Token
            value: s3cret
          - name: X-Env
            value: prod
            mismatch: REPLACE
        - {}
`
	ps, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	pr := ps[0].Rules[0].Egress[0]
	if len(pr.Ports) != 0 || len(pr.HTTP) != 1 {
		t.Fatalf("ports %v, HTTP %+v: want the ports only under HTTP", pr.Ports, pr.HTTP)
	}
	h := pr.HTTP[0]
	if got, want := fmt.Sprint(h.Ports), "[8080/ANY 9000-9001/ANY]"; got != want {
		t.Errorf("ports %s, want %s", got, want)
	}
	want := []HTTPRule{{
		Method: "GET|HEAD", Path: "/public/.*", Host: `api\.example\.com`,
		Headers:       []HeaderMatch{{Name: "X-Team", Value: "blue"}, {Name: "X-Trace"}},
		HeaderMatches: []HeaderMatch{{Name: "X-Token", Value: "s3cret"}, {Name: "X-Env", Value: "prod", Mismatch: MismatchReplace}},
	}, {}}
	if fmt.Sprintf("%+v", h.HTTP) != fmt.Sprintf("%+v", want) {
		t.Errorf("rules:\n got %+v\nwant %+v", h.HTTP, want)
	}
}

func TestParseHTTPErrors(t *testing.T) {
	rule := func(port, rules string) string {
		return header + "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n" + port + "      rules:\n        http:\n" + rules
	}
	tcp80 := "      - port: \"80\"\n        protocol: TCP\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"invalid path regex", rule(tcp80, "        - path: \"/v1/(\"\n"),
			`spec.ingress[0].toPorts[0].rules.http[0].path: "/v1/(" is not a regular expression (missing closing ): ` + "`" + `^(?:/v1/()$` + "`" + `); accepted is RE2 syntax`},
		{"invalid method regex", rule(tcp80, "        - method: \"GET[\"\n"),
			`spec.ingress[0].toPorts[0].rules.http[0].method: "GET[" is not a regular expression`},
		{"unknown header action", rule(tcp80, "        - headerMatches:\n          - name: X-Env\n            value: prod\n            mismatch: DROP\n"),
			`spec.ingress[0].toPorts[0].rules.http[0].headerMatches[0].mismatch: "DROP" is not a mismatch action; accepted are LOG, ADD, DELETE, REPLACE (or none: the request is denied)`},
		{"header match without name", rule(tcp80, "        - headerMatches:\n          - value: prod\n"),
			`spec.ingress[0].toPorts[0].rules.http[0].headerMatches[0].name: required`},
		{"ADD without value", rule(tcp80, "        - headerMatches:\n          - name: X-Env\n            mismatch: ADD\n"),
			`headerMatches[0].value: required by mismatch ADD`},
		{"header from a secret", rule(tcp80, "        - headerMatches:\n          - name: X-Token\n            secret: {name: tok}\n"),
			`headerMatches[0].secret: header values from secrets are not supported yet`},
		{"bad header line", rule(tcp80, "        - headers: [\"X(Bad): v\"]\n"),
			`spec.ingress[0].toPorts[0].rules.http[0].headers[0]: "X(Bad): v" is not a header`},
		{"unknown rule field", rule(tcp80, "        - verb: GET\n"),
			`spec.ingress[0].toPorts[0].rules.http[0].verb: unknown field; accepted are method, path, host, headers, headerMatches`},
		{"empty rule list", header + "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n" + tcp80 + "      rules:\n        http: []\n",
			`spec.ingress[0].toPorts[0].rules.http: an empty list allows no request`},
		{"UDP port", rule("      - port: \"80\"\n        protocol: UDP\n", "        - method: GET\n"),
			`spec.ingress[0].toPorts[0].ports[0].protocol: "UDP" cannot carry HTTP, so it takes no rules.http; accepted with L7 HTTP rules are TCP and ANY`},
		{"ICMP port", rule("      - port: \"8\"\n        protocol: ICMP\n", "        - method: GET\n"),
			`spec.ingress[0].toPorts[0].ports[0].protocol: "ICMP" cannot carry HTTP`},
		{"no port number", rule("      - protocol: TCP\n", "        - method: GET\n"),
			`spec.ingress[0].toPorts[0].ports[0].port: L7 HTTP rules need a port number`},
		{"no ports", header + "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - rules:\n        http:\n        - method: GET\n",
			`spec.ingress[0].toPorts[0].ports: required by rules.http`},
		{"kafka", header + "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n" + tcp80 + "      rules:\n        kafka:\n        - topic: x\n",
			`spec.ingress[0].toPorts[0].rules.kafka: L7 KAFKA rules are not supported yet; accepted are http and dns rules`},
		{"on a deny rule", header + "spec:\n  endpointSelector: {}\n  ingressDeny:\n  - toPorts:\n    - ports:\n" + tcp80 + "      rules:\n        http:\n        - method: GET\n",
			`spec.ingressDeny[0].toPorts[0].rules: unknown field; accepted are ports`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, %v; want an error containing %q", ps, err, tc.want)
			}
		})
	}
}

func TestHTTPMatcher(t *testing.T) {
	rules := []HTTPRule{
		{Method: "GET|HEAD", Path: "/public/.*"},
		{Method: "POST", Path: "/v1/request-landing", Host: `deathstar(:80)?`,
			Headers:       []HeaderMatch{{Name: "X-Org", Value: "empire"}, {Name: "X-Ship"}},
			HeaderMatches: []HeaderMatch{{Name: "X-Env", Value: "prod", Mismatch: MismatchReplace}, {Name: "X-Audit", Value: "1", Mismatch: MismatchAdd}, {Name: "X-Debug", Value: "off", Mismatch: MismatchDelete}, {Name: "X-Log", Value: "y", Mismatch: MismatchLog}}},
	}
	m, err := CompileHTTP(rules)
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	landing := func(h http.Header) HTTPRequest {
		return HTTPRequest{Method: "POST", Path: "/v1/request-landing", Host: "deathstar", Header: h}
	}
	for _, tc := range []struct {
		name    string
		req     HTTPRequest
		allowed bool
		rule    int
		after   http.Header // the headers once the actions are applied
	}{
		{"GET public", HTTPRequest{Method: "GET", Path: "/public/a/b"}, true, 0, nil},
		{"HEAD public", HTTPRequest{Method: "HEAD", Path: "/public/"}, true, 0, nil},
		{"method is anchored", HTTPRequest{Method: "GETX", Path: "/public/a"}, false, -1, nil},
		{"path is anchored", HTTPRequest{Method: "GET", Path: "/x/public/a"}, false, -1, nil},
		{"query is part of the path", HTTPRequest{Method: "POST", Path: "/v1/request-landing?x=1", Host: "deathstar", Header: hdr("X-Org", "empire", "X-Ship", "t")}, false, -1, nil},
		{"all headers right", landing(hdr("X-Org", "empire", "x-ship", "tie", "X-Env", "prod", "X-Audit", "1", "X-Debug", "off", "X-Log", "y")), true, 1,
			hdr("X-Org", "empire", "X-Ship", "tie", "X-Env", "prod", "X-Audit", "1", "X-Debug", "off", "X-Log", "y")},
		{"mismatches are applied", landing(hdr("X-Org", "empire", "X-Ship", "tie", "X-Env", "dev", "X-Debug", "on")), true, 1,
			hdr("X-Org", "empire", "X-Ship", "tie", "X-Env", "prod", "X-Audit", "1")},
		{"host with port", HTTPRequest{Method: "POST", Path: "/v1/request-landing", Host: "deathstar:80", Header: hdr("X-Org", "empire", "X-Ship", "x")}, true, 1, nil},
		{"wrong host", HTTPRequest{Method: "POST", Path: "/v1/request-landing", Host: "deathstar.evil", Header: hdr("X-Org", "empire", "X-Ship", "x")}, false, -1, nil},
		{"header value differs", landing(hdr("X-Org", "rebels", "X-Ship", "x")), false, -1, nil},
		{"one of several values", landing(hdr("X-Org", "rebels", "X-Org", "empire", "X-Ship", "x")), true, 1, nil},
		{"required header absent", landing(hdr("X-Org", "empire")), false, -1, nil},
		{"other method", HTTPRequest{Method: "PUT", Path: "/v1/exhaust-port", Host: "deathstar"}, false, -1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := m.Match(tc.req)
			if d.Allowed != tc.allowed || d.Rule != tc.rule {
				t.Fatalf("allowed %t by rule %d, want %t by %d", d.Allowed, d.Rule, tc.allowed, tc.rule)
			}
			if tc.after != nil {
				d.Apply(tc.req.Header)
				if fmt.Sprint(tc.req.Header) != fmt.Sprint(tc.after) {
					t.Errorf("headers after the actions: %v, want %v", tc.req.Header, tc.after)
				}
			}
		})
	}
	if none, _ := CompileHTTP(nil); none.Match(HTTPRequest{Method: "GET", Path: "/"}).Allowed {
		t.Error("a matcher without rules allowed a request")
	}
	if all, _ := CompileHTTP([]HTTPRule{{}}); !all.Match(HTTPRequest{Method: "DELETE", Path: "/anything"}).Allowed {
		t.Error("the empty rule {} did not allow every request")
	}
}
