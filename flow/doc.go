// Package flow owns Weft's flow records: what the datapath decided about a
// packet (forwarded or dropped, why, where), told in the user's terms.
//
// The record itself is the wire message agentapi.Flow (STABLE, v1), so the
// agent, the relay and the CLI share one form. This package
//
//   - turns a datapath event into a record ([Enricher]): wall-clock time
//     from the kernel's monotonic timestamp ([Clock]), pods, identities and
//     their labels, the service of a backend, direction, protocol and verdict.
//     What it needs from the agent is declared here as small interfaces
//     ([EndpointLookup], [IdentityLookup], [ServiceLookup]);
//   - keeps the node's recent flows in a bounded [Ring] that never blocks
//     its writer: a reader that falls behind is told how many it lost;
//   - parses and compiles filters ([ParseFilterFlag], [Compile]) with errors
//     that name the bad value and what is accepted;
//   - serves them ([Observer], the agentapi.Observer gRPC service) and
//     records them from the datapath ([Recorder]), with Prometheus metrics
//     ([NewMetrics]).
//
// It depends on api/agentapi (the record and the service) and datapath (the
// raw event); the agent wires it, the relay and the CLI read it.
package flow
