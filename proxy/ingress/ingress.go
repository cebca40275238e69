// Package ingress is the routing half of Weft's Ingress support: it turns
// Kubernetes Ingress objects of class "weft" (networking.k8s.io/v1, the
// same YAML `weft ingress apply -f` takes on standalone hosts) into a
// routing table with Kubernetes' matching rules (exact host before
// wildcard host before any host; Exact before the longest Prefix, prefixes
// matched by path element), and serves HTTP through it to the Services'
// backends. agent/ingress runs it on every node (docs/ingress.md).
package ingress

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// ClassName is the ingressClassName Weft serves.
const ClassName = "weft"

// Backend is a Service port an Ingress routes to.
type Backend struct {
	Namespace, Service string
	Port               int32  // a port number, or
	PortName           string // a port name
}

func (b Backend) String() string {
	port := b.PortName
	if port == "" {
		port = fmt.Sprint(b.Port)
	}
	return b.Namespace + "/" + b.Service + ":" + port
}

// route is one path of one host.
type route struct {
	host    string // "" any host; "*.x.y" one label under x.y
	exact   bool
	path    string
	backend Backend
	source  string // namespace/name of the Ingress
}

// Table routes requests by host and path.
type Table struct {
	routes   []route
	fallback *Backend // the defaultBackend of an Ingress, if any
	tls      map[string]TLS
}

// TLS says which Secret holds a host's certificate.
type TLS struct {
	Namespace, SecretName string
}

var hostRE = regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// Build validates ings and returns their routing table. Ingresses of
// another class are ignored. A bad Ingress is refused whole, naming it and
// the field; nothing of a refused set is used.
func Build(ings []networkingv1.Ingress) (*Table, error) {
	t := &Table{tls: map[string]TLS{}}
	var errs []error
	for _, ing := range ings {
		if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != ClassName {
			continue
		}
		if err := t.add(ing); err != nil {
			errs = append(errs, fmt.Errorf("ingress %s/%s: %w", ing.Namespace, ing.Name, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// The order Route relies on: exact hosts, then wildcards, then any
	// host; within a host Exact paths, then longer prefixes first.
	slices.SortStableFunc(t.routes, func(a, b route) int {
		return cmp.Or(cmp.Compare(hostRank(a.host), hostRank(b.host)), -cmp.Compare(len(a.host), len(b.host)),
			boolRank(!a.exact, !b.exact), -cmp.Compare(len(a.path), len(b.path)))
	})
	return t, nil
}

func hostRank(h string) int {
	switch {
	case h == "":
		return 2
	case strings.HasPrefix(h, "*."):
		return 1
	}
	return 0
}

func boolRank(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func (t *Table) add(ing networkingv1.Ingress) error {
	ns := ing.Namespace
	if ns == "" {
		ns = "default"
	}
	source := ns + "/" + ing.Name
	if d := ing.Spec.DefaultBackend; d != nil {
		b, err := backendOf(ns, *d)
		if err != nil {
			return fmt.Errorf("spec.defaultBackend: %w", err)
		}
		if t.fallback != nil && *t.fallback != b {
			return fmt.Errorf("spec.defaultBackend %s: another Ingress of class %s already has default backend %s", b, ClassName, t.fallback)
		}
		t.fallback = &b
	}
	for i, r := range ing.Spec.Rules {
		host := strings.ToLower(r.Host)
		if host != "" && !hostRE.MatchString(host) {
			return fmt.Errorf("spec.rules[%d].host %q: want a DNS name, optionally starting with \"*.\" for one label", i, r.Host)
		}
		if r.HTTP == nil {
			continue
		}
		for j, p := range r.HTTP.Paths {
			field := fmt.Sprintf("spec.rules[%d].http.paths[%d]", i, j)
			if !strings.HasPrefix(p.Path, "/") {
				return fmt.Errorf("%s.path %q: want an absolute path starting with /", field, p.Path)
			}
			exact := false
			switch pt := p.PathType; {
			case pt == nil:
				return fmt.Errorf("%s.pathType: required (Exact, Prefix or ImplementationSpecific)", field)
			case *pt == networkingv1.PathTypeExact:
				exact = true
			case *pt == networkingv1.PathTypePrefix, *pt == networkingv1.PathTypeImplementationSpecific:
			default:
				return fmt.Errorf("%s.pathType %q: want Exact, Prefix or ImplementationSpecific (served as Prefix)", field, *pt)
			}
			b, err := backendOf(ns, p.Backend)
			if err != nil {
				return fmt.Errorf("%s.backend: %w", field, err)
			}
			path := p.Path
			if !exact && path != "/" {
				path = strings.TrimSuffix(path, "/")
			}
			t.routes = append(t.routes, route{host: host, exact: exact, path: path, backend: b, source: source})
		}
	}
	for i, tls := range ing.Spec.TLS {
		if tls.SecretName == "" {
			return fmt.Errorf("spec.tls[%d].secretName: required", i)
		}
		for _, h := range tls.Hosts {
			t.tls[strings.ToLower(h)] = TLS{Namespace: ns, SecretName: tls.SecretName}
		}
	}
	return nil
}

func backendOf(ns string, b networkingv1.IngressBackend) (Backend, error) {
	switch {
	case b.Resource != nil:
		return Backend{}, fmt.Errorf("resource backends (%s %s) are not served by Weft; route to a Service", b.Resource.Kind, b.Resource.Name)
	case b.Service == nil || b.Service.Name == "":
		return Backend{}, errors.New("service.name: required")
	case b.Service.Port.Number == 0 && b.Service.Port.Name == "":
		return Backend{}, fmt.Errorf("service %s: port.number or port.name required", b.Service.Name)
	case b.Service.Port.Number < 0 || b.Service.Port.Number > 65535:
		return Backend{}, fmt.Errorf("service %s: port.number %d: want 1-65535", b.Service.Name, b.Service.Port.Number)
	}
	return Backend{Namespace: ns, Service: b.Service.Name, Port: b.Service.Port.Number, PortName: b.Service.Port.Name}, nil
}

// Route returns the backend for a request to host (a Host header, port
// dropped) and path, by Kubernetes' rules; ok is false when nothing
// matches and there is no default backend.
func (t *Table) Route(host, path string) (b Backend, source string, ok bool) {
	host = strings.ToLower(host)
	if h, _, found := strings.Cut(host, ":"); found && !strings.Contains(h, "]") {
		host = h
	}
	for _, r := range t.routes {
		if hostMatches(r.host, host) && pathMatches(r, path) {
			return r.backend, r.source, true
		}
	}
	if t.fallback != nil {
		return *t.fallback, "default backend", true
	}
	return Backend{}, "", false
}

// TLSFor says which Secret holds the certificate for host (exact, then a
// wildcard entry).
func (t *Table) TLSFor(host string) (TLS, bool) {
	host = strings.ToLower(host)
	if s, ok := t.tls[host]; ok {
		return s, true
	}
	if _, rest, ok := strings.Cut(host, "."); ok {
		s, ok := t.tls["*."+rest]
		return s, ok
	}
	return TLS{}, false
}

func hostMatches(rule, host string) bool {
	switch {
	case rule == "":
		return true
	case strings.HasPrefix(rule, "*."):
		label, rest, ok := strings.Cut(host, ".")
		return ok && label != "" && rest == rule[2:]
	}
	return rule == host
}

// pathMatches is Kubernetes' matching: Exact compares whole paths; Prefix
// matches by elements split on "/" (/foo matches /foo and /foo/bar, not
// /foobar), ignoring a trailing slash.
func pathMatches(r route, path string) bool {
	if r.exact {
		return path == r.path
	}
	if r.path == "/" {
		return true
	}
	return path == r.path || path == r.path+"/" || strings.HasPrefix(path, r.path+"/")
}
