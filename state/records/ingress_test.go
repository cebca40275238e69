package records

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
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

	certPEM, keyPEM := testCertificate(t)
	_, otherKey := testCertificate(t)
	skey := k.IngressSecret("c1", "default", "shop-tls")
	if _, err := Encode(skey, &IngressSecret{Cluster: "c1", Namespace: "default", Name: "shop-tls", CertPEM: certPEM, KeyPEM: otherKey}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a key of another certificate: %v, want ErrInvalid", err)
	}
	v, err := Encode(skey, &IngressSecret{Cluster: "c1", Namespace: "default", Name: "shop-tls", CertPEM: certPEM, KeyPEM: keyPEM})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := k.DecodeIngressSecret(skey, v); err != nil || s.CertPEM != certPEM {
		t.Fatalf("DecodeIngressSecret = %v", err)
	}
}

func testCertificate(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shop.example.com"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}
