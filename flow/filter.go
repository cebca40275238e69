package flow

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/weftnet/weft/api/agentapi"
)

// Matcher says whether a flow passes a request's filters.
type Matcher func(*agentapi.Flow) bool

// Compile checks filters received on the wire and returns the matcher of
// "matches one of whitelist (or whitelist is empty) and none of
// blacklist". Errors name the bad value and what is accepted.
func Compile(whitelist, blacklist []*agentapi.FlowFilter) (Matcher, error) {
	wl, err := compileAll(whitelist)
	if err != nil {
		return nil, err
	}
	bl, err := compileAll(blacklist)
	if err != nil {
		return nil, fmt.Errorf("negated filter: %w", err)
	}
	return func(f *agentapi.Flow) bool {
		if len(wl) > 0 && !slices.ContainsFunc(wl, func(m Matcher) bool { return m(f) }) {
			return false
		}
		return !slices.ContainsFunc(bl, func(m Matcher) bool { return m(f) })
	}, nil
}

func compileAll(fs []*agentapi.FlowFilter) ([]Matcher, error) {
	out := make([]Matcher, 0, len(fs))
	for _, f := range fs {
		m, err := compile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// compile turns one filter into the AND of its fields, each the OR of its
// values. Values are checked with AddFilter, the parser the CLI uses.
func compile(f *agentapi.FlowFilter) (Matcher, error) {
	var ms []Matcher
	check := func(kind string, values []string) error {
		var scratch agentapi.FlowFilter
		for _, v := range values {
			if err := AddFilter(&scratch, kind, v); err != nil {
				return err
			}
		}
		return nil
	}
	strs := []struct {
		kind   string
		values []string
		match  func(f *agentapi.Flow, v string) bool
	}{
		{"pod", f.Pod, func(fl *agentapi.Flow, v string) bool {
			return podMatch(fl.GetSource(), v) || podMatch(fl.GetDestination(), v)
		}},
		{"from-pod", f.SourcePod, func(fl *agentapi.Flow, v string) bool { return podMatch(fl.GetSource(), v) }},
		{"to-pod", f.DestinationPod, func(fl *agentapi.Flow, v string) bool { return podMatch(fl.GetDestination(), v) }},
		{"namespace", f.Namespace, func(fl *agentapi.Flow, v string) bool {
			return fl.GetSource().GetNamespace() == v || fl.GetDestination().GetNamespace() == v
		}},
		{"protocol", f.Protocol, func(fl *agentapi.Flow, v string) bool { return strings.EqualFold(fl.GetProtocol(), v) }},
		{"drop-reason", f.DropReason, func(fl *agentapi.Flow, v string) bool {
			r, _ := canonicalReason(v)
			return fl.GetVerdict() == agentapi.Verdict_DROPPED && fl.GetDropReason() == r
		}},
		{"node-name", f.Node, func(fl *agentapi.Flow, v string) bool { return fl.GetNode() == v }},
		{"cluster", f.Cluster, func(fl *agentapi.Flow, v string) bool { return fl.GetCluster() == v }},
		{"service", f.Service, serviceMatch},
	}
	for _, s := range strs {
		if len(s.values) == 0 {
			continue
		}
		if err := check(s.kind, s.values); err != nil {
			return nil, err
		}
		ms = append(ms, anyOf(s.values, s.match))
	}
	for _, l := range []struct {
		kind   string
		values []string
		ends   func(*agentapi.Flow) []*agentapi.FlowEndpoint
	}{
		{"label", f.Label, bothEnds},
		{"from-label", f.SourceLabel, func(fl *agentapi.Flow) []*agentapi.FlowEndpoint { return []*agentapi.FlowEndpoint{fl.GetSource()} }},
		{"to-label", f.DestinationLabel, func(fl *agentapi.Flow) []*agentapi.FlowEndpoint { return []*agentapi.FlowEndpoint{fl.GetDestination()} }},
	} {
		if len(l.values) == 0 {
			continue
		}
		sels := make([]selector, len(l.values))
		for i, v := range l.values {
			s, err := parseSelector(v)
			if err != nil {
				return nil, fmt.Errorf("--%s %q: accepted: %v", l.kind, v, err)
			}
			sels[i] = s
		}
		ends := l.ends
		ms = append(ms, func(fl *agentapi.Flow) bool {
			return slices.ContainsFunc(sels, func(s selector) bool {
				return slices.ContainsFunc(ends(fl), func(ep *agentapi.FlowEndpoint) bool { return s.matches(ep.GetLabels()) })
			})
		})
	}
	if len(f.Identity) > 0 {
		for _, id := range f.Identity {
			if id == 0 || id > 1<<24-1 {
				return nil, fmt.Errorf("--identity %d: accepted: 1 to 16777215", id)
			}
		}
		ids := f.Identity
		ms = append(ms, func(fl *agentapi.Flow) bool {
			return slices.Contains(ids, fl.GetSource().GetIdentity()) || slices.Contains(ids, fl.GetDestination().GetIdentity())
		})
	}
	if len(f.Ip) > 0 {
		prefixes := make([]netip.Prefix, len(f.Ip))
		for i, v := range f.Ip {
			p, err := parsePrefix(v)
			if err != nil {
				return nil, fmt.Errorf("--ip %q: accepted: an IP address or CIDR, e.g. 10.0.1.5 or 10.0.0.0/16", v)
			}
			prefixes[i] = p
		}
		ms = append(ms, func(fl *agentapi.Flow) bool {
			return slices.ContainsFunc(prefixes, func(p netip.Prefix) bool {
				// A pod of an overlapping mesh also by its global address.
				return inPrefix(p, fl.GetSource().GetIp()) || inPrefix(p, fl.GetDestination().GetIp()) ||
					inPrefix(p, fl.GetSource().GetGlobalIp()) || inPrefix(p, fl.GetDestination().GetGlobalIp())
			})
		})
	}
	if len(f.Port) > 0 {
		for _, p := range f.Port {
			if p < 1 || p > 65535 {
				return nil, fmt.Errorf("--port %d: accepted: a port number 1 to 65535", p)
			}
		}
		ports := f.Port
		ms = append(ms, func(fl *agentapi.Flow) bool {
			return slices.Contains(ports, fl.GetSource().GetPort()) || slices.Contains(ports, fl.GetDestination().GetPort())
		})
	}
	if len(f.Verdict) > 0 {
		for _, v := range f.Verdict {
			if _, ok := agentapi.Verdict_name[int32(v)]; !ok || v == agentapi.Verdict_VERDICT_UNKNOWN {
				return nil, fmt.Errorf("--verdict %d: accepted: %s", v, strings.Join(verdictNames(), ", "))
			}
		}
		vs := f.Verdict
		ms = append(ms, func(fl *agentapi.Flow) bool { return slices.Contains(vs, fl.GetVerdict()) })
	}
	return func(fl *agentapi.Flow) bool {
		for _, m := range ms {
			if !m(fl) {
				return false
			}
		}
		return true
	}, nil
}

func anyOf(values []string, match func(*agentapi.Flow, string) bool) Matcher {
	return func(fl *agentapi.Flow) bool {
		return slices.ContainsFunc(values, func(v string) bool { return match(fl, v) })
	}
}

func bothEnds(fl *agentapi.Flow) []*agentapi.FlowEndpoint {
	return []*agentapi.FlowEndpoint{fl.GetSource(), fl.GetDestination()}
}

// podMatch: "ns/prefix" needs the namespace and a pod name starting with
// prefix; "prefix" alone matches pods of any namespace.
func podMatch(ep *agentapi.FlowEndpoint, ref string) bool {
	if ep.GetPodName() == "" {
		return false
	}
	ns, name, found := strings.Cut(ref, "/")
	if !found {
		return strings.HasPrefix(ep.GetPodName(), ref)
	}
	return ep.GetNamespace() == ns && strings.HasPrefix(ep.GetPodName(), name)
}

func serviceMatch(fl *agentapi.Flow, ref string) bool {
	svc := fl.GetDestinationService()
	if svc == nil {
		return false
	}
	ns, name, found := strings.Cut(ref, "/")
	if !found {
		return svc.GetName() == ref
	}
	return svc.GetNamespace() == ns && svc.GetName() == name
}

func inPrefix(p netip.Prefix, ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && p.Contains(a)
}

// selector is a label selector: every term must hold.
type selector []term

type term struct {
	source, key, value string // source empty: any source
	op                 string // "exists", "=", "!="
}

// The patterns compile on first use: their bounded repetitions take
// milliseconds to compile, which every daemon would otherwise pay at start.
var (
	labelKey   = lazyRE(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,316}[A-Za-z0-9])?$`)
	labelValue = lazyRE(`^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$`)
	labelSrc   = lazyRE(`^[a-z0-9-]{1,32}$`)
)

func lazyRE(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// parseSelector reads "key", "key=value", "key!=value" terms separated by
// commas; a key may carry its source ("k8s:app=web").
func parseSelector(s string) (selector, error) {
	errAccepted := errors.New(`label selector terms key, key=value or key!=value separated by commas; ` +
		`a key may name its source (k8s:app=web)`)
	if strings.TrimSpace(s) == "" {
		return nil, errAccepted
	}
	var sel selector
	for _, raw := range strings.Split(s, ",") {
		t := term{op: "exists"}
		kv := strings.TrimSpace(raw)
		if k, v, ok := strings.Cut(kv, "!="); ok {
			t.op, kv, t.value = "!=", k, v
		} else if k, v, ok := strings.Cut(kv, "="); ok {
			t.op, kv, t.value = "=", k, v
		}
		if src, k, ok := strings.Cut(kv, ":"); ok {
			t.source, kv = src, k
			if !labelSrc().MatchString(src) {
				return nil, errAccepted
			}
		}
		t.key = kv
		if !labelKey().MatchString(t.key) || !labelValue().MatchString(t.value) {
			return nil, errAccepted
		}
		sel = append(sel, t)
	}
	return sel, nil
}

func (s selector) matches(labels []string) bool {
	for _, t := range s {
		if !t.holds(labels) {
			return false
		}
	}
	return true
}

func (t term) holds(labels []string) bool {
	found := false
	for _, l := range labels {
		src, kv, ok := strings.Cut(l, ":")
		if !ok {
			src, kv = "", l
		}
		k, v, _ := strings.Cut(kv, "=")
		if k != t.key || (t.source != "" && src != t.source) {
			continue
		}
		found = true
		if t.op == "=" && v == t.value {
			return true
		}
		if t.op == "!=" && v == t.value {
			return false
		}
	}
	switch t.op {
	case "exists":
		return found
	case "!=":
		return true
	}
	return false
}
