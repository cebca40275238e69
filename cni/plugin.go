package cni

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/api/agentapi"
)

// Time limits of one command and of the cleanup after a failed ADD (which
// runs even when the command's own time is up).
const (
	commandTimeout = 60 * time.Second
	cleanupTimeout = 15 * time.Second
)

// Funcs are weft-cni's handlers for skel.PluginMainFuncs. GC is left to the
// agent, which owns the endpoints; skel answers it with success.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{
		Add:    cmdAdd,
		Del:    cmdDel,
		Check:  cmdCheck,
		Status: cmdStatus,
	}
}

// About is the text the plugin prints when run without CNI_COMMAND.
func About(version string) string {
	return "weft-cni " + version + ": Weft's CNI plugin (veth, address, routes; endpoints from weft-agent)"
}

func cmdAdd(args *skel.CmdArgs) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	result, err := add(ctx, args)
	if err != nil {
		return err
	}
	return types.PrintResult(result, result.CNIVersion)
}

func cmdDel(args *skel.CmdArgs) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return del(ctx, args)
}

func cmdCheck(args *skel.CmdArgs) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return check(ctx, args)
}

func cmdStatus(args *skel.CmdArgs) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return statusCmd(ctx, args)
}

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

// statusCmd answers STATUS: the plugin can serve ADD when the agent answers
// Status.
func statusCmd(ctx context.Context, args *skel.CmdArgs) error {
	conf, cerr := ParseConfig(args.StdinData)
	if cerr != nil {
		return cerr
	}
	log, closeLog := openLog(conf)
	defer closeLog()
	client, closeConn, err := agentapi.Dial(ctx, conf.AgentSocket)
	if err != nil {
		log.Error("status", "error", err)
		return newError(ErrPluginNotAvailable, "%v", err)
	}
	defer closeConn()
	st, err := client.Status(ctx, &agentapi.StatusRequest{})
	if err != nil {
		e := agentError(ctx, "ask status", conf.AgentSocket, err)
		log.Error("status", "error", e.Msg)
		return newError(ErrPluginNotAvailable, "%s", e.Msg)
	}
	log.Debug("status", "node", st.GetNode(), "cluster", st.GetCluster())
	return nil
}

// openLog returns the command's logger: conf.LogFile (appended) or nowhere.
// A log file that cannot be opened does not fail the command.
func openLog(conf *NetConf) (*slog.Logger, func()) {
	if conf.LogFile == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil)), func() {}
	}
	f, err := os.OpenFile(conf.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil)), func() {}
	}
	log := slog.New(slog.NewTextHandler(f, nil)).With("component", "weft-cni", "network", conf.Name, "pid", os.Getpid())
	return log, func() { f.Close() }
}

// openPodNS opens the pod's namespace and refuses the node's own: the plugin
// would otherwise put the pod's interface and default route on the node.
// A missing path, or one that is not a network namespace, is an unknown
// container (3), the spec's code for a sandbox that does not exist; the
// node's own namespace is an invalid CNI_NETNS (4).
func openPodNS(path string) (ns.NetNS, error) {
	podNS, err := ns.GetNS(path)
	if err != nil {
		return nil, netnsError(path, err)
	}
	cur, err := ns.GetCurrentNS()
	if err != nil {
		podNS.Close()
		return nil, newError(types.ErrInternal, "open the plugin's own netns: %v", err)
	}
	defer cur.Close()
	var a, b unix.Stat_t
	if err := unix.Fstat(int(podNS.Fd()), &a); err != nil {
		podNS.Close()
		return nil, newError(types.ErrIOFailure, "stat pod netns %q: %v", path, err)
	}
	if err := unix.Fstat(int(cur.Fd()), &b); err != nil {
		podNS.Close()
		return nil, newError(types.ErrInternal, "stat the plugin's own netns: %v", err)
	}
	if a.Dev == b.Dev && a.Ino == b.Ino {
		podNS.Close()
		return nil, newError(types.ErrInvalidEnvironmentVariables,
			"CNI_NETNS %q is the node's own network namespace: accepted is the pod's namespace", path)
	}
	return podNS, nil
}

// netnsError is the CNI error for a pod netns path ns.GetNS refused, in
// words rather than the library's (which quote the filesystem magic).
func netnsError(path string, err error) *types.Error {
	const accepted = "accepted is the path of an existing network namespace, e.g. /var/run/netns/<name>"
	var notExist ns.NSPathNotExistErr
	var notNS ns.NSPathNotNSErr
	switch {
	case errors.As(err, &notExist):
		return newError(types.ErrUnknownContainer, "pod netns %q does not exist: %s", path, accepted)
	case errors.As(err, &notNS):
		return newError(types.ErrUnknownContainer, "pod netns %q is not a network namespace: %s", path, accepted)
	}
	return newError(types.ErrIOFailure, "open pod netns %q: %v: %s", path, err, accepted)
}
