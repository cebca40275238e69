// Package echo holds the echo servers of the connectivity test: a TCP
// server that first greets each connection with
// "from <client ip:port> at <name>\n" and then echoes, and a UDP server
// that answers each datagram with "<client ip:port>|" and the datagram,
// and an HTTP server (for the L7 tests) that answers every request with
// "<method> <target> at <name>\n". A client learns which server answered
// and the source address it had there. testenv (in-process, in a node's or pod's namespace) and the
// agent's Connectivity service (in a test pod on a standalone host) both
// serve them. It depends on nothing but the standard library.
package echo
