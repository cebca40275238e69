package ingress

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	ings, err := Parse([]byte("# the example\n"+fooBar+"\n---\n"+strings.Replace(fooBar, "name: example-ingress\n  namespace: default", "name: other", 1)), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ings) != 2 || ings[0].Name != "example-ingress" || ings[1].Namespace != "default" {
		t.Fatalf("parsed %d: %+v", len(ings), ings)
	}
	doc, err := Document(ings[0])
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromDocument(doc)
	if err != nil || Check(back) != nil || back.Name != "example-ingress" || len(back.Spec.Rules[0].HTTP.Paths) != 2 {
		t.Fatalf("round trip through the record: %v %+v", err, back)
	}
	if ings, err := Parse([]byte(strings.Replace(fooBar, "  namespace: default\n", "", 1)), "shop"); err != nil || ings[0].Namespace != "shop" {
		t.Fatalf("-n shop: %v %+v", err, ings)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ name, doc, ns, want string }{
		{"no class", strings.Replace(fooBar, "  ingressClassName: weft\n", "", 1), "", `spec.ingressClassName: required; accepted is "weft"`},
		{"other class", strings.Replace(fooBar, "ingressClassName: weft", "ingressClassName: nginx", 1), "", `spec.ingressClassName "nginx": accepted is "weft"`},
		{"path type", strings.Replace(fooBar, "pathType: Prefix", "pathType: Regex", 1), "", `spec.rules[0].http.paths[0].pathType "Regex"`},
		{"unknown field", strings.Replace(fooBar, "  rules:", "  colour: blue\n  rules:", 1), "", `unknown field "colour"`},
		{"malformed", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nspec: [\n", "", "document 1: invalid ingress"},
		{"kind", strings.Replace(fooBar, "kind: Ingress", "kind: Service", 1), "", "accepted is apiVersion networking.k8s.io/v1, kind Ingress"},
		{"name", strings.Replace(fooBar, "name: example-ingress", "name: Example_Ingress", 1), "", "metadata.name"},
		{"twice", fooBar + "\n---\n" + fooBar, "", "default/example-ingress is defined twice"},
		{"namespace clash", fooBar, "shop", `metadata.namespace "default" differs from the namespace given ("shop")`},
		{"empty", "# nothing\n", "", "no document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), tc.ns)
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}
