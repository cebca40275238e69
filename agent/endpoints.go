package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/state/records"
)

// Kinds of endpoint failures, which the API maps to gRPC codes (and the
// CNI plugin to "invalid" or "try again later").
var (
	errInvalidRequest = errors.New("invalid endpoint request")
	errExhausted      = errors.New("out of addresses or endpoint ids")
	errUnavailable    = errors.New("store unavailable")
)

// gateway is the pods' next hop: a link-local address answered by the host
// side of each veth (its MAC is the pod's static neighbour entry).
var gateway = netip.MustParseAddr("169.254.1.1")

// endpointState is what survives an agent restart, one JSON file per
// endpoint in the state directory (STABLE v1).
type endpointState struct {
	Version     int               `json:"v"`
	ID          uint16            `json:"id"`
	ContainerID string            `json:"containerID"`
	IfName      string            `json:"ifname"`
	NetNS       string            `json:"netns"`
	HostIfName  string            `json:"hostIfname"`
	PodMAC      string            `json:"podMAC"`
	Namespace   string            `json:"namespace"`
	Pod         string            `json:"pod,omitempty"`
	IP          netip.Addr        `json:"ip"`
	Labels      map[string]string `json:"labels,omitempty"`
	Identity    records.ID        `json:"identity"`
	// services: HostPort frontends of the CNI portMappings capability.
	PortMappings []portMapping `json:"portMappings,omitempty"`

	identityLabels records.Labels
}

// endpoints owns this node's endpoints: their addresses, ids, identities,
// datapath entries and published ipcache entries.
type endpoints struct {
	a   *Agent
	dir string

	mu   sync.Mutex
	byID map[uint16]*endpointState
}

func newEndpoints(a *Agent, dir string) *endpoints {
	return &endpoints{a: a, dir: dir, byID: map[uint16]*endpointState{}}
}

func (e *endpoints) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.byID)
}

func (e *endpoints) find(match func(*endpointState) bool) *endpointState {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ep := range e.byID {
		if match(ep) {
			return ep
		}
	}
	return nil
}

func (e *endpoints) list() []*endpointState {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*endpointState, 0, len(e.byID))
	for _, ep := range e.byID {
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// create makes a new endpoint, or returns the existing one of the same
// container and interface. On failure nothing is left behind.
func (e *endpoints) create(ctx context.Context, req *agentapi.CreateEndpointRequest) (*endpointState, error) {
	if err := validateCreate(req); err != nil {
		return nil, err
	}
	if ep := e.find(func(ep *endpointState) bool { return ep.ContainerID == req.ContainerId && ep.IfName == req.Ifname }); ep != nil {
		return ep, nil
	}
	ep := &endpointState{
		Version: 1, ContainerID: req.ContainerId, IfName: req.Ifname, NetNS: req.Netns,
		HostIfName: req.HostIfname, PodMAC: req.PodMac, Namespace: req.Namespace, Pod: req.PodName, Labels: req.Labels,
		PortMappings: portMappings(req.PortMappings), // services
	}
	if ep.Namespace == "" {
		ep.Namespace = "default"
	}
	var err error
	if ep.identityLabels, err = e.identityLabels(ep); err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidRequest, err)
	}
	if err := e.reserve(ep); err != nil {
		return nil, fmt.Errorf("%w: %w", errExhausted, err)
	}
	undo := func() { e.forget(ep) }
	id, err := e.a.ids.Allocate(ctx, ep.identityLabels)
	if err != nil {
		undo()
		return nil, fmt.Errorf("%w: allocate identity for %v: %w", errUnavailable, ep.identityLabels, err)
	}
	ep.Identity = id
	undo = func() { e.a.ids.Release(context.WithoutCancel(ctx), ep.identityLabels); e.forget(ep) }
	if err := e.save(ep); err != nil {
		undo()
		return nil, err
	}
	if err := e.activate(ctx, ep); err != nil {
		e.a.dp.DeleteEndpoint(context.WithoutCancel(ctx), ep.IP)
		os.Remove(e.path(ep))
		undo()
		return nil, err
	}
	e.a.services.changed() // services: HostPort
	e.a.log.Info("endpoint created", "id", ep.ID, "ip", ep.IP, "identity", ep.Identity, "pod", ep.Namespace+"/"+ep.Pod, "container", short(ep.ContainerID))
	return ep, nil
}

// activate writes the endpoint into the datapath and publishes it.
func (e *endpoints) activate(ctx context.Context, ep *endpointState) error {
	mac, err := net.ParseMAC(ep.PodMAC)
	if err != nil {
		return fmt.Errorf("pod MAC %q: %w", ep.PodMAC, err)
	}
	err = e.a.dp.UpsertEndpoint(ctx, datapath.Endpoint{
		ID: ep.ID, IP: ep.IP, Identity: uint32(ep.Identity), HostDevice: ep.HostIfName, MAC: mac,
	})
	if err != nil {
		return fmt.Errorf("attach endpoint %d to %s: %w", ep.ID, ep.HostIfName, err)
	}
	if err := e.a.policy.endpointChanged(ctx, ep); err != nil { // policy: its policy before it is published
		return err
	}
	return e.a.publisher.Publish(records.IPCacheEntry{
		IP: ep.IP, Identity: ep.Identity, HostIP: e.a.nodeIP, Namespace: ep.Namespace, Pod: ep.Pod,
	})
}

// delete removes the endpoint of a container's interface; false when there
// was none.
func (e *endpoints) delete(ctx context.Context, containerID, ifname string) (bool, error) {
	ep := e.find(func(ep *endpointState) bool {
		return ep.ContainerID == containerID && (ifname == "" || ep.IfName == ifname)
	})
	if ep == nil {
		return false, nil
	}
	e.a.policy.endpointDeleted(ep.ID) // policy: no policy writes for it from now on
	e.a.publisher.Withdraw(ep.IP)
	if err := e.a.dp.DeleteEndpoint(ctx, ep.IP); err != nil {
		return true, fmt.Errorf("detach endpoint %d: %w", ep.ID, err)
	}
	if _, err := e.a.ids.Release(ctx, ep.identityLabels); err != nil {
		e.a.log.Warn("release identity", "identity", ep.Identity, "err", err)
	}
	if err := os.Remove(e.path(ep)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return true, fmt.Errorf("remove endpoint state: %w", err)
	}
	e.forget(ep)
	e.a.services.changed() // services: HostPort
	e.a.log.Info("endpoint deleted", "id", ep.ID, "ip", ep.IP, "container", short(ep.ContainerID))
	return true, nil
}

// identityLabels forms the identity's label set from the pod's labels.
func (e *endpoints) identityLabels(ep *endpointState) (records.Labels, error) {
	ls := []string{
		records.SourceK8s + ":" + records.LabelNamespace + "=" + ep.Namespace,
		records.SourceK8s + ":" + records.LabelCluster + "=" + e.a.cluster.Name,
	}
	for k, v := range ep.Labels {
		if k == records.LabelNamespace || k == records.LabelCluster {
			return nil, fmt.Errorf("label %q is set by the agent; remove it from the pod's labels", k)
		}
		ls = append(ls, records.SourceK8s+":"+k+"="+v)
	}
	labels, err := records.ParseLabels(ls...)
	if err != nil {
		return nil, fmt.Errorf("pod labels: %w", err)
	}
	return labels, nil
}

// reserve picks a free endpoint id and address for ep (or checks the ones
// it has, when restoring) and records it.
func (e *endpoints) reserve(ep *endpointState) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	usedIP := map[netip.Addr]bool{}
	for _, o := range e.byID {
		usedIP[o.IP] = true
	}
	if ep.ID == 0 {
		for id := uint16(1); id != 0; id++ {
			if e.byID[id] == nil {
				ep.ID = id
				break
			}
		}
		if ep.ID == 0 {
			return errors.New("allocate endpoint id: all 65535 ids of this node are in use")
		}
	} else if e.byID[ep.ID] != nil {
		return fmt.Errorf("endpoint id %d is used twice in %s", ep.ID, e.dir)
	}
	if !ep.IP.IsValid() {
		cidr := e.a.podCIDR
		// Skip the network address and .1 (kept for the node); stop before broadcast.
		for ip := cidr.Addr().Next().Next(); cidr.Contains(ip) && cidr.Contains(ip.Next()); ip = ip.Next() {
			if !usedIP[ip] {
				ep.IP = ip
				break
			}
		}
		if !ep.IP.IsValid() {
			return fmt.Errorf("allocate an address: pod CIDR %s of node %s is full", cidr, e.a.cfg.NodeName)
		}
	} else if usedIP[ep.IP] || !e.a.podCIDR.Contains(ep.IP) {
		return fmt.Errorf("endpoint %d: address %s is taken or outside the pod CIDR %s", ep.ID, ep.IP, e.a.podCIDR)
	}
	e.byID[ep.ID] = ep
	return nil
}

func (e *endpoints) forget(ep *endpointState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byID[ep.ID] == ep {
		delete(e.byID, ep.ID)
	}
}

func (e *endpoints) path(ep *endpointState) string {
	return filepath.Join(e.dir, fmt.Sprintf("%05d.json", ep.ID))
}

// save writes ep's state atomically before it is answered, so a restart
// never hands its address out twice.
func (e *endpoints) save(ep *endpointState) error {
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		return fmt.Errorf("create endpoint state dir: %w", err)
	}
	data, err := json.MarshalIndent(ep, "", "  ")
	if err != nil {
		return err
	}
	tmp := e.path(ep) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("save endpoint state: %w", err)
	}
	if err := os.Rename(tmp, e.path(ep)); err != nil {
		return fmt.Errorf("save endpoint state: %w", err)
	}
	return nil
}

// restore brings back the endpoints of the last run: those whose host veth
// still exists are re-attached and re-published; the others (the pod went
// away while the agent was down) are cleaned up.
func (e *endpoints) restore(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(e.dir, "*.json"))
	if err != nil {
		return err
	}
	var keep []netip.Addr
	for _, f := range files {
		ep, err := readEndpoint(f)
		if err != nil {
			e.a.log.Error("skipping unreadable endpoint state", "file", f, "err", err)
			continue
		}
		if _, err := netlink.LinkByName(ep.HostIfName); err != nil {
			e.a.log.Info("endpoint's veth is gone; removing it", "id", ep.ID, "veth", ep.HostIfName)
			os.Remove(f)
			continue
		}
		if ep.identityLabels, err = e.identityLabels(ep); err == nil {
			err = e.reserve(ep)
		}
		if err == nil {
			ep.Identity, err = e.a.ids.Allocate(ctx, ep.identityLabels)
		}
		if err == nil {
			err = e.activate(ctx, ep)
		}
		if err != nil {
			return fmt.Errorf("restore endpoint %d (%s): %w", ep.ID, ep.IP, err)
		}
		e.save(ep)
		keep = append(keep, ep.IP)
	}
	if err := e.a.dp.PruneEndpoints(ctx, keep); err != nil {
		return err
	}
	e.a.services.changed() // services: HostPort
	if len(keep) > 0 {
		e.a.log.Info("endpoints restored", "count", len(keep))
	}
	return nil
}

func readEndpoint(path string) (*endpointState, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ep endpointState
	if err := json.Unmarshal(data, &ep); err != nil {
		return nil, err
	}
	if ep.Version != 1 || ep.ID == 0 || !ep.IP.IsValid() || ep.HostIfName == "" {
		return nil, fmt.Errorf("incomplete endpoint state (version %d, id %d, ip %v, veth %q)", ep.Version, ep.ID, ep.IP, ep.HostIfName)
	}
	return &ep, nil
}

func validateCreate(req *agentapi.CreateEndpointRequest) error {
	var problems []string
	if req.ContainerId == "" {
		problems = append(problems, "container_id is empty")
	}
	if req.Ifname == "" {
		problems = append(problems, "ifname is empty")
	}
	if req.HostIfname == "" {
		problems = append(problems, "host_ifname is empty")
	} else if _, err := netlink.LinkByName(req.HostIfname); err != nil {
		problems = append(problems, fmt.Sprintf("host_ifname %q: no such device on this node", req.HostIfname))
	}
	if _, err := net.ParseMAC(req.PodMac); err != nil {
		problems = append(problems, fmt.Sprintf("pod_mac %q is not a MAC address", req.PodMac))
	}
	if req.Namespace != "" {
		if err := records.ValidateNamespace(req.Namespace); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errInvalidRequest, strings.Join(problems, "; "))
	}
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// sortedLabels renders an identity's labels for the API, without the "="
// of a label that has no value (reserved:host).
func sortedLabels(ls records.Labels) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = strings.TrimSuffix(l.String(), "=")
	}
	slices.Sort(out)
	return out
}
