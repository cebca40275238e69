package flow

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// FilterKinds are the filter names ParseFilterFlag accepts; they are the
// flags of `weft observe`.
func FilterKinds() []string {
	return []string{"pod", "from-pod", "to-pod", "namespace", "label", "from-label", "to-label",
		"identity", "ip", "port", "protocol", "verdict", "drop-reason", "node-name", "cluster", "service"}
}

// AddFilter checks value as a filter of the given kind and adds it to f.
// The error names the flag, the value and what is accepted.
func AddFilter(f *agentapi.FlowFilter, kind, value string) error {
	bad := func(accepted string) error {
		return fmt.Errorf("--%s %q: accepted: %s", kind, value, accepted)
	}
	switch kind {
	case "pod", "from-pod", "to-pod":
		if !validPodRef(value) {
			return bad("[namespace/]pod-name prefix, lowercase letters, digits, '-' and '.'")
		}
		*podField(f, kind) = append(*podField(f, kind), value)
	case "namespace":
		if !dnsLabel().MatchString(value) {
			return bad("a namespace name (lowercase DNS label)")
		}
		f.Namespace = append(f.Namespace, value)
	case "label", "from-label", "to-label":
		if _, err := parseSelector(value); err != nil {
			return bad(err.Error())
		}
		*labelField(f, kind) = append(*labelField(f, kind), value)
	case "identity":
		id, err := ParseIdentity(value)
		if err != nil {
			return bad("an identity number 1 to 16777215 or one of " + strings.Join(reservedNames(), ", "))
		}
		f.Identity = append(f.Identity, id)
	case "ip":
		if _, err := parsePrefix(value); err != nil {
			return bad("an IP address or CIDR, e.g. 10.0.1.5 or 10.0.0.0/16")
		}
		f.Ip = append(f.Ip, value)
	case "port":
		p, err := strconv.ParseUint(value, 10, 32)
		if err != nil || p < 1 || p > math.MaxUint16 {
			return bad("a port number 1 to 65535")
		}
		f.Port = append(f.Port, uint32(p))
	case "protocol":
		if !slices.Contains(protocolFilterNames(), strings.ToLower(value)) {
			return bad(strings.Join(protocolFilterNames(), ", "))
		}
		f.Protocol = append(f.Protocol, strings.ToLower(value))
	case "verdict":
		v, ok := agentapi.Verdict_value[strings.ToUpper(value)]
		if !ok || v == 0 {
			return bad(strings.Join(verdictNames(), ", "))
		}
		f.Verdict = append(f.Verdict, agentapi.Verdict(v))
	case "drop-reason":
		r, ok := canonicalReason(value)
		if !ok {
			return bad(quoteAll(DropReasons()))
		}
		f.DropReason = append(f.DropReason, r)
	case "node-name":
		if !nodeName().MatchString(value) {
			return bad("a node name (letters, digits, '-', '.', '_')")
		}
		f.Node = append(f.Node, value)
	case "cluster":
		if !dnsLabel().MatchString(value) || len(value) > 32 {
			return bad("a cluster name (lowercase DNS label, at most 32 characters)")
		}
		f.Cluster = append(f.Cluster, value)
	case "service":
		if !validPodRef(value) {
			return bad("[namespace/]service-name")
		}
		f.Service = append(f.Service, value)
	default:
		return fmt.Errorf("filter %q: accepted: %s", kind, strings.Join(FilterKinds(), ", "))
	}
	return nil
}

var (
	dnsLabel = lazyRE(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	podName  = lazyRE(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9.-])?$`)
	nodeName = lazyRE(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,251})?$`)
)

// validPodRef accepts "name" and "namespace/name" (name may be a prefix).
func validPodRef(s string) bool {
	ns, name, found := strings.Cut(s, "/")
	if !found {
		return podName().MatchString(s)
	}
	return dnsLabel().MatchString(ns) && (name == "" || podName().MatchString(name))
}

func podField(f *agentapi.FlowFilter, kind string) *[]string {
	switch kind {
	case "from-pod":
		return &f.SourcePod
	case "to-pod":
		return &f.DestinationPod
	}
	return &f.Pod
}

func labelField(f *agentapi.FlowFilter, kind string) *[]string {
	switch kind {
	case "from-label":
		return &f.SourceLabel
	case "to-label":
		return &f.DestinationLabel
	}
	return &f.Label
}

var reservedIdentities = map[string]uint32{"host": 1, "world": 2, "unmanaged": 3, "health": 4, "remote-node": 6}

func reservedNames() []string { return []string{"host", "world", "unmanaged", "health", "remote-node"} }

// ParseIdentity reads an identity number or a reserved identity's name.
func ParseIdentity(s string) (uint32, error) {
	if id, ok := reservedIdentities[s]; ok {
		return id, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n < 1 || n > 1<<24-1 {
		return 0, fmt.Errorf("identity %q: accepted: 1 to 16777215 or %s", s, strings.Join(reservedNames(), ", "))
	}
	return uint32(n), nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func protocolFilterNames() []string { return []string{"tcp", "udp", "icmp", "icmpv6", "sctp"} }

// canonicalReason accepts a drop reason as printed, in any case, with
// '-' or '_' for spaces ("policy-denied").
func canonicalReason(s string) (string, bool) {
	norm := strings.NewReplacer("-", " ", "_", " ").Replace(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(DropReasons(), norm) {
		return norm, true
	}
	return "", false
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// Time formats ParseTime accepts besides durations.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02", "15:04:05", "15:04"}

// ParseTime reads a --since/--until value: a duration before now ("5m",
// "1h30m"), an RFC 3339 time, a local "2006-01-02 15:04:05", a date, or a
// time of today ("14:07:37", local).
func ParseTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range timeLayouts {
		t, err := time.ParseInLocation(layout, s, now.Location())
		if err != nil {
			continue
		}
		if layout == "15:04:05" || layout == "15:04" {
			y, m, d := now.Date()
			t = time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, now.Location())
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("time %q: accepted: a duration before now (30s, 5m, 1h30m), "+
		"an RFC 3339 time (2006-01-02T15:04:05Z), \"2006-01-02 15:04:05\", a date, or a time of today (15:04:05)", s)
}
