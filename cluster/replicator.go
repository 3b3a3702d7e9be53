package cluster

import (
	"bytes"
	"compress/gzip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/artemis-go/artemis/core"
)

// Op is a replicated operation.
type Op uint8

// Replicated operations, each sent to its /api/replication/registry/ path.
const (
	OpRegister Op = iota
	OpHeartbeat
	OpUnregister
	numOps
)

var opPaths = [numOps]string{
	"/api/replication/registry/register.json",
	"/api/replication/registry/heartbeat.json",
	"/api/replication/registry/unregister.json",
}

var opNames = [numOps]string{"register", "heartbeat", "unregister"}

// String names the operation.
func (op Op) String() string { return opNames[op] }

// unknownGrace is how long a peer that stopped answering its status polls
// is still sent batches (its queue and retries absorb a blip); a peer never
// reached yet is sent them too, so that the first second of a cluster (the
// first poll may come before a peer listens) loses nothing.
const unknownGrace = 10 * time.Second

// target reports whether batches go to the peer: up or starting, or
// unknown but never reached or seen within unknownGrace. A peer that said
// it is down (shutting down) is not.
func (st PeerStatus) target(now time.Time) bool {
	switch st.Status {
	case StatusUp, StatusStarting:
		return true
	case StatusUnknown:
		return st.LastSeen.IsZero() || now.Sub(st.LastSeen) < unknownGrace
	}
	return false
}

// gzipThreshold is the body size above which a batch is sent gzipped.
const gzipThreshold = 16 << 10

type item struct {
	op  Op
	rec *core.Record
}

// outbox holds the operations waiting to be batched, in order.
type outbox struct {
	max int

	mu      sync.Mutex
	items   []item                    // guarded by mu
	beating map[*core.Record]struct{} // heartbeats waiting; guarded by mu
	urgent  bool                      // a register or unregister waits; guarded by mu

	wake    chan struct{} // signalled when urgent work arrives
	started atomic.Bool   // Start ran: peers added later start their senders
	dropped atomic.Int64  // operations refused: the outbox was full
}

func newOutbox(max int) *outbox {
	return &outbox{max: max, beating: map[*core.Record]struct{}{}, wake: make(chan struct{}, 1)}
}

// Replicate queues op on rec for every peer. It never blocks on the
// network and takes one mutex; a heartbeat of an instance already waiting
// is not queued twice. With no peers it does nothing.
func (c *Cluster) Replicate(op Op, rec *core.Record) {
	if !c.Configured() || rec == nil {
		return
	}
	o := c.out
	o.mu.Lock()
	if op == OpHeartbeat {
		if _, ok := o.beating[rec]; ok {
			o.mu.Unlock()
			return
		}
	}
	if len(o.items) >= o.max {
		o.mu.Unlock()
		o.dropped.Add(1)
		return
	}
	if op == OpHeartbeat {
		o.beating[rec] = struct{}{}
	}
	o.items = append(o.items, item{op, rec})
	wake := op != OpHeartbeat && !o.urgent
	if wake {
		o.urgent = true
	}
	o.mu.Unlock()
	if wake {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

// take returns the waiting operations and empties the outbox; spare is
// reused as the next outbox.
func (o *outbox) take(spare []item) []item {
	o.mu.Lock()
	defer o.mu.Unlock()
	items := o.items
	o.items = spare[:0]
	clear(o.beating)
	o.urgent = false
	return items
}

// batch is one replication request, built once and sent to every peer.
type batch struct {
	op      Op
	body    []byte
	gzipped bool
	n       int       // instances
	built   time.Time // retries end RetryFor after this
	born    time.Time // when its oldest operation was queued (lag)
}

// dispatch turns the outbox into batches: FlushDelay after a register or
// unregister, and every HeartbeatDelay.
func (c *Cluster) dispatch() {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.HeartbeatDelay)
	defer tick.Stop()
	var items, spare []item
	since := time.Now()
	for {
		select {
		case <-c.done:
			return
		case <-c.out.wake:
			select { // let the operations of the same moment join
			case <-c.done:
				return
			case <-time.After(c.cfg.FlushDelay):
			}
		case <-tick.C:
		}
		items = c.out.take(spare)
		now := time.Now()
		if len(items) > 0 {
			c.send(items, since)
		}
		since = now
		clear(items)
		spare, items = items, nil
	}
}

// send batches items (runs of one operation, at most MaxBatch each, in
// order) and queues each batch to every peer that is up or starting.
func (c *Cluster) send(items []item, since time.Time) {
	var targets []*peer
	now := time.Now()
	for _, p := range c.peerList() {
		if p.status().target(now) {
			targets = append(targets, p)
		} else {
			p.skipped.Add(int64(len(items)))
		}
	}
	if len(targets) == 0 {
		return
	}
	for start := 0; start < len(items); {
		end := start + 1
		for end < len(items) && end-start < c.cfg.MaxBatch && items[end].op == items[start].op {
			end++
		}
		b := encodeBatch(items[start:end], since)
		for _, p := range targets {
			p.enqueue(b)
		}
		start = end
	}
}

var bodyHead, bodyTail = []byte(`{"instances":[`), []byte(`]}`)

// encodeBatch builds the Java body {"instances":[...]} of items (one
// operation), gzipped when large. Every operation sends the whole
// instance: a replicated heartbeat of an instance the peer lacks
// registers it.
func encodeBatch(items []item, since time.Time) *batch {
	size := len(bodyHead) + len(bodyTail)
	for _, it := range items {
		size += len(it.rec.JSON()) + 1
	}
	body := make([]byte, 0, size)
	body = append(body, bodyHead...)
	for i, it := range items {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, it.rec.JSON()...)
	}
	body = append(body, bodyTail...)
	b := &batch{op: items[0].op, n: len(items), built: time.Now(), born: since}
	if len(body) > gzipThreshold {
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
		zw.Write(body)
		zw.Close()
		b.body, b.gzipped = z.Bytes(), true
	} else {
		b.body = body
	}
	return b
}
