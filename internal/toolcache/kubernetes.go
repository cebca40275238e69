package toolcache

import (
	"fmt"
	"strings"
)

// KubernetesVersion is the Kubernetes release whose kube-apiserver and kubectl
// the tool cache builds.
const KubernetesVersion = "v1.35.4"

// kubernetesStaging are the modules k8s.io/kubernetes replaces with its
// ./staging copies; a module outside that repository must point each one at
// the matching published v0.x release instead.
var kubernetesStaging = []string{
	"api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime",
	"client-go", "cloud-provider", "cluster-bootstrap", "code-generator",
	"component-base", "component-helpers", "controller-manager", "cri-api",
	"cri-client", "csi-translation-lib", "dynamic-resource-allocation",
	"endpointslice", "externaljwt", "kms", "kube-aggregator",
	"kube-controller-manager", "kube-proxy", "kube-scheduler", "kubectl",
	"kubelet", "metrics", "mount-utils", "pod-security-admission",
	"sample-apiserver", "sample-cli-plugin", "sample-controller",
}

// KubeAPIServer is a real kube-apiserver (it needs an etcd ≥ 3.6, see Etcd).
// It is built together with kubectl from one throwaway module.
func KubeAPIServer() Tool {
	return kubernetesTool("kube-apiserver", "kubectl")
}

// Kubectl is the kubectl of the same release as KubeAPIServer.
func Kubectl() Tool {
	return kubernetesTool("kubectl", "kube-apiserver")
}

func kubernetesTool(name, other string) Tool {
	v := KubernetesVersion
	staging := "v0" + strings.TrimPrefix(v, "v1") // v1.35.4 → v0.35.4
	var gomod strings.Builder
	gomod.WriteString("go 1.25.0\n\ngodebug default=go1.25\n\nreplace (\n")
	for _, m := range kubernetesStaging {
		fmt.Fprintf(&gomod, "\tk8s.io/%s => k8s.io/%s %s\n", m, m, staging)
	}
	gomod.WriteString(")\n")
	minor := strings.Split(v, ".")[1]
	return Tool{
		Name:    name,
		Version: v,
		Group:   "kubernetes",
		GoMod:   gomod.String(),
		Get:     []string{"k8s.io/kubernetes@" + v},
		Package: "k8s.io/kubernetes/cmd/" + name,
		Also:    map[string]string{other: "k8s.io/kubernetes/cmd/" + other},
		Files: map[string]string{"tools.go": "//go:build tools\n\npackage tools\n\nimport (\n" +
			"\t_ \"k8s.io/kubernetes/cmd/kube-apiserver\"\n\t_ \"k8s.io/kubernetes/cmd/kubectl\"\n)\n"},
		LDFlags: "-s -w -X k8s.io/component-base/version.gitVersion=" + v +
			" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=" + minor,
	}
}
