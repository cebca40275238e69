package proxy

import (
	"context"
	"net/netip"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/proxy/dnsproxy"
	"github.com/weftnet/weft/state/records"
)

// learnWait bounds how long an allowed DNS answer waits for the policies
// admitting its new addresses before it is passed on anyway.
const learnWait = 2 * time.Second

// serveDNS listens for redirected DNS queries and answers them until ctx
// ends or reading fails.
func (c *Component) serveDNS(ctx context.Context, p uint16) error {
	conn, err := dnsproxy.ListenTransparent(ctx, netip.AddrPortFrom(localhost, p))
	if err != nil {
		return err
	}
	defer conn.Close()
	proxy := dnsproxy.New(dnsproxy.Config{
		Allow: c.allowDNS,
		Cache: c.cache,
		Learned: func(ctx context.Context, name string, added []netip.Addr) {
			c.markDirty()
			ctx, cancel := context.WithTimeout(ctx, learnWait)
			defer cancel()
			if err := c.policies.FQDNChanged(ctx); err != nil {
				c.log.Warn("new FQDN addresses not admitted before the answer was passed on", "name", name, "addresses", added, "err", err)
			}
		},
		OnEvent: c.recordDNS,
	})
	defer proxy.Close()
	if err := c.publish(dnsListener, p); err != nil {
		return err
	}
	defer c.withdraw(dnsListener)
	c.log.Info("DNS proxy listening", "address", conn.LocalAddr())
	return proxy.ServeTransparent(ctx, conn)
}

// allowDNS decides a query by the rules of the endpoint that sent it for
// the port it was sent to, and the identity of the server it asked.
func (c *Component) allowDNS(q dnsproxy.Query) bool {
	pol := c.policies.DNSPolicyOf(q.Source.Addr(), q.Server.Port())
	if pol == nil {
		return false
	}
	peer := records.IDWorld
	if c.peers != nil {
		if ep, ok := c.peers.LookupIP(q.Server.Addr()); ok && ep.Identity != 0 {
			peer = records.ID(ep.Identity)
		}
	}
	return pol.Allows(peer, q.Name)
}

// recordDNS turns a DNS proxy event into a flow record.
func (c *Component) recordDNS(ev dnsproxy.Event) {
	if c.flows == nil {
		return
	}
	typ := agentapi.L7FlowType_REQUEST
	if ev.Kind == "dns-response" {
		typ = agentapi.L7FlowType_RESPONSE
	}
	verdict, reason := agentapi.Verdict_FORWARDED, ""
	switch ev.Verdict {
	case dnsproxy.Denied:
		verdict, reason = agentapi.Verdict_DROPPED, "policy denied"
	case dnsproxy.Dropped:
		verdict, reason = agentapi.Verdict_DROPPED, ev.Reason
	}
	d := &agentapi.FlowDNS{Rcode: ev.RCode, Ttl: uint32(ev.TTL / time.Second)}
	if ev.Name != "" {
		d.Query = ev.Name + "."
	}
	if ev.Type != "" {
		d.Qtypes = []string{ev.Type}
	}
	for _, ip := range ev.IPs {
		d.Ips = append(d.Ips, ip.String())
	}
	c.flows.Write(flow.DNSRecord(typ, verdict, reason, ev.Source, ev.Server, d, ev.Latency, c.enricher))
}

// markDirty asks maintainCache to save the cache.
func (c *Component) markDirty() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

// cacheInterval is how often expired addresses are dropped.
const cacheInterval = 5 * time.Second

// maintainCache drops expired addresses (recomputing the policies that
// selected them) and saves the cache after changes, until ctx ends; it
// saves it a last time then.
func (c *Component) maintainCache(ctx context.Context) {
	t := time.NewTicker(cacheInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.save()
			return
		case <-c.dirty:
			c.save()
		case <-t.C:
			if expired := c.cache.Expire(time.Now()); len(expired) > 0 {
				c.log.Info("FQDN addresses expired", "addresses", len(expired))
				ctx, cancel := context.WithTimeout(ctx, learnWait)
				_ = c.policies.FQDNChanged(ctx)
				cancel()
				c.save()
			}
		}
	}
}

func (c *Component) save() {
	if c.cfg.CacheFile == "" {
		return
	}
	if err := c.cache.Save(c.cfg.CacheFile); err != nil {
		c.log.Error("save the FQDN cache", "err", err)
	}
}
