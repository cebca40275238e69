// Package consulserver runs a real Consul agent process in dev mode on
// loopback, for tests and test environments.
//
// It owns the agent's lifecycle: picking free loopback ports (HTTP, serf-lan,
// server RPC; DNS, gRPC and serf-wan are disabled) so that several agents run
// side by side, waiting for a leader, stopping (SIGTERM, then SIGKILL),
// restarting on the same ports, and killing. The child process is tied to its
// parent with PR_SET_PDEATHSIG, so it dies with the test binary even when the
// caller never gets to call Stop; callers still Stop it in t.Cleanup.
//
// A dev-mode agent keeps everything in memory: a restart loses every key and
// session, which is exactly the "store wiped" case clients must survive.
//
// It depends on internal/toolcache for the consul binary when Options.Binary
// is empty, and on nothing else of Weft.
package consulserver
