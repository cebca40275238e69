package policy

import (
	"slices"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/state/records"
)

// Verdict says which policies decide a new flow of an endpoint in one
// direction, as the datapath's entries do (deny entries win; identity 0,
// port 0 and protocol 0 match anything).
type Verdict struct {
	// Enforced: some rule selecting the endpoint enforces the direction
	// (default deny).
	Enforced bool
	// Denied: a deny rule matches, or the direction is enforced and no
	// allow rule matches.
	Denied bool
	// Policies are the policies (Policy.ID) whose matching rules decide:
	// the deny rules' when one matches, else the allow rules'. Empty for a
	// default deny, for traffic no policy enforces, and for the local
	// host's traffic to an endpoint (always allowed).
	Policies []string
	// Known is false when the endpoint's identity is not in u.
	Known bool
}

// Explain says which policies decide a flow of the endpoint of identity
// subject with peer on port/proto, in direction dir.
func (r *Repository) Explain(u *Universe, subject records.ID, dir datapath.Direction, peer records.ID, port uint16, proto uint8) Verdict {
	labels, ok := u.ids[subject]
	if !ok {
		return Verdict{}
	}
	v := Verdict{Known: true}
	var allow, deny []string
	for _, ref := range r.Selecting(labels) {
		rule := ref.Policy.Rules[ref.Index]
		prs := rule.Ingress
		if dir == datapath.Egress {
			prs = rule.Egress
		}
		v.Enforced = v.Enforced || (dir == datapath.Ingress && rule.IngressEnforced) || (dir == datapath.Egress && rule.EgressEnforced)
		for _, pr := range prs {
			entries := map[datapath.Rule]bool{}
			expand(pr, u, entries)
			for e := range entries {
				if (e.Identity == 0 || e.Identity == uint32(peer)) && (e.Port == 0 || e.Port == port) && (e.Proto == 0 || e.Proto == proto) {
					if e.Deny {
						deny = append(deny, ref.Policy.ID())
					} else {
						allow = append(allow, ref.Policy.ID())
					}
					break
				}
			}
		}
	}
	switch {
	case len(deny) > 0:
		v.Denied, v.Policies = true, deny
	case !v.Enforced:
	case dir == datapath.Ingress && peer == records.IDHost && len(allow) == 0:
		// allow-localhost: the host reaches its endpoints
	case len(allow) > 0:
		v.Policies = allow
	default:
		v.Denied = true
	}
	slices.Sort(v.Policies)
	v.Policies = slices.Compact(v.Policies)
	return v
}
