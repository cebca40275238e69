package policy

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/weftnet/weft/state/records"
)

// selector reads a label selector (matchLabels, matchExpressions). Keys
// without a source get def: SourceAny for Cilium, k8s for Kubernetes.
// mapKey rewrites each (source, key) pair, for namespace selectors.
func (d *decoder) selector(path string, v any, def string, mapKey func(src, key string) (string, string)) (Selector, bool) {
	m := d.object(path, v, "matchLabels", "matchExpressions")
	if m == nil && v != nil {
		return Selector{}, false
	}
	before := len(d.errs)
	var reqs []Requirement
	add := func(p, k, op string, values []string) {
		src, key := splitKey(k, def)
		if mapKey != nil {
			src, key = mapKey(src, key)
		}
		if key == "" || len(key) > records.MaxLabelKeyLen {
			d.fail(p, "label key %q: must be 1 to %d characters", k, records.MaxLabelKeyLen)
			return
		}
		slices.Sort(values)
		reqs = append(reqs, Requirement{Source: src, Key: key, Op: op, Values: slices.Compact(values)})
	}
	labels := d.strMap(join(path, "matchLabels"), m["matchLabels"])
	for _, k := range sortedKeys(labels) {
		add(join(join(path, "matchLabels"), k), k, OpIn, []string{labels[k]})
	}
	for i, e := range d.list(join(path, "matchExpressions"), m["matchExpressions"]) {
		p := index(join(path, "matchExpressions"), i)
		em := d.object(p, e, "key", "operator", "values")
		if em == nil {
			continue
		}
		key, _ := d.str(join(p, "key"), em["key"])
		op, _ := d.str(join(p, "operator"), em["operator"])
		var values []string
		for j, val := range d.list(join(p, "values"), em["values"]) {
			if s, ok := d.str(index(join(p, "values"), j), val); ok {
				values = append(values, s)
			}
		}
		switch op {
		case OpIn, OpNotIn:
			if len(values) == 0 {
				d.fail(join(p, "values"), "operator %s needs at least one value", op)
				continue
			}
		case OpExists, OpDoesNotExist:
			if len(values) > 0 {
				d.fail(join(p, "values"), "operator %s takes no values", op)
				continue
			}
		default:
			d.fail(join(p, "operator"), "%q is not supported; accepted are In, NotIn, Exists, DoesNotExist", op)
			continue
		}
		add(p, key, op, values)
	}
	return newSelector(reqs), len(d.errs) == before
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// hasReserved reports whether s selects by a reserved label (reserved:host):
// those identities have no namespace, so no namespace is added.
func (s Selector) hasReserved() bool {
	for _, r := range s.Requirements {
		if r.Source == records.SourceReserved {
			return true
		}
	}
	return false
}

// prefix reads an IPv4 CIDR or address (a /32).
func (d *decoder) prefix(path string, v any) (netip.Prefix, bool) {
	s, ok := d.str(path, v)
	if !ok {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			d.fail(path, "%q is not a CIDR; accepted is an IPv4 prefix such as 10.0.0.0/8 or an address", s)
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if !p.Addr().Is4() {
		d.fail(path, "%q: IPv6 CIDRs are not supported yet; accepted is an IPv4 prefix", s)
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

// cidrRule reads a CIDR with its except prefixes, which must lie within it.
func (d *decoder) cidrRule(path string, cidr any, cidrPath string, except []any, exceptPath string) (*CIDRRule, bool) {
	p, ok := d.prefix(cidrPath, cidr)
	if !ok {
		return nil, false
	}
	r := &CIDRRule{Prefix: p}
	for i, e := range except {
		ep := index(exceptPath, i)
		x, ok := d.prefix(ep, e)
		if !ok {
			return nil, false
		}
		if !p.Contains(x.Addr()) || x.Bits() < p.Bits() {
			d.fail(ep, "%s is not within %s; accepted are prefixes inside the CIDR", x, p)
			return nil, false
		}
		r.Except = append(r.Except, x)
	}
	return r, true
}

// port reads a port number; "" and 0 are every port. Named ports are refused.
func (d *decoder) port(path string, v any) (uint16, bool) {
	var s string
	switch v := v.(type) {
	case nil:
		return 0, true
	case json.Number:
		s = v.String()
	case string:
		s = v
	default:
		d.fail(path, "expected a port number, got %s", describe(v))
		return 0, false
	}
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		if strings.Trim(s, "0123456789") != "" {
			d.fail(path, "named port %q: named ports are not supported yet; accepted is a number 1-65535", s)
		} else {
			d.fail(path, "%s is not a port; accepted is 1-65535", s)
		}
		return 0, false
	}
	return uint16(n), true
}

// portRange checks port..end and the protocol and returns the range.
func (d *decoder) portRange(path string, port uint16, endV any, proto uint8) (PortRange, bool) {
	pr := PortRange{Port: port, Proto: proto}
	if endV == nil {
		return pr, true
	}
	end, ok := d.port(join(path, "endPort"), endV)
	if !ok {
		return pr, false
	}
	switch {
	case end == 0:
	case port == 0:
		d.fail(join(path, "endPort"), "%d needs a port; accepted is endPort with a port at or below it", end)
		return pr, false
	case end < port:
		d.fail(join(path, "endPort"), "%d is below port %d; accepted is port <= endPort", end, port)
		return pr, false
	case int(end)-int(port)+1 > MaxPortRange:
		d.fail(join(path, "endPort"), "range %d-%d covers %d ports; at most %d are accepted", port, end, int(end)-int(port)+1, MaxPortRange)
		return pr, false
	case end > port:
		pr.EndPort = end
	}
	return pr, true
}

// protocol reads TCP, UDP or (when any is set) ANY.
func (d *decoder) protocol(path string, v any, def uint8, accepted ...string) (uint8, bool) {
	if v == nil {
		return def, true
	}
	s, ok := d.str(path, v)
	if !ok {
		return 0, false
	}
	if slices.Contains(accepted, s) {
		switch s {
		case "TCP":
			return 6, true
		case "UDP":
			return 17, true
		case "ANY":
			return 0, true
		}
	}
	d.fail(path, "%q is not supported; accepted are %s", s, strings.Join(accepted, ", "))
	return 0, false
}
