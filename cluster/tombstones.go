package cluster

import (
	"sync"
	"time"

	"github.com/artemis-go/artemis/core"
)

// Tombstones remember the instances unregistered on this node in the last
// TombstoneWindow, so that a replicated heartbeat sent before the
// unregister (a peer holds heartbeats up to HeartbeatDelay, and retries for
// RetryFor) does not bring the instance back: a replicated heartbeat of an
// instance the node lacks registers it only when no tombstone says it was
// just unregistered. At most maxTombstones are kept (the oldest go first).
type Tombstones struct {
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	at    map[string]time.Time // folded instance key -> when it was unregistered; guarded by mu
	order []string             // keys in the order added; guarded by mu
}

// TombstoneWindow is how long an unregister keeps a replicated heartbeat
// from registering the instance again: longer than a heartbeat can wait in
// a peer's outbox and be retried.
const TombstoneWindow = defaultRetryFor + 2*time.Second

const maxTombstones = 200_000

// NewTombstones returns an empty set; now is the clock (time.Now when nil).
func NewTombstones(now func() time.Time) *Tombstones {
	if now == nil {
		now = time.Now
	}
	return &Tombstones{window: TombstoneWindow, now: now, at: map[string]time.Time{}}
}

func tombstoneKey(region, service, instance string) string {
	b := core.AppendFoldKey(nil, region)
	b = append(b, 0)
	b = core.AppendFoldKey(b, service)
	b = append(b, 0)
	return string(core.AppendFoldKey(b, instance))
}

// Add records that rec's instance was unregistered now.
func (t *Tombstones) Add(rec *core.Record) {
	key := tombstoneKey(rec.RegionID(), rec.ServiceID(), rec.InstanceID())
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneLocked(now)
	if _, ok := t.at[key]; !ok {
		t.order = append(t.order, key)
	}
	t.at[key] = now
}

// Recent reports whether inst was unregistered within the window.
func (t *Tombstones) Recent(inst *core.Instance) bool {
	key := tombstoneKey(inst.RegionID, inst.ServiceID, inst.InstanceID)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.at[key]
	return ok && now.Sub(at) < t.window
}

// Len returns how many tombstones are kept.
func (t *Tombstones) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.at)
}

// pruneLocked drops tombstones past the window, and the oldest beyond
// maxTombstones.
func (t *Tombstones) pruneLocked(now time.Time) {
	n := 0
	for n < len(t.order) {
		key := t.order[n]
		at, ok := t.at[key]
		if ok && now.Sub(at) < t.window && len(t.at) < maxTombstones {
			break
		}
		delete(t.at, key)
		n++
	}
	if n > 0 {
		t.order = append(t.order[:0], t.order[n:]...)
	}
}
