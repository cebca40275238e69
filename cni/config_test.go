package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestParseConfig(t *testing.T) {
	const sock = `"agentSocket": "/var/run/weft/agent.sock"`
	for _, tc := range []struct {
		name string
		conf string
		code uint   // 0: valid
		want string // part of the message
	}{
		{name: "minimal 1.1", conf: `{"cniVersion": "1.1.0", "name": "weft", "type": "weft-cni", ` + sock + `}`},
		{name: "1.0 with everything", conf: `{"cniVersion": "1.0.0", "name": "weft", "type": "weft-cni", ` + sock + `,
			"logFile": "/var/log/weft-cni.log", "capabilities": {"portMappings": true, "labels": true},
			"runtimeConfig": {"labels": {"app": "web"}, "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "udp", "hostIP": "10.0.0.1"}]}}`},
		{name: "unknown fields are ignored", conf: `{"cniVersion": "1.1.0", "name": "weft", ` + sock + `, "somethingElse": [1, 2]}`},
		{name: "not JSON", conf: `cniVersion: 1.1.0`, code: types.ErrDecodingFailure, want: "invalid JSON at byte 1"},
		{name: "truncated", conf: `{"cniVersion": "1.1.0"`, code: types.ErrDecodingFailure, want: "invalid JSON"},
		{name: "empty", conf: ``, code: types.ErrDecodingFailure, want: "parse network config"},
		{name: "no cniVersion", conf: `{"name": "weft", ` + sock + `}`, code: types.ErrInvalidNetworkConfig, want: "no cniVersion: accepted are 1.0.0, 1.1.0"},
		{name: "unknown cniVersion", conf: `{"cniVersion": "2.0.0", "name": "weft", ` + sock + `}`, code: types.ErrIncompatibleCNIVersion, want: `cniVersion "2.0.0" is not supported: accepted are 1.0.0, 1.1.0`},
		{name: "cniVersion a number", conf: `{"cniVersion": 1, "name": "weft", ` + sock + `}`, code: types.ErrInvalidNetworkConfig, want: `field "cniVersion" is a JSON number, accepted is a JSON string`},
		{name: "no name", conf: `{"cniVersion": "1.1.0", ` + sock + `}`, code: types.ErrInvalidNetworkConfig, want: "no name"},
		{name: "bad name", conf: `{"cniVersion": "1.1.0", "name": "we ft", ` + sock + `}`, code: types.ErrInvalidNetworkConfig, want: `name "we ft" is invalid`},
		{name: "ipam given", conf: `{"cniVersion": "1.1.0", "name": "weft", ` + sock + `, "ipam": {"type": "host-local"}}`, code: types.ErrUnsupportedField, want: `field "ipam" (type "host-local") is not supported`},
		{name: "no agentSocket", conf: `{"cniVersion": "1.1.0", "name": "weft"}`, code: types.ErrInvalidNetworkConfig, want: "no agentSocket"},
		{name: "relative agentSocket", conf: `{"cniVersion": "1.1.0", "name": "weft", "agentSocket": "run/agent.sock"}`, code: types.ErrInvalidNetworkConfig, want: `agentSocket "run/agent.sock" is not an absolute path`},
		{name: "relative logFile", conf: `{"cniVersion": "1.1.0", "name": "weft", ` + sock + `, "logFile": "cni.log"}`, code: types.ErrInvalidNetworkConfig, want: `logFile "cni.log"`},
		{name: "labels not an object", conf: `{"cniVersion": "1.1.0", "name": "weft", ` + sock + `, "runtimeConfig": {"labels": ["app=web"]}}`, code: types.ErrInvalidNetworkConfig, want: `field "runtimeConfig.labels" is a JSON array, accepted is a JSON object`},
		{name: "label value a number", conf: `{"cniVersion": "1.1.0", "name": "weft", ` + sock + `, "runtimeConfig": {"labels": {"replicas": 3}}}`, code: types.ErrInvalidNetworkConfig, want: `is a JSON number, accepted is a JSON string`},
		{name: "port out of range", conf: `{"cniVersion": "1.1.0", "name": "weft", ` + sock + `, "runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 70000}]}}`, code: types.ErrInvalidNetworkConfig, want: "portMappings[0]: containerPort 70000 is out of range: accepted are 1-65535"},
		{name: "bad protocol", conf: `{"cniVersion": "1.1.0", "name": "weft", ` + sock + `, "runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": "sctp"}]}}`, code: types.ErrInvalidNetworkConfig, want: `protocol "sctp" is not supported: accepted are tcp and udp`},
		{name: "bad hostIP", conf: `{"cniVersion": "1.1.0", "name": "weft", ` + sock + `, "runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 80, "hostIP": "localhost"}]}}`, code: types.ErrInvalidNetworkConfig, want: `hostIP "localhost" is not an IP address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := ParseConfig([]byte(tc.conf))
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("ParseConfig: %v", err)
				}
				if conf.AgentSocket != "/var/run/weft/agent.sock" {
					t.Errorf("agentSocket = %q", conf.AgentSocket)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseConfig accepted %s, want code %d", tc.conf, tc.code)
			}
			if err.Code != tc.code || !strings.Contains(err.Msg, tc.want) {
				t.Errorf("ParseConfig error = code %d %q, want code %d containing %q", err.Code, err.Msg, tc.code, tc.want)
			}
		})
	}
}

func TestParseConfigNormalizesPortMappings(t *testing.T) {
	conf, err := ParseConfig([]byte(`{"cniVersion": "1.1.0", "name": "weft", "agentSocket": "/s",
		"runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 8080}, {"hostPort": 53, "containerPort": 53, "protocol": "udp"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := conf.RuntimeConfig.PortMappings
	if len(got) != 2 || got[0].Protocol != "TCP" || got[1].Protocol != "UDP" {
		t.Errorf("port mappings = %+v, want protocols TCP and UDP", got)
	}
}

func TestHostIfName(t *testing.T) {
	// The contract is "lxc" + the first 8 hex digits of sha256("<id>/<ifname>"),
	// e.g. `printf abc/eth0 | sha256sum` = 538f587a...
	for _, tc := range []struct{ cid, ifname, want string }{
		{"abc", "eth0", "lxc538f587a"},
		{"cnitool-77383a6c4dd9ab5b0a5d", "eth0", "lxc" + sha256hex("cnitool-77383a6c4dd9ab5b0a5d/eth0")[:8]},
	} {
		got := HostIfName(tc.cid, tc.ifname)
		if got != tc.want || len(got) != 11 {
			t.Errorf("HostIfName(%q, %q) = %q, want %q", tc.cid, tc.ifname, got, tc.want)
		}
	}
	if HostIfName("abc", "eth0") == HostIfName("abc", "eth1") {
		t.Error("HostIfName does not depend on the interface name")
	}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
