package cni

import (
	"maps"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestParsePod(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, tc := range []struct {
		name    string
		args    string
		labels  map[string]string // runtimeConfig.labels
		want    Pod
		code    uint // 0: valid
		wantErr string
	}{
		{name: "nothing", want: Pod{}},
		{name: "namespace, name and labels",
			args: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1.a;WEFT_LABELS=app=web,tier=front",
			want: Pod{Namespace: "shop", Name: "web-1.a", Labels: map[string]string{"app": "web", "tier": "front"}}},
		{name: "kubernetes runtime arguments",
			args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-5d78c9869d-x7k2p;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=123",
			want: Pod{Namespace: "kube-system", Name: "coredns-5d78c9869d-x7k2p"}},
		{name: "unknown key ignored when asked", args: "IgnoreUnknown=true;FOO=bar", want: Pod{}},
		{name: "prefixed key, empty value and dots",
			args: "WEFT_LABELS=example.com/app=web,canary=,version=v1.2_3",
			want: Pod{Labels: map[string]string{"example.com/app": "web", "canary": "", "version": "v1.2_3"}}},
		{name: "runtimeConfig labels", labels: map[string]string{"app": "web"},
			want: Pod{Labels: map[string]string{"app": "web"}}},
		{name: "both sources merge", args: "WEFT_LABELS=app=web", labels: map[string]string{"tier": "front", "app": "web"},
			want: Pod{Labels: map[string]string{"app": "web", "tier": "front"}}},
		{name: "empty WEFT_LABELS", args: "WEFT_LABELS=", want: Pod{Labels: map[string]string{}}},

		{name: "both sources disagree", args: "WEFT_LABELS=app=web", labels: map[string]string{"app": "db"},
			code: types.ErrInvalidNetworkConfig, wantErr: `label "app" is "db" in runtimeConfig.labels but "web" in CNI_ARGS WEFT_LABELS`},
		{name: "pair without =", args: "K8S_POD_NAME", code: types.ErrInvalidEnvironmentVariables, wantErr: `pair "K8S_POD_NAME" is not KEY=VALUE`},
		{name: "empty pair", args: "K8S_POD_NAME=a;", code: types.ErrInvalidEnvironmentVariables, wantErr: `pair "" is not KEY=VALUE`},
		{name: "key twice", args: "K8S_POD_NAME=a;K8S_POD_NAME=b", code: types.ErrInvalidEnvironmentVariables, wantErr: "given twice"},
		{name: "unknown key", args: "POD=a", code: types.ErrInvalidEnvironmentVariables, wantErr: `unknown key "POD"`},
		{name: "IgnoreUnknown not a boolean", args: "IgnoreUnknown=yes", code: types.ErrInvalidEnvironmentVariables, wantErr: `IgnoreUnknown="yes" is not a boolean`},
		{name: "namespace upper case", args: "K8S_POD_NAMESPACE=Shop", code: types.ErrInvalidEnvironmentVariables, wantErr: "DNS label"},
		{name: "namespace too long", args: "K8S_POD_NAMESPACE=" + long, code: types.ErrInvalidEnvironmentVariables, wantErr: "length 64"},
		{name: "namespace empty", args: "K8S_POD_NAMESPACE=", code: types.ErrInvalidEnvironmentVariables, wantErr: "length 0"},
		{name: "pod name with underscore", args: "K8S_POD_NAME=web_1", code: types.ErrInvalidEnvironmentVariables, wantErr: "DNS subdomain"},
		{name: "label without =", args: "WEFT_LABELS=app", code: types.ErrInvalidEnvironmentVariables, wantErr: `label "app" has no '='`},
		{name: "label twice", args: "WEFT_LABELS=app=web,app=db", code: types.ErrInvalidEnvironmentVariables, wantErr: `label "app" is given twice`},
		{name: "trailing comma", args: "WEFT_LABELS=app=web,", code: types.ErrInvalidEnvironmentVariables, wantErr: `label "" has no '='`},
		{name: "label key empty", args: "WEFT_LABELS==web", code: types.ErrInvalidEnvironmentVariables, wantErr: `label key ""`},
		{name: "label key bad char", args: "WEFT_LABELS=app:x=web", code: types.ErrInvalidEnvironmentVariables, wantErr: `character ':'`},
		{name: "label key too long", args: "WEFT_LABELS=" + long + "=x", code: types.ErrInvalidEnvironmentVariables, wantErr: "length 64"},
		{name: "label key bad prefix", args: "WEFT_LABELS=Example.com/app=web", code: types.ErrInvalidEnvironmentVariables, wantErr: "invalid prefix"},
		{name: "label value ends with dash", args: "WEFT_LABELS=app=web-", code: types.ErrInvalidEnvironmentVariables, wantErr: `value "web-"`},
		{name: "label value too long", labels: map[string]string{"app": long}, code: types.ErrInvalidNetworkConfig, wantErr: "length 64"},
		{name: "namespace label reserved", args: "WEFT_LABELS=io.kubernetes.pod.namespace=kube-system", code: types.ErrInvalidEnvironmentVariables, wantErr: "is reserved"},
		{name: "cluster label reserved", labels: map[string]string{"io.cilium.k8s.policy.cluster": "c2"}, code: types.ErrInvalidNetworkConfig, wantErr: "is reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod, err := ParsePod(tc.args, RuntimeConfig{Labels: tc.labels})
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("ParsePod: %v", err)
				}
				if pod.Namespace != tc.want.Namespace || pod.Name != tc.want.Name || !maps.Equal(pod.Labels, tc.want.Labels) {
					t.Errorf("ParsePod = %+v, want %+v", pod, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParsePod accepted %q %v, want code %d", tc.args, tc.labels, tc.code)
			}
			if err.Code != tc.code || !strings.Contains(err.Msg, tc.wantErr) {
				t.Errorf("ParsePod error = code %d %q, want code %d containing %q", err.Code, err.Msg, tc.code, tc.wantErr)
			}
		})
	}
}
