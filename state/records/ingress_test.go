package records

import (
	"errors"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/testcert"
)

func TestIngressRecords(t *testing.T) {
	k := NewKeys(testPrefix)
	key := k.Ingress("c1", "default", "foo-bar")
	if want := testPrefix + "state/ingresses/v1/c1/default/foo-bar"; key != want {
		t.Fatalf("key %s, want %s", key, want)
	}
	good, err := Encode(key, &Ingress{Cluster: "c1", Namespace: "default", Name: "foo-bar", Source: "cli", Document: `{"kind":"Ingress"}`})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := k.DecodeIngress(key, good); err != nil || r.Name != "foo-bar" || r.Source != "cli" {
		t.Fatalf("DecodeIngress = %+v, %v", r, err)
	}
	for _, tc := range []struct{ name, key, value string }{
		{"other name", k.Ingress("c1", "default", "other"), string(good)},
		{"other cluster", k.Ingress("c2", "default", "foo-bar"), string(good)},
		{"short key", k.IngressesPrefix("c1") + "foo-bar", string(good)},
		{"not an object", key, strings.Replace(string(good), `{\"kind\":\"Ingress\"}`, `[1]`, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := k.DecodeIngress(tc.key, []byte(tc.value)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodeIngress error = %v, want ErrInvalid", err)
			}
		})
	}

	certPEM, keyPEM, _ := testcert.SelfSigned(t, "shop.example.com")
	_, otherKey, _ := testcert.SelfSigned(t, "shop.example.com")
	skey := k.IngressSecret("c1", "default", "shop-tls")
	if _, err := Encode(skey, &IngressSecret{Cluster: "c1", Namespace: "default", Name: "shop-tls", CertPEM: string(certPEM), KeyPEM: string(otherKey)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a key of another certificate: %v, want ErrInvalid", err)
	}
	v, err := Encode(skey, &IngressSecret{Cluster: "c1", Namespace: "default", Name: "shop-tls", CertPEM: string(certPEM), KeyPEM: string(keyPEM)})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := k.DecodeIngressSecret(skey, v); err != nil || s.CertPEM != string(certPEM) {
		t.Fatalf("DecodeIngressSecret = %v", err)
	}
}
