package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// TestOutputFormats checks that -o json and -o yaml print the API messages,
// which parse back to the data the agent sent.
func TestOutputFormats(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	fa := testAgent("c1-n1")
	serve(t, socket, fa)

	tests := []struct {
		name string
		args []string
		want proto.Message
	}{
		{"status", []string{"status"}, fa.status},
		{"node list", []string{"node", "list"}, fa.nodes},
		{"endpoint list", []string{"endpoint", "list"}, fa.endpoints},
		{"endpoint get", []string{"endpoint", "get", "7"}, fa.endpoints.Endpoints[0]},
		{"identity list", []string{"identity", "list"}, fa.identities},
		{"identity get", []string{"identity", "get", "65792"}, fa.identities.Identities[1]},
		{"ipcache list", []string{"ipcache", "list"}, fa.ipcache},
		{"service list", []string{"service", "list"}, fa.services},
		{"bpf ct list", []string{"bpf", "ct", "list"}, fa.tables["ct"]},
		{"bpf metrics list", []string{"bpf", "metrics", "list"}, fa.tables["metrics"]},
	}
	for _, tc := range tests {
		for _, format := range []string{"json", "yaml"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				r := runCLI(t, dir, nil, append([]string{"--socket", socket, "-o", format}, tc.args...)...)
				if r.err != nil {
					t.Fatalf("weft %s -o %s: %v", strings.Join(tc.args, " "), format, r.err)
				}
				js := []byte(r.stdout)
				if format == "yaml" {
					var err error
					if js, err = yaml.YAMLToJSON(js); err != nil {
						t.Fatalf("output is not YAML: %v\n%s", err, r.stdout)
					}
				}
				got := tc.want.ProtoReflect().New().Interface()
				if err := protojson.Unmarshal(js, got); err != nil {
					t.Fatalf("output does not parse as %T: %v\n%s", got, err, r.stdout)
				}
				if !proto.Equal(got, tc.want) {
					t.Errorf("output parses to\n%v\nwant\n%v", got, tc.want)
				}
			})
		}
	}
}

// TestJSONFieldNames checks the names scripts rely on: proto field names,
// unset fields present with their zero value.
func TestJSONFieldNames(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	serve(t, socket, testAgent("c1-n1"))

	r := runCLI(t, dir, nil, "--socket", socket, "-o", "json", "endpoint", "get", "12")
	if r.err != nil {
		t.Fatal(r.err)
	}
	var ep map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
	}
	for key, want := range map[string]any{
		"container_id": "9b77e0",
		"pod_name":     "client",
		"ipv4":         "10.100.1.6/32",
		"identity":     float64(65793),
		"id":           float64(12), // a number, like every other id
		"gateway_mac":  "",
		"policy":       nil,
	} {
		if got, ok := ep[key]; !ok || got != want {
			t.Errorf("JSON field %q = %#v (present: %v), want %#v", key, got, ok, want)
		}
	}
	if !strings.HasPrefix(r.stdout, "{\n  \"") {
		t.Errorf("JSON is not indented by two spaces:\n%s", r.stdout)
	}
}

// TestVersion checks the client's version is always printed, the agent's
// when it answers.
func TestVersion(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	serve(t, socket, testAgent("c1-n1"))
	missing := filepath.Join(dir, "missing.sock")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"agent reachable", []string{"--socket", socket, "version"},
			"weft:        v9.9.9-test\nweft-agent:  v0.1.0 (node c1-n1)\n"},
		{"agent unreachable", []string{"--socket", missing, "version"},
			"weft:        v9.9.9-test\nweft-agent:  unknown: reach weft-agent at " + missing + ": is the agent running? (stat " + missing + ": no such file or directory)\n"},
		{"json", []string{"--socket", socket, "version", "-o", "json"},
			"{\n  \"client\": \"v9.9.9-test\",\n  \"agent\": \"v0.1.0\",\n  \"agent_node\": \"c1-n1\"\n}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, dir, nil, tc.args...)
			if r.err != nil {
				t.Fatalf("weft version failed: %v", r.err)
			}
			if r.stdout != tc.want {
				t.Errorf("printed\n%s\nwant\n%s", r.stdout, tc.want)
			}
		})
	}
	t.Run("yaml unreachable", func(t *testing.T) {
		r := runCLI(t, dir, nil, "--socket", missing, "version", "-o", "yaml")
		if r.err != nil {
			t.Fatalf("weft version failed: %v", r.err)
		}
		var got versionInfo
		if err := yaml.UnmarshalStrict([]byte(r.stdout), &got); err != nil {
			t.Fatalf("output is not the version as YAML: %v\n%s", err, r.stdout)
		}
		want := versionInfo{Client: "v9.9.9-test",
			AgentError: "reach weft-agent at " + missing + ": is the agent running? (stat " + missing + ": no such file or directory)"}
		if got != want {
			t.Errorf("printed %+v, want %+v", got, want)
		}
	})
}
