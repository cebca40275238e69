package cni

import (
	"context"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/utils"

	"github.com/weftnet/weft/api/agentapi"
)

// add is ADD (docs/agent.md): validate everything first, then create the veth
// pair, ask the agent for the endpoint and configure the pod. Any failure
// after the veth exists deletes the endpoint and the veth again.
func add(ctx context.Context, args *skel.CmdArgs) (*current.Result, error) {
	conf, cerr := ParseConfig(args.StdinData)
	if cerr != nil {
		return nil, cerr
	}
	if e := utils.ValidateInterfaceName(args.IfName); e != nil {
		return nil, newError(types.ErrInvalidEnvironmentVariables,
			"CNI_IFNAME %q: %s: accepted are 1-15 characters without '/', ':' or white space", args.IfName, e.Msg)
	}
	if e := utils.ValidateContainerID(args.ContainerID); e != nil {
		return nil, newError(e.Code,
			"CNI_CONTAINERID %q: %s: accepted are letters, digits, '_', '.' and '-', starting with a letter or digit", args.ContainerID, e.Msg)
	}
	pod, cerr := ParsePod(args.Args, conf.RuntimeConfig)
	if cerr != nil {
		return nil, cerr
	}
	log, closeLog := openLog(conf)
	defer closeLog()
	log = log.With("command", "ADD", "container", args.ContainerID, "ifname", args.IfName, "netns", args.Netns)

	result, err := addEndpoint(ctx, args, conf, pod)
	if err != nil {
		e := asCNIError(err)
		log.Error("add endpoint", "code", e.Code, "error", e.Msg)
		return nil, e
	}
	log.Info("added endpoint", "host_ifname", result.Interfaces[0].Name, "ip", result.IPs[0].Address.String())
	return result, nil
}

func addEndpoint(ctx context.Context, args *skel.CmdArgs, conf *NetConf, pod Pod) (_ *current.Result, retErr error) {
	podNS, err := openPodNS(args.Netns)
	if err != nil {
		return nil, err
	}
	defer podNS.Close()
	client, closeConn, err := agentapi.Dial(ctx, conf.AgentSocket)
	if err != nil {
		return nil, dialError(err)
	}
	defer closeConn()

	hostName := HostIfName(args.ContainerID, args.IfName)
	if err := createVeth(podNS, hostName, args.IfName); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			retErr = rollback(ctx, client, args, hostName, retErr)
		}
	}()

	mac, err := podMAC(podNS, args.IfName)
	if err != nil {
		return nil, err
	}
	if _, err := setUpHost(hostName, 0); err != nil {
		return nil, err
	}
	req := &agentapi.CreateEndpointRequest{
		ContainerId: args.ContainerID,
		Netns:       args.Netns,
		Ifname:      args.IfName,
		HostIfname:  hostName,
		PodMac:      mac.String(),
		Namespace:   pod.Namespace,
		PodName:     pod.Name,
		Labels:      pod.Labels,
	}
	for _, pm := range conf.RuntimeConfig.PortMappings {
		req.PortMappings = append(req.PortMappings, &agentapi.PortMapping{
			HostPort: uint32(pm.HostPort), ContainerPort: uint32(pm.ContainerPort),
			Protocol: pm.Protocol, HostIp: pm.HostIP,
		})
	}
	ep, err := client.CreateEndpoint(ctx, req)
	if err != nil {
		return nil, agentError(ctx, "create endpoint for container "+args.ContainerID, conf.AgentSocket, err)
	}
	pc, err := decodeEndpoint(ep)
	if err != nil {
		return nil, err
	}
	hostMAC, err := setUpHost(hostName, pc.mtu)
	if err != nil {
		return nil, err
	}
	if err := configurePod(podNS, args.IfName, pc); err != nil {
		return nil, err
	}
	hostIf := &current.Interface{Name: hostName, Mac: hostMAC.String()}
	podIf := &current.Interface{Name: args.IfName, Mac: mac.String(), Sandbox: args.Netns}
	if conf.CNIVersion != "1.0.0" && pc.mtu != 0 { // the mtu field is new in 1.1
		hostIf.Mtu, podIf.Mtu = pc.mtu, pc.mtu
	}
	return pc.result(conf.CNIVersion, hostIf, podIf), nil
}

// rollback undoes a partial ADD: DeleteEndpoint (the agent may have created
// it even when the call failed) and the veth. It keeps cause's code; cleanup
// errors are appended to the message so that the runtime's DEL is not a
// surprise.
func rollback(ctx context.Context, client agentapi.AgentClient, args *skel.CmdArgs, hostName string, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var failed []string
	_, err := client.DeleteEndpoint(ctx, &agentapi.DeleteEndpointRequest{ContainerId: args.ContainerID, Ifname: args.IfName})
	if err != nil && !isNotFound(err) {
		failed = append(failed, fmt.Sprintf("delete endpoint of container %s: %v", args.ContainerID, err))
	}
	if err := deleteHostVeth(hostName); err != nil {
		failed = append(failed, err.Error())
	}
	e := asCNIError(cause)
	if len(failed) == 0 {
		return e
	}
	return types.NewError(e.Code, e.Msg+" (cleanup failed too: "+strings.Join(failed, "; ")+"; DEL retries it)", e.Details)
}
