package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const applyManifest = `# two services, as kubectl would take them
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: svc-e2e
  annotations:
    service.cilium.io/shared: "false"
spec:
  selector:
    app: web
  ports:
  - name: https
    port: 443
    targetPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: api-np
  namespace: svc-e2e
spec:
  type: NodePort
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
    nodePort: 30999
`

// applyManifest applies Kubernetes Service manifests with the real CLI,
// reaches the result, and checks a manifest with one bad document changes
// nothing.
func (sx *serviceFixture) applyManifest(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "services.yaml")
	if err := os.WriteFile(file, []byte(applyManifest), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range []string{"svc-e2e/api", "svc-e2e/api-np"} {
			if _, err := sx.weft(sx.e.Nodes[1].Name, "service", "delete", n); err != nil {
				t.Error(err)
			}
		}
	})
	if out, err := sx.weft(sx.e.Nodes[0].Name, "service", "apply", "-f", file); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(out, "svc-e2e/api-np") || !strings.Contains(out, "80:8080:30999/TCP") {
		t.Fatalf("apply output:\n%s", out)
	}
	api := sx.spec(t, "svc-e2e/api")
	if api.GetAnnotations()["service.cilium.io/shared"] != "false" || api.GetPorts()[0].GetName() != "https" {
		t.Fatalf("stored %v", api)
	}
	sx.waitBackends(t, "api", sx.webPods())
	ip := netip.MustParseAddr(api.GetClusterIp())
	if got := sx.backendsSeen(t, netip.AddrPortFrom(ip, 443), 40, 1); len(got) == 0 {
		t.Fatalf("ClusterIP %v:443 reached no backend", ip)
	}

	bad := strings.Replace(applyManifest, "port: 443", "port: 444", 1) + "---\napiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: svc-e2e}\nspec:\n  ports: [{port: 80}]\n  colour: blue\n"
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := sx.weft(sx.e.Nodes[0].Name, "service", "apply", "-f", file)
	if err == nil || !strings.Contains(out, `document 3`) || !strings.Contains(out, `unknown field "colour"`) {
		t.Fatalf("apply of a bad manifest: %v\n%s", err, out)
	}
	sx.service(t, "create", "svc-e2e/np-holder", "--type", "NodePort", "--port", "80:8080", "--selector", "app=web")
	clash := strings.Replace(applyManifest, "nodePort: 30999", fmt.Sprintf("nodePort: %d", sx.spec(t, "svc-e2e/np-holder").GetPorts()[0].GetNodePort()), 1)
	clash = strings.Replace(clash, "port: 443", "port: 444", 1)
	if err := os.WriteFile(file, []byte(clash), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := sx.weft(sx.e.Nodes[0].Name, "service", "apply", "-f", file); err == nil || !strings.Contains(out, "already taken by service svc-e2e/np-holder") {
		t.Fatalf("apply of a clashing node port: %v\n%s", err, out)
	}
	if after := sx.spec(t, "svc-e2e/api"); after.GetPorts()[0].GetPort() != 443 {
		t.Fatalf("a refused apply changed svc-e2e/api: %v", after)
	}
}
