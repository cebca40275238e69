package dnsproxy

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/weftnet/weft/fqdn"
)

// upstream is a DNS server on loopback: api.github.com has two A records
// (TTL 30), www.example.com is a CNAME of example.com (A, TTL 300, the
// CNAME's records listed first), every other name is NXDOMAIN.
type upstream struct {
	addr    netip.AddrPort
	queries atomic.Int32
}

func startUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{}
	u.addr = serveDNS(t, func(_ *net.UDPAddr, query []byte) [][]byte {
		u.queries.Add(1)
		return [][]byte{answer(query)}
	})
	return u
}

// serveDNS answers each query on a loopback UDP socket with the datagrams
// reply returns for it (none: no answer), until t ends.
func serveDNS(t testing.TB, reply func(from *net.UDPAddr, query []byte) [][]byte) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, resp := range reply(from.(*net.UDPAddr), buf[:n]) {
				if resp != nil {
					_, _ = conn.WriteTo(resp, from)
				}
			}
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func answer(query []byte) []byte {
	var p dnsmessage.Parser
	hdr, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	rh := dnsmessage.Header{ID: hdr.ID, Response: true, RecursionDesired: hdr.RecursionDesired, RecursionAvailable: true}
	rr := func(name string, ttl uint32) dnsmessage.ResourceHeader {
		return dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: ttl}
	}
	var as []func(*dnsmessage.Builder) error
	switch strings.ToLower(q.Name.String()) {
	case "api.github.com.":
		for _, ip := range [][4]byte{{140, 82, 112, 5}, {140, 82, 112, 6}} {
			as = append(as, func(b *dnsmessage.Builder) error {
				return b.AResource(rr("api.github.com.", 30), dnsmessage.AResource{A: ip})
			})
		}
	case "www.example.com.":
		as = append(as,
			func(b *dnsmessage.Builder) error {
				return b.AResource(rr("example.com.", 300), dnsmessage.AResource{A: [4]byte{93, 184, 215, 14}})
			},
			func(b *dnsmessage.Builder) error {
				return b.CNAMEResource(rr("www.example.com.", 300), dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("example.com.")})
			},
			func(b *dnsmessage.Builder) error { // not on the chain: not learnt
				return b.AResource(rr("other.example.org.", 300), dnsmessage.AResource{A: [4]byte{10, 9, 9, 9}})
			})
	default:
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	for _, a := range as {
		if a(&b) != nil {
			return nil
		}
	}
	out, _ := b.Finish()
	return out
}

func query(id uint16, name string) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	_ = b.StartQuestions()
	_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	out, _ := b.Finish()
	return out
}

// ask sends msg to the proxy at addr and returns the answer's header and
// addresses; ok is false when nothing came back within 500 ms.
func ask(t *testing.T, addr net.Addr, msg []byte) (hdr dnsmessage.Header, ips []netip.Addr, ok bool) {
	t.Helper()
	conn, err := net.Dial("udp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		return hdr, nil, false
	}
	var p dnsmessage.Parser
	if hdr, err = p.Start(buf[:n]); err != nil {
		t.Fatalf("the proxy answered something that is not DNS: %v", err)
	}
	_ = p.SkipAllQuestions()
	answers, _ := p.AllAnswers()
	for _, a := range answers {
		if r, ok := a.Body.(*dnsmessage.AResource); ok {
			ips = append(ips, netip.AddrFrom4(r.A))
		}
	}
	return hdr, ips, true
}

// TestProxy: over real UDP on loopback, an allowed name is forwarded and
// its addresses (through CNAMEs, not unrelated records) enter the FQDN
// cache for their TTL; a name the policy does not allow gets REFUSED and
// never reaches the upstream; malformed packets and answers get no reply or
// SERVFAIL; every query and answer is an event.
func TestProxy(t *testing.T) {
	up := startUpstream(t)
	allowed := []*fqdn.Matcher{}
	for _, s := range []fqdn.Selector{{MatchName: "api.github.com"}, {MatchPattern: "*.example.com"}, {MatchName: "nothing.example.net"}} {
		m, err := fqdn.Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		allowed = append(allowed, m)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	cache := fqdn.NewCache(5 * time.Second)
	var mu sync.Mutex
	var events []Event
	p := New(Config{Upstream: up.addr, Cache: cache, Now: func() time.Time { return now },
		Allow: func(q Query) bool {
			return slices.ContainsFunc(allowed, func(m *fqdn.Matcher) bool { return m.Match(q.Name) })
		},
		OnEvent: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.ServeUDP(ctx, conn) }()
	defer func() {
		conn.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeUDP: %v", err)
		}
	}()
	take := func() []Event {
		time.Sleep(50 * time.Millisecond) // the handler's goroutine reports after it answered
		mu.Lock()
		defer mu.Unlock()
		out := events
		events = nil
		return out
	}

	hdr, ips, ok := ask(t, conn.LocalAddr(), query(7, "API.GitHub.com."))
	if !ok || hdr.ID != 7 || hdr.RCode != dnsmessage.RCodeSuccess || len(ips) != 2 {
		t.Fatalf("allowed api.github.com: answer %v %+v %v", ok, hdr, ips)
	}
	ev := take()
	if len(ev) != 2 || ev[0].Kind != "dns-request" || ev[0].Verdict != Forwarded || ev[0].Name != "api.github.com" || ev[0].Type != "A" ||
		ev[1].Kind != "dns-response" || ev[1].RCode != "NOERROR" || ev[1].TTL != 30*time.Second || len(ev[1].IPs) != 2 {
		t.Errorf("events of an allowed query: %+v", ev)
	}
	gh, _ := fqdn.Compile(fqdn.Selector{MatchName: "api.github.com"})
	if got := cache.Lookup(gh, now.Add(29*time.Second)); len(got) != 2 {
		t.Errorf("the cache holds %v for api.github.com within the TTL; want both addresses", got)
	}
	if got := cache.Lookup(gh, now.Add(31*time.Second)); len(got) != 0 {
		t.Errorf("the cache holds %v for api.github.com after the TTL", got)
	}

	if _, ips, _ := ask(t, conn.LocalAddr(), query(8, "www.example.com.")); len(ips) != 2 {
		t.Errorf("www.example.com: %v", ips)
	}
	take()
	www, _ := fqdn.Compile(fqdn.Selector{MatchName: "www.example.com"})
	if got := cache.Lookup(www, now); len(got) != 1 || got[0] != netip.MustParseAddr("93.184.215.14") {
		t.Errorf("www.example.com learnt %v; want example.com's address through the CNAME, not other.example.org's", got)
	}

	before := up.queries.Load()
	hdr, ips, ok = ask(t, conn.LocalAddr(), query(9, "evil.example.org."))
	if !ok || hdr.ID != 9 || hdr.RCode != dnsmessage.RCodeRefused || len(ips) != 0 {
		t.Errorf("denied evil.example.org: answer %v %+v %v; want REFUSED", ok, hdr, ips)
	}
	if up.queries.Load() != before {
		t.Error("a denied query reached the upstream")
	}
	if ev := take(); len(ev) != 1 || ev[0].Verdict != Denied || ev[0].RCode != "REFUSED" || ev[0].Name != "evil.example.org" {
		t.Errorf("events of a denied query: %+v", ev)
	}

	hdr, _, _ = ask(t, conn.LocalAddr(), query(10, "nothing.example.net."))
	if hdr.RCode != dnsmessage.RCodeNameError {
		t.Errorf("an allowed name the upstream does not know: %v; want NXDOMAIN passed through", hdr.RCode)
	}
	if ev := take(); len(ev) != 2 || ev[1].RCode != "NXDOMAIN" || len(ev[1].IPs) != 0 {
		t.Errorf("events of NXDOMAIN: %+v", ev)
	}

	for _, bad := range [][]byte{{1, 2, 3}, append(query(11, "api.github.com."), 0xff)[:14], respond(query(12, "api.github.com."))} {
		if _, _, ok := ask(t, conn.LocalAddr(), bad); ok {
			t.Errorf("the proxy answered %x; want it dropped", bad)
		}
		if ev := take(); len(ev) != 1 || ev[0].Verdict != Dropped || ev[0].Reason == "" {
			t.Errorf("events of %x: %+v; want one DROPPED with a reason", bad, ev)
		}
	}
}

// respond turns a query into a message with the response bit set.
func respond(msg []byte) []byte {
	out := slices.Clone(msg)
	out[2] |= 0x80
	return out
}

// TestProxyUpstreamFailure: an upstream that does not answer, or answers
// another query, gets the client SERVFAIL, with a DROPPED event.
func TestProxyUpstreamFailure(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var events []Event
	p := New(Config{Upstream: silent.LocalAddr().(*net.UDPAddr).AddrPort(), Timeout: 200 * time.Millisecond,
		Allow: func(Query) bool { return true }, OnEvent: func(e Event) { events = append(events, e) }})
	resp := p.Handle(context.Background(), netip.MustParseAddrPort("10.0.0.1:5353"), query(3, "api.github.com."))
	var parser dnsmessage.Parser
	hdr, err := parser.Start(resp)
	if err != nil || hdr.ID != 3 || hdr.RCode != dnsmessage.RCodeServerFailure {
		t.Fatalf("no upstream answer: %+v %v; want SERVFAIL for query 3", hdr, err)
	}
	if len(events) != 2 || events[1].Verdict != Dropped || !strings.Contains(events[1].Reason, "upstream") {
		t.Errorf("events: %+v", events)
	}
}

// TestProxyReusesUpstreamSockets: sequential queries share one upstream
// socket (one source port at the server); an answer the server sends
// twice does not answer the next query on that socket; a socket whose
// query timed out is not reused; Close closes the kept ones.
func TestProxyReusesUpstreamSockets(t *testing.T) {
	var (
		mu      sync.Mutex
		ports   = map[int]int{} // source port → queries
		mode    string          // "twice": answer twice; "silent": do not answer
		lastSrc *net.UDPAddr
	)
	server := serveDNS(t, func(from *net.UDPAddr, query []byte) [][]byte {
		mu.Lock()
		defer mu.Unlock()
		ports[from.Port]++
		lastSrc = from
		switch mode {
		case "silent":
			return nil
		case "twice":
			return [][]byte{answer(query), answer(query)}
		}
		return [][]byte{answer(query)}
	})
	p := New(Config{Upstream: server, Timeout: 300 * time.Millisecond, Allow: func(Query) bool { return true }})
	src := netip.MustParseAddrPort("10.0.0.1:5353")
	ask := func(id uint16, name string) dnsmessage.Header {
		t.Helper()
		var parser dnsmessage.Parser
		hdr, err := parser.Start(p.Handle(context.Background(), src, query(id, name)))
		if err != nil {
			t.Fatal(err)
		}
		q, err := parser.Question()
		if err != nil || q.Name.String() != name {
			t.Fatalf("query %d for %s answered for %v (%v)", id, name, q.Name, err)
		}
		return hdr
	}
	for i := range 20 {
		if h := ask(uint16(100+i), "api.github.com."); h.ID != uint16(100+i) || h.RCode != dnsmessage.RCodeSuccess {
			t.Fatalf("query %d: %+v", 100+i, h)
		}
	}
	mu.Lock()
	if len(ports) != 1 {
		t.Errorf("20 sequential queries came from %d source ports %v; want 1 (a reused socket)", len(ports), ports)
	}
	mode = "twice"
	mu.Unlock()
	ask(200, "api.github.com.")
	mu.Lock()
	mode = ""
	mu.Unlock()
	// The duplicate of 200 waits on the kept socket; 201 must get its own.
	if h := ask(201, "www.example.com."); h.ID != 201 || h.RCode != dnsmessage.RCodeSuccess {
		t.Errorf("the query after a duplicated answer: %+v; want its own answer", h)
	}

	mu.Lock()
	mode = "silent"
	mu.Unlock()
	if h := ask(300, "api.github.com."); h.RCode != dnsmessage.RCodeServerFailure {
		t.Fatalf("an unanswered query: %+v; want SERVFAIL", h)
	}
	mu.Lock()
	mode = ""
	timedOut := lastSrc.Port
	mu.Unlock()
	ask(301, "api.github.com.")
	mu.Lock()
	if last := lastSrc.Port; last == timedOut {
		t.Errorf("the socket whose query timed out (port %d) was used again", timedOut)
	}
	mu.Unlock()

	p.Close()
	var kept int
	for _, list := range p.upstreams.idle {
		kept += len(list)
	}
	if kept != 0 || p.upstreams.count != 0 {
		t.Errorf("after Close %d sockets are kept", kept)
	}
}

// FuzzHandle: no message makes the proxy panic; with a policy that allows
// nothing, nothing reaches the upstream, and every answer is REFUSED to
// the same query id.
func FuzzHandle(f *testing.F) {
	for _, seed := range [][]byte{query(1, "api.github.com."), query(2, "a.b."), {0, 0}, respond(query(3, "x."))} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var reached atomic.Bool
		p := New(Config{Upstream: netip.MustParseAddrPort("127.0.0.1:9"), Allow: func(Query) bool { return false },
			OnEvent: func(e Event) {
				if e.Verdict == Forwarded {
					reached.Store(true)
				}
			}})
		resp := p.Handle(context.Background(), netip.MustParseAddrPort("10.0.0.1:5353"), msg)
		if reached.Load() {
			t.Fatal("a query was forwarded under a policy that allows nothing")
		}
		if resp == nil {
			return
		}
		var in, out dnsmessage.Parser
		qh, err1 := in.Start(msg)
		rh, err2 := out.Start(resp)
		if err1 != nil || err2 != nil || rh.ID != qh.ID || rh.RCode != dnsmessage.RCodeRefused || !rh.Response {
			t.Fatalf("answer %+v (%v) to %+v (%v); want REFUSED with the same id", rh, err2, qh, err1)
		}
	})
}

// BenchmarkDNSProxy: A queries over loopback UDP, one at a time, straight
// to the upstream (the baseline) and through the proxy with an allowing
// policy and the FQDN cache: queries/s and round-trip latency; the
// difference is what the proxy adds.
func BenchmarkDNSProxy(b *testing.B) {
	up := startUpstream(b)
	allow, _ := fqdn.Compile(fqdn.Selector{MatchName: "api.github.com"})
	p := New(Config{Upstream: up.addr, Cache: fqdn.NewCache(time.Second), Allow: func(q Query) bool { return allow.Match(q.Name) }})
	defer p.Close()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	go func() { _ = p.ServeUDP(context.Background(), conn) }()
	for _, v := range []struct {
		name string
		addr string
	}{{"direct", up.addr.String()}, {"proxy", conn.LocalAddr().String()}} {
		b.Run(v.name+"/A-query", func(b *testing.B) {
			c, err := net.Dial("udp4", v.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 512)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				if _, err := c.Write(query(uint16(i), "api.github.com.")); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
