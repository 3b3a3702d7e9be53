package server

import (
	"github.com/cloudwego/hertz/pkg/route"

	"github.com/artemis-go/artemis/console"
)

// mountConsole serves the web console under /console/ and redirects GET /
// there (the NoRoute handler answers every other unknown path). The
// console reads the registry for its summary and the cluster for its
// replication; everything else it shows it reads from this node's public
// API, from the browser.
func (s *Server) mountConsole(e *route.Engine) {
	console.Register(e, console.Options{Registry: s.reg, Replication: s.consoleReplication})
}

// consoleReplication reports the cluster's replication to each peer for
// the console; a single node has none.
func (s *Server) consoleReplication() console.Replication {
	stats := s.cluster.Stats() // nil on a single node
	r := console.Replication{Peers: make([]console.PeerReplication, 0, len(stats)), Dropped: s.cluster.Dropped()}
	for _, p := range stats {
		var seen int64
		if !p.LastSeen.IsZero() {
			seen = p.LastSeen.UnixMilli()
		}
		r.Peers = append(r.Peers, console.PeerReplication{
			URL: p.URL, Status: p.Status, LastSeen: seen, Error: p.Error, Queue: p.Queue,
			Batches: p.Batches, Instances: p.Instances, Failures: p.Failures, Retries: p.Retries,
			Skipped: p.Skipped, LagMs: float64(p.Lag.Microseconds()) / 1000,
		})
	}
	return r
}
