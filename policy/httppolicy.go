package policy

import (
	"fmt"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/state/records"
)

// L7Port is one direction and TCP port of an endpoint whose requests the
// L7 proxy decides.
type L7Port struct {
	Direction datapath.Direction
	Port      uint16
}

// HTTPPolicy decides the requests on one L7 port of an endpoint by the
// peer's identity, as Cilium does: a peer gets the HTTP rules of every
// allow rule selecting it (or any peer) on that port; an L3/L4 allow of
// the port for it lets every request through.
type HTTPPolicy struct {
	peers map[records.ID]*HTTPMatcher // 0: the rules for any peer
	l4    func(peer records.ID) bool  // set: L4HTTPPolicy
}

// L4HTTPPolicy is the policy of a port that has no HTTP rules (any more)
// while connections the datapath handed to the proxy before stay there: a
// peer the L3/L4 policy allows now gets every request through, others
// none.
func L4HTTPPolicy(allows func(peer records.ID) bool) *HTTPPolicy {
	return &HTTPPolicy{l4: allows}
}

// allowAll lets every request through.
var allowAll = &HTTPMatcher{rules: []compiledHTTPRule{{}}}

// Matcher returns the matcher for requests of peer; it denies every
// request when no rule selects peer on the port.
func (h *HTTPPolicy) Matcher(peer records.ID) *HTTPMatcher {
	if h.l4 != nil {
		if h.l4(peer) {
			return allowAll
		}
		return &HTTPMatcher{}
	}
	if m, ok := h.peers[peer]; ok {
		return m
	}
	if m, ok := h.peers[0]; ok {
		return m
	}
	return &HTTPMatcher{}
}

// ComputeHTTP returns the HTTP policies of an endpoint with the given
// identity labels: one per direction and port that some selecting allow
// rule gives HTTP rules (the ports the datapath is to hand to the proxy).
func (r *Repository) ComputeHTTP(subject records.Labels, u *Universe) (map[L7Port]*HTTPPolicy, error) {
	rules := map[L7Port]map[records.ID][]HTTPRule{}
	type l4Allow struct {
		dir  datapath.Direction
		rule datapath.Rule
	}
	var l4 []l4Allow
	for _, ref := range r.Selecting(subject) {
		rule := ref.Policy.Rules[ref.Index]
		for dir, prs := range map[datapath.Direction][]PeerRule{datapath.Ingress: rule.Ingress, datapath.Egress: rule.Egress} {
			for _, pr := range prs {
				if pr.Deny {
					continue // the datapath drops it before the proxy
				}
				entries := map[datapath.Rule]bool{}
				expand(pr, u, entries)
				for e := range entries {
					if !e.Redirect { // the HTTP rules below
						l4 = append(l4, l4Allow{dir, e})
					}
				}
				if len(pr.HTTP) == 0 {
					continue
				}
				ids := peerIDs(pr, u)
				for _, h := range pr.HTTP {
					for _, pp := range h.Ports {
						for port := int(pp.Port); port <= max(int(pp.EndPort), int(pp.Port)); port++ {
							key := L7Port{Direction: dir, Port: uint16(port)}
							if rules[key] == nil {
								rules[key] = map[records.ID][]HTTPRule{}
							}
							for id := range ids {
								rules[key][id] = append(rules[key][id], h.HTTP...)
							}
						}
					}
				}
			}
		}
	}
	out := make(map[L7Port]*HTTPPolicy, len(rules))
	for key, byPeer := range rules {
		// An L3/L4 allow of the port (or of every port) lets all of the
		// peer's requests through.
		for _, a := range l4 {
			e := a.rule
			if a.dir == key.Direction && (e.Port == 0 || e.Port == key.Port) && (e.Proto == 0 || e.Proto == datapath.ProtoTCP) {
				byPeer[records.ID(e.Identity)] = append(byPeer[records.ID(e.Identity)], HTTPRule{})
			}
		}
		h := &HTTPPolicy{peers: map[records.ID]*HTTPMatcher{}}
		for id, rs := range byPeer {
			if id != 0 {
				rs = append(rs, byPeer[0]...)
			}
			m, err := CompileHTTP(rs)
			if err != nil {
				return nil, fmt.Errorf("compile HTTP rules of %s port %d: %w", dirName(key.Direction), key.Port, err)
			}
			h.peers[id] = m
		}
		out[key] = h
	}
	return out, nil
}

func dirName(d datapath.Direction) string {
	if d == datapath.Egress {
		return "egress"
	}
	return "ingress"
}
