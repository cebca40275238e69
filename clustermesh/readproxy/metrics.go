package readproxy

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the front, labelled by remote cluster (names come from
// certificates this cluster signed, so their number is bounded).
type metrics struct {
	connections *prometheus.GaugeVec
	watches     *prometheus.GaugeVec
	requests    *prometheus.CounterVec
	refused     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, labels prometheus.Labels) (*metrics, error) {
	const ns = "weft_apiserver"
	m := &metrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "remote_connections",
			Help: "Connections each remote cluster holds to the read-only front.", ConstLabels: labels}, []string{"remote"}),
		watches: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "remote_watches",
			Help: "Watches each remote cluster holds through the read-only front.", ConstLabels: labels}, []string{"remote"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "remote_requests_total",
			Help: "Calls of remote clusters at the read-only front, by method and gRPC code.", ConstLabels: labels}, []string{"remote", "method", "code"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "remote_refused_total",
			Help:        "Calls, watches and connections of remote clusters refused by the read-only front, by reason (method, range, not-connected, rate, connections, watches).",
			ConstLabels: labels}, []string{"remote", "reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connections, m.watches, m.requests, m.refused} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register read-only front metrics: %w", err)
		}
	}
	return m, nil
}

// etcdMethods are the methods of etcd's v3 API: any other name a remote
// sends is counted as "other", so a remote cannot grow the label set.
var etcdMethods = func() map[string]bool {
	out := map[string]bool{}
	for svc, methods := range map[string]string{
		"KV":          "Range Put DeleteRange Txn Compact",
		"Watch":       "Watch",
		"Lease":       "LeaseGrant LeaseRevoke LeaseKeepAlive LeaseTimeToLive LeaseLeases",
		"Cluster":     "MemberAdd MemberRemove MemberUpdate MemberList MemberPromote",
		"Maintenance": "Alarm Status Defragment Hash HashKV Snapshot MoveLeader Downgrade",
		"Auth": "AuthEnable AuthDisable AuthStatus Authenticate UserAdd UserGet UserList UserDelete UserChangePassword " +
			"UserGrantRole UserRevokeRole RoleAdd RoleGet RoleList RoleDelete RoleGrantPermission RoleRevokePermission",
	} {
		for _, m := range strings.Fields(methods) {
			out["/etcdserverpb."+svc+"/"+m] = true
		}
	}
	return out
}()

func methodLabel(full string) string {
	if etcdMethods[full] {
		return strings.TrimPrefix(full, "/etcdserverpb.")
	}
	return "other"
}
