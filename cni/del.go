package cni

import (
	"context"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/agent/agentapi"
)

// del is DEL: DeleteEndpoint, then remove the host veth (its peer in the pod
// goes with it). A missing netns, veth or endpoint is not an error, so DEL
// can be repeated. An agent that cannot be reached is "try again later" (11)
// after the veth is gone: the endpoint must still be deleted by a retry.
func del(ctx context.Context, args *skel.CmdArgs) error {
	conf, cerr := ParseConfig(args.StdinData)
	if cerr != nil {
		return cerr
	}
	log, closeLog := openLog(conf)
	defer closeLog()
	log = log.With("command", "DEL", "container", args.ContainerID, "ifname", args.IfName, "netns", args.Netns)

	hostName := HostIfName(args.ContainerID, args.IfName)
	agentErr := deleteEndpoint(ctx, conf, args)
	vethErr := deleteHostVeth(hostName)
	if agentErr != nil || vethErr != nil {
		var e *types.Error
		switch {
		case agentErr != nil && vethErr != nil:
			first := asCNIError(agentErr)
			e = types.NewError(first.Code, first.Msg+"; "+vethErr.Error(), "")
		case agentErr != nil:
			e = asCNIError(agentErr)
		default:
			e = asCNIError(vethErr)
		}
		log.Error("delete endpoint", "code", e.Code, "error", e.Msg)
		return e
	}
	log.Info("deleted endpoint", "host_ifname", hostName)
	return nil
}

// deleteEndpoint asks the agent to delete the endpoint; not found is fine.
func deleteEndpoint(ctx context.Context, conf *NetConf, args *skel.CmdArgs) error {
	client, closeConn, err := agentapi.Dial(ctx, conf.AgentSocket)
	if err != nil {
		return dialError(err)
	}
	defer closeConn()
	_, err = client.DeleteEndpoint(ctx, &agentapi.DeleteEndpointRequest{ContainerId: args.ContainerID, Ifname: args.IfName})
	if err != nil && !isNotFound(err) {
		return agentError(ctx, "delete endpoint of container "+args.ContainerID, conf.AgentSocket, err)
	}
	return nil
}
