package records

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// fuzzDecoder checks one decoder: every error wraps ErrInvalid and names the
// key; every accepted value re-encodes to a canonical form that decodes to
// the same canonical form.
func fuzzDecoder[R any, P interface {
	*R
	Record
}](f *testing.F, seeds [][2]string, dec func(Keys, string, []byte) (R, error)) {
	for _, s := range seeds {
		f.Add(s[0], []byte(s[1]))
	}
	k := NewKeys(testPrefix)
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		r, err := dec(k, key, value)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode %q: error %v does not wrap ErrInvalid", key, err)
			}
			if !strings.Contains(err.Error(), key) && !strings.Contains(err.Error(), strconv.Quote(key)) {
				t.Fatalf("decode %q: error %q does not name the key", key, err)
			}
			return
		}
		b1, err := Encode(key, P(&r))
		if err != nil {
			t.Fatalf("re-encode accepted %q: %v", key, err)
		}
		r2, err := dec(k, key, b1)
		if err != nil {
			t.Fatalf("decode re-encoded %s: %v", b1, err)
		}
		b2, err := Encode(key, P(&r2))
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("canonical form not stable:\n%s\n%s (%v)", b1, b2, err)
		}
	})
}

func FuzzDecodeNode(f *testing.F) {
	fuzzDecoder(f, [][2]string{
		{"weft/state/nodes/v1/c1/n1", `{"v":1,"name":"n1","cluster":"c1","clusterID":1,"underlayIPs":["192.168.0.1"],"podCIDRs":["10.100.1.0/24"],"healthIP":"10.100.1.2","bootID":"b"}`},
		{"weft/state/nodes/v1/c1/n1", `{"v":1,"name":"n2","cluster":"c1","clusterID":1,"underlayIPs":["192.168.0.1"]}`},
		{"weft/state/nodes/v1/c1", `{}`},
	}, Keys.DecodeNode)
}

func FuzzDecodeIdentity(f *testing.F) {
	fuzzDecoder(f, [][2]string{
		{"weft/state/identities/v1/id/65792", `{"v":1,"id":65792,"labels":[{"source":"k8s","key":"app","value":"web"}]}`},
		{"weft/state/identities/v1/id/1", `{"v":1,"id":1,"labels":[{"source":"reserved","key":"host"}]}`},
		{"weft/state/identities/v1/id/65792", `{"v":1,"id":65792,"labels":[{"source":"k8s","key":"b"},{"source":"k8s","key":"a"}]}`},
	}, Keys.DecodeIdentity)
}

func FuzzDecodeIdentityRef(f *testing.F) {
	fuzzDecoder(f, [][2]string{
		{"weft/state/identities/v1/value/k8s:app=web;/n1", `{"v":1,"id":65792}`},
		{"weft/state/identities/v1/value/n1", `{"v":1,"id":65792}`},
	}, Keys.DecodeIdentityRef)
}

func FuzzDecodeIPCacheEntry(f *testing.F) {
	fuzzDecoder(f, [][2]string{
		{"weft/state/ip/v1/c1/10.100.1.7", `{"v":1,"ip":"10.100.1.7","identity":65792,"hostIP":"192.168.0.1","namespace":"default","pod":"web-1","namedPorts":[{"name":"http","port":80,"protocol":"TCP"}]}`},
		{"weft/state/ip/v1/c1/fd00::7", `{"v":1,"ip":"fd00::7","identity":2}`},
		{"weft/state/ip/v1/c1/10.100.1.8", `{"v":1,"ip":"10.100.1.7","identity":65792}`},
		{"weft/state/ip/v1/c1/10.100.1.7", `{"v":1,"ip":"10.100.1.7","identity":65792,"hostIP":"192.168.0.1","globalIP":"242.1.1.7"}`},
		{"weft/state/ip/v1/c1/fd00::7", `{"v":1,"ip":"fd00::7","identity":65792,"globalIP":"242.1.1.7"}`},
	}, Keys.DecodeIPCacheEntry)
}

func FuzzDecodeService(f *testing.F) {
	fuzzDecoder(f, [][2]string{
		{"weft/state/services/v1/c1/default/web", `{"v":1,"cluster":"c1","namespace":"default","name":"web","type":"ClusterIP","frontends":["10.96.0.10"],"ports":[{"name":"http","port":80,"targetPort":8080,"protocol":"TCP"}],"selector":{"app":"web"},"backends":[{"ip":"10.100.1.7","port":8080,"protocol":"TCP","node":"n1","ready":true}],"global":true,"shared":false,"affinity":"local","sessionAffinity":"ClientIP","sessionAffinityTimeoutSeconds":10800}`},
		{"weft/state/services/v1/c1/default/web", `{"v":1,"cluster":"c1","namespace":"default","name":"web","type":"NodePort","frontends":[],"ports":[{"port":80,"targetPort":80,"nodePort":30080,"protocol":"UDP"}]}`},
	}, Keys.DecodeService)
}

func FuzzDecodePolicyRef(f *testing.F) {
	fuzzDecoder(f, [][2]string{
		{"weft/state/policies/v1/default/deny", `{"v":1,"namespace":"default","name":"deny","format":"cilium","source":"cli","document":"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"}`},
	}, Keys.DecodePolicyRef)
}

func FuzzDecodeClusterConfig(f *testing.F) {
	fuzzDecoder(f, [][2]string{
		{"weft/cluster-config/c1", `{"v":1,"name":"c1","id":1,"capabilities":["ipv4"],"podCIDRs":["10.100.0.0/16"],"podCIDRMaskSize":24,"routing":"tunnel"}`},
		{"weft/cluster-config/c1", `{"v":1,"name":"c1","id":1,"podCIDRs":["10.100.0.0/16","10.100.0.0/17"],"podCIDRMaskSize":24,"routing":"native"}`},
		{"weft/cluster-config/c1", `{"v":1,"name":"c1","id":1,"podCIDRs":["10.100.0.0/16"],"podCIDRMaskSize":24,"routing":"tunnel","globalCIDR":"242.1.0.0/16","serviceCIDRs":["10.96.0.0/16"]}`},
		{"weft/cluster-config/c1", `{"v":1,"name":"c1","id":1,"podCIDRs":["10.100.0.0/16"],"podCIDRMaskSize":24,"routing":"tunnel","globalCIDR":"10.100.0.0/16"}`},
	}, Keys.DecodeClusterConfig)
}

func FuzzDecodePodCIDR(f *testing.F) {
	fuzzDecoder(f, [][2]string{
		{"weft/ipam/v1/c1/10.100.1.0-24", `{"v":1,"cidr":"10.100.1.0/24","node":"n1"}`},
		{"weft/ipam/v1/c1/fd00:1::-64", `{"v":1,"cidr":"fd00:1::/64","node":"n1"}`},
	}, Keys.DecodePodCIDR)
}

func FuzzDecodeRemote(f *testing.F) {
	fuzzDecoder(f, [][2]string{
		{"weft/clustermesh/v1/remotes/c2", `{"v":1,"cluster":"c2","endpoints":["https://10.0.0.2:2379"],"ca":"-----BEGIN CERTIFICATE-----"}`},
	}, Keys.DecodeRemote)
}

func FuzzDecodePod(f *testing.F) {
	fuzzDecoder(f, [][2]string{
		{"weft/state/pods/v1/c1/default/web-0", `{"v":1,"cluster":"c1","namespace":"default","name":"web-0","labels":{"app":"web"},"node":"n1","ips":["10.100.1.5"],"phase":"Running","ready":true,"source":"kubernetes"}`},
		{"weft/state/pods/v1/c1/default/web-0", `{"v":1,"cluster":"c1","namespace":"default","name":"web-1"}`},
		{"weft/state/pods/v1/c1/default/web-0", `{"v":1,"cluster":"c1","namespace":"default","name":"web-0","phase":"Sleeping"}`},
	}, Keys.DecodePod)
}

func FuzzDecodeNamespace(f *testing.F) {
	fuzzDecoder(f, [][2]string{
		{"weft/state/namespaces/v1/c1/dev", `{"v":1,"cluster":"c1","name":"dev","labels":{"team":"a"},"source":"kubernetes"}`},
		{"weft/state/namespaces/v1/c1/dev", `{"v":1,"cluster":"c2","name":"dev"}`},
	}, Keys.DecodeNamespace)
}
