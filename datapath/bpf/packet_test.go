package bpf

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// packet is an Ethernet/IPv4/TCP|UDP|ICMP frame for prog.Run tests.
type packet struct {
	src, dst     netip.AddrPort
	proto        uint8
	payload      []byte
	tcpFlags     byte
	icmpEchoType byte
}

const (
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
)

func ap(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// bytes serialises p with valid IP and L4 checksums.
func (p packet) bytes() []byte {
	var l4 []byte
	switch p.proto {
	case protoTCP:
		l4 = make([]byte, 20+len(p.payload))
		binary.BigEndian.PutUint16(l4[0:], p.src.Port())
		binary.BigEndian.PutUint16(l4[2:], p.dst.Port())
		l4[12] = 5 << 4
		l4[13] = p.tcpFlags
		binary.BigEndian.PutUint16(l4[14:], 65535)
		copy(l4[20:], p.payload)
	case protoUDP:
		l4 = make([]byte, 8+len(p.payload))
		binary.BigEndian.PutUint16(l4[0:], p.src.Port())
		binary.BigEndian.PutUint16(l4[2:], p.dst.Port())
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		copy(l4[8:], p.payload)
	case protoICMP:
		l4 = make([]byte, 8+len(p.payload))
		l4[0] = p.icmpEchoType
		binary.BigEndian.PutUint16(l4[4:], p.src.Port()) // echo id
		copy(l4[8:], p.payload)
	}
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	ip[8] = 64
	ip[9] = p.proto
	s, d := p.src.Addr().As4(), p.dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	switch p.proto {
	case protoTCP:
		binary.BigEndian.PutUint16(l4[16:], checksum(l4, pseudoSum(ip, len(l4))))
	case protoUDP:
		binary.BigEndian.PutUint16(l4[6:], checksum(l4, pseudoSum(ip, len(l4))))
	case protoICMP:
		binary.BigEndian.PutUint16(l4[2:], checksum(l4, 0))
	}
	eth := make([]byte, 14)
	copy(eth[0:], []byte{0x02, 0, 0, 0, 0, 0xfe})
	copy(eth[6:], []byte{0x02, 0, 0, 0, 0, 0x01})
	binary.BigEndian.PutUint16(eth[12:], 0x0800)
	return append(append(eth, ip...), l4...)
}

func pseudoSum(ip []byte, l4len int) uint32 {
	var sum uint32
	for i := 12; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	return sum + uint32(ip[9]) + uint32(l4len)
}

func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// parsed is what a test reads back from a frame a program emitted.
type parsed struct {
	src, dst      netip.AddrPort
	dstMAC        [6]byte
	ipCsumOK      bool
	l4CsumOK      bool
	proto         uint8
	payloadLength int
}

func parse(t *testing.T, frame []byte) parsed {
	t.Helper()
	if len(frame) < 14+20+8 {
		t.Fatalf("frame of %d bytes is too short", len(frame))
	}
	ip := frame[14:34]
	l4 := frame[34:]
	var out parsed
	copy(out.dstMAC[:], frame[0:6])
	out.proto = ip[9]
	out.src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(l4[0:]))
	out.dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(l4[2:]))
	out.ipCsumOK = checksum(ip, 0) == 0
	switch out.proto {
	case protoTCP, protoUDP:
		out.l4CsumOK = checksum(l4, pseudoSum(ip, len(l4))) == 0
	default:
		out.l4CsumOK = checksum(l4, 0) == 0
	}
	return out
}
