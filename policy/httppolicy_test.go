package policy

import (
	"fmt"
	"testing"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/state/records"
)

// TestComputeHTTP: the HTTP policy of an endpoint's L7 port decides by the
// peer's identity: the rules of the allow rules selecting the peer, every
// request when an L3/L4 rule allows the port for it, none otherwise.
func TestComputeHTTP(t *testing.T) {
	u := NewUniverse()
	fighter, xwing, deathstar := pod("default", "org=empire", "class=tiefighter"), pod("default", "org=alliance", "class=xwing"), pod("default", "org=empire", "class=deathstar")
	u.Upsert(300, fighter)
	u.Upsert(301, xwing)
	u.Upsert(302, deathstar)
	repo := repoOf(t, "deathstar-l7.yaml")
	egress, err := Parse([]byte(header + `  namespace: default
spec:
  endpointSelector:
    matchLabels:
      class: xwing
  egress:
  - toEndpoints:
    - {}
    toPorts:
    - ports:
      - port: "8080"
      rules:
        http:
        - method: GET
  - toEndpoints:
    - matchLabels:
        class: deathstar
    toPorts:
    - ports:
      - port: "8080"
      rules:
        http:
        - method: POST
          path: /v1/.*
`))
	if err != nil {
		t.Fatal(err)
	}
	repo.Upsert(egress[0])

	landing := HTTPRequest{Method: "POST", Path: "/v1/request-landing"}
	exhaust := HTTPRequest{Method: "PUT", Path: "/v1/exhaust-port"}
	get := HTTPRequest{Method: "GET", Path: "/"}
	check := func(name string, h *HTTPPolicy, peer records.ID, req HTTPRequest, want bool) {
		t.Helper()
		if h == nil {
			t.Fatalf("%s: no HTTP policy", name)
		}
		if got := h.Matcher(peer).Match(req).Allowed; got != want {
			t.Errorf("%s: peer %d %s %s allowed %t, want %t", name, peer, req.Method, req.Path, got, want)
		}
	}
	star, err := repo.ComputeHTTP(deathstar, u)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(len(star)) != "1" {
		t.Fatalf("deathstar L7 ports %v, want ingress 80 only", star)
	}
	in80 := star[L7Port{Direction: datapath.Ingress, Port: 80}]
	check("deathstar", in80, 300, landing, true)
	check("deathstar", in80, 300, exhaust, false)
	check("deathstar", in80, 301, landing, false) // the xwing is no empire ship
	check("deathstar", in80, records.IDWorld, landing, false)

	x, err := repo.ComputeHTTP(xwing, u)
	if err != nil {
		t.Fatal(err)
	}
	out8080 := x[L7Port{Direction: datapath.Egress, Port: 8080}]
	check("xwing to the fighter", out8080, 300, get, true)
	check("xwing to the fighter", out8080, 300, landing, false)
	check("xwing to the deathstar (both rules)", out8080, 302, get, true)
	check("xwing to the deathstar (both rules)", out8080, 302, landing, true)

	// The L3/L4 deathstar rule opens port 80 to empire ships: every request.
	for _, p := range mustParse(t, "deathstar.yaml") {
		repo.Upsert(p)
	}
	star, err = repo.ComputeHTTP(deathstar, u)
	if err != nil {
		t.Fatal(err)
	}
	in80 = star[L7Port{Direction: datapath.Ingress, Port: 80}]
	check("deathstar with the L3/L4 rule", in80, 300, exhaust, true)
	check("deathstar with the L3/L4 rule", in80, 301, landing, false)
}

func mustParse(t *testing.T, file string) []*Policy {
	t.Helper()
	ps, err := Parse(readFile(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
