package connectivity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/policy"
)

// The policy tests' pods: besides the clients (app=weft-connectivity),
// echo (protected) on the last node and client2 (other) on the first.
const (
	protectedApp = "weft-connectivity-protected"
	otherApp     = "weft-connectivity-other"
	// oldPolicyName is the policy earlier versions kept in force for the
	// whole run; deleted when found.
	oldPolicyName = "weft-connectivity"
)

// policyAPI reports whether the agents serve the Policy API; the policy
// scenarios run only then.
func (fx *fixture) policyAPI(ctx context.Context) bool {
	if len(fx.drv.nodes()) == 0 {
		return false
	}
	conn, err := fx.conn(fx.drv.nodes()[0].name)
	if err != nil {
		return false
	}
	defer conn.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = agentapi.NewPolicyClient(conn).List(rctx, &agentapi.ListPoliciesRequest{})
	if status.Code(err) == codes.Unimplemented {
		fmt.Fprintln(fx.opts.Progress, "• policy scenarios skipped: the agents do not serve the Policy API yet")
		return false
	}
	return err == nil
}

// ensurePolicyPods creates the protected pod on the cluster's last node
// and the not-allowed pod on its first.
func (fx *fixture) ensurePolicyPods(ctx context.Context, cl *cluster, nodes []nodeInfo) error {
	last := nodes[len(nodes)-1].name
	p, err := fx.ensurePodWith(ctx, podName(last, "p"), last, map[string]string{"app": protectedApp})
	if err != nil {
		return err
	}
	o, err := fx.ensurePodWith(ctx, podName(nodes[0].name, "x"), nodes[0].name, map[string]string{"app": otherApp})
	if err != nil {
		return err
	}
	cl.protected, cl.other = &p, &o
	return nil
}

// policyState is what the agents enforce on each test pod, by pod name:
// the enforcement flags and rules (to tell when a change took effect).
func (fx *fixture) policyState(ctx context.Context, pods []endpoint) (map[string]*agentapi.EndpointPolicy, error) {
	out := map[string]*agentapi.EndpointPolicy{}
	for _, p := range pods {
		ep, err := fx.endpoint(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("read the policy of %s: %w", p, err)
		}
		out[p.name] = ep.GetPolicy()
	}
	return out, nil
}

// enforces reports whether a policyState value enforces dir.
func enforces(st *agentapi.EndpointPolicy, dir direction) bool {
	return (dir&ingress == 0 || st.GetIngressEnforced()) && (dir&egress == 0 || st.GetEgressEnforced())
}

// rolePods are the test pods of a role in cluster cl.
func rolePods(cl cluster, role string) []endpoint {
	switch role {
	case "client":
		return cl.pods
	case "client2":
		return []endpoint{*cl.other}
	case "echo":
		return []endpoint{*cl.protected}
	}
	return cl.allPods()
}

// applyPolicyTest imports t's policies into every cluster and waits until
// the pods it names enforce them; it returns the state to wait for when
// the policies are deleted again.
func (fx *fixture) applyPolicyTest(ctx context.Context, t policyTest) (map[string]map[string]*agentapi.EndpointPolicy, error) {
	before := map[string]map[string]*agentapi.EndpointPolicy{}
	for _, cl := range fx.clusters {
		st, err := fx.policyState(ctx, cl.allPods())
		if err != nil {
			return nil, err
		}
		before[cl.name] = st
		err = fx.withPolicy(ctx, cl.nodes[0].name, func(pc agentapi.PolicyClient) error {
			resp, err := pc.Import(ctx, &agentapi.ImportPolicyRequest{Documents: []byte(t.docs), Source: "weft-connectivity", Namespace: fx.namespace()})
			if err != nil {
				return err
			}
			var errs []string
			for _, d := range resp.Documents {
				if d.Error != "" {
					errs = append(errs, d.Error)
				}
			}
			if len(errs) > 0 {
				return errors.New(strings.Join(errs, "; "))
			}
			return nil
		})
		if err != nil {
			return before, fmt.Errorf("import the policies of test %s into cluster %s: %w", t.name, cl.name, err)
		}
	}
	for _, cl := range fx.clusters {
		for role, dir := range t.enforce {
			for _, p := range rolePods(cl, role) {
				old := before[cl.name][p.name]
				err := fx.waitPolicy(ctx, p, fmt.Sprintf("enforce the policies of test %s", t.name), func(st *agentapi.EndpointPolicy) bool {
					return enforces(st, dir) && (!proto.Equal(st, old) || !enforces(old, dir))
				})
				if err != nil {
					return before, err
				}
			}
		}
	}
	return before, nil
}

// removePolicyTest deletes t's policies and waits until every test pod
// enforces what it did before.
func (fx *fixture) removePolicyTest(ctx context.Context, t policyTest, before map[string]map[string]*agentapi.EndpointPolicy) error {
	var errs []error
	for _, cl := range fx.clusters {
		errs = append(errs, fx.deletePolicyDocs(ctx, cl, t.docs))
	}
	for _, cl := range fx.clusters {
		for _, p := range cl.allPods() {
			old, ok := before[cl.name][p.name]
			if !ok {
				continue
			}
			errs = append(errs, fx.waitPolicy(ctx, p, fmt.Sprintf("drop the policies of test %s", t.name), func(st *agentapi.EndpointPolicy) bool {
				return proto.Equal(st, old)
			}))
		}
	}
	return errors.Join(errs...)
}

// deletePolicyDocs deletes the policies docs names from cl's store.
func (fx *fixture) deletePolicyDocs(ctx context.Context, cl cluster, docs string) error {
	ps, err := policy.ParseIn([]byte(docs), fx.namespace())
	if err != nil {
		return err
	}
	return fx.withPolicy(ctx, cl.nodes[0].name, func(pc agentapi.PolicyClient) error {
		var errs []error
		for _, p := range ps {
			_, err := pc.Delete(ctx, &agentapi.DeletePolicyRequest{Namespace: p.Namespace, Name: p.Name})
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// waitPolicy waits until the agent of p's node reports a policy state of p
// that done accepts.
func (fx *fixture) waitPolicy(ctx context.Context, p endpoint, what string, done func(*agentapi.EndpointPolicy) bool) error {
	ctx, cancel := context.WithTimeout(ctx, fx.opts.PropagationTimeout)
	defer cancel()
	var last string
	for {
		ep, err := fx.endpoint(ctx, p)
		if err == nil {
			if done(ep.GetPolicy()) {
				return nil
			}
			last = fmt.Sprintf("ingress enforced %v, egress enforced %v, %d rules", ep.GetPolicy().GetIngressEnforced(), ep.GetPolicy().GetEgressEnforced(), len(ep.GetPolicy().GetRules()))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for node %s to %s on %s: not after %v (last seen: %s; last error: %v)",
				p.node, what, p, fx.opts.PropagationTimeout, last, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (fx *fixture) endpoint(ctx context.Context, p endpoint) (*agentapi.Endpoint, error) {
	a, closeFn, err := fx.agent(ctx, p.node)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return a.GetEndpoint(rctx, &agentapi.GetEndpointRequest{Ip: p.ip.String()})
}

func (fx *fixture) withPolicy(ctx context.Context, node string, fn func(agentapi.PolicyClient) error) error {
	conn, err := fx.conn(node)
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(agentapi.NewPolicyClient(conn))
}

// deletePolicies removes every policy of the catalogue (and of earlier
// versions), after an interrupted run too.
func (fx *fixture) deletePolicies(ctx context.Context) {
	docs := []string{cnp(oldPolicyName, "endpointSelector: {}")}
	for _, t := range policyTests() {
		docs = append(docs, t.docs)
	}
	for _, cl := range fx.clusters {
		if err := fx.deletePolicyDocs(ctx, cl, strings.Join(docs, "---\n")); err != nil {
			fx.opts.Log.Warn("delete the connectivity test policies", "cluster", cl.name, "err", err)
		}
	}
}
