package flow

import (
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// FuzzAddFilter: any flag value is either refused with an error or
// accepted, and then the server-side compiler accepts it too (the CLI and
// the agent agree) and the matcher runs without panicking.
func FuzzAddFilter(f *testing.F) {
	for _, s := range [][2]string{
		{"pod", "dev/client"}, {"label", "k8s:app=web,tier!=db"}, {"ip", "10.0.0.0/8"}, {"port", "70000"},
		{"verdict", "MAYBE"}, {"identity", "world"}, {"drop-reason", "policy-denied"}, {"service", "dev/"},
		{"protocol", "udp"}, {"from-label", "a"}, {"namespace", "kube-system"}, {"node-name", "c1-n1"},
	} {
		f.Add(s[0], s[1])
	}
	sample := flowAt(1, agentapi.Verdict_DROPPED, "client-1")
	sample.Source.Labels = []string{"k8s:app=web", "reserved:host", "weird"}
	f.Fuzz(func(t *testing.T, kind, value string) {
		var filter agentapi.FlowFilter
		if err := AddFilter(&filter, kind, value); err != nil {
			return
		}
		m, err := Compile([]*agentapi.FlowFilter{&filter}, []*agentapi.FlowFilter{&filter})
		if err != nil {
			t.Fatalf("AddFilter(%q, %q) accepted a value Compile refuses: %v", kind, value, err)
		}
		if m(sample) {
			t.Fatalf("a flow matched a filter and its negation (%s %q)", kind, value)
		}
	})
}

// FuzzParseTime: a time is parsed or refused, never a panic; durations
// never land in the future.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"5m", "yesterday-ish", "2026-12-18T10:00:00Z", "13:00", "-5m", "1h30m"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 18, 14, 7, 37, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, now)
		if err != nil {
			return
		}
		if _, derr := time.ParseDuration(s); derr == nil && got.After(now) {
			t.Fatalf("ParseTime(%q) = %v, after now", s, got)
		}
	})
}
