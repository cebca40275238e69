package cni

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// Pod is who the endpoint belongs to, from CNI_ARGS and runtimeConfig.
type Pod struct {
	Namespace string            // K8S_POD_NAMESPACE; the agent uses "default" when empty
	Name      string            // K8S_POD_NAME
	Labels    map[string]string // WEFT_LABELS merged with runtimeConfig.labels
}

// CNI_ARGS keys the plugin reads, and those runtimes commonly pass that it
// accepts and ignores.
const (
	argNamespace  = "K8S_POD_NAMESPACE"
	argPodName    = "K8S_POD_NAME"
	argLabels     = "WEFT_LABELS"
	argIgnoreUnk  = "IgnoreUnknown"
	argInfraID    = "K8S_POD_INFRA_CONTAINER_ID"
	argPodUID     = "K8S_POD_UID"
	acceptedArgs  = argNamespace + ", " + argPodName + ", " + argLabels + ", " + argInfraID + ", " + argPodUID + ", " + argIgnoreUnk
	reservedLabel = "io.kubernetes.pod.namespace"
	clusterLabel  = "io.cilium.k8s.policy.cluster"
)

// ParsePod reads the pod's namespace, name and labels from CNI_ARGS
// ("K=V;K=V") and runtimeConfig.labels. Errors in CNI_ARGS are invalid
// environment variables (4), errors in runtimeConfig invalid network
// configuration (7). A label given both ways must have the same value.
func ParsePod(cniArgs string, rc RuntimeConfig) (Pod, *types.Error) {
	var pod Pod
	args, err := splitArgs(cniArgs)
	if err != nil {
		return Pod{}, newError(types.ErrInvalidEnvironmentVariables, "parse CNI_ARGS: %v", err)
	}
	ignoreUnknown := false
	switch v := strings.ToLower(args[argIgnoreUnk]); v {
	case "", "0", "false":
	case "1", "true":
		ignoreUnknown = true
	default:
		return Pod{}, newError(types.ErrInvalidEnvironmentVariables,
			"parse CNI_ARGS: %s=%q is not a boolean: accepted are 1, true, 0, false", argIgnoreUnk, args[argIgnoreUnk])
	}
	for _, k := range slices.Sorted(maps.Keys(args)) {
		switch k {
		case argNamespace:
			if err := checkDNSLabel(args[k]); err != nil {
				return Pod{}, newError(types.ErrInvalidEnvironmentVariables, "parse CNI_ARGS: %s=%q: %v", k, args[k], err)
			}
			pod.Namespace = args[k]
		case argPodName:
			if err := checkDNSSubdomain(args[k]); err != nil {
				return Pod{}, newError(types.ErrInvalidEnvironmentVariables, "parse CNI_ARGS: %s=%q: %v", k, args[k], err)
			}
			pod.Name = args[k]
		case argLabels:
			labels, err := parseLabelList(args[k])
			if err != nil {
				return Pod{}, newError(types.ErrInvalidEnvironmentVariables, "parse CNI_ARGS: %s=%q: %v", k, args[k], err)
			}
			pod.Labels = labels
		case argInfraID, argPodUID, argIgnoreUnk:
		default:
			if !ignoreUnknown {
				return Pod{}, newError(types.ErrInvalidEnvironmentVariables,
					"parse CNI_ARGS: unknown key %q: accepted are %s (add IgnoreUnknown=1 to pass others)", k, acceptedArgs)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(rc.Labels)) {
		v := rc.Labels[k]
		if err := checkLabel(k, v); err != nil {
			return Pod{}, newError(types.ErrInvalidNetworkConfig, "network config runtimeConfig.labels: %v", err)
		}
		if old, ok := pod.Labels[k]; ok && old != v {
			return Pod{}, newError(types.ErrInvalidNetworkConfig,
				"label %q is %q in runtimeConfig.labels but %q in CNI_ARGS %s: accepted is the same value in both, or one source",
				k, v, old, argLabels)
		}
		if pod.Labels == nil {
			pod.Labels = map[string]string{}
		}
		pod.Labels[k] = v
	}
	return pod, nil
}

// splitArgs splits CNI_ARGS into keys and values; a value may contain '='.
func splitArgs(s string) (map[string]string, error) {
	args := map[string]string{}
	if s == "" {
		return args, nil
	}
	for pair := range strings.SplitSeq(s, ";") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("pair %q is not KEY=VALUE: accepted is KEY=VALUE;KEY=VALUE", pair)
		}
		if old, dup := args[k]; dup && old != v {
			return nil, fmt.Errorf("key %s is given twice (%q and %q): accepted is one value per key", k, old, v)
		}
		args[k] = v
	}
	return args, nil
}

// parseLabelList parses "app=web,tier=front".
func parseLabelList(s string) (map[string]string, error) {
	labels := map[string]string{}
	if s == "" {
		return labels, nil
	}
	for item := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("label %q has no '=': accepted is key=value[,key=value]", item)
		}
		if err := checkLabel(k, v); err != nil {
			return nil, err
		}
		if old, dup := labels[k]; dup && old != v {
			return nil, fmt.Errorf("label %q is given twice (%q and %q): accepted is one value per key", k, old, v)
		}
		labels[k] = v
	}
	return labels, nil
}
