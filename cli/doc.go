// Package cli is the weft command tree: status, node, endpoint, identity,
// ipcache, bpf, service, version and completion, built with cobra.
//
// Every command reads one weft-agent over its gRPC API
// (github.com/weftnet/weft/api/agentapi) on a unix socket: the socket given
// by --socket (WEFT_SOCKET), or, with --name, the socket of a node of a
// testenv environment (/var/run/weft/testenv/<name>/<node>/agent.sock, see
// docs/agent.md). Output goes through one printer: a table by default, or the
// API messages as JSON or YAML with -o, so scripts get the proto field names.
//
// The testenv and connectivity commands (testenv.go, connectivity.go) belong
// to package testenv's owner and are registered in root.go.
//
// The package holds no global state: NewRootCommand builds a fresh tree from
// small constructors, one per file, each taking the shared *options.
package cli
