package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// BenchmarkServicesProgrammed measures, for 10k selector services written
// through one agent's Services API (batches of 500, one store lock each),
// the time until every node of a two-node cluster lists (and so has
// programmed) all of them, and the time the writes alone took: with the
// agents' default store rate limit (200 requests/s) and without one.
func BenchmarkServicesProgrammed(b *testing.B) {
	for _, tc := range []struct{ name, qps string }{{"default-qps", ""}, {"unlimited-qps", "0"}} {
		b.Run(tc.name, func(b *testing.B) {
			spec := testenv.DefaultSpec()
			if tc.qps != "" {
				spec.AgentArgs = []string{"--kvstore-qps", tc.qps}
			}
			benchServicesProgrammed(b, up(b, "svcbench", spec))
		})
	}
}

func benchServicesProgrammed(b *testing.B, e *testenv.Env) {
	const count, batch = 10000, 500
	ctx := context.Background()
	for i, n := range e.Nodes {
		if _, err := e.AddPod(ctx, testenv.PodSpec{Name: fmt.Sprintf("web-%d", i), Node: n.Name, Namespace: "svc-bench", Labels: map[string]string{"app": "web"}}); err != nil {
			b.Fatal(err)
		}
	}
	conn, err := e.Conn(e.Nodes[0].Name)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := agentapi.NewServicesClient(conn)
	for i := range b.N {
		start := time.Now()
		for j := 0; j < count; j += batch {
			req := &agentapi.ApplyServicesRequest{Mode: agentapi.ApplyMode_APPLY_MODE_CREATE}
			for k := j; k < j+batch; k++ {
				req.Services = append(req.Services, &agentapi.ServiceSpec{Namespace: "svc-bench", Name: fmt.Sprintf("s%d-%d", i, k),
					Ports: []*agentapi.ServicePortSpec{{Port: 80, TargetPort: 8080}}, Selector: map[string]string{"app": "web"}})
			}
			actx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			_, err := c.Apply(actx, req)
			cancel()
			if err != nil {
				b.Fatalf("apply services %d-%d: %v", j, j+batch, err)
			}
		}
		written := time.Since(start)
		for _, n := range e.Nodes {
			eventually(b, 5*time.Minute, "node "+n.Name+" programs every service", func() error {
				a, closeFn, err := e.Agent(ctx, n.Name)
				if err != nil {
					return err
				}
				defer closeFn()
				resp, err := a.ListServices(ctx, &agentapi.ListServicesRequest{})
				if err != nil {
					return err
				}
				got := 0
				for _, s := range resp.GetServices() {
					if s.GetNamespace() == "svc-bench" && len(s.GetBackends()) == len(e.Nodes) {
						got++
					}
				}
				if got < (i+1)*count {
					return fmt.Errorf("%d of %d programmed", got, (i+1)*count)
				}
				return nil
			})
		}
		b.ReportMetric(time.Since(start).Seconds(), "s-to-programmed-everywhere/10k")
		b.ReportMetric(written.Seconds(), "s-to-write/10k")
	}
}
