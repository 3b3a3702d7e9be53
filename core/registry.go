package core

import (
	"sync"
	"sync/atomic"
	"time"
)

// Registry holds the instances of one node. It is safe for concurrent use.
type Registry struct {
	cfg    Config
	ttlMs  int64
	hash   hasher
	shards []shard
	mask   uint64
	svcs   serviceIndex
	log    changeLog
	sp     selfPreservation

	filters atomic.Pointer[filterChain]

	registrations   atomic.Int64
	unregistrations atomic.Int64
	evictions       atomic.Int64

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// shard is one lock stripe of leases, keyed by the InstanceKey hash.
type shard struct {
	mu    sync.Mutex // serialises writers of table and guards wheel
	table atomic.Pointer[leaseTable]
	wheel wheel        // guarded by mu
	count atomic.Int64 // written under mu
	held  atomic.Int64 // leases with held set; written under mu
	// renewals counts successful heartbeats; per shard so heartbeats on
	// different shards never share a cache line.
	renewals atomic.Int64
	_        [64]byte
}

// lease is the registry's entry for one instance.
type lease struct {
	h1, h2  uint64                 // InstanceKey hash; immutable
	renewed atomic.Int64           // epoch ms of the last registration or heartbeat
	rec     atomic.Pointer[Record] // stored under shard.mu and, once l is a member, svc.mu
	svc     *service
	created int64 // epoch ms, immutable
	removed bool  // guarded by shard.mu
	held    bool  // expired but kept by self-preservation; guarded by shard.mu
	// shown is what the change log last said of the instance: true after a
	// ChangeNew, false after a ChangeDelete or when its registration was
	// hidden by a RecordFilter (nothing logged). Guarded by svc.mu.
	shown bool
	// wslot and wpos locate the lease in its wheel bucket (see
	// wheel.remove); guarded by shard.mu.
	wslot, wpos int32
	// rec0 is the lease's first record, allocated with it. Records are never
	// copied: rec points here until a re-registration replaces it.
	rec0 Record
}

// FailedInstance is an instance a batch operation could not apply.
// Err wraps ErrNoPermission, ErrInvalidInstance or ErrNotFound.
type FailedInstance struct {
	Instance *Instance
	Err      error
}

// New returns a started Registry; Close stops its eviction goroutine.
func New(cfg Config) (*Registry, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Registry{
		cfg:    cfg,
		ttlMs:  cfg.LeaseTTL.Milliseconds(),
		hash:   newHasher(),
		shards: make([]shard, cfg.Shards),
		mask:   uint64(cfg.Shards - 1),
		done:   make(chan struct{}),
	}
	now := r.nowMs()
	tickMs := cfg.EvictionTick.Milliseconds()
	ring := int((r.ttlMs+requeueProtectedLeases.Milliseconds())/tickMs) + 4
	for i := range r.shards {
		r.shards[i].table.Store(newLeaseTable(minTableSize))
		r.shards[i].wheel.init(ring, tickMs, now)
	}
	r.svcs.init()
	r.log.init(cfg.ChangeLogSize, int64(cfg.ChangeLogBytes), cfg.ChangeLogAge.Milliseconds(), cfg.Now().UnixMicro())
	r.sp.init(cfg.SelfPreservation, cfg.LeaseTTL, cfg.EvictionTick, now)
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// Close stops the eviction goroutine and waits for it. It is idempotent.
func (r *Registry) Close() {
	r.closeOnce.Do(func() { close(r.done) })
	r.wg.Wait()
}

// Region returns the node's region.
func (r *Registry) Region() string { return r.cfg.Region }

// Zone returns the node's zone.
func (r *Registry) Zone() string { return r.cfg.Zone }

// LeaseTTL returns the configured lease time-to-live.
func (r *Registry) LeaseTTL() time.Duration { return r.cfg.LeaseTTL }

// Config returns the effective configuration, defaults applied.
func (r *Registry) Config() Config { return r.cfg }

func (r *Registry) nowMs() int64 { return r.cfg.Now().UnixMilli() }

func (r *Registry) shardFor(h1 uint64) *shard { return &r.shards[(h1>>32)&r.mask] }

// find returns the lease with the key hash, or nil. It takes no lock.
func (sh *shard) find(h1, h2 uint64) *lease { return sh.table.Load().find(h1, h2) }

// Register creates or replaces the leases of insts, skipping nil entries, and
// appends the instances it refused to failed, which it returns.
// A new instance, or one whose data changed, emits a ChangeNew, unless a
// RecordFilter hides it: then nothing, or a ChangeDelete when new data
// hides an instance the log announced.
func (r *Registry) Register(insts []*Instance, failed []FailedInstance) []FailedInstance {
	return r.RegisterEach(insts, failed, nil)
}

// Applied receives the record of each instance a call of RegisterEach,
// HeartbeatEach or UnregisterEach applied (for an unregister, the record
// removed), on the caller's goroutine with no lock held. Records are
// immutable: it may keep them.
type Applied func(rec *Record)

// RegisterEach is Register, calling applied (when not nil) with the record
// of every instance it registered or renewed: what a replicator sends on.
func (r *Registry) RegisterEach(insts []*Instance, failed []FailedInstance, applied Applied) []FailedInstance {
	now := r.nowMs()
	for _, inst := range insts {
		if inst == nil {
			continue
		}
		if err := inst.Validate(r.cfg.Region); err != nil {
			failed = append(failed, FailedInstance{Instance: inst, Err: err})
			continue
		}
		rec := r.register(inst, now)
		if applied != nil {
			applied(rec)
		}
	}
	return failed
}

// register applies one registration and returns the instance's record.
func (r *Registry) register(inst *Instance, now int64) *Record {
	h1, h2 := r.hash.instance(inst.RegionID, inst.ServiceID, inst.InstanceID)
	sh := r.shardFor(h1)

	// An identical re-registration of a live lease only renews it. (A lease
	// held by self-preservation has expired, so it takes the slow path.)
	if l := sh.find(h1, h2); l != nil && now < l.renewed.Load()+r.ttlMs {
		if cur := l.rec.Load(); cur.sameAs(inst) {
			l.renewed.Store(now)
			r.registrations.Add(1)
			return cur
		}
	}

	// The lease and its first record are one allocation, built outside the
	// lock; if the instance turns out to exist, the record alone is used.
	fresh := &lease{h1: h1, h2: h2, created: now}
	rec := &fresh.rec0
	fillRecord(rec, inst)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	r.registrations.Add(1)
	if l := sh.find(h1, h2); l != nil {
		sh.releaseLocked(l)
		l.renewed.Store(now)
		old := l.rec.Load()
		if old.sameAs(inst) {
			return old
		}
		l.svc.replace(r, l, rec, now)
		return rec
	}
	l := fresh
	l.rec.Store(rec)
	l.renewed.Store(now)
	sh.table.Store(sh.table.Load().insertLocked(l))
	sh.count.Add(1)
	sh.wheel.insert(l, now+r.ttlMs)
	for {
		l.svc = r.svcs.acquire(r, rec)
		if l.svc.add(r, l, now) {
			break
		}
	}
	return rec
}

// Heartbeat renews the leases of insts (only their key fields are read),
// skipping nil entries, and appends the ones it could not renew to failed.
// It is O(1) per instance, does not allocate when nothing fails, and never
// rebuilds a snapshot.
func (r *Registry) Heartbeat(insts []*Instance, failed []FailedInstance) []FailedInstance {
	return r.HeartbeatEach(insts, failed, nil)
}

// HeartbeatEach is Heartbeat, calling applied (when not nil) with the record
// of every lease it renewed.
func (r *Registry) HeartbeatEach(insts []*Instance, failed []FailedInstance, applied Applied) []FailedInstance {
	now := r.nowMs()
	for _, inst := range insts {
		if inst == nil {
			continue
		}
		if !asciiEqualFold(inst.RegionID, r.cfg.Region) {
			failed = append(failed, FailedInstance{Instance: inst, Err: ErrNoPermission})
			continue
		}
		rec := r.renew(inst, now)
		if rec == nil {
			failed = append(failed, FailedInstance{Instance: inst, Err: ErrNotFound})
		} else if applied != nil {
			applied(rec)
		}
	}
	return failed
}

// renew renews the lease of inst and returns its record, or nil when no
// live lease has its key.
func (r *Registry) renew(inst *Instance, now int64) *Record {
	h1, h2 := r.hash.instance(inst.RegionID, inst.ServiceID, inst.InstanceID)
	sh := r.shardFor(h1)
	l := sh.find(h1, h2)
	if l == nil || now >= l.renewed.Load()+r.ttlMs {
		return nil
	}
	// A heartbeat racing an unregister may renew a lease that is being
	// removed; it then reports success for an instance removed just after.
	l.renewed.Store(now)
	sh.renewals.Add(1)
	return l.rec.Load()
}

// Unregister removes the leases of insts at once, skipping nil entries, and
// logs a ChangeDelete for each the change log announced (not for one a
// RecordFilter hid). Unknown instances are not an error; other regions are
// refused.
func (r *Registry) Unregister(insts []*Instance, failed []FailedInstance) []FailedInstance {
	return r.UnregisterEach(insts, failed, nil)
}

// UnregisterEach is Unregister, calling applied (when not nil) with the
// record of every lease it removed.
func (r *Registry) UnregisterEach(insts []*Instance, failed []FailedInstance, applied Applied) []FailedInstance {
	now := r.nowMs()
	for _, inst := range insts {
		if inst == nil {
			continue
		}
		if !asciiEqualFold(inst.RegionID, r.cfg.Region) {
			failed = append(failed, FailedInstance{Instance: inst, Err: ErrNoPermission})
			continue
		}
		h1, h2 := r.hash.instance(inst.RegionID, inst.ServiceID, inst.InstanceID)
		sh := r.shardFor(h1)
		var removed *Record
		sh.mu.Lock()
		if l := sh.find(h1, h2); l != nil {
			removed = l.rec.Load()
			r.removeLocked(sh, l, now)
			r.unregistrations.Add(1)
		}
		sh.mu.Unlock()
		if removed != nil && applied != nil {
			applied(removed)
		}
	}
	return failed
}

// removeLocked deletes l from its shard and service and logs a ChangeDelete
// if the change log announced it. The caller holds sh.mu.
func (r *Registry) removeLocked(sh *shard, l *lease, now int64) {
	sh.table.Load().deleteLocked(l)
	sh.wheel.remove(l)
	l.removed = true
	sh.releaseLocked(l)
	sh.count.Add(-1)
	l.svc.remove(r, l, now)
}

// holdLocked marks l as expired but kept by self-preservation.
func (sh *shard) holdLocked(l *lease) {
	if !l.held {
		l.held = true
		sh.held.Add(1)
	}
}

// releaseLocked clears the mark set by holdLocked.
func (sh *shard) releaseLocked(l *lease) {
	if l.held {
		l.held = false
		sh.held.Add(-1)
	}
}

// LeaseInfo describes one lease for the status API.
type LeaseInfo struct {
	Record   *Record
	Created  int64 // epoch ms
	Renewed  int64 // epoch ms
	Eviction int64 // epoch ms at which the lease expires unless renewed
	TTL      time.Duration
}

// Leases calls fn for the leases of each named service (all services when ids
// is empty), one service at a time, in no particular order.
// The slice passed to fn is reused after fn returns.
func (r *Registry) Leases(ids []string, fn func(serviceID string, leases []LeaseInfo)) {
	var buf []LeaseInfo
	visit := func(s *service) {
		buf = s.leases(buf[:0], r.ttlMs, r.cfg.LeaseTTL)
		if len(buf) > 0 {
			fn(s.id, buf)
		}
	}
	if len(ids) == 0 {
		for _, s := range r.svcs.all() {
			visit(s)
		}
		return
	}
	for _, id := range ids {
		if s := r.svcs.find(r.hash.service(id), id); s != nil {
			visit(s)
		}
	}
}
