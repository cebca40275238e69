// Package dnsproxy is the DNS half of Weft's L7 proxy: it answers the DNS
// queries of endpoints selected by rules.dns, refusing (REFUSED) the names
// their policy does not allow and forwarding the others to the DNS server
// they asked, and records the addresses of allowed answers in the FQDN
// cache, from which toFQDNs rules select. Every query and answer becomes an
// Event. Packets that are not one standard query are dropped with an Event
// saying why. Allowed queries go out on connected UDP sockets kept per
// upstream server for reuse. docs/fqdn.md describes it; the agent runs it
// on the transparent listener the datapath redirects DNS to
// (agent/proxy).
package dnsproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/weftnet/weft/fqdn"
)

// Query is what a policy decides on.
type Query struct {
	Source netip.AddrPort // the endpoint that asked
	Server netip.AddrPort // the DNS server it asked
	Name   string         // normalized: lowercase, no trailing dot
	Type   dnsmessage.Type
}

// Verdicts of an Event.
const (
	Forwarded = "FORWARDED"
	Denied    = "DENIED"
	Dropped   = "DROPPED"
)

// Event is one thing the proxy saw, as a flow record shows it: a
// dns-request (FORWARDED, DENIED or DROPPED with a Reason) or a
// dns-response (its RCode, the addresses and the lowest TTL).
type Event struct {
	Kind    string // dns-request or dns-response
	Verdict string
	Source  netip.AddrPort
	Server  netip.AddrPort
	Name    string
	Type    string
	RCode   string
	IPs     []netip.Addr
	TTL     time.Duration
	Latency time.Duration
	Reason  string
}

// Config is what a Proxy needs.
type Config struct {
	// Upstream is the DNS server allowed queries are forwarded to; unset:
	// the server each query was sent to (HandleTo's dst, as a transparent
	// proxy sees it).
	Upstream netip.AddrPort
	// Learned, when set, is called with the addresses an allowed answer
	// added to Cache before the answer is passed on (the agent makes
	// toFQDNs policies admit them first).
	Learned func(ctx context.Context, name string, added []netip.Addr)
	// Allow says whether q may be resolved; nil refuses everything.
	Allow func(q Query) bool
	// Cache receives the addresses of allowed answers (nil: none kept).
	Cache *fqdn.Cache
	// OnEvent receives every Event (nil: none).
	OnEvent func(Event)
	// Timeout bounds the exchange with the upstream (default 2 s).
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Proxy handles DNS queries under a Config. Close releases the upstream
// sockets it keeps.
type Proxy struct {
	cfg       Config
	upstreams upstreams
}

// New returns a proxy for cfg.
func New(cfg Config) *Proxy {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnEvent == nil {
		cfg.OnEvent = func(Event) {}
	}
	return &Proxy{cfg: cfg}
}

// Close closes the sockets kept for the upstream servers; queries still
// being answered close theirs when done.
func (p *Proxy) Close() { p.upstreams.close() }

// maxMessage is the largest DNS message over UDP the proxy handles.
const maxMessage = 65535

// ServeUDP answers the queries arriving on conn, each in its own
// goroutine, until conn is closed.
func (p *Proxy) ServeUDP(ctx context.Context, conn net.PacketConn) error {
	buf := make([]byte, maxMessage)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		src, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		query := append([]byte(nil), buf[:n]...)
		go func() {
			if resp := p.Handle(ctx, src.AddrPort(), query); resp != nil {
				_, _ = conn.WriteTo(resp, from)
			}
		}()
	}
}

// Handle answers one query message from src: the response to send back,
// or nil to drop it. Allowed queries go to Config.Upstream.
func (p *Proxy) Handle(ctx context.Context, src netip.AddrPort, query []byte) []byte {
	return p.HandleTo(ctx, src, p.cfg.Upstream, query)
}

// HandleTo is Handle for a query src sent to the DNS server dst, which
// allowed queries are forwarded to unless Config.Upstream is set.
func (p *Proxy) HandleTo(ctx context.Context, src, dst netip.AddrPort, query []byte) []byte {
	if p.cfg.Upstream.IsValid() {
		dst = p.cfg.Upstream
	}
	var parser dnsmessage.Parser
	hdr, err := parser.Start(query)
	if err != nil {
		p.drop(src, dst, "", "malformed DNS header: "+err.Error())
		return nil
	}
	questions, err := parser.AllQuestions()
	if err != nil {
		p.drop(src, dst, "", "malformed DNS question: "+err.Error())
		return nil
	}
	if hdr.Response || hdr.OpCode != 0 || len(questions) != 1 {
		p.drop(src, dst, "", fmt.Sprintf("not a standard query with one question (response %v, opcode %d, %d questions)", hdr.Response, hdr.OpCode, len(questions)))
		return nil
	}
	q := questions[0]
	name := fqdn.Normalize(q.Name.String())
	query1 := Query{Source: src, Server: dst, Name: name, Type: q.Type}
	if p.cfg.Allow == nil || !p.cfg.Allow(query1) {
		p.cfg.OnEvent(Event{Kind: "dns-request", Verdict: Denied, Source: src, Server: dst, Name: name, Type: typeName(q.Type), RCode: rcodeName(dnsmessage.RCodeRefused)})
		return reply(hdr, q, dnsmessage.RCodeRefused)
	}
	p.cfg.OnEvent(Event{Kind: "dns-request", Verdict: Forwarded, Source: src, Server: dst, Name: name, Type: typeName(q.Type)})
	start := p.cfg.Now()
	resp, err := p.exchange(ctx, dst, query)
	if err == nil {
		err = p.learn(ctx, src, dst, hdr.ID, q, resp, p.cfg.Now().Sub(start))
	}
	if err != nil {
		p.drop(src, dst, name, err.Error())
		return reply(hdr, q, dnsmessage.RCodeServerFailure)
	}
	return resp
}

// learn checks the upstream's answer to q and records its addresses: the
// A and AAAA records of the name asked and of the names its CNAMEs lead to.
func (p *Proxy) learn(ctx context.Context, src, dst netip.AddrPort, id uint16, q dnsmessage.Question, resp []byte, latency time.Duration) error {
	var parser dnsmessage.Parser
	hdr, err := parser.Start(resp)
	if err != nil {
		return fmt.Errorf("upstream answer: %w", err)
	}
	questions, err := parser.AllQuestions()
	if err != nil {
		return fmt.Errorf("upstream answer: %w", err)
	}
	if !hdr.Response || hdr.ID != id || len(questions) != 1 || questions[0].Type != q.Type ||
		fqdn.Normalize(questions[0].Name.String()) != fqdn.Normalize(q.Name.String()) {
		return errors.New("upstream answer does not answer the query")
	}
	answers, err := parser.AllAnswers()
	if err != nil {
		return fmt.Errorf("upstream answer: %w", err)
	}
	name := fqdn.Normalize(q.Name.String())
	names := map[string]bool{name: true}
	for changed := true; changed; { // follow CNAMEs in any order
		changed = false
		for _, a := range answers {
			if c, ok := a.Body.(*dnsmessage.CNAMEResource); ok && names[fqdn.Normalize(a.Header.Name.String())] && !names[fqdn.Normalize(c.CNAME.String())] {
				names[fqdn.Normalize(c.CNAME.String())] = true
				changed = true
			}
		}
	}
	var ips []netip.Addr
	var ttl time.Duration
	for _, a := range answers {
		if !names[fqdn.Normalize(a.Header.Name.String())] {
			continue
		}
		var ip netip.Addr
		switch b := a.Body.(type) {
		case *dnsmessage.AResource:
			ip = netip.AddrFrom4(b.A)
		case *dnsmessage.AAAAResource:
			ip = netip.AddrFrom16(b.AAAA)
		default:
			continue
		}
		t := time.Duration(a.Header.TTL) * time.Second
		if len(ips) == 0 || t < ttl {
			ttl = t
		}
		ips = append(ips, ip)
	}
	if p.cfg.Cache != nil && len(ips) > 0 {
		if added := p.cfg.Cache.Observe(src.Addr(), name, ips, ttl, p.cfg.Now()); len(added) > 0 && p.cfg.Learned != nil {
			p.cfg.Learned(ctx, name, added)
		}
	}
	p.cfg.OnEvent(Event{Kind: "dns-response", Verdict: Forwarded, Source: src, Server: dst, Name: name, Type: typeName(q.Type),
		RCode: rcodeName(hdr.RCode), IPs: ips, TTL: ttl, Latency: latency})
	return nil
}

func (p *Proxy) drop(src, dst netip.AddrPort, name, reason string) {
	p.cfg.OnEvent(Event{Kind: "dns-request", Verdict: Dropped, Source: src, Server: dst, Name: name, Reason: reason})
}

// reply is an answer to q with rcode and no records.
func reply(hdr dnsmessage.Header, q dnsmessage.Question, rcode dnsmessage.RCode) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: hdr.ID, Response: true, RecursionDesired: hdr.RecursionDesired,
		RecursionAvailable: true, RCode: rcode})
	if err := b.StartQuestions(); err != nil {
		return nil
	}
	if err := b.Question(q); err != nil {
		return nil
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// typeName is "A", "AAAA", ... as flows show it.
func typeName(t dnsmessage.Type) string {
	s := t.String()
	if len(s) > 4 && s[:4] == "Type" {
		return s[4:]
	}
	return s
}

// rcodeName is the response code's mnemonic (RFC 1035, 2136).
func rcodeName(r dnsmessage.RCode) string {
	if s, ok := rcodes[r]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", r)
}

var rcodes = map[dnsmessage.RCode]string{
	dnsmessage.RCodeSuccess: "NOERROR", dnsmessage.RCodeFormatError: "FORMERR", dnsmessage.RCodeServerFailure: "SERVFAIL",
	dnsmessage.RCodeNameError: "NXDOMAIN", dnsmessage.RCodeNotImplemented: "NOTIMP", dnsmessage.RCodeRefused: "REFUSED",
}
