package endpoints

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/internal/mapshrink"
	"github.com/weftnet/weft/k8s/podlabels"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// Kinds of endpoint failures, which the API maps to gRPC codes (and the
// CNI plugin to "invalid" or "try again later").
var (
	ErrInvalidRequest = errors.New("invalid endpoint request")
	ErrExhausted      = errors.New("out of addresses or endpoint ids")
	ErrUnavailable    = errors.New("store unavailable")
)

// Gateway is the pods' next hop: a link-local address answered by the host
// side of each veth (its MAC is the pod's static neighbour entry).
var Gateway = netip.MustParseAddr("169.254.1.1")

// Endpoint is what survives an agent restart, one JSON file per endpoint
// in the state directory (STABLE v1).
type Endpoint struct {
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
	// CNILabels are the labels the CNI plugin passed; Labels adds the
	// pod's Kubernetes labels to them (and is re-formed when those change).
	CNILabels map[string]string `json:"cniLabels,omitempty"`
	Identity  records.ID        `json:"identity"`
	// HostPort frontends of the CNI portMappings capability (agent/services).
	PortMappings []PortMapping `json:"portMappings,omitempty"`

	// IdentityLabels is the identity's label set, derived from Labels.
	IdentityLabels records.Labels `json:"-"`
}

// Config is the node an endpoint manager serves.
type Config struct {
	Dir     string // state directory of the endpoint files
	Node    string
	Cluster string
	NodeIP  netip.Addr
	PodCIDR netip.Prefix // addresses are taken from it
}

// Identities allocates the endpoints' identities (*state/identity.Allocator).
type Identities interface {
	Allocate(ctx context.Context, labels records.Labels) (records.ID, error)
	Release(ctx context.Context, labels records.Labels) (bool, error)
}

// Datapath attaches endpoints (*datapath.Datapath).
type Datapath interface {
	UpsertEndpoint(ctx context.Context, ep datapath.Endpoint) error
	DeleteEndpoint(ctx context.Context, ip netip.Addr) error
	PruneEndpoints(ctx context.Context, keep []netip.Addr) error
}

// Publisher publishes the endpoints' ipcache entries (*state/ipcache.Publisher).
type Publisher interface {
	Publish(e records.IPCacheEntry) error
	Withdraw(ip netip.Addr)
}

// Policy is told of endpoints before they are published and when they go
// (*agent/policy.Engine).
type Policy interface {
	EndpointChanged(ctx context.Context, ep *Endpoint) error
	EndpointDeleted(id uint16)
}

// PodLabels looks up the Kubernetes labels of a pod the CNI plugin names
// (*k8s/podlabels.Resolver); podlabels.ErrNotKubernetes means the cluster
// has no Kubernetes source.
type PodLabels interface {
	Labels(ctx context.Context, namespace, name string, wait time.Duration) (map[string]string, error)
	// Changes names the pods (and namespaces, Pod empty) whose mirrored
	// records were written, until ctx ends.
	Changes(ctx context.Context) <-chan podlabels.Change
}

// Manager owns this node's endpoints: their addresses, ids, identities,
// datapath entries and published ipcache entries.
type Manager struct {
	cfg       Config
	ids       Identities
	dp        Datapath
	publisher Publisher
	log       *slog.Logger

	// Set by SetHooks before Run.
	policy   Policy
	onChange func() // the set of endpoints or their port mappings changed
	// Set by SetPodLabels before Run; nil: the CNI plugin's labels only.
	podLabels     PodLabels
	podLabelsWait time.Duration

	// busy serialises the changes of one endpoint (relabel, delete), by id.
	busy kvstore.KeyedMutex

	mu       sync.Mutex
	byID     map[uint16]*Endpoint // an Endpoint is replaced, never changed, once stored here
	byIDPeak int                  // for mapshrink
}

// New returns the endpoint manager of the node cfg names.
func New(cfg Config, ids Identities, dp Datapath, publisher Publisher, log *slog.Logger) *Manager {
	return &Manager{cfg: cfg, ids: ids, dp: dp, publisher: publisher, log: log,
		onChange: func() {}, byID: map[uint16]*Endpoint{}}
}

// SetHooks connects the policy engine and the listener of endpoint changes
// (the services component, for HostPorts); both are created after the
// manager because they list its endpoints.
func (e *Manager) SetHooks(policy Policy, onChange func()) {
	e.policy, e.onChange = policy, onChange
}

// SetPodLabels makes Create take the labels of a pod named by the CNI
// plugin (K8S_POD_NAMESPACE/K8S_POD_NAME) from the Kubernetes mirror,
// waiting up to wait for its record, in clusters that have a Kubernetes
// source.
func (e *Manager) SetPodLabels(p PodLabels, wait time.Duration) {
	e.podLabels, e.podLabelsWait = p, wait
}

// Count is the number of endpoints.
func (e *Manager) Count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.byID)
}

// Find returns an endpoint match accepts, or nil.
func (e *Manager) Find(match func(*Endpoint) bool) *Endpoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ep := range e.byID {
		if match(ep) {
			return ep
		}
	}
	return nil
}

// List returns the endpoints sorted by id.
func (e *Manager) List() []*Endpoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*Endpoint, 0, len(e.byID))
	for _, ep := range e.byID {
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Create makes a new endpoint, or returns the existing one of the same
// container and interface. On failure nothing is left behind.
func (e *Manager) Create(ctx context.Context, req *agentapi.CreateEndpointRequest) (*Endpoint, error) {
	if err := validateCreate(req); err != nil {
		return nil, err
	}
	if ep := e.Find(func(ep *Endpoint) bool { return ep.ContainerID == req.ContainerId && ep.IfName == req.Ifname }); ep != nil {
		return ep, nil
	}
	ep := &Endpoint{
		Version: 1, ContainerID: req.ContainerId, IfName: req.Ifname, NetNS: req.Netns,
		HostIfName: req.HostIfname, PodMAC: req.PodMac, Namespace: req.Namespace, Pod: req.PodName, Labels: req.Labels,
		CNILabels: maps.Clone(req.Labels), PortMappings: PortMappingsFrom(req.PortMappings),
	}
	if ep.Namespace == "" {
		ep.Namespace = "default"
	}
	if err := e.kubernetesLabels(ctx, ep, e.podLabelsWait); err != nil {
		return nil, err
	}
	var err error
	if ep.IdentityLabels, err = e.identityLabels(ep); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	if err := e.reserve(ep); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExhausted, err)
	}
	undo := func() { e.forget(ep) }
	id, err := e.ids.Allocate(ctx, ep.IdentityLabels)
	if err != nil {
		undo()
		return nil, fmt.Errorf("%w: allocate identity for %v: %w", ErrUnavailable, ep.IdentityLabels, err)
	}
	ep.Identity = id
	undo = func() { e.ids.Release(context.WithoutCancel(ctx), ep.IdentityLabels); e.forget(ep) }
	if err := e.save(ep); err != nil {
		undo()
		return nil, err
	}
	if err := e.activate(ctx, ep); err != nil {
		e.dp.DeleteEndpoint(context.WithoutCancel(ctx), ep.IP)
		os.Remove(e.path(ep))
		undo()
		return nil, err
	}
	e.onChange()
	e.log.Info("endpoint created", "id", ep.ID, "ip", ep.IP, "identity", ep.Identity, "pod", ep.Namespace+"/"+ep.Pod, "container", short(ep.ContainerID))
	return ep, nil
}

// activate writes the endpoint into the datapath and publishes it.
func (e *Manager) activate(ctx context.Context, ep *Endpoint) error {
	mac, err := net.ParseMAC(ep.PodMAC)
	if err != nil {
		return fmt.Errorf("pod MAC %q: %w", ep.PodMAC, err)
	}
	err = e.dp.UpsertEndpoint(ctx, datapath.Endpoint{
		ID: ep.ID, IP: ep.IP, Identity: uint32(ep.Identity), HostDevice: ep.HostIfName, MAC: mac, NetNS: ep.NetNS,
	})
	if err != nil {
		return fmt.Errorf("attach endpoint %d to %s: %w", ep.ID, ep.HostIfName, err)
	}
	if err := e.policy.EndpointChanged(ctx, ep); err != nil { // its policy before it is published
		return err
	}
	return e.publisher.Publish(records.IPCacheEntry{
		IP: ep.IP, Identity: ep.Identity, HostIP: e.cfg.NodeIP, Namespace: ep.Namespace, Pod: ep.Pod,
	})
}

// Delete removes the endpoint of a container's interface; false when there
// was none.
func (e *Manager) Delete(ctx context.Context, containerID, ifname string) (bool, error) {
	ep := e.Find(func(ep *Endpoint) bool {
		return ep.ContainerID == containerID && (ifname == "" || ep.IfName == ifname)
	})
	if ep == nil {
		return false, nil
	}
	unlock, err := e.busy.Lock(ctx, busyKey(ep.ID))
	if err != nil {
		return true, fmt.Errorf("delete endpoint %d: %w", ep.ID, err)
	}
	defer unlock()
	if ep = e.current(ep); ep == nil {
		return false, nil // deleted meanwhile
	}
	e.policy.EndpointDeleted(ep.ID) // no policy writes for it from now on
	e.publisher.Withdraw(ep.IP)
	if err := e.dp.DeleteEndpoint(ctx, ep.IP); err != nil {
		return true, fmt.Errorf("detach endpoint %d: %w", ep.ID, err)
	}
	if _, err := e.ids.Release(ctx, ep.IdentityLabels); err != nil {
		e.log.Warn("release identity", "identity", ep.Identity, "err", err)
	}
	if err := os.Remove(e.path(ep)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return true, fmt.Errorf("remove endpoint state: %w", err)
	}
	e.forget(ep)
	e.onChange()
	e.log.Info("endpoint deleted", "id", ep.ID, "ip", ep.IP, "container", short(ep.ContainerID))
	return true, nil
}

// current returns the stored endpoint of ep's id and container (a relabel
// replaces the stored value), or nil when it is gone.
func (e *Manager) current(ep *Endpoint) *Endpoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.byID[ep.ID]
	if cur == nil || cur.ContainerID != ep.ContainerID || cur.IfName != ep.IfName {
		return nil
	}
	return cur
}

func busyKey(id uint16) string { return strconv.Itoa(int(id)) }

// kubernetesLabels replaces a named pod's labels with its Kubernetes ones
// (and its namespace's), waiting up to wait for its record, when the
// cluster mirrors Kubernetes; labels the CNI plugin passed that Kubernetes
// does not set are kept.
func (e *Manager) kubernetesLabels(ctx context.Context, ep *Endpoint, wait time.Duration) error {
	if e.podLabels == nil || ep.Pod == "" {
		return nil
	}
	ls, err := e.podLabels.Labels(ctx, ep.Namespace, ep.Pod, wait)
	switch {
	case errors.Is(err, podlabels.ErrNotKubernetes):
		return nil
	case errors.Is(err, podlabels.ErrNotMirrored):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case err != nil:
		return fmt.Errorf("%w: labels of pod %s/%s: %w", ErrUnavailable, ep.Namespace, ep.Pod, err)
	}
	merged := maps.Clone(ep.CNILabels)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, ls)
	ep.Labels = merged
	return nil
}

// identityLabels forms the identity's label set from the pod's labels.
func (e *Manager) identityLabels(ep *Endpoint) (records.Labels, error) {
	ls := []string{
		records.SourceK8s + ":" + records.LabelNamespace + "=" + ep.Namespace,
		records.SourceK8s + ":" + records.LabelCluster + "=" + e.cfg.Cluster,
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
func (e *Manager) reserve(ep *Endpoint) error {
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
		return fmt.Errorf("endpoint id %d is used twice in %s", ep.ID, e.cfg.Dir)
	}
	if !ep.IP.IsValid() {
		cidr := e.cfg.PodCIDR
		// Skip the network address and .1 (kept for the node); stop before broadcast.
		for ip := cidr.Addr().Next().Next(); cidr.Contains(ip) && cidr.Contains(ip.Next()); ip = ip.Next() {
			if !usedIP[ip] {
				ep.IP = ip
				break
			}
		}
		if !ep.IP.IsValid() {
			return fmt.Errorf("allocate an address: pod CIDR %s of node %s is full", cidr, e.cfg.Node)
		}
	} else if usedIP[ep.IP] || !e.cfg.PodCIDR.Contains(ep.IP) {
		return fmt.Errorf("endpoint %d: address %s is taken or outside the pod CIDR %s", ep.ID, ep.IP, e.cfg.PodCIDR)
	}
	e.byID[ep.ID] = ep
	return nil
}

func (e *Manager) forget(ep *Endpoint) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byID[ep.ID] == ep {
		delete(e.byID, ep.ID)
		e.byID = mapshrink.Shrink(e.byID, &e.byIDPeak)
	}
}

func (e *Manager) path(ep *Endpoint) string {
	return filepath.Join(e.cfg.Dir, fmt.Sprintf("%05d.json", ep.ID))
}

// save writes ep's state atomically before it is answered, so a restart
// never hands its address out twice.
func (e *Manager) save(ep *Endpoint) error {
	if err := os.MkdirAll(e.cfg.Dir, 0o700); err != nil {
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

// Restore brings back the endpoints of the last run: those whose host veth
// still exists are re-attached and re-published; the others (the pod went
// away while the agent was down) are cleaned up.
func (e *Manager) Restore(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(e.cfg.Dir, "*.json"))
	if err != nil {
		return err
	}
	var keep []netip.Addr
	for _, f := range files {
		ep, err := readEndpoint(f)
		if err != nil {
			e.log.Error("skipping unreadable endpoint state", "file", f, "err", err)
			continue
		}
		if _, err := netlink.LinkByName(ep.HostIfName); err != nil {
			e.log.Info("endpoint's veth is gone; removing it", "id", ep.ID, "veth", ep.HostIfName)
			os.Remove(f)
			continue
		}
		if ep.IdentityLabels, err = e.identityLabels(ep); err == nil {
			err = e.reserve(ep)
		}
		if err == nil {
			ep.Identity, err = e.ids.Allocate(ctx, ep.IdentityLabels)
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
	if err := e.dp.PruneEndpoints(ctx, keep); err != nil {
		return err
	}
	e.onChange()
	if len(keep) > 0 {
		e.log.Info("endpoints restored", "count", len(keep))
	}
	return nil
}

func readEndpoint(path string) (*Endpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ep Endpoint
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
		return fmt.Errorf("%w: %s", ErrInvalidRequest, strings.Join(problems, "; "))
	}
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// SortedLabels renders an identity's labels for the API, without the "="
// of a label that has no value (reserved:host).
func SortedLabels(ls records.Labels) []string {
	out := ls.Display()
	slices.Sort(out)
	return out
}
