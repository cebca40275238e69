package consul_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/consul"
)

// TestTLS: with the agent's HTTPS API requiring client certificates, the
// client gets in with Config.TLS, and is refused without the CA or without
// a certificate of its own.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t, dir)
	port := freePort(t)
	s := startAgent(t, fmt.Sprintf(`ports { https = %d }
		tls {
			defaults { ca_file = %q cert_file = %q key_file = %q }
			https { verify_incoming = true }
		}`, port, pki.ca, pki.serverCert, pki.serverKey))
	endpoint := fmt.Sprintf("https://127.0.0.1:%d", port)
	full := kvstore.TLSFiles{CAFile: pki.ca, CertFile: pki.clientCert, KeyFile: pki.clientKey}

	c := open(t, s, func(c *kvstore.Config) { c.Endpoints = []string{endpoint}; c.TLS = full })
	if _, err := c.Update(ctx(t), "weft/tls", []byte("ok"), kvstore.Leased()); err != nil {
		t.Fatalf("write over mutual TLS: %v", err)
	}

	tests := []struct {
		name string
		tls  kvstore.TLSFiles
		want string
	}{
		{"no CA", kvstore.TLSFiles{CertFile: pki.clientCert, KeyFile: pki.clientKey}, "certificate"},
		{"no client certificate", kvstore.TLSFiles{CAFile: pki.ca}, "connect to consul at " + endpoint},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(endpoint)
			cfg.TLS = tc.tls
			cl, err := consul.New(ctx(t), cfg, nil)
			if err == nil {
				// The handshake may only fail on the first request.
				_, err = cl.Get(ctx(t), "weft/tls")
				_ = cl.Close(ctx(t))
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

type pki struct{ ca, serverCert, serverKey, clientCert, clientKey string }

// newPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir.
func newPKI(t *testing.T, dir string) pki {
	t.Helper()
	caKey, caCert := issue(t, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "weft test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	})
	sKey, sCert := issue(t, caKey, caCert, &x509.Certificate{
		Subject: pkix.Name{CommonName: "server.dc1.consul"}, DNSNames: []string{"server.dc1.consul", "localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	})
	cKey, cCert := issue(t, caKey, caCert, &x509.Certificate{
		Subject: pkix.Name{CommonName: "weft-agent"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	})
	p := pki{
		ca: filepath.Join(dir, "ca.pem"), serverCert: filepath.Join(dir, "server.pem"), serverKey: filepath.Join(dir, "server-key.pem"),
		clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client-key.pem"),
	}
	writePEM(t, p.ca, "CERTIFICATE", caCert.Raw)
	writePEM(t, p.serverCert, "CERTIFICATE", sCert.Raw)
	writePEM(t, p.clientCert, "CERTIFICATE", cCert.Raw)
	writeKey(t, p.serverKey, sKey)
	writeKey(t, p.clientKey, cKey)
	return p
}

var serial int64

func issue(t *testing.T, parentKey *ecdsa.PrivateKey, parent, tmpl *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t *testing.T, path string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "EC PRIVATE KEY", der)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
