package records

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

const testPrefix = "weft/"

func TestKeysRoundTrip(t *testing.T) {
	k := NewKeys(testPrefix)
	ip := netip.MustParseAddr("10.100.1.7")
	cidr := netip.MustParsePrefix("10.100.1.0/24")
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"cluster config", k.ClusterConfig("c1"), "weft/cluster-config/c1"},
		{"node", k.Node("c1", "n1"), "weft/state/nodes/v1/c1/n1"},
		{"identity", k.Identity(ClusterIdentity(1, 256)), "weft/state/identities/v1/id/65792"},
		{"identity ref", k.IdentityRef(MustParseLabels("k8s:app=web", "k8s:app.kubernetes.io/name=x"), "n1"),
			"weft/state/identities/v1/value/k8s:app=web;k8s:app.kubernetes.io%2Fname=x;/n1"},
		{"ipcache", k.IPCache("c1", ip), "weft/state/ip/v1/c1/10.100.1.7"},
		{"service", k.Service("c1", "default", "web"), "weft/state/services/v1/c1/default/web"},
		{"policy", k.Policy("default", "deny"), "weft/state/policies/v1/default/deny"},
		{"ipam", k.IPAM("c1", cidr), "weft/ipam/v1/c1/10.100.1.0-24"},
		{"ipam v6", k.IPAM("c1", netip.MustParsePrefix("fd00:1::/64")), "weft/ipam/v1/c1/fd00:1::-64"},
		{"remote", k.Remote("c2"), "weft/clustermesh/v1/remotes/c2"},
		{"synced", k.Synced("c1", KindIPCache), "weft/synced/c1/ip"},
		{"pod", k.Pod("c1", "default", "web-0"), "weft/state/pods/v1/c1/default/web-0"},
		{"namespace", k.Namespace("c1", "dev"), "weft/state/namespaces/v1/c1/dev"},
		{"synced k8s pods", k.Synced("c1", KindK8sPods), "weft/synced/c1/k8s-pods"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("key = %q, want %q", tc.got, tc.want)
			}
		})
	}
	if _, got, err := k.ParseIPAMKey(k.IPAM("c1", cidr)); err != nil || got != cidr {
		t.Errorf("ParseIPAMKey = %v, %v; want %v", got, err, cidr)
	}
	if _, got, err := k.ParseIPCacheKey(k.IPCache("c1", ip)); err != nil || got != ip {
		t.Errorf("ParseIPCacheKey = %v, %v; want %v", got, err, ip)
	}
}

// TestLabelsDisplay checks what users read: a label without a value has no
// trailing "=" (reserved:host), and Display parses back to the same label.
func TestLabelsDisplay(t *testing.T) {
	ls, err := ParseLabels("reserved:host", "k8s:app=web", "k8s:empty=")
	if err != nil {
		t.Fatal(err)
	}
	got := ls.Display()
	if want := []string{"k8s:app=web", "k8s:empty", "reserved:host"}; !slices.Equal(got, want) {
		t.Fatalf("Display() = %q, want %q", got, want)
	}
	back, err := ParseLabels(got...)
	if err != nil || !back.Equal(ls) {
		t.Fatalf("ParseLabels(Display()) = %v, %v; want %v", back, err, ls)
	}
}

func TestLabelsAreSortedAndChecked(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    string
		wantErr bool
	}{
		{"sorted", []string{"k8s:b=2", "k8s:a=1"}, "k8s:a=1;k8s:b=2", false},
		{"default source", []string{"app=web"}, "k8s:app=web", false},
		{"namespace", []string{"k8s:io.kubernetes.pod.namespace=default"}, "k8s:io.kubernetes.pod.namespace=default", false},
		{"duplicate key", []string{"k8s:a=1", "k8s:a=2"}, "", true},
		{"empty set", nil, "", true},
		{"bad value", []string{"k8s:a=b c"}, "", true},
		{"semicolon", []string{"k8s:a=b;c"}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ls, err := ParseLabels(tc.in...)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ParseLabels(%q) error = %v, want ErrInvalid", tc.in, err)
				}
				return
			}
			if err != nil || ls.String() != tc.want {
				t.Fatalf("ParseLabels(%q) = %q, %v; want %q", tc.in, ls, err, tc.want)
			}
		})
	}
}

func TestIdentityRanges(t *testing.T) {
	tests := []struct {
		id ID
		ok bool
	}{
		{IDHost, true}, {IDWorld, true}, {IDRemoteNode, true}, {5, false}, {255, false},
		{ClusterIdentity(1, 256), true}, {ClusterIdentity(255, 65535), true},
		{ClusterIdentity(1, 255), false}, {ClusterIdentity(0, 300), false}, {1 << 24, false},
	}
	for _, tc := range tests {
		if err := tc.id.Validate(); (err == nil) != tc.ok {
			t.Errorf("ID(%d).Validate() = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}

func TestDecodeRejectsNamingTheKey(t *testing.T) {
	k := NewKeys(testPrefix)
	key := k.Node("c1", "n1")
	good, err := Encode(key, &Node{Name: "n1", Cluster: "c1", ClusterID: 1, Underlay: []netip.Addr{netip.MustParseAddr("192.168.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		key   string
		value string
	}{
		{"malformed", key, `{"v":1,`},
		{"other version", key, strings.Replace(string(good), `"v":1`, `"v":2`, 1)},
		{"oversized", key, string(good) + strings.Repeat(" ", MaxSmallRecord)},
		{"name differs from key", k.Node("c1", "n2"), string(good)},
		{"cluster differs from key", k.Node("c2", "n1"), string(good)},
		{"no underlay", key, `{"v":1,"name":"n1","cluster":"c1","clusterID":1}`},
		{"trailing data", key, string(good) + `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := k.DecodeNode(tc.key, []byte(tc.value))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("DecodeNode error = %v, want ErrInvalid naming %s", err, tc.key)
			}
		})
	}
	if n, err := k.DecodeNode(key, good); err != nil || n.Name != "n1" {
		t.Fatalf("DecodeNode(good) = %+v, %v", n, err)
	}
}

func TestServiceValidation(t *testing.T) {
	base := func() Service {
		return Service{Cluster: "c1", Namespace: "default", Name: "web", Type: ServiceClusterIP,
			Frontends: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
			Ports:     []ServicePort{{Name: "http", Port: 80, TargetPort: 8080, Protocol: ProtoTCP}},
			Selector:  map[string]string{"app": "web"}}
	}
	no := false
	tests := []struct {
		name   string
		mutate func(*Service)
		ok     bool
	}{
		{"valid", func(*Service) {}, true},
		{"not shared, local affinity", func(s *Service) { s.Global, s.Shared, s.Affinity = true, &no, ClusterAffinityLocal }, true},
		{"bad type", func(s *Service) { s.Type = "Magic" }, false},
		{"bad affinity", func(s *Service) { s.Affinity = "sideways" }, false},
		{"exported with its ClusterSetIP", func(s *Service) {
			s.Global, s.Exported, s.ClusterSetIP = true, true, netip.MustParseAddr("10.96.7.7")
		}, true},
		{"ClusterSetIP of a local service", func(s *Service) { s.ClusterSetIP = netip.MustParseAddr("10.96.7.7") }, false},
		{"unspecified ClusterSetIP", func(s *Service) { s.Global, s.ClusterSetIP = true, netip.IPv4Unspecified() }, false},
		{"duplicate port", func(s *Service) { s.Ports = append(s.Ports, s.Ports[0]) }, false},
		{"timeout without affinity", func(s *Service) { s.SessionAffinityTimeout = 10 }, false},
		{"client IP affinity", func(s *Service) { s.SessionAffinity, s.SessionAffinityTimeout = AffinityClientIP, 10800 }, true},
		{"node port on cluster IP", func(s *Service) { s.Ports[0].NodePort = 30000 }, false},
		{"bad backend", func(s *Service) { s.Backends = []Backend{{IP: netip.MustParseAddr("10.0.0.1"), Protocol: ProtoTCP}} }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.mutate(&s)
			key := NewKeys(testPrefix).Service(s.Cluster, s.Namespace, s.Name)
			b, err := Encode(key, &s)
			if (err == nil) != tc.ok {
				t.Fatalf("Encode error = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			got, err := NewKeys(testPrefix).DecodeService(key, b)
			if err != nil || got.IsShared() != s.IsShared() || got.Affinity != s.Affinity {
				t.Fatalf("DecodeService = %+v, %v", got, err)
			}
		})
	}
}
