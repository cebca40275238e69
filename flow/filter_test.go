package flow

import (
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

func TestAddFilterNamesBadValues(t *testing.T) {
	cases := []struct{ kind, value, want string }{
		{"verdict", "MAYBE", `--verdict "MAYBE": accepted: FORWARDED, DROPPED, REDIRECTED`},
		{"port", "70000", `--port "70000": accepted: a port number 1 to 65535`},
		{"port", "http", `--port "http": accepted: a port number 1 to 65535`},
		{"protocol", "gre", `--protocol "gre": accepted: tcp, udp, icmp, icmpv6, sctp`},
		{"ip", "10.0.0.300", `--ip "10.0.0.300": accepted: an IP address or CIDR`},
		{"identity", "0", `--identity "0": accepted: an identity number 1 to 16777215`},
		{"pod", "Dev/Client", `--pod "Dev/Client": accepted: [namespace/]pod-name prefix`},
		{"label", "app==web", `--label "app==web": accepted: label selector terms`},
		{"drop-reason", "bad luck", `--drop-reason "bad luck": accepted: "policy denied", "no service backend"`},
		{"cluster", "c_1", `--cluster "c_1": accepted: a cluster name`},
		{"colour", "red", `filter "colour": accepted: pod, from-pod`},
	}
	for _, tc := range cases {
		t.Run(tc.kind+"="+tc.value, func(t *testing.T) {
			var f agentapi.FlowFilter
			err := AddFilter(&f, tc.kind, tc.value)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("AddFilter(%s, %q) = %v, want an error starting %q", tc.kind, tc.value, err, tc.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 12, 18, 14, 7, 37, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"5m":                   now.Add(-5 * time.Minute),
		"2026-12-18T10:00:00Z": time.Date(2026, 12, 18, 10, 0, 0, 0, time.UTC),
		"2026-12-17 09:30:00":  time.Date(2026, 12, 17, 9, 30, 0, 0, time.UTC),
		"13:00:05":             time.Date(2026, 12, 18, 13, 0, 5, 0, time.UTC),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	_, err := ParseTime("yesterday-ish", now)
	if err == nil || !strings.Contains(err.Error(), `time "yesterday-ish": accepted: a duration before now`) {
		t.Errorf("ParseTime(yesterday-ish) = %v, want an error naming the value and the accepted forms", err)
	}
}

func TestFiltersMatch(t *testing.T) {
	fl := &agentapi.Flow{
		Verdict: agentapi.Verdict_DROPPED, DropReason: "policy denied", Protocol: "TCP", Node: "c1-n1", Cluster: "c1",
		Source: &agentapi.FlowEndpoint{Ip: "10.1.0.5", Port: 44805, Identity: 300, Namespace: "dev", PodName: "client-1",
			Labels: []string{"k8s:app=client", "k8s:io.kubernetes.pod.namespace=dev"}},
		Destination: &agentapi.FlowEndpoint{Ip: "10.1.1.7", Port: 80, Identity: 301, Namespace: "dev", PodName: "nginx-dev-1",
			Labels: []string{"k8s:app=nginx", "k8s:io.kubernetes.pod.namespace=dev"}, GlobalIp: "242.1.1.7"},
		DestinationService: &agentapi.FlowService{Namespace: "dev", Name: "nginx", Frontend: "10.96.0.10:80"},
	}
	cases := []struct {
		name  string
		flags [][2]string // kind, value; a kind starting with "!" is negated
		want  bool
	}{
		{"no filter", nil, true},
		{"pod either end", [][2]string{{"pod", "dev/nginx"}}, true},
		{"pod without namespace", [][2]string{{"pod", "client"}}, true},
		{"from-pod is the source", [][2]string{{"from-pod", "dev/nginx"}}, false},
		{"to-pod", [][2]string{{"to-pod", "dev/nginx-dev"}}, true},
		{"namespace", [][2]string{{"namespace", "prod"}}, false},
		{"label any source", [][2]string{{"label", "app=nginx"}}, true},
		{"label with source", [][2]string{{"from-label", "k8s:app=client"}}, true},
		{"label not equal", [][2]string{{"to-label", "app!=nginx"}}, false},
		{"label two terms", [][2]string{{"to-label", "app=nginx,io.kubernetes.pod.namespace=dev"}}, true},
		{"identity", [][2]string{{"identity", "301"}}, true},
		{"reserved identity", [][2]string{{"identity", "world"}}, false},
		{"ip cidr", [][2]string{{"ip", "10.1.1.0/24"}}, true},
		{"global ip of an overlapping mesh's pod", [][2]string{{"ip", "242.1.1.7"}}, true},
		{"another global ip", [][2]string{{"ip", "242.1.1.8"}}, false},
		{"port", [][2]string{{"port", "80"}}, true},
		{"two ports OR", [][2]string{{"port", "443"}, {"port", "44805"}}, true},
		{"protocol any case", [][2]string{{"protocol", "TCP"}}, true},
		{"verdict AND port", [][2]string{{"verdict", "dropped"}, {"port", "443"}}, false},
		{"drop reason with dashes", [][2]string{{"drop-reason", "policy-denied"}}, true},
		{"node", [][2]string{{"node-name", "c1-n2"}}, false},
		{"cluster", [][2]string{{"cluster", "c1"}}, true},
		{"service", [][2]string{{"service", "dev/nginx"}}, true},
		{"not forwarded", [][2]string{{"!verdict", "FORWARDED"}}, true},
		{"not dropped", [][2]string{{"!verdict", "DROPPED"}}, false},
		{"pod but not port 80", [][2]string{{"pod", "dev/client"}, {"!port", "80"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var wl []*agentapi.FlowFilter
			var bl []*agentapi.FlowFilter
			keep := &agentapi.FlowFilter{}
			for _, kv := range tc.flags {
				if kind, ok := strings.CutPrefix(kv[0], "!"); ok {
					neg := &agentapi.FlowFilter{}
					if err := AddFilter(neg, kind, kv[1]); err != nil {
						t.Fatal(err)
					}
					bl = append(bl, neg)
					continue
				}
				if err := AddFilter(keep, kv[0], kv[1]); err != nil {
					t.Fatal(err)
				}
				wl = []*agentapi.FlowFilter{keep}
			}
			m, err := Compile(wl, bl)
			if err != nil {
				t.Fatal(err)
			}
			if got := m(fl); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
}
