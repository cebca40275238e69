package records

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"strings"
)

// Ingress keys, STABLE (v1):
//
//	state/ingresses/v1/<cluster>/<ns>/<name>        Ingress, owned by its source
//	state/ingress-secrets/v1/<cluster>/<ns>/<name>  IngressSecret, owned by its source
const (
	ingressesDir      = "state/ingresses/v1/"
	ingressSecretsDir = "state/ingress-secrets/v1/"
)

// Kinds the Kubernetes source announces under synced/<cluster>/<kind> when
// it mirrors Ingresses (weft-apiserver --k8s-ingresses).
const (
	KindK8sIngresses      = "k8s-ingresses"       // Ingresses of class weft
	KindK8sIngressSecrets = "k8s-ingress-secrets" // the kubernetes.io/tls Secrets they name
)

// Size limits of the ingress records.
const (
	MaxIngressRecord       = 256 << 10 // an Ingress document
	MaxIngressSecretRecord = 64 << 10  // a certificate chain and its key
)

// Ingress is the value of state/ingresses/v1/<cluster>/<ns>/<name>: a
// networking.k8s.io/v1 Ingress of class "weft" (docs/ingress.md), as the
// CLI or the Kubernetes source wrote it. STABLE (v1).
type Ingress struct {
	Version   int    `json:"v"`
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Source says who owns the record: "cli" or "kubernetes".
	Source string `json:"source,omitempty"`
	// Document is the Ingress object in JSON (apiVersion, kind, metadata
	// name and namespace, spec); proxy/ingress checks and routes it.
	Document string `json:"document"`
}

// Validate checks names and that the document is a JSON object.
func (r *Ingress) Validate() error {
	if err := validateOwned("ingress", r.Cluster, r.Namespace, r.Name, r.Source); err != nil {
		return err
	}
	if !json.Valid([]byte(r.Document)) || !strings.HasPrefix(strings.TrimSpace(r.Document), "{") {
		return fmt.Errorf("ingress %s/%s: %w: the document is not a JSON object", r.Namespace, r.Name, ErrInvalid)
	}
	return nil
}

// IngressSecret is the value of state/ingress-secrets/v1/<cluster>/<ns>/<name>:
// the certificate an Ingress's spec.tls[].secretName names, from a
// kubernetes.io/tls Secret or from files given to `weft ingress apply
// --tls-secret`. STABLE (v1).
type IngressSecret struct {
	Version   int    `json:"v"`
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Source    string `json:"source,omitempty"`
	// CertPEM is the certificate chain (the Secret's tls.crt), KeyPEM its
	// private key (tls.key), both PEM.
	CertPEM string `json:"cert"`
	KeyPEM  string `json:"key"`
}

// Validate checks names and that the key belongs to the certificate.
func (r *IngressSecret) Validate() error {
	if err := validateOwned("ingress secret", r.Cluster, r.Namespace, r.Name, r.Source); err != nil {
		return err
	}
	if _, err := tls.X509KeyPair([]byte(r.CertPEM), []byte(r.KeyPEM)); err != nil {
		return fmt.Errorf("ingress secret %s/%s: %w: %v", r.Namespace, r.Name, ErrInvalid, err)
	}
	return nil
}

func validateOwned(kind, cluster, ns, name, source string) error {
	if err := ValidateClusterName(cluster); err != nil {
		return err
	}
	if err := ValidateNamespace(ns); err != nil {
		return err
	}
	if err := ValidateObjectName(name); err != nil {
		return err
	}
	if len(source) > 63 {
		return fmt.Errorf("%s %s/%s: %w: source longer than 63 bytes", kind, ns, name, ErrInvalid)
	}
	return nil
}

func (r *Ingress) version() int       { return r.Version }
func (r *Ingress) setVersion()        { r.Version = SchemaVersion }
func (r *IngressSecret) version() int { return r.Version }
func (r *IngressSecret) setVersion()  { r.Version = SchemaVersion }

// IngressesPrefix is state/ingresses/v1/<cluster>/.
func (k Keys) IngressesPrefix(cluster string) string { return k.prefix + ingressesDir + cluster + "/" }

// Ingress is state/ingresses/v1/<cluster>/<ns>/<name>.
func (k Keys) Ingress(cluster, ns, name string) string {
	return k.IngressesPrefix(cluster) + ns + "/" + name
}

// IngressSecretsPrefix is state/ingress-secrets/v1/<cluster>/.
func (k Keys) IngressSecretsPrefix(cluster string) string {
	return k.prefix + ingressSecretsDir + cluster + "/"
}

// IngressSecret is state/ingress-secrets/v1/<cluster>/<ns>/<name>.
func (k Keys) IngressSecret(cluster, ns, name string) string {
	return k.IngressSecretsPrefix(cluster) + ns + "/" + name
}

// DecodeIngress decodes the value of key and checks it matches the key.
func (k Keys) DecodeIngress(key string, value []byte) (Ingress, error) {
	var r Ingress
	err := k.decodeOwned(key, value, ingressesDir, MaxIngressRecord, &r, func() (string, string, string) { return r.Cluster, r.Namespace, r.Name })
	return r, err
}

// DecodeIngressSecret decodes the value of key and checks it matches the key.
func (k Keys) DecodeIngressSecret(key string, value []byte) (IngressSecret, error) {
	var r IngressSecret
	err := k.decodeOwned(key, value, ingressSecretsDir, MaxIngressSecretRecord, &r, func() (string, string, string) { return r.Cluster, r.Namespace, r.Name })
	return r, err
}

// decodeOwned decodes a <cluster>/<ns>/<name> record under dir.
func (k Keys) decodeOwned(key string, value []byte, dir string, limit int, r Record, names func() (cluster, ns, name string)) error {
	t, err := k.tail(key, dir)
	if err != nil {
		return err
	}
	parts := strings.Split(t, "/")
	if len(parts) != 3 {
		return fmt.Errorf("parse key %q: %w: expected <cluster>/<namespace>/<name>", key, ErrInvalid)
	}
	if err := decode(key, value, limit, r); err != nil {
		return err
	}
	cluster, ns, name := names()
	switch {
	case cluster != parts[0]:
		return mismatch(key, "cluster", cluster, parts[0])
	case ns != parts[1]:
		return mismatch(key, "namespace", ns, parts[1])
	case name != parts[2]:
		return mismatch(key, "name", name, parts[2])
	}
	return nil
}
