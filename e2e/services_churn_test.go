package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// waitBackends waits until every node's agent lists exactly the given
// pods as the backends of service name in the test namespace.
func (sx *serviceFixture) waitBackends(t *testing.T, name string, pods []string) {
	t.Helper()
	var want []string
	for _, p := range pods {
		want = append(want, sx.pods[p].IP+":8080")
	}
	slices.Sort(want)
	for _, n := range sx.e.Nodes {
		eventually(t, 20*time.Second, fmt.Sprintf("node %s lists backends %v of %s", n.Name, pods, name), func() error {
			c, closeFn, err := sx.e.Agent(context.Background(), n.Name)
			if err != nil {
				return err
			}
			defer closeFn()
			resp, err := c.ListServices(context.Background(), nil)
			if err != nil {
				return err
			}
			for _, s := range resp.GetServices() {
				if s.GetNamespace() != svcNamespace || s.GetName() != name {
					continue
				}
				var got []string
				for _, b := range s.GetBackends() {
					got = append(got, b.GetAddress())
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					return fmt.Errorf("backends %v", got)
				}
				return nil
			}
			return fmt.Errorf("service not listed")
		})
	}
}

// nodePort reaches the service's node port on the first node from the
// second node's namespace (outside any pod or cgroup).
func (sx *serviceFixture) nodePort(t *testing.T) {
	sx.service(t, "create", "svc-e2e/web-np", "--type", "NodePort", "--port", "80:8080", "--selector", "app=web")
	np := sx.spec(t, "svc-e2e/web-np").GetPorts()[0].GetNodePort()
	if np < 30000 || np > 32767 {
		t.Fatalf("node port %d outside 30000-32767", np)
	}
	sx.waitBackends(t, "web-np", []string{"web-1", "web-2"})
	addr := netip.AddrPortFrom(sx.e.Nodes[0].Addr(), uint16(np))
	list, err := sx.weft(sx.e.Nodes[0].Name, "service", "list")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("weft service list:\n%s", list)
	for _, want := range []string{addr.String() + "/TCP   NodePort       cli", svcExternalIP.String() + ":80/TCP", "ExternalIP",
		"1 => ", "2 => ", sx.pods["web-1"].IP + ":8080 (active)", sx.pods["web-2"].IP + ":8080 (active)"} {
		if !strings.Contains(list, want) {
			t.Errorf("weft service list lacks %q", want)
		}
	}
	other, err := sx.e.Target("node/" + sx.e.Nodes[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "node port "+addr.String()+" from node "+other.Name, func() error {
		var line string
		err := other.Do(func() error {
			c, err := net.DialTimeout("tcp4", addr.String(), 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			line, err = bufio.NewReader(c).ReadString('\n')
			return err
		})
		if err != nil {
			return err
		}
		if name := strings.TrimSpace(line); name != "web-1" && name != "web-2" {
			return fmt.Errorf("answered by %q", name)
		}
		return nil
	})
}

func (sx *serviceFixture) affinity(t *testing.T) {
	sx.service(t, "create", "svc-e2e/web-sticky", "--port", "80:8080", "--selector", "app=web", "--session-affinity", "ClientIP")
	sx.waitBackends(t, "web-sticky", []string{"web-1", "web-2"})
	ip := sx.clusterIPOf(t, "svc-e2e/web-sticky")
	if got := sx.backendsSeen(t, netip.AddrPortFrom(ip, 80), 12, 2); len(got) != 1 {
		t.Fatalf("with ClientIP affinity one client reached %v, want one backend", got)
	}
}

// churn keeps a connection open through the ClusterIP, removes the other
// backend and adds a new one, and checks the open connection keeps
// working, every node drops the removed backend, and new connections reach
// only live backends.
func (sx *serviceFixture) churn(t *testing.T) {
	sx.waitBackends(t, "web", []string{"web-1", "web-2"})
	ip := sx.clusterIPOf(t, "svc-e2e/web")
	s := sx.openStream(t, netip.AddrPortFrom(ip, 80))
	gone := "web-1"
	if s.backend == "web-1" {
		gone = "web-2"
	}
	s.ping(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sx.e.DelPod(ctx, gone); err != nil {
		t.Fatal(err)
	}
	delete(sx.pods, gone)
	sx.addPod(t, "web-3", sx.e.Nodes[1].Name, map[string]string{"app": "web"})
	s.ping(t, 2)
	sx.waitBackends(t, "web", []string{s.backend, "web-3"})
	s.ping(t, 3)
	for i := range 10 {
		name, err := sx.fetch(ctx, "client", netip.AddrPortFrom(ip, 80))
		if err != nil || (name != s.backend && name != "web-3") {
			t.Fatalf("connection %d after churn: %q, %v; want %s or web-3", i, name, err, s.backend)
		}
	}
	s.ping(t, 4)
}

type svcStream struct {
	backend string
	in      io.WriteCloser
	out     *bufio.Reader
}

// openStream runs a client in the client pod that connects once and then
// echoes every line the test writes through the connection.
func (sx *serviceFixture) openStream(t *testing.T, addr netip.AddrPort) *svcStream {
	t.Helper()
	tgt, err := sx.e.Target("pod/client")
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%d || exit 1
read -r name <&3; echo "$name"
while read -r line; do echo "$line" >&3; read -r -t 10 back <&3 || { echo lost; exit 1; }; echo "$back"; done`, addr.Addr(), addr.Port())
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tgt.Start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cancel(); cmd.Wait() })
	s := &svcStream{in: in, out: bufio.NewReader(outPipe)}
	line, err := s.out.ReadString('\n')
	if err != nil {
		t.Fatalf("stream to %v: %v", addr, err)
	}
	s.backend = strings.TrimSpace(line)
	return s
}

func (s *svcStream) ping(t *testing.T, n int) {
	t.Helper()
	want := fmt.Sprintf("ping-%d", n)
	if _, err := fmt.Fprintln(s.in, want); err != nil {
		t.Fatalf("stream to %s: write: %v", s.backend, err)
	}
	got, err := s.out.ReadString('\n')
	if err != nil || strings.TrimSpace(got) != want {
		t.Fatalf("stream to %s lost: got %q, %v; want %q", s.backend, got, err, want)
	}
}

// refused checks malformed input is refused with the field named and
// changes nothing.
func (sx *serviceFixture) refused(t *testing.T) {
	before := sx.spec(t, "svc-e2e/web")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "create", "svc-e2e/bad", "--port", "80/SCTP"}, `protocol "SCTP"`},
		{[]string{"service", "create", "svc-e2e/bad", "--port", "80", "--cluster-ip", "10.200.0.1"}, "inside the service CIDR"},
		{[]string{"service", "create", "svc-e2e/bad", "--port", "80", "--cluster-ip", before.GetClusterIp()}, "already taken by service svc-e2e/web"},
		{[]string{"service", "update", "svc-e2e/web", "--port", "70000"}, `"70000" is not a port`},
	} {
		out, err := sx.weft(sx.e.Nodes[0].Name, tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("weft %s: %v, want an error containing %q:\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
	}
	if _, err := sx.weft(sx.e.Nodes[0].Name, "service", "get", "svc-e2e/bad"); err == nil {
		t.Errorf("a refused service was written")
	}
	if after := sx.spec(t, "svc-e2e/web"); after.String() != before.String() {
		t.Errorf("refused updates changed svc-e2e/web: %v, was %v", after, before)
	}
}
