package clustermesh

import (
	"path/filepath"
)

// Files of a cluster's clustermesh directory, created by
// `weft clustermesh enable` and used by its weft-apiserver:
//
//	ca.crt, ca.key             the cluster's CA
//	remote-ca.crt, .key        the CA of remote clusters' read-only
//	                           certificates (trusted by the read-only
//	                           front only, never by the served etcd)
//	server.crt, server.key     serving certificate of the store and admin API
//	root.crt, root.key         the apiserver's own store client (etcd user root)
//	admin.crt, admin.key       the CLI's client for the admin API (CN admin)
//	agent.crt, agent.key       local agents when the apiserver runs the cluster's store
//	flows-agent.crt, .key      agents serving their flows to the relay
//	                           (--flows-listen-address), named weft-agent
//	relay.crt, relay.key       the relay's client of the agents' flows
//	apiserver.json             the apiserver's configuration
//	admin.sock                 the admin API on a unix socket (mTLS too)
//	etcd/                      data of the served store
//	remotes/<cluster>/         ca.crt, client.crt, client.key to reach a remote
//	                           cluster (the Remote record's ClientRef)
const (
	CAFile        = "ca.crt"
	CAKeyFile     = "ca.key"
	ConfigFile    = "apiserver.json"
	AdminSocket   = "admin.sock"
	ClientCert    = "client.crt"
	ClientKey     = "client.key"
	EtcdDataDir   = "etcd"
	RemotesSubdir = "remotes"
	// RemoteCAName is the file name (without .crt/.key) of the remote CA.
	RemoteCAName = "remote-ca"
)

// Certificate names (files <name>.crt/.key) and the etcd users they stand for.
const (
	UserRoot  = "root"
	UserAdmin = "admin"
	UserAgent = "agent"
	Server    = "server"
	// FlowsAgent is the serving certificate agents present on their
	// flows port, issued for the name FlowsAgentName (one certificate for
	// every agent: the relay checks that name, whatever the address).
	FlowsAgent     = "flows-agent"
	FlowsAgentName = "weft-agent"
	// Relay is the relay's client certificate towards the agents.
	Relay = "relay"
)

// RelayAgentPort is the port agents serve their flows on for the relay
// (--flows-listen-address :4244); the relay itself is usually served on
// 4245.
const RelayAgentPort = 4244

// RemoteUser is the etcd user (and certificate CN) a remote cluster reads
// this cluster's state as.
func RemoteUser(cluster string) string { return "remote-" + cluster }

// Dir is one cluster's clustermesh directory.
type Dir string

// Path joins elem to the directory.
func (d Dir) Path(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}

// Cert and Key are the files of a certificate pair.
func (d Dir) Cert(name string) string { return d.Path(name + ".crt") }
func (d Dir) Key(name string) string  { return d.Path(name + ".key") }

// Remote is the directory with the credentials to reach cluster.
func (d Dir) Remote(cluster string) string { return d.Path(RemotesSubdir, cluster) }
