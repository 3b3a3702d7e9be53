package console

import (
	"encoding/json"

	"github.com/cloudwego/hertz/pkg/app"
)

// Replication is the answer of /console/api/replication.json: how this
// node replicates to each of its peers. A single node has no peers.
type Replication struct {
	Peers []PeerReplication `json:"peers"`
	// Dropped counts operations not replicated because the outbox was full.
	Dropped int64 `json:"dropped"`
}

// PeerReplication is this node's view of one peer.
type PeerReplication struct {
	URL       string  `json:"url"`
	Status    string  `json:"status"`   // as last polled: starting, up, down or unknown
	LastSeen  int64   `json:"lastSeen"` // epoch ms of the last answer; 0: never reached
	Error     string  `json:"error,omitempty"`
	Queue     int     `json:"queue"`     // batches waiting
	Batches   int64   `json:"batches"`   // batches delivered
	Instances int64   `json:"instances"` // instances delivered
	Failures  int64   `json:"failures"`  // batches dropped
	Retries   int64   `json:"retries"`   // failed attempts retried
	Skipped   int64   `json:"skipped"`   // operations not sent while the peer was neither up nor starting
	LagMs     float64 `json:"lagMs"`     // the last batch's delay from the operation to the peer's answer
}

func (h *handler) serveReplication(c *app.RequestContext) {
	r := Replication{Peers: []PeerReplication{}}
	if h.replication != nil {
		r = h.replication()
		if r.Peers == nil {
			r.Peers = []PeerReplication{}
		}
	}
	body, err := json.Marshal(r)
	if err != nil {
		panic("BUG: cannot encode the console's replication answer: " + err.Error())
	}
	c.Response.Header.Set("Cache-Control", "no-store")
	c.Response.Header.SetContentType("application/json; charset=utf-8")
	c.Response.SetBody(body)
}
