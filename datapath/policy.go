package datapath

import (
	"context"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/weftnet/weft/datapath/bpf"
)

// Direction is the side of an endpoint a rule applies to.
type Direction uint8

const (
	Ingress Direction = bpf.DirIngress
	Egress  Direction = bpf.DirEgress
)

// Protocol numbers used in rules and services.
const (
	ProtoAny uint8 = 0
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// Rule is one L3/L4 policy entry of an endpoint. Zero Identity, Port or
// Proto match anything; Deny rules win over Allow rules, which win over
// Redirect rules.
type Rule struct {
	Identity uint32
	Port     uint16
	Proto    uint8
	Deny     bool
	// Redirect admits new flows only through the node's L7 proxy
	// (SetProxy), which decides each request.
	Redirect bool
}

func (r Rule) verdict() uint8 {
	switch {
	case r.Deny:
		return bpf.VerdictDeny
	case r.Redirect:
		return bpf.VerdictRedirect
	}
	return bpf.VerdictAllow
}

// strongerVerdict is the verdict of two entries with one key: deny, then
// allow (an L3/L4 allow admits every request), then redirect.
func strongerVerdict(a, b uint8) uint8 {
	if verdictRank(a) >= verdictRank(b) {
		return a
	}
	return b
}

func verdictRank(v uint8) int {
	switch v {
	case bpf.VerdictDeny:
		return 3
	case bpf.VerdictAllow:
		return 2
	case bpf.VerdictRedirect:
		return 1
	}
	return 0
}

// Policy is an endpoint's computed policy. A direction is enforced (default
// deny) once a policy selects the endpoint in that direction, even with no
// rule; otherwise everything is allowed.
type Policy struct {
	IngressEnforced bool
	Ingress         []Rule
	EgressEnforced  bool
	Egress          []Rule
}

// SetPolicy replaces the policy of endpoint id. New rules are written
// before enforcement is switched on and stale ones deleted after it is
// switched off, so allowed traffic never sees a transient deny. Established
// flows keep passing (conntrack).
func (d *Datapath) SetPolicy(ctx context.Context, id uint16, p Policy) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := map[bpf.PolicyKey]bpf.PolicyValue{}
	for dir, rules := range map[Direction][]Rule{Ingress: p.Ingress, Egress: p.Egress} {
		for _, r := range rules {
			k := bpf.PolicyKey{Identity: r.Identity, EndpointId: id, Dport: bpf.Htons(r.Port), Proto: r.Proto, Direction: uint8(dir)}
			want[k] = bpf.PolicyValue{Verdict: strongerVerdict(want[k].Verdict, r.verdict())}
		}
	}
	for k, v := range want {
		if err := d.objs.WeftPolicy.Put(k, v); err != nil {
			return fmt.Errorf("write policy of endpoint %d: %w", id, err)
		}
	}
	var flags uint16
	if p.IngressEnforced {
		flags |= bpf.EndpointPolicyIngress
	}
	if p.EgressEnforced {
		flags |= bpf.EndpointPolicyEgress
	}
	d.enforced[id] = flags
	if err := d.setEndpointFlags(id, flags); err != nil {
		return err
	}
	return pruneMap(d.objs.WeftPolicy, func(k bpf.PolicyKey) bool {
		_, ok := want[k]
		return k.EndpointId != id || ok
	})
}

// setEndpointFlags updates the enforcement flags of endpoint id if it is
// already in the endpoint map; UpsertEndpoint applies them otherwise.
func (d *Datapath) setEndpointFlags(id uint16, flags uint16) error {
	var (
		key  bpf.EndpointKey
		info bpf.EndpointInfo
	)
	it := d.objs.WeftEndpoints.Iterate()
	for it.Next(&key, &info) {
		if info.Id != id {
			continue
		}
		info.Flags = flags
		if err := d.objs.WeftEndpoints.Update(key, info, ebpf.UpdateExist); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("update policy flags of endpoint %d: %w", id, err)
		}
		return nil
	}
	return it.Err()
}

func (d *Datapath) deletePolicy(id uint16) error {
	return pruneMap(d.objs.WeftPolicy, func(k bpf.PolicyKey) bool { return k.EndpointId != id })
}
