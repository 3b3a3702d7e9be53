package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// peer is one other node: its last seen status and its replication queue.
type peer struct {
	c   *Cluster
	url string

	mu sync.Mutex
	st PeerStatus // guarded by mu

	queue    chan *batch
	stopOnce sync.Once
	stopped  chan struct{}
	running  atomic.Bool

	batches   atomic.Int64 // batches delivered
	instances atomic.Int64 // instances delivered
	failures  atomic.Int64 // batches dropped: refused, retried too long, or queue full
	retries   atomic.Int64 // attempts that failed and were retried
	skipped   atomic.Int64 // operations not sent: the peer was neither up nor starting
	lagNs     atomic.Int64 // queue-to-delivery time of the last batch
}

func newPeer(c *Cluster, url string) *peer {
	return &peer{c: c, url: url, st: PeerStatus{URL: url, Status: StatusUnknown},
		queue: make(chan *batch, c.cfg.QueueBatches), stopped: make(chan struct{})}
}

func (p *peer) status() PeerStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// poll reads the peer's node status.
func (p *peer) poll() {
	a, err := p.c.pollStatus(p.url)
	p.mu.Lock()
	prev := p.st.Status
	if err != nil {
		p.st.Status, p.st.Error = StatusUnknown, err.Error()
	} else {
		p.st.Status, p.st.Error, p.st.LastSeen = a.NodeStatus.Status, "", time.Now()
		p.st.RegionID, p.st.ZoneID = a.NodeStatus.Node.Zone.RegionID, a.NodeStatus.Node.Zone.ZoneID
	}
	now := p.st.Status
	p.mu.Unlock()
	if now != prev {
		p.c.log.Info("cluster: peer status", "peer", p.url, "from", prev, "to", now, "error", errString(err))
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (p *peer) start() {
	if p.running.CompareAndSwap(false, true) {
		p.c.wg.Add(1)
		go p.run()
	}
}

func (p *peer) stop() { p.stopOnce.Do(func() { close(p.stopped) }) }

// enqueue queues b; a full queue drops it (counted): a slow or dead peer
// never holds up the others.
func (p *peer) enqueue(b *batch) {
	select {
	case p.queue <- b:
	default:
		p.failures.Add(1)
	}
}

// run sends the queued batches in order.
func (p *peer) run() {
	defer p.c.wg.Done()
	for {
		select {
		case <-p.stopped:
			return
		case <-p.c.done:
			return
		case b := <-p.queue:
			p.deliver(b)
		}
	}
}

// deliver sends b until it is accepted, refused for good, or RetryFor old.
func (p *peer) deliver(b *batch) {
	backoff := 20 * time.Millisecond
	for {
		retry, err := p.attempt(b)
		if err == nil {
			p.batches.Add(1)
			p.instances.Add(int64(b.n))
			p.lagNs.Store(int64(time.Since(b.born)))
			return
		}
		if !retry || time.Since(b.built)+backoff > p.c.cfg.RetryFor {
			p.failures.Add(1)
			p.c.log.Warn("cluster: replication batch dropped", "peer", p.url, "op", b.op.String(), "instances", b.n, "error", err.Error())
			return
		}
		p.retries.Add(1)
		select {
		case <-p.stopped:
			return
		case <-p.c.done:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// attempt sends b once; retry tells whether a failure is transient.
func (p *peer) attempt(b *batch) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.c.cfg.RequestTimeout)
	defer cancel()
	code, answer, err := p.c.post(ctx, p.url, opPaths[b.op], b.body, b.gzipped, 1<<20)
	if err != nil {
		return true, err
	}
	var st struct {
		ResponseStatus struct {
			Status    string `json:"status"`
			ErrorCode string `json:"errorCode"`
			Message   string `json:"message"`
		} `json:"responseStatus"`
	}
	json.Unmarshal(answer, &st)
	rs := st.ResponseStatus
	switch {
	case code >= 500 || code == 429 || rs.ErrorCode == "rate-limited" || rs.ErrorCode == "service-unavailable":
		return true, fmt.Errorf("HTTP %d %s: %s", code, rs.ErrorCode, rs.Message)
	case code != 200:
		return false, fmt.Errorf("HTTP %d %s: %s", code, rs.ErrorCode, rs.Message)
	case rs.Status == "success" || rs.Status == "partial_fail":
		return false, nil // a partial failure is the peer's verdict on those instances
	}
	return false, fmt.Errorf("refused: %s: %s", rs.ErrorCode, rs.Message)
}

// PeerStats reports a peer's replication.
type PeerStats struct {
	PeerStatus
	Queue     int   // batches waiting
	Batches   int64 // batches delivered
	Instances int64 // instances delivered
	Failures  int64 // batches dropped
	Retries   int64 // failed attempts retried
	Skipped   int64 // operations not sent while the peer was neither up nor starting
	Lag       time.Duration
}

// Stats reports every peer's replication, in configured order.
func (c *Cluster) Stats() []PeerStats {
	if c == nil {
		return nil
	}
	peers := c.peerList()
	out := make([]PeerStats, len(peers))
	for i, p := range peers {
		out[i] = PeerStats{PeerStatus: p.status(), Queue: len(p.queue), Batches: p.batches.Load(),
			Instances: p.instances.Load(), Failures: p.failures.Load(), Retries: p.retries.Load(),
			Skipped: p.skipped.Load(), Lag: time.Duration(p.lagNs.Load())}
	}
	return out
}

// Dropped returns the operations refused because the outbox was full.
func (c *Cluster) Dropped() int64 {
	if c == nil {
		return 0
	}
	return c.out.dropped.Load()
}
