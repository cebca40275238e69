package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
)

// The weft-cni binary, run the way a runtime runs it, answers a bad
// configuration with the CNI error JSON on stdout and exit status 1, and
// creates nothing; VERSION lists the spec versions it speaks.
func TestBinaryErrors(t *testing.T) {
	hostNS := newNS(t)
	agent := startStandIn(t)
	tool := newCNITool(t)
	plugin := filepath.Join(tool.binDir, "weft-cni")
	notNS := filepath.Join(t.TempDir(), "not-a-netns")
	if err := os.WriteFile(notNS, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	good := `{"cniVersion": "1.1.0", "name": "weft", "agentSocket": "` + agent.socket + `"}`
	for _, tc := range []struct {
		name string
		conf string
		env  string // extra variable
		code uint
		want string
	}{
		{name: "malformed JSON", conf: `{"cniVersion": "1.1.0", "name": "weft",`, code: types.ErrDecodingFailure, want: "unexpected end of JSON input"},
		{name: "no name", conf: `{"cniVersion": "1.1.0", "agentSocket": "` + agent.socket + `"}`, code: types.ErrInvalidNetworkConfig, want: "missing network name"},
		{name: "no cniVersion", conf: `{"name": "weft", "agentSocket": "` + agent.socket + `"}`, code: types.ErrIncompatibleCNIVersion, want: `config is \"0.1.0\"`},
		{name: "unknown cniVersion", conf: `{"cniVersion": "9.9.9", "name": "weft", "agentSocket": "` + agent.socket + `"}`, code: types.ErrIncompatibleCNIVersion, want: "incompatible CNI versions"},
		{name: "no agentSocket", conf: `{"cniVersion": "1.1.0", "name": "weft"}`, code: types.ErrInvalidNetworkConfig, want: "network config has no agentSocket"},
		{name: "bad label", conf: `{"cniVersion": "1.0.0", "name": "weft", "agentSocket": "` + agent.socket + `"}`,
			env: "CNI_ARGS=WEFT_LABELS=app=Web!", code: types.ErrInvalidEnvironmentVariables, want: `label \"app\" value \"Web!\"`},
		{name: "missing netns", conf: good, env: "CNI_NETNS=/var/run/netns/weft-no-such-pod", code: types.ErrUnknownContainer,
			want: `pod netns \"/var/run/netns/weft-no-such-pod\" does not exist`},
		{name: "netns not a namespace", conf: good, env: "CNI_NETNS=" + notNS, code: types.ErrUnknownContainer, want: "is not a network namespace"},
		{name: "agent not running", conf: `{"cniVersion": "1.1.0", "name": "weft", "agentSocket": "/nonexistent/agent.sock"}`, code: types.ErrTryAgainLater, want: "/nonexistent/agent.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			podNS := newNS(t)
			env := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + randomID(t), "CNI_NETNS=" + podNS.Path(),
				"CNI_IFNAME=eth0", "CNI_PATH=" + tool.binDir}
			if tc.env != "" {
				env = append(env, tc.env)
			}
			stdout, err := runPlugin(t, hostNS, plugin, env, tc.conf)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("weft-cni exit = %v, want status 1", err)
			}
			var e types.Error
			if err := json.Unmarshal([]byte(stdout), &e); err != nil {
				t.Fatalf("stdout %q is not a CNI error: %v", stdout, err)
			}
			if e.Code != tc.code || !strings.Contains(stdout, tc.want) || strings.Contains(stdout, "magic") {
				t.Errorf("CNI error = %s, want code %d containing %q", stdout, tc.code, tc.want)
			}
			assertNothingLeft(t, hostNS, podNS, agent)
		})
	}

	stdout, err := runPlugin(t, hostNS, plugin, []string{"CNI_COMMAND=VERSION"}, "")
	if err != nil {
		t.Fatalf("VERSION: %v", err)
	}
	var v struct {
		Supported []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal([]byte(stdout), &v); err != nil || !slices.Equal(v.Supported, []string{"1.0.0", "1.1.0"}) {
		t.Errorf("VERSION = %s, want supportedVersions [1.0.0 1.1.0]", stdout)
	}
}

// runPlugin runs the plugin binary inside hostNS with only the given
// environment and conf on stdin; it returns stdout.
func runPlugin(t *testing.T, hostNS ns.NetNS, plugin string, env []string, conf string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, plugin)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(conf)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	err := hostNS.Do(func(ns.NetNS) error { return cmd.Run() })
	return stdout.String(), err
}
