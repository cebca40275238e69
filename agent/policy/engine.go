package policy

import (
	"context"
	"fmt"
	"github.com/weftnet/weft/agent/endpoints"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/fqdn"
	"github.com/weftnet/weft/internal/mapshrink"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/policy"
	"github.com/weftnet/weft/state/records"
)

// policyDebounce gathers bursts of policy and identity changes into one
// recomputation (the first change after a quiet spell is applied at once);
// well within the 100 ms target for a new identity.
const policyDebounce = 5 * time.Millisecond

// policyRetry is when a round that failed to write some endpoint's
// policy is tried again.
const policyRetry = time.Second

// policySyncWait bounds how long a new endpoint waits for the first
// listing of policies and identities before it is answered without policy
// (the listing then applies it).
const policySyncWait = 5 * time.Second

// Datapath is where endpoint policies go (*datapath.Datapath).
type Datapath interface {
	SetPolicy(ctx context.Context, id uint16, p datapath.Policy) error
}

// Prefixes is where CIDR identities go (*agent/ipcache.Sync).
type Prefixes interface {
	SetPrefix(ctx context.Context, p netip.Prefix, identity uint32)
	DeletePrefix(ctx context.Context, p netip.Prefix)
}

// Engine keeps every local endpoint's datapath policy equal to what
// the store's policies compute over the cluster's identities.
type Engine struct {
	store     kvstore.Client
	keys      records.Keys
	node      string
	dp        Datapath
	prefixes  Prefixes
	endpoints func() []*endpoints.Endpoint
	log       *slog.Logger

	mu       sync.Mutex
	repo     *policy.Repository
	stored   map[string]storedPolicy // by key
	universe *policy.Universe
	cidrs    *policy.CIDRIdentities
	applied  map[uint16]policy.Result
	// appliedPeak is applied's largest size since it was last rebuilt (mapshrink).
	appliedPeak int
	deleting    map[uint16]bool // endpoints being deleted: not written to
	listed      [2]bool         // policies, identities
	synced      chan struct{}
	// waited is set once an endpoint waited policySyncWait in vain: the
	// next ones (a restore of many) do not wait again.
	waited atomic.Bool

	dirty chan struct{}

	// explained caches Explain's answers (PolicyOf's, allowsL4's) until
	// the next recomputation.
	explained map[explainKey]explanation
	// httpPolicies caches HTTPPolicyOf's answers by identity labels until
	// the next recomputation; dnsPolicies DNSPolicyOf's.
	httpPolicies map[string]map[policy.L7Port]*policy.HTTPPolicy
	dnsPolicies  map[string]map[uint16]*policy.DNSPolicy
	// fqdnIPs gives the addresses the node's DNS proxy learnt for a
	// toFQDNs selector (SetFQDN; nil: none).
	fqdnIPs func(*fqdn.Matcher) []netip.Addr
	// rounds counts the completed recomputations; roundDone is closed
	// at the end of each (FQDNChanged waits for one).
	rounds    uint64
	roundDone chan struct{}

	// FindEndpoint, when set, finds a local endpoint for the L7 proxy's
	// lookups (endpoints.Manager.Find) without listing them all.
	FindEndpoint func(match func(*endpoints.Endpoint) bool) *endpoints.Endpoint

	// OnRecompute, when set before Run, is told how long each
	// recomputation of every endpoint's rules took (the agent's
	// weft_policy_recompute_duration_seconds).
	OnRecompute func(time.Duration)
}

// storedPolicy is a store record and what parsing it gave.
type storedPolicy struct {
	ref    records.PolicyRef
	policy *policy.Policy
	err    error
}

func New(store kvstore.Client, keys records.Keys, node string, dp Datapath, prefixes Prefixes,
	endpoints func() []*endpoints.Endpoint, log *slog.Logger) *Engine {
	return &Engine{
		store: store, keys: keys, node: node, dp: dp, prefixes: prefixes, endpoints: endpoints,
		log:  log.With("component", "policy"),
		repo: policy.NewRepository(), stored: map[string]storedPolicy{}, universe: policy.NewUniverse(),
		cidrs: policy.NewCIDRIdentities(), applied: map[uint16]policy.Result{}, deleting: map[uint16]bool{},
		synced: make(chan struct{}), dirty: make(chan struct{}, 1), roundDone: make(chan struct{}),
	}
}

// run watches policies and identities and recomputes on every change.
// Run watches policies and identities until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return e.watch(ctx, e.keys.PoliciesPrefix(), 0, e.onPolicy) })
	g.Go(func() error { return e.watch(ctx, e.keys.IdentitiesPrefix(), 1, e.onIdentity) })
	g.Go(func() error { return e.reconcile(ctx) })
	return g.Wait()
}

func (e *Engine) watch(ctx context.Context, prefix string, which int, on func(kvstore.Event) bool) error {
	for ev := range e.store.ListAndWatch(ctx, prefix) {
		changed := false
		e.mu.Lock()
		if ev.Type == kvstore.EventListDone {
			changed, e.listed[which] = !e.listed[which], true
		} else {
			changed = on(ev)
		}
		e.mu.Unlock()
		if changed {
			e.kick()
		}
	}
	return ctx.Err()
}

func (e *Engine) kick() {
	select {
	case e.dirty <- struct{}{}:
	default:
	}
}

// onPolicy applies a policy record change; e.mu is held.
func (e *Engine) onPolicy(ev kvstore.Event) bool {
	if ev.Type == kvstore.EventDelete {
		sp, ok := e.stored[ev.Key]
		if !ok {
			return false
		}
		delete(e.stored, ev.Key)
		e.repo.Delete(sp.ref.Namespace, sp.ref.Name)
		return true
	}
	ref, err := e.keys.DecodePolicyRef(ev.Key, ev.Value)
	if err != nil {
		e.log.Warn("ignoring a policy record", "key", ev.Key, "err", err)
		return false
	}
	sp := storedPolicy{ref: ref}
	// The record's namespace is the one a document without
	// metadata.namespace was imported into (weft policy import -n).
	ns := ref.Namespace
	if ns == records.PolicyClusterwide {
		ns = ""
	}
	ps, err := policy.ParseIn([]byte(ref.Document), ns)
	switch {
	case err != nil:
		sp.err = err
	case len(ps) != 1 || ps[0].StoreNamespace() != ref.Namespace || ps[0].Name != ref.Name:
		sp.err = fmt.Errorf("the record %s does not hold exactly the policy %s/%s", ev.Key, ref.Namespace, ref.Name)
	default:
		sp.policy = ps[0]
	}
	e.stored[ev.Key] = sp
	if sp.err != nil {
		// Not enforceable (written by an older or foreign writer): keep
		// enforcing nothing of it, and say so in weft policy list.
		e.log.Error("policy in the store cannot be enforced", "key", ev.Key, "err", sp.err)
		e.repo.Delete(ref.Namespace, ref.Name)
	} else {
		e.repo.Upsert(sp.policy)
	}
	return true
}

// onIdentity applies an identity change; e.mu is held.
func (e *Engine) onIdentity(ev kvstore.Event) bool {
	id, err := e.keys.ParseIdentityKey(ev.Key)
	if err != nil {
		return false
	}
	if ev.Type == kvstore.EventDelete {
		return e.universe.Delete(id)
	}
	ident, err := e.keys.DecodeIdentity(ev.Key, ev.Value)
	if err != nil {
		e.log.Warn("ignoring an identity record", "key", ev.Key, "err", err)
		return false
	}
	return e.universe.Upsert(ident.ID, ident.Labels)
}

// reconcile recomputes after changes, once both prefixes have been listed.
func (e *Engine) reconcile(ctx context.Context) error {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.dirty:
		}
		// Debounce: the first change after a quiet spell is applied at
		// once; during a burst, changes are gathered for policyDebounce.
		if time.Since(last) < policyDebounce {
			t := time.NewTimer(policyDebounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		last = time.Now()
		e.mu.Lock()
		ready := e.listed[0] && e.listed[1]
		npol, nid := e.repo.Len(), e.universe.Len()
		if ready {
			start := time.Now()
			added := e.syncPrefixes(ctx)
			failed := false
			for _, ep := range e.endpoints() {
				if err := e.applyLocked(ctx, ep); err != nil {
					e.log.Error("apply policy", "endpoint", ep.ID, "err", err)
					failed = true
				}
			}
			if failed {
				time.AfterFunc(policyRetry, e.kick) // try again even if nothing changes
			}
			for p, id := range added {
				e.prefixes.SetPrefix(ctx, p, uint32(id))
			}
			e.universe.PruneSelectors()
			clear(e.explained)
			clear(e.httpPolicies)
			clear(e.dnsPolicies)
			e.rounds++
			close(e.roundDone)
			e.roundDone = make(chan struct{})
			if e.OnRecompute != nil {
				e.OnRecompute(time.Since(start))
			}
		}
		e.mu.Unlock()
		if ready {
			select {
			case <-e.synced:
			default:
				close(e.synced)
				e.log.Info("policies enforced", "policies", npol, "identities", nid)
			}
		}
	}
}

// syncPrefixes gives the policies' CIDR prefixes their identities and
// removes the prefixes no policy needs from the ipcache; e.mu is held. It
// returns the new prefixes, which go into the ipcache once the endpoints'
// policies admit their identities (so no flow is dropped in between).
func (e *Engine) syncPrefixes(ctx context.Context) map[netip.Prefix]records.ID {
	prefixes := e.repo.Prefixes()
	if e.fqdnIPs != nil {
		// toFQDNs peers select the /32 CIDR identities of learnt addresses.
		for _, m := range e.repo.FQDNMatchers() {
			for _, ip := range e.fqdnIPs(m) {
				prefixes = append(prefixes, netip.PrefixFrom(ip, ip.BitLen()))
			}
		}
		slices.SortFunc(prefixes, func(a, b netip.Prefix) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return a.Bits() - b.Bits()
		})
		prefixes = slices.Compact(prefixes)
	}
	added, removed := e.cidrs.Sync(prefixes)
	for p := range removed {
		e.prefixes.DeletePrefix(ctx, p)
	}
	e.universe.SetCIDRs(e.cidrs.All())
	return added
}

// applyLocked computes and writes one endpoint's policy if it changed.
func (e *Engine) applyLocked(ctx context.Context, ep *endpoints.Endpoint) error {
	if e.deleting[ep.ID] {
		return nil
	}
	// A local endpoint's identity is of the local cluster: the entity
	// "cluster" is that cluster's identities (not clustermesh remotes').
	e.universe.SetLocalCluster(ep.Identity.ClusterID())
	res := e.repo.Compute(ep.IdentityLabels, e.universe)
	if res.Entries() > policy.MaxRulesPerEndpoint {
		return fmt.Errorf("endpoint %d needs %d policy entries; at most %d fit: keeping its previous policy", ep.ID, res.Entries(), policy.MaxRulesPerEndpoint)
	}
	if old, ok := e.applied[ep.ID]; ok && samePolicy(old.Policy, res.Policy) {
		e.applied[ep.ID] = res
		return nil
	}
	if err := e.dp.SetPolicy(ctx, ep.ID, res.Policy); err != nil {
		return err
	}
	e.applied[ep.ID] = res
	return nil
}

func samePolicy(a, b datapath.Policy) bool {
	return a.IngressEnforced == b.IngressEnforced && a.EgressEnforced == b.EgressEnforced &&
		slices.Equal(a.Ingress, b.Ingress) && slices.Equal(a.Egress, b.Egress)
}

// EndpointChanged writes a new or restored endpoint's policy before it is
// published. It waits (bounded) for the first listing of policies.
func (e *Engine) EndpointChanged(ctx context.Context, ep *endpoints.Endpoint) error {
	wait := policySyncWait
	if e.waited.Load() {
		wait = 0
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-e.synced:
	default:
		select {
		case <-e.synced:
		case <-t.C:
			e.waited.Store(true)
			e.log.Warn("policies not listed yet; the endpoint gets its policy once they are", "endpoint", ep.ID)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.applied, ep.ID)
	delete(e.deleting, ep.ID)
	if err := e.applyLocked(ctx, ep); err != nil {
		return fmt.Errorf("apply policy to endpoint %d: %w", ep.ID, err)
	}
	return nil
}

// EndpointDeleted is called before an endpoint is removed from the
// datapath (which drops its policy entries): no policy is written for it
// until its id is used again.
func (e *Engine) EndpointDeleted(id uint16) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.applied, id)
	e.applied = mapshrink.Shrink(e.applied, &e.appliedPeak)
	e.deleting[id] = true
}

type explainKey struct {
	dir           datapath.Direction
	subject, peer uint32
	port          uint16
	proto         uint8
}

// explanation is what Explain said of one flow: the policies that decide
// it, as PolicyOf names them, and whether it is denied.
type explanation struct {
	policies string
	denied   bool
}

// explain is Explain's answer for a new flow of the local endpoint of
// identity subject, cached until the next recomputation. e.mu is held.
func (e *Engine) explain(dir datapath.Direction, subject, peer uint32, port uint16, proto uint8) explanation {
	k := explainKey{dir, subject, peer, port, proto}
	if x, ok := e.explained[k]; ok {
		return x
	}
	v := e.repo.Explain(e.universe, records.ID(subject), dir, records.ID(peer), port, proto)
	x := explanation{policies: strings.Join(v.Policies, ","), denied: v.Denied}
	if x.denied && x.policies == "" {
		x.policies = "default deny"
	}
	if e.explained == nil || len(e.explained) > 4096 {
		e.explained = map[explainKey]explanation{}
	}
	e.explained[k] = x
	return x
}

// PolicyOf names the policies that decide a new flow of the local endpoint
// of identity subject (flow.PolicyLookup): their "ns/name", "default deny"
// when the direction is enforced and no rule admits the flow, "" when no
// policy decides it. Answers are cached until the policies or identities
// change.
func (e *Engine) PolicyOf(dir datapath.Direction, subject, peer uint32, port uint16, proto uint8) string {
	if subject == 0 {
		return ""
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.explain(dir, subject, peer, port, proto).policies
}

// allowsL4 reports whether the L3/L4 policy now admits a new flow of the
// local endpoint of identity subject with peer (deny rules, enforcement
// and allow-localhost as the datapath decides); false until the policies
// and identities have been read.
func (e *Engine) allowsL4(dir datapath.Direction, subject, peer records.ID, port uint16, proto uint8) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.listed[0] || !e.listed[1] {
		// Policies or identities not read yet (the agent starting while
		// the datapath still hands connections to the proxy): fail closed.
		return false
	}
	return !e.explain(dir, uint32(subject), uint32(peer), port, proto).denied
}

// HTTPPolicyOf returns the HTTP rules of the local endpoint at ip for
// TCP port in direction dir (the L7 proxy asks for every request), or nil
// when the endpoint is unknown or its HTTP rules do not compile: the
// proxy then denies every request. A
// port without HTTP rules (removed while connections the datapath handed
// to the proxy stay there) lets the requests of a peer the L3/L4 policy
// admits through. Answers are cached until the next recomputation.
func (e *Engine) HTTPPolicyOf(ip netip.Addr, dir datapath.Direction, port uint16) *policy.HTTPPolicy {
	ep, byPort := l7PolicyOf(e, &e.httpPolicies, ip, func(ep *endpoints.Endpoint) map[policy.L7Port]*policy.HTTPPolicy {
		byPort, err := e.repo.ComputeHTTP(ep.IdentityLabels, e.universe)
		if err != nil {
			e.log.Error("compute HTTP rules", "endpoint", ep.ID, "err", err)
			return nil // every request denied, as with no rules
		}
		return byPort
	})
	if ep == nil || byPort == nil { // unknown, or its rules did not compile
		return nil
	}
	if pol := byPort[policy.L7Port{Direction: dir, Port: port}]; pol != nil {
		return pol
	}
	subject := ep.Identity
	return policy.L4HTTPPolicy(func(peer records.ID) bool {
		return e.allowsL4(dir, subject, peer, port, datapath.ProtoTCP)
	})
}

// l7PolicyOf returns the local endpoint at ip and what compute gives for
// it, cached in *cache by identity labels until the next recomputation;
// nil and the zero value for an unknown endpoint. compute runs with e.mu
// held.
func l7PolicyOf[T any](e *Engine, cache *map[string]T, ip netip.Addr, compute func(*endpoints.Endpoint) T) (*endpoints.Endpoint, T) {
	var zero T
	ep := e.endpointAt(ip)
	if ep == nil {
		return nil, zero
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	key := ep.IdentityLabels.String()
	v, ok := (*cache)[key]
	if !ok {
		e.universe.SetLocalCluster(ep.Identity.ClusterID())
		v = compute(ep)
		if *cache == nil {
			*cache = map[string]T{}
		}
		(*cache)[key] = v
	}
	return ep, v
}

// SetFQDN says where toFQDNs selectors find the addresses the node's DNS
// proxy learnt (before Run).
func (e *Engine) SetFQDN(lookup func(*fqdn.Matcher) []netip.Addr) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fqdnIPs = lookup
	e.universe.SetFQDNLookup(lookup)
}

// FQDNChanged recomputes every endpoint's policy after the FQDN cache
// changed and returns once a recomputation that started after the call
// is written (or ctx ends): a DNS answer is passed on only when the
// addresses it brought are allowed.
func (e *Engine) FQDNChanged(ctx context.Context) error {
	e.mu.Lock()
	target := e.rounds + 1
	e.mu.Unlock()
	e.kick()
	for {
		e.mu.Lock()
		done, ch := e.rounds >= target, e.roundDone
		e.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// DNSPolicyOf returns the DNS rules of the local endpoint at ip for UDP
// port (the DNS proxy asks for every query), or nil when the endpoint is
// unknown: every query is then refused. A port without DNS rules (removed
// while flows the datapath handed to the proxy stay there) lets every
// query to a server the L3/L4 policy admits through. Answers are cached
// until the next recomputation.
func (e *Engine) DNSPolicyOf(ip netip.Addr, port uint16) *policy.DNSPolicy {
	ep, byPort := l7PolicyOf(e, &e.dnsPolicies, ip, func(ep *endpoints.Endpoint) map[uint16]*policy.DNSPolicy {
		return e.repo.ComputeDNS(ep.IdentityLabels, e.universe)
	})
	if ep == nil {
		return nil
	}
	if pol := byPort[port]; pol != nil {
		return pol
	}
	subject := ep.Identity
	return policy.L4DNSPolicy(func(peer records.ID) bool {
		return e.allowsL4(datapath.Egress, subject, peer, port, datapath.ProtoUDP)
	})
}

// endpointAt is the local endpoint with address ip, or nil.
func (e *Engine) endpointAt(ip netip.Addr) *endpoints.Endpoint {
	if e.FindEndpoint != nil { // no copy of the list per request
		return e.FindEndpoint(func(c *endpoints.Endpoint) bool { return c.IP == ip })
	}
	for _, c := range e.endpoints() {
		if c.IP == ip {
			return c
		}
	}
	return nil
}

// CIDRIdentityOf returns the CIDR identity of the longest policy prefix
// holding ip, as the datapath's ipcache resolves an address no endpoint
// or node has (the L7 proxy decides by it); ok is false when none does.
func (e *Engine) CIDRIdentityOf(ip netip.Addr) (records.ID, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cidrs.Longest(ip)
}
