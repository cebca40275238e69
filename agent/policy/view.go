package policy

import (
	"cmp"
	"fmt"
	"github.com/weftnet/weft/agent/endpoints"
	"slices"
	"strings"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/policy"
	"github.com/weftnet/weft/state/records"
)

// checkEnforceable tries ps on top of the stored policies against this
// node's endpoints: an endpoint that would need more entries than fit, or
// a node whose policy map would overflow, makes the policies selecting it
// unenforceable. The result has one entry per policy (nil: fine).
func (e *Engine) checkEnforceable(ps []*policy.Policy) []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	errs := make([]error, len(ps))
	repo := e.repo.Clone()
	for _, p := range ps {
		repo.Upsert(p)
	}
	total := 0
	for _, ep := range e.endpoints() {
		res := repo.Compute(ep.IdentityLabels, e.universe)
		total += res.Entries()
		if res.Entries() <= policy.MaxRulesPerEndpoint {
			continue
		}
		for i, p := range ps {
			for _, ref := range res.Selected {
				if ref.Policy == p && errs[i] == nil {
					errs[i] = fmt.Errorf("cannot be enforced: endpoint %d (%s/%s) would need %d policy map entries; at most %d are accepted per endpoint",
						ep.ID, ep.Namespace, ep.Pod, res.Entries(), policy.MaxRulesPerEndpoint)
				}
			}
		}
	}
	if total > policy.MaxPolicyEntries {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("cannot be enforced: the endpoints of node %s would need %d policy map entries; the map holds %d", e.node, total, policy.MaxPolicyEntries)
			}
		}
	}
	return errs
}

// details describes every stored policy: rules and the local endpoints
// each selects.
func (e *Engine) details() []*agentapi.PolicyDetail {
	e.mu.Lock()
	defer e.mu.Unlock()
	eps := e.endpoints()
	keys := make([]string, 0, len(e.stored))
	for k := range e.stored {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []*agentapi.PolicyDetail
	for _, k := range keys {
		sp := e.stored[k]
		ns := sp.ref.Namespace
		if ns == records.PolicyClusterwide {
			ns = ""
		}
		sum := &agentapi.PolicySummary{Namespace: ns, Name: sp.ref.Name, Source: sp.ref.Source}
		d := &agentapi.PolicyDetail{Summary: sum, Document: sp.ref.Document}
		out = append(out, d)
		if sp.err != nil {
			sum.Error = sp.err.Error()
			continue
		}
		p := sp.policy
		sum.ApiVersion, sum.Kind, sum.Rules = p.APIVersion, p.Kind, uint32(len(p.Rules))
		selected := map[uint16]bool{}
		for i, r := range p.Rules {
			rd := &agentapi.PolicyRuleDetail{Index: uint32(i), Selector: r.Subject.String(), Description: r.Description,
				IngressEnforced: r.IngressEnforced, EgressEnforced: r.EgressEnforced}
			for _, pr := range r.Ingress {
				rd.Ingress = append(rd.Ingress, pr.String())
			}
			for _, pr := range r.Egress {
				rd.Egress = append(rd.Egress, pr.String())
			}
			for _, ep := range eps {
				if r.Subject.Matches(ep.IdentityLabels) {
					selected[ep.ID] = true
					rd.Endpoints = append(rd.Endpoints, &agentapi.SelectedEndpoint{Id: uint64(ep.ID), Pod: ep.Namespace + "/" + ep.Pod,
						Ipv4: ep.IP.String(), Identity: uint32(ep.Identity)})
				}
			}
			d.Rules = append(d.Rules, rd)
		}
		sum.SelectedEndpoints = uint32(len(selected))
	}
	return out
}

// endpointPolicy is the effective policy of ep for the API, nil when no
// policy selects it. Consecutive ports of one identity are shown as a range.
func (e *Engine) EndpointPolicy(ep *endpoints.Endpoint) *agentapi.EndpointPolicy {
	e.mu.Lock()
	defer e.mu.Unlock()
	res, ok := e.applied[ep.ID]
	if !ok || len(res.Selected) == 0 {
		return nil
	}
	out := &agentapi.EndpointPolicy{IngressEnforced: res.Policy.IngressEnforced, EgressEnforced: res.Policy.EgressEnforced}
	for _, dir := range []struct {
		name  string
		rules []datapath.Rule
	}{{"ingress", res.Policy.Ingress}, {"egress", res.Policy.Egress}} {
		for _, r := range compressPorts(dir.rules) {
			r.Direction = dir.name
			r.Labels = e.describeIdentity(r.Identity)
			out.Rules = append(out.Rules, r)
		}
	}
	return out
}

// compressPorts merges entries of one identity, protocol and verdict
// whose ports follow each other into port..end_port.
func compressPorts(rules []datapath.Rule) []*agentapi.PolicyRule {
	rs := slices.Clone(rules)
	slices.SortFunc(rs, func(a, b datapath.Rule) int {
		return cmp.Or(cmp.Compare(a.Identity, b.Identity), cmp.Compare(boolInt(a.Deny), boolInt(b.Deny)),
			cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port))
	})
	var out []*agentapi.PolicyRule
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := out[n-1]
			end := max(last.EndPort, last.Port)
			if last.Identity == r.Identity && last.Deny == r.Deny && last.Protocol == protoName(r.Proto) && r.Port != 0 && end != 0 && uint32(r.Port) == end+1 {
				last.EndPort = uint32(r.Port)
				continue
			}
		}
		out = append(out, &agentapi.PolicyRule{Identity: r.Identity, Port: uint32(r.Port), Protocol: protoName(r.Proto), Deny: r.Deny})
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func protoName(p uint8) string {
	switch p {
	case datapath.ProtoTCP:
		return "TCP"
	case datapath.ProtoUDP:
		return "UDP"
	case datapath.ProtoAny:
		return "ANY"
	}
	return strings.ToUpper(fmt.Sprintf("proto-%d", p))
}

// describeIdentity is the label list shown with an identity.
func (e *Engine) describeIdentity(id uint32) []string {
	if id == 0 {
		return []string{"any"}
	}
	return e.universe.Labels(records.ID(id))
}
