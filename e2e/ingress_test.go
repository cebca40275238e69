package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testcert"
	"github.com/weftnet/weft/testenv"
)

// fooBarIngress is Cilium's path-routing example with class weft.
const fooBarIngress = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: foo-bar
spec:
  ingressClassName: weft
  rules:
  - http:
      paths:
      - path: /foo
        pathType: Prefix
        backend:
          service:
            name: foo-app
            port:
              number: 5678
      - path: /bar
        pathType: Prefix
        backend:
          service:
            name: bar-app
            port:
              number: 5678
`

// tlsIngress routes shop.example.com over HTTPS with the certificate of
// the Secret shop-tls, and /missing to a Service that does not exist.
const tlsIngress = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
spec:
  ingressClassName: weft
  tls:
  - hosts: [shop.example.com]
    secretName: shop-tls
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: bar-app
            port:
              number: 5678
      - path: /missing
        pathType: Exact
        backend:
          service:
            name: no-such-app
            port:
              number: 80
`

// app answers every request with its name and the path it saw.
type app string

func (a app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%s %s\n", a, r.URL.Path)
}

// TestIngress: an Ingress applied with weft ingress apply on one node is
// served by every node on its address. Cilium's example: /foo reaches
// foo-app (a pod on n1), /bar bar-app (a pod on n2), both on port 5678,
// from a client in the other node's namespace; / and /foobar get 404.
// TLS is terminated with the certificate given by file for the host the
// Ingress lists, then routed; another server name fails the handshake. A
// route to a Service that does not exist gets 503 and weft ingress list
// says why. Bad input (another class, an unknown pathType, a certificate
// and key that do not match, malformed YAML) is refused naming the field,
// and changes nothing. Delete stops the serving.
func TestIngress(t *testing.T) {
	e := up(t, "ingress", testenv.DefaultSpec())
	n1, n2 := e.Nodes[0], e.Nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, d := range []podDef{
		{"foo-app", n1.Name, "default", map[string]string{"app": "foo"}},
		{"bar-app", n2.Name, "default", map[string]string{"app": "bar"}},
	} {
		p, err := e.AddPod(ctx, testenv.PodSpec{Name: d.name, Node: d.node, Namespace: d.ns, Labels: d.labels})
		if err != nil {
			t.Fatalf("add pod %s: %v", d.name, err)
		}
		serveIn(t, e, "pod/"+d.name, netip.AddrPortFrom(p.Addr(), 5678), app(d.name))
	}
	weftCLI(t, e, n1.Name, "", "service", "create", "foo-app", "--port", "5678", "--selector", "app=foo")
	weftCLI(t, e, n1.Name, "", "service", "create", "bar-app", "--port", "5678", "--selector", "app=bar")

	out := weftCLI(t, e, n1.Name, fooBarIngress, "ingress", "apply", "-f", "-")
	if !strings.Contains(out, "ingress default/foo-bar applied") {
		t.Fatalf("weft ingress apply: %s", out)
	}
	if out := weftCLI(t, e, n1.Name, fooBarIngress, "ingress", "apply", "-f", "-"); !strings.Contains(out, "ingress default/foo-bar unchanged") {
		t.Fatalf("weft ingress apply again: %s", out)
	}

	// From the other node's namespace, to both nodes' addresses.
	for _, from := range []testenv.Node{n2, n1} {
		c := podClient(t, e, "node/"+from.Name, false)
		for _, to := range []testenv.Node{n1, n2} {
			base := "http://" + to.IP
			for path, want := range map[string]string{"/foo": "foo-app /foo\n", "/foo/x": "foo-app /foo/x\n", "/bar": "bar-app /bar\n"} {
				eventually(t, 30*time.Second, fmt.Sprintf("GET %s%s from %s", base, path, from.Name), func() error {
					code, body, err := call(c, "GET", base+path)
					if err != nil || code != 200 || body != want {
						return fmt.Errorf("got %d %q %v, want 200 %q", code, body, err, want)
					}
					return nil
				})
			}
			for _, path := range []string{"/", "/foobar"} {
				if code, body, err := call(c, "GET", base+path); err != nil || code != http.StatusNotFound {
					t.Errorf("GET %s%s from %s: %d %q %v, want 404", base, path, from.Name, code, body, err)
				}
			}
		}
	}
	if out := weftCLI(t, e, n2.Name, "", "ingress", "list"); !strings.Contains(out, "default/foo-bar") ||
		!strings.Contains(out, n1.IP+":80") || !strings.Contains(out, n2.IP+":80") || !strings.Contains(out, "default/foo-app:5678") {
		t.Errorf("weft ingress list on %s:\n%s", n2.Name, out)
	}

	dir := t.TempDir()
	pool := writeSelfSigned(t, dir, "shop", "shop.example.com")
	writeSelfSigned(t, dir, "other", "other.example.com")
	t.Run("bad-input", func(t *testing.T) {
		for _, tc := range []struct {
			name, doc string
			args      []string
			want      string
		}{
			{"other-class", strings.Replace(tlsIngress, "ingressClassName: weft", "ingressClassName: nginx", 1), nil,
				`spec.ingressClassName "nginx": accepted is "weft"`},
			{"path-type", strings.Replace(tlsIngress, "pathType: Exact", "pathType: Regex", 1), nil,
				`spec.rules[0].http.paths[1].pathType "Regex": want Exact, Prefix or ImplementationSpecific`},
			{"malformed", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nspec: [\n", nil, "document 1"},
			{"unknown-field", strings.Replace(tlsIngress, "  tls:", "  colour: blue\n  tls:", 1), nil, `unknown field`},
			{"cert-key-mismatch", tlsIngress, []string{"--tls-secret", "shop-tls=" + filepath.Join(dir, "shop.crt") + "," + filepath.Join(dir, "other.key")},
				"accepted is a PEM certificate (chain) and its PEM private key"},
			{"not-pem", tlsIngress, []string{"--tls-secret", "shop-tls=" + filepath.Join(dir, "shop.key") + "," + filepath.Join(dir, "shop.key")},
				"accepted is a PEM certificate"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, err := weftTry(e, n1.Name, tc.doc, append([]string{"ingress", "apply", "-f", "-"}, tc.args...)...)
				if err == nil || !strings.Contains(out, tc.want) || !strings.Contains(out, "nothing was stored") {
					t.Errorf("weft ingress apply: %v\n%s\nwant an error containing %q", err, out, tc.want)
				}
			})
		}
		if out := weftCLI(t, e, n1.Name, "", "ingress", "list"); strings.Contains(out, "default/shop") {
			t.Errorf("a refused apply stored something:\n%s", out)
		}
	})

	t.Run("tls", func(t *testing.T) {
		out := weftCLI(t, e, n2.Name, tlsIngress, "ingress", "apply", "-f", "-",
			"--tls-secret", "shop-tls="+filepath.Join(dir, "shop.crt")+","+filepath.Join(dir, "shop.key"))
		if !strings.Contains(out, "secret default/shop-tls applied") || !strings.Contains(out, "ingress default/shop applied") {
			t.Fatalf("weft ingress apply --tls-secret: %s", out)
		}
		// As curl --resolve shop.example.com:443:<n1>: every name is
		// dialled at n1's address, port 443.
		client := func() *http.Client {
			c := podClient(t, e, "node/"+n2.Name, false)
			tr := c.Transport.(*http.Transport)
			dial := tr.DialContext
			tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dial(ctx, network, net.JoinHostPort(n1.IP, "443"))
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool}
			return c
		}
		shop := client()
		url := "https://shop.example.com"
		eventually(t, 30*time.Second, "GET "+url+"/cart with server name shop.example.com", func() error {
			code, body, err := call(shop, "GET", url+"/cart")
			if err != nil || code != 200 || body != "bar-app /cart\n" {
				return fmt.Errorf("got %d %q %v, want 200 from bar-app", code, body, err)
			}
			return nil
		})
		if code, body, err := call(shop, "GET", url+"/missing"); err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "no-such-app") {
			t.Errorf("GET /missing: %d %q %v; want 503 naming no-such-app", code, body, err)
		}
		if _, _, err := call(client(), "GET", "https://other.example.com/cart"); err == nil {
			t.Error("a server name no Ingress lists completed the handshake")
		}
		out = weftCLI(t, e, n1.Name, "", "ingress", "list")
		for _, want := range []string{"default/shop", "https://" + n1.IP + ":443", "TLS: shop.example.com", "no-such-app", "requests get 503"} {
			if !strings.Contains(out, want) {
				t.Errorf("weft ingress list lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		for _, name := range []string{"foo-bar", "default/shop"} {
			if out := weftCLI(t, e, n2.Name, "", "ingress", "delete", name); !strings.Contains(out, "deleted") {
				t.Fatalf("weft ingress delete %s: %s", name, out)
			}
		}
		if out := weftCLI(t, e, n2.Name, "", "ingress", "delete", "foo-bar"); !strings.Contains(out, "did not exist") {
			t.Errorf("weft ingress delete of a missing one: %s", out)
		}
		c := podClient(t, e, "node/"+n2.Name, false)
		// With no Ingress left the nodes stop listening: the port is free.
		eventually(t, 30*time.Second, "port 80 of "+n1.IP+" closed after the last Ingress is deleted", func() error {
			code, body, err := call(c, "GET", "http://"+n1.IP+"/foo")
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("got %d %q %v", code, body, err)
			}
			return nil
		})
	})
}

// weftTry runs the weft CLI against node and returns its output and error.
func weftTry(e *testenv.Env, node, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Bin.Weft, append([]string{"--name", e.Name, "--node", node}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// writeSelfSigned writes dir/name.crt and dir/name.key, a self-signed
// certificate for host, and returns a pool that trusts it.
func writeSelfSigned(t *testing.T, dir, name, host string) *x509.CertPool {
	t.Helper()
	cert, key, pool := testcert.SelfSigned(t, host)
	for file, data := range map[string][]byte{name + ".crt": cert, name + ".key": key} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

// TestIngressKubernetes: the same Ingress in Kubernetes mode, with kubectl
// only: Pods, Services, a kubernetes.io/tls Secret and the Ingress of
// class weft, mirrored by weft-apiserver --k8s-ingresses. /foo and /bar
// reach the two Services' pods through a node's address, the Ingress's
// status lists the nodes' addresses, and TLS is terminated with the
// Secret's certificate.
func TestIngressKubernetes(t *testing.T) {
	meshBinaries(t)
	spec := testenv.DefaultSpec()
	spec.Kubernetes = true
	e := up(t, "ingk", spec)
	kx := &kubeFixture{e: e}
	n1, n2 := e.Nodes[0], e.Nodes[1]
	var objs strings.Builder
	for _, a := range []struct{ name, node string }{{"foo-app", n1.Name}, {"bar-app", n2.Name}} {
		fmt.Fprintf(&objs, `apiVersion: v1
kind: Pod
metadata: {name: %[1]s, namespace: default, labels: {app: %[1]s}}
spec:
  nodeName: %[2]s
  containers: [{name: echo, image: weft.test/echo, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: default}
spec:
  selector: {app: %[1]s}
  ports: [{port: 5678, targetPort: 5678}]
---
`, a.name, a.node)
	}
	kx.kubectl(t, "c1", objs.String(), "apply", "-f", "-")
	for _, name := range []string{"foo-app", "bar-app"} {
		// Listed by testenv before its kubelet gave it an address: wait for the address.
		pod := testenv.KubePodName("c1", "default", name)
		serveIn(t, kx.fresh(), "pod/"+pod, netip.AddrPortFrom(waitKubePodIP(t, e, pod), 5678), app(name))
	}
	dir := t.TempDir()
	pool := writeSelfSigned(t, dir, "shop", "shop.example.com")
	kx.kubectl(t, "c1", "", "create", "secret", "tls", "shop-tls", "--cert", filepath.Join(dir, "shop.crt"), "--key", filepath.Join(dir, "shop.key"))
	kx.kubectl(t, "c1", fooBarIngress+"---\n"+tlsIngress, "apply", "-f", "-")

	c := podClient(t, e, "node/"+n2.Name, false)
	for path, want := range map[string]string{"/foo": "foo-app /foo\n", "/bar/x": "bar-app /bar/x\n"} {
		eventually(t, time.Minute, "GET http://"+n1.IP+path, func() error {
			code, body, err := call(c, "GET", "http://"+n1.IP+path)
			if err != nil || code != 200 || body != want {
				return fmt.Errorf("got %d %q %v, want 200 %q", code, body, err, want)
			}
			return nil
		})
	}
	eventually(t, time.Minute, "status.loadBalancer of Ingress foo-bar", func() error {
		out := kx.kubectl(t, "c1", "", "get", "ingress", "foo-bar", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
		if got := strings.Fields(out); !slices.Equal(got, []string{n1.IP, n2.IP}) {
			return fmt.Errorf("status addresses %q, want %s %s", out, n1.IP, n2.IP)
		}
		return nil
	})
	tr := c.Transport.(*http.Transport)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, net.JoinHostPort(n2.IP, "443"))
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	eventually(t, time.Minute, "GET https://shop.example.com/cart at "+n2.IP, func() error {
		code, body, err := call(c, "GET", "https://shop.example.com/cart")
		if err != nil || code != 200 || body != "bar-app /cart\n" {
			return fmt.Errorf("got %d %q %v, want 200 from bar-app", code, body, err)
		}
		return nil
	})
	if out := weftCLI(t, e, n1.Name, "", "ingress", "list"); !strings.Contains(out, "default/foo-bar") || !strings.Contains(out, "kubernetes") {
		t.Errorf("weft ingress list:\n%s", out)
	}
}
