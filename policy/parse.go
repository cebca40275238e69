package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/weftnet/weft/state/records"
)

// maxDocument leaves room for the record's other fields in the store.
const maxDocument = records.MaxPolicyRecord - 4096

// Document is the outcome of parsing one document of an input.
type Document struct {
	// Index counts documents from 1, in input order.
	Index int
	// Policy is nil when Err is set.
	Policy *Policy
	Err    error
}

// ParseDocuments parses every document of a multi-document YAML input
// ("---" separated) and reports each one's policy or error. Two documents
// naming the same policy are an error on the second. A namespaced
// document without metadata.namespace is in namespace "default".
func ParseDocuments(input []byte) []Document {
	return ParseDocumentsIn(input, "")
}

// ParseDocumentsIn is ParseDocuments with namespace (when not empty) for
// the namespaced documents that name none, as `kubectl apply -n` does; a
// document that names another namespace is an error. Clusterwide
// documents are not affected.
func ParseDocumentsIn(input []byte, namespace string) []Document {
	var out []Document
	seen := map[string]int{}
	for i, doc := range splitDocuments(input) {
		p, err := parseDocument(doc, namespace)
		if err == nil {
			// One name per namespace: the store keys policies by it, so a
			// CiliumNetworkPolicy and a NetworkPolicy cannot share one.
			key := p.StoreNamespace() + "/" + p.Name
			if first, dup := seen[key]; dup {
				err = fmt.Errorf("policy %s is also defined by document %d; accepted is one policy per namespace and name", p.ID(), first)
			}
			seen[key] = i + 1
		}
		if err != nil {
			err = fmt.Errorf("document %d%s: %w", i+1, describeDoc(p), err)
			p = nil
		}
		out = append(out, Document{Index: i + 1, Policy: p, Err: err})
	}
	return out
}

// Parse parses every document of input and returns the policies, or an
// error naming every invalid document. An input without any document is
// an error.
func Parse(input []byte) ([]*Policy, error) {
	return ParseIn(input, "")
}

// ParseIn is Parse with a namespace for documents that name none (see
// ParseDocumentsIn).
func ParseIn(input []byte, namespace string) ([]*Policy, error) {
	docs := ParseDocumentsIn(input, namespace)
	if len(docs) == 0 {
		return nil, errors.New("parse policy: the input holds no YAML document")
	}
	var (
		out  []*Policy
		errs []error
	)
	for _, d := range docs {
		if d.Err != nil {
			errs = append(errs, d.Err)
			continue
		}
		out = append(out, d.Policy)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func describeDoc(p *Policy) string {
	if p == nil || p.Name == "" {
		return ""
	}
	return " (" + p.Kind + " " + p.ID() + ")"
}

// parseDocument parses one document. On error, the returned policy (if
// any) carries the kind and name for the message only.
func parseDocument(doc, namespace string) (*Policy, error) {
	if len(doc) > maxDocument {
		return nil, fmt.Errorf("the document is %d bytes; at most %d are accepted", len(doc), maxDocument)
	}
	tree, err := decodeYAML(doc)
	if err != nil {
		return nil, err
	}
	d := &decoder{}
	// A top-level description (Cilium's older guides put one there, beside
	// metadata) documents the policy and changes no enforcement.
	top := d.object("", tree, "apiVersion", "kind", "metadata", "spec", "specs", "status", "description")
	if top == nil {
		if err := d.err(); err != nil {
			return nil, err
		}
		return nil, errors.New("the document is empty")
	}
	p := &Policy{Document: doc}
	p.APIVersion, _ = d.str("apiVersion", top["apiVersion"])
	p.Kind, _ = d.str("kind", top["kind"])
	switch {
	case p.APIVersion == APIVersionCilium && (p.Kind == KindCilium || p.Kind == KindCiliumClusterwide):
	case p.APIVersion == APIVersionKubernetes && p.Kind == KindKubernetes:
	default:
		return nil, fmt.Errorf("apiVersion %q kind %q is not supported; accepted are %s %s, %s %s and %s %s",
			p.APIVersion, p.Kind, APIVersionCilium, KindCilium, APIVersionCilium, KindCiliumClusterwide, APIVersionKubernetes, KindKubernetes)
	}
	d.metadata(p, top["metadata"], namespace)
	if v, ok := top["description"]; ok {
		p.Description, _ = d.str("description", v)
	}
	if p.Kind == KindKubernetes {
		if _, ok := top["specs"]; ok {
			d.fail("specs", "unknown field for %s; accepted is spec", KindKubernetes)
		}
		d.kubernetesSpec(p, top["spec"])
	} else {
		d.ciliumSpecs(p, top["spec"], top["specs"])
	}
	if err := d.err(); err != nil {
		return &Policy{Kind: p.Kind, Namespace: p.Namespace, Name: p.Name}, err
	}
	return p, nil
}

// metadata reads the name and namespace (defaultNS, or "default" when
// that is empty, for a namespaced document naming none); the other fields
// Kubernetes writes are accepted and ignored.
func (d *decoder) metadata(p *Policy, v any, defaultNS string) {
	m := d.object("metadata", v, "name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation", "creationTimestamp")
	if m == nil {
		d.fail("metadata.name", "required: the policy's name")
		return
	}
	d.strMap("metadata.labels", m["labels"])
	d.strMap("metadata.annotations", m["annotations"])
	if v, ok := m["name"]; !ok {
		d.fail("metadata.name", "required: the policy's name")
	} else if name, ok := d.str("metadata.name", v); ok {
		if err := records.ValidateObjectName(name); err != nil {
			d.fail("metadata.name", "%q: must be a lowercase DNS subdomain (a-z, 0-9, '-', '.') of 1 to %d characters", name, records.MaxObjectName)
		} else {
			p.Name = name
		}
	}
	ns := ""
	if v, ok := m["namespace"]; ok {
		ns, _ = d.str("metadata.namespace", v)
	}
	switch {
	case p.Kind == KindCiliumClusterwide && ns != "":
		d.fail("metadata.namespace", "%q: a %s has no namespace; remove it or use a %s", ns, KindCiliumClusterwide, KindCilium)
	case p.Kind == KindCiliumClusterwide:
	case ns == "" && defaultNS != "" && records.ValidateNamespace(defaultNS) != nil:
		d.fail("metadata.namespace", "the namespace %q given for the import must be a lowercase DNS label of 1 to %d characters", defaultNS, records.MaxNamespace)
	case ns == "" && defaultNS != "":
		p.Namespace = defaultNS
	case ns == "":
		p.Namespace = "default"
	case defaultNS != "" && ns != defaultNS:
		d.fail("metadata.namespace", "%q does not match the namespace %q given for the import; remove one of them", ns, defaultNS)
	case records.ValidateNamespace(ns) != nil:
		d.fail("metadata.namespace", "%q: must be a lowercase DNS label of 1 to %d characters", ns, records.MaxNamespace)
	default:
		p.Namespace = ns
	}
}

// notSupported is the message for fields parsed but not enforced yet.
func notSupported(what string) string {
	return what + " not supported yet"
}

func quoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
