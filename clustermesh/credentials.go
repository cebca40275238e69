package clustermesh

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/weftnet/weft/state/records"
)

// credentialsDir holds, in a cluster's own store, the credentials its
// agents use to reach each remote cluster: clustermesh/v1/credentials/<remote>
// (v1). Agents on hosts that do not share the apiserver's filesystem take
// them from there when the Remote record's ClientRef directory is missing.
// Remote clusters' read-only role never covers clustermesh/.
const credentialsDir = "clustermesh/v1/credentials/"

// CredentialsKey is clustermesh/v1/credentials/<remote> under prefix.
func CredentialsKey(prefix, remote string) string { return prefix + credentialsDir + remote }

// readersDir holds, in a cluster's own store, the remote clusters that may
// read it: clustermesh/v1/readers/<remote> (v1), written when the
// apiserver signs a remote's certificate and deleted at disconnect. An
// apiserver whose served store starts empty (a new pod) gives them their
// read-only users again from there, so connected clusters keep reading it.
const readersDir = "clustermesh/v1/readers/"

// ReadersPrefix is clustermesh/v1/readers/ under prefix.
func ReadersPrefix(prefix string) string { return prefix + readersDir }

// ReaderKey is clustermesh/v1/readers/<remote> under prefix.
func ReaderKey(prefix, remote string) string { return prefix + readersDir + remote }

// ReaderValue is ReaderKey's value.
func ReaderValue(remote string) []byte {
	b, _ := json.Marshal(struct {
		Version int    `json:"v"`
		Cluster string `json:"cluster"`
	}{1, remote})
	return b
}

// StoredCredentials is the value of CredentialsKey.
type StoredCredentials struct {
	Version int    `json:"v"`
	Cluster string `json:"cluster"`
	CA      string `json:"ca"`   // PEM of the remote's CA
	Cert    string `json:"cert"` // PEM, CN remote-<this cluster>, signed by the remote's CA
	Key     string `json:"key"`  // PEM
	// Remote is what the remote said about itself at connect time (its
	// id, routing mode and pod CIDRs), for the checks of later connects
	// by any apiserver of the cluster.
	Remote *Info `json:"remote,omitempty"`
}

// EncodeCredentials encodes c for CredentialsKey.
func EncodeCredentials(c StoredCredentials) ([]byte, error) {
	c.Version = 1
	if err := records.ValidateMeshClusterName(c.Cluster); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// DecodeCredentials decodes the value of key and checks it is complete and
// for the cluster the key names.
func DecodeCredentials(key string, value []byte) (StoredCredentials, error) {
	var c StoredCredentials
	if err := json.Unmarshal(value, &c); err != nil {
		return c, fmt.Errorf("decode %s: %w", key, err)
	}
	if c.Version != 1 {
		return c, fmt.Errorf("decode %s: schema version %d, accepted is 1", key, c.Version)
	}
	if !strings.HasSuffix(key, "/"+c.Cluster) || c.CA == "" || c.Cert == "" || c.Key == "" {
		return c, fmt.Errorf("decode %s: incomplete credentials or another cluster (%q)", key, c.Cluster)
	}
	return c, nil
}
