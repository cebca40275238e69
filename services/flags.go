package services

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Flags are the raw values of `weft service create|update` flags.
type Flags struct {
	Namespace       string
	Name            string
	Type            string
	ClusterIP       string
	Ports           []string // [name=]port[:targetPort[:nodePort]][/TCP|UDP]
	ExternalIPs     []string
	LoadBalancerIPs []string
	Selector        []string // k=v, or k=v,k2=v2
	Backends        []string // ip:port
	SessionAffinity string
	AffinityTimeout uint32
	Annotations     []string // k=v
}

// ParseFlags turns flag values into a validated Spec.
func ParseFlags(f Flags) (Spec, error) {
	s := Spec{Namespace: f.Namespace, Name: f.Name, Type: f.Type, SessionAffinity: f.SessionAffinity, AffinityTimeout: f.AffinityTimeout}
	if f.ClusterIP != "" {
		ip, err := netip.ParseAddr(f.ClusterIP)
		if err != nil {
			return Spec{}, invalid("--cluster-ip %q: an IPv4 address such as 10.96.0.10 is accepted", f.ClusterIP)
		}
		s.ClusterIP = ip
	}
	for _, v := range f.Ports {
		p, err := ParsePort(v)
		if err != nil {
			return Spec{}, err
		}
		s.Ports = append(s.Ports, p)
	}
	var err error
	if s.ExternalIPs, err = parseAddrs("--external-ip", f.ExternalIPs); err != nil {
		return Spec{}, err
	}
	if s.LoadBalancerIPs, err = parseAddrs("--lb-ip", f.LoadBalancerIPs); err != nil {
		return Spec{}, err
	}
	if s.Selector, err = parsePairs("--selector", f.Selector); err != nil {
		return Spec{}, err
	}
	if s.Annotations, err = parsePairs("--annotation", f.Annotations); err != nil {
		return Spec{}, err
	}
	for _, v := range f.Backends {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(v))
		if err != nil {
			return Spec{}, invalid("--backend %q: ip:port such as 10.100.1.5:8080 is accepted", v)
		}
		s.Backends = append(s.Backends, ap)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// ParsePort parses [name=]port[:targetPort[:nodePort]][/TCP|UDP], e.g.
// "80:8080/TCP", "http=80:8080", "53/UDP", "80:8080:30080".
func ParsePort(v string) (Port, error) {
	bad := func(why string) (Port, error) {
		return Port{}, invalid("--port %q: %s; accepted is [name=]port[:targetPort[:nodePort]][/TCP|UDP], e.g. 80:8080/TCP", v, why)
	}
	var p Port
	rest := v
	if name, r, ok := strings.Cut(rest, "="); ok {
		p.Name, rest = name, r
	}
	rest, proto, hasProto := strings.Cut(rest, "/")
	p.Protocol = "TCP"
	if hasProto {
		p.Protocol = strings.ToUpper(proto)
		if p.Protocol != "TCP" && p.Protocol != "UDP" {
			return bad(fmt.Sprintf("protocol %q is not TCP or UDP", proto))
		}
	}
	nums := strings.Split(rest, ":")
	if len(nums) > 3 {
		return bad("too many ':'")
	}
	var vals [3]uint16
	for i, n := range nums {
		x, err := strconv.ParseUint(n, 10, 16)
		if err != nil || x == 0 {
			return bad(fmt.Sprintf("%q is not a port 1-65535", n))
		}
		vals[i] = uint16(x)
	}
	p.Port, p.TargetPort, p.NodePort = vals[0], vals[1], vals[2]
	if p.TargetPort == 0 {
		p.TargetPort = p.Port
	}
	return p, nil
}

func parseAddrs(flag string, vs []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, v := range vs {
		ip, err := netip.ParseAddr(strings.TrimSpace(v))
		if err != nil || !ip.Is4() {
			return nil, invalid("%s %q: an IPv4 address such as 192.0.2.10 is accepted", flag, v)
		}
		out = append(out, ip)
	}
	return out, nil
}

// parsePairs parses k=v values, each possibly a comma-separated list.
func parsePairs(flag string, vs []string) (map[string]string, error) {
	if len(vs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, v := range vs {
		for _, kv := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k == "" {
				return nil, invalid("%s %q: key=value is accepted", flag, kv)
			}
			if old, dup := out[k]; dup && old != val {
				return nil, invalid("%s %q: key %q given twice with different values", flag, kv, k)
			}
			out[k] = val
		}
	}
	return out, nil
}
