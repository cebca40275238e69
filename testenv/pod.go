package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// PodSpec describes a pod to create.
type PodSpec struct {
	Name      string
	Node      string            // node name, e.g. c1-n2
	Namespace string            // pod namespace; "default" when empty
	Labels    map[string]string // plain labels, app=web
}

// cniNetwork is the network name in every node's CNI configuration.
const cniNetwork = "weft"

// CNIConfig is the node's weft-cni network configuration (docs/agent.md),
// network name "weft".
func (n Node) CNIConfig() []byte {
	b, _ := json.Marshal(map[string]any{
		"cniVersion":  "1.0.0",
		"name":        cniNetwork,
		"type":        "weft-cni",
		"agentSocket": n.Socket,
		"logFile":     filepath.Join(n.Dir, "cni.log"),
		// libcni-based runtimes pass runtimeConfig only for declared
		// capabilities; labels there avoid CNI_ARGS values holding '='.
		"capabilities": map[string]bool{"portMappings": true, "labels": true},
	})
	return b
}

// AddPod creates the pod's namespace and runs `weft-cni ADD` for it inside
// its node's namespace, against that node's agent. On failure the
// namespace is removed again.
func (e *Env) AddPod(ctx context.Context, ps PodSpec) (Pod, error) {
	return e.addKubePod(ctx, ps, "")
}

// addKubePod is AddPod for the Kubernetes pod kube (namespace/name; empty
// for a pod of `testenv pod add`).
func (e *Env) addKubePod(ctx context.Context, ps PodSpec, kube string) (Pod, error) {
	if err := ValidatePodName(ps.Name); err != nil {
		return Pod{}, err
	}
	n, err := e.Node(ps.Node)
	if err != nil {
		return Pod{}, err
	}
	p := Pod{
		Name:        ps.Name,
		Node:        n.Name,
		NetNS:       "weft-" + e.Name + "-pod-" + ps.Name,
		ContainerID: "testenv-" + e.Name + "-" + ps.Name,
		Labels:      ps.Labels,
		Kube:        kube,
	}
	// Recorded before the namespace exists, so Down finds it after a crash.
	err = e.update(func(f *Env) error {
		if _, err := f.Pod(ps.Name); err == nil {
			return fmt.Errorf("add pod %q: a pod of that name exists in environment %q", ps.Name, e.Name)
		}
		f.Pods = append(f.Pods, p)
		return nil
	})
	if err != nil {
		return Pod{}, err
	}
	ip, err := e.addPod(ctx, n, p, ps.Namespace)
	if err != nil {
		_ = DeleteNetNS(p.NetNS)
		_ = e.update(func(f *Env) error {
			f.Pods = slices.DeleteFunc(f.Pods, func(q Pod) bool { return q.Name == p.Name })
			return nil
		})
		return Pod{}, fmt.Errorf("add pod %q on %s: %w", ps.Name, n.Name, err)
	}
	p.IP = ip.String()
	err = e.update(func(f *Env) error {
		for i := range f.Pods {
			if f.Pods[i].Name == p.Name {
				f.Pods[i].IP = p.IP
			}
		}
		return nil
	})
	return p, err
}

func (e *Env) addPod(ctx context.Context, n Node, p Pod, namespace string) (netip.Addr, error) {
	if err := CreateNetNS(p.NetNS); err != nil {
		return netip.Addr{}, err
	}
	args := p.cniArgs()
	if namespace != "" && p.Kube == "" {
		args += ";K8S_POD_NAMESPACE=" + namespace
	}
	if len(p.Labels) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(p.Labels)) {
			kv = append(kv, k+"="+p.Labels[k])
		}
		args += ";WEFT_LABELS=" + strings.Join(kv, ",")
	}
	out, err := e.runCNI(ctx, n, "ADD", p, args)
	if err != nil {
		return netip.Addr{}, err
	}
	var res struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) == 0 {
		return netip.Addr{}, fmt.Errorf("read weft-cni ADD result %q: no ips[].address", out)
	}
	pfx, err := netip.ParsePrefix(res.IPs[0].Address)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("read weft-cni ADD result: address %q: %w", res.IPs[0].Address, err)
	}
	return pfx.Addr(), nil
}

// CheckPod runs `weft-cni CHECK` for the pod.
func (e *Env) CheckPod(ctx context.Context, name string) error {
	p, err := e.Pod(name)
	if err != nil {
		return err
	}
	n, err := e.Node(p.Node)
	if err != nil {
		return err
	}
	_, err = e.runCNI(ctx, n, "CHECK", p, p.cniArgs())
	return err
}

// DelPod runs `weft-cni DEL` for the pod and removes its namespace. A pod
// that does not exist is not an error.
func (e *Env) DelPod(ctx context.Context, name string) error {
	p, err := e.Pod(name)
	if err != nil {
		return nil
	}
	n, err := e.Node(p.Node)
	if err != nil {
		return err
	}
	if _, err := e.runCNI(ctx, n, "DEL", p, p.cniArgs()); err != nil {
		return fmt.Errorf("delete pod %q: %w", name, err)
	}
	if err := DeleteNetNS(p.NetNS); err != nil {
		return err
	}
	return e.update(func(f *Env) error {
		f.Pods = slices.DeleteFunc(f.Pods, func(q Pod) bool { return q.Name == name })
		return nil
	})
}

// cniArgs are the CNI_ARGS kubelet sends: the Kubernetes pod's namespace
// and name, or the testenv pod's name.
func (p Pod) cniArgs() string {
	if ns, name, ok := strings.Cut(p.Kube, "/"); ok {
		return "IgnoreUnknown=1;K8S_POD_NAMESPACE=" + ns + ";K8S_POD_NAME=" + name
	}
	return "IgnoreUnknown=1;K8S_POD_NAME=" + p.Name
}

// runCNI runs weft-cni with command inside the node's namespace and
// returns its stdout.
func (e *Env) runCNI(ctx context.Context, n Node, command string, p Pod, cniArgs string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Bin.CNI)
	cmd.Env = append(os.Environ(),
		MarkerVar+"="+e.Name,
		"CNI_COMMAND="+command,
		"CNI_CONTAINERID="+p.ContainerID,
		"CNI_NETNS="+NetNSPath(p.NetNS),
		"CNI_IFNAME=eth0",
		"CNI_PATH="+filepath.Dir(e.Bin.CNI),
		"CNI_ARGS="+cniArgs,
	)
	cmd.Stdin = bytes.NewReader(n.CNIConfig())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := runIn(cmd, n.NetNS, ""); err != nil {
		return nil, fmt.Errorf("weft-cni %s in %s: %w: %s %s", command, n.NetNS, err,
			strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
