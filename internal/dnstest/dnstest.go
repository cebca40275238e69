// Package dnstest is a small authoritative DNS server for tests: it
// answers A queries for a fixed set of names over UDP.
package dnstest

import (
	"net"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// Serve answers the A queries arriving on pc from names (lowercase, with
// the trailing dot) with TTL ttl, NXDOMAIN for other names, until stop is
// called (which closes pc).
func Serve(pc net.PacketConn, names map[string]netip.Addr, ttl uint32) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := Answer(buf[:n], names, ttl); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	return func() { pc.Close(); <-done }
}

// Answer is the response to one query message, nil for one that does not
// parse.
func Answer(query []byte, names map[string]netip.Addr, ttl uint32) []byte {
	var p dnsmessage.Parser
	hdr, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	ip, ok := names[strings.ToLower(q.Name.String())]
	rh := dnsmessage.Header{ID: hdr.ID, Response: true, Authoritative: true, RecursionDesired: hdr.RecursionDesired}
	if !ok {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil
	}
	if ok && q.Type == dnsmessage.TypeA && ip.Is4() {
		h := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: ttl}
		if b.AResource(h, dnsmessage.AResource{A: ip.As4()}) != nil {
			return nil
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
