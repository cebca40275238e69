package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/weftnet/weft/api/agentapi"
)

// TestIngressTable: each route is a row, the addresses and TLS hosts run
// down beside them, a route without backends says why, an Ingress that is
// not served shows its error.
func TestIngressTable(t *testing.T) {
	resp := &agentapi.ListIngressesResponse{Ingresses: []*agentapi.IngressSummary{
		{Namespace: "default", Name: "foo-bar", Source: "cli", Addresses: []string{"192.168.1.1:80", "192.168.1.2:80"}, Routes: []*agentapi.IngressRoute{
			{Path: "/foo", PathType: "Prefix", Backend: "default/foo-app:5678", ReadyBackends: 1},
			{Path: "/bar", PathType: "Prefix", Backend: "default/bar-app:5678", ReadyBackends: 1},
		}},
		{Namespace: "default", Name: "shop", Source: "cli", Addresses: []string{"192.168.1.1:80", "https://192.168.1.1:443"}, TlsHosts: []string{"shop.example.com"},
			Routes: []*agentapi.IngressRoute{
				{Host: "shop.example.com", Path: "/missing", PathType: "Exact", Backend: "default/no-such-app:80",
					Problem: "service default/no-such-app: no such service: requests get 503"},
			}},
		{Namespace: "default", Name: "bad", Source: "kubernetes", Error: "spec.rules[0].host \"A_B\": want a DNS name"},
	}}
	var b bytes.Buffer
	if err := ingressTable(resp).write(&b); err != nil {
		t.Fatal(err)
	}
	want := `NAME              ADDRESS                   HOST               PATH               BACKEND                                            READY                                                                SOURCE
default/foo-bar   192.168.1.1:80            *                  /foo               default/foo-app:5678                               1                                                                    cli
                  192.168.1.2:80            *                  /bar               default/bar-app:5678                               1
default/shop      192.168.1.1:80            shop.example.com   /missing (exact)   default/no-such-app:80                             0 (service default/no-such-app: no such service: requests get 503)   cli
                  https://192.168.1.1:443
                  TLS: shop.example.com
default/bad       -                         -                  -                  error: spec.rules[0].host "A_B": want a DNS name   -                                                                    kubernetes
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
		t.Log(strings.ReplaceAll(got, " ", "·"))
	}
}
