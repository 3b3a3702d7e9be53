package core

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Registry holds the instances of one node. It is safe for concurrent use.
type Registry struct {
	cfg    Config
	ttlMs  int64
	msBase int64        // epoch ms that a state word's renewed field counts from
	clock  atomic.Int64 // epoch ms, refreshed every ClockResolution when positive
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
	compactions     atomic.Int64
	arenaBytes      atomic.Int64 // bytes of all arenas' chunks

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// shard is one lock stripe of leases, keyed by the InstanceKey hash.
type shard struct {
	mu    sync.Mutex // serialises writers of table and slab and guards wheel
	table atomic.Pointer[leaseTable]
	slab  leaseSlab
	id    uint32       // index in Registry.shards
	wheel wheel        // guarded by mu
	count atomic.Int64 // written under mu
	held  atomic.Int64 // leases with held set; written under mu
	// renewals counts successful heartbeats; per shard so heartbeats on
	// different shards never share a cache line.
	renewals atomic.Int64
	_        [64]byte
}

// FailedInstance is an instance a batch operation could not apply.
// Err wraps ErrNoPermission, ErrInvalidInstance or ErrNotFound.
type FailedInstance struct {
	Instance *Instance
	Err      error
}

// New returns a started Registry; Close stops its goroutines.
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
	now := cfg.Now().UnixMilli()
	r.msBase = now - 1<<(renewedBits-1)
	r.clock.Store(now)
	tickMs := cfg.EvictionTick.Milliseconds()
	ring := min(int((r.ttlMs+requeueProtectedLeases.Milliseconds())/tickMs)+4, maxWheelSlots)
	for i := range r.shards {
		r.shards[i].table.Store(newLeaseTable(minTableSize))
		r.shards[i].slab.init()
		r.shards[i].id = uint32(i)
		r.shards[i].wheel.init(ring, tickMs, now)
	}
	r.svcs.init()
	r.log.init(cfg.ChangeLogSize, int64(cfg.ChangeLogBytes), cfg.ChangeLogAge.Milliseconds(), cfg.Now().UnixMicro())
	r.sp.init(cfg.SelfPreservation, cfg.LeaseTTL, cfg.EvictionTick, now)
	r.wg.Add(1)
	go r.every(cfg.EvictionTick, r.tick) // eviction, self-preservation, change-log trimming
	if cfg.ClockResolution > 0 {
		r.wg.Add(1)
		go r.every(cfg.ClockResolution, r.clock.Store)
	}
	return r, nil
}

// Close stops the registry's goroutines and waits for them. It is idempotent.
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

func (r *Registry) nowMs() int64 {
	if r.cfg.ClockResolution > 0 {
		return r.clock.Load()
	}
	return r.cfg.Now().UnixMilli()
}

// every calls fn with the time (epoch ms) every d until Close. The caller
// has added it to r.wg.
func (r *Registry) every(d time.Duration, fn func(now int64)) {
	defer r.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			fn(r.cfg.Now().UnixMilli())
		}
	}
}

func (r *Registry) shardFor(h1 uint64) *shard { return &r.shards[(h1>>32)&r.mask] }

// found is a lease found in a table (leaseTable.find): its slot, the state
// word read from it, its index (0: none) and its generation.
type found struct {
	t        *leaseTable
	pos      int
	w        uint64
	idx, gen uint32
}

func (f found) slot() *leaseSlot { return &f.t.slots[f.pos] }

// find returns the live lease with the key hash in the shard's current
// table (idx 0: none). It takes no lock; without the shard mutex it misses
// a lease whose slot a rehash has copied (leaseTable.find skips moved
// slots), so a caller without the mutex treats a miss as "ask under it".
func (sh *shard) find(h1, h2 uint64) found {
	t := sh.table.Load()
	pos, w, idx, gen := t.find(&sh.slab, h1, h2)
	return found{t: t, pos: pos, w: w, idx: idx, gen: gen}
}

// stateOf returns the state word of the lease idx, a member of a service
// whose mutex the caller holds, or false when the lease is not in the table:
// a registration adds it to its service before the table (its entry's pos
// is posNone until then), and a removal empties its slot (tombstone index
// before the state word, see deleteLocked), then sets posNone and bumps the
// generation, before it leaves its service. It takes no shard lock and
// waits only for a rehash in progress (which publishes the lease's new pos
// before its new table, and never takes a service mutex) or the few stores
// of a removal: never for a removal or a registration to finish, which may
// wait for the service mutex the caller holds.
func (sh *shard) stateOf(idx uint32) (uint64, bool) {
	e := sh.slab.entry(idx)
	for {
		gen := e.gen.Load()
		t := sh.table.Load()
		p := e.pos.Load()
		if p == posNone {
			return 0, false
		}
		if uint64(p) <= t.mask && t.idxs[p].Load() == idx {
			w := t.slots[p].state.Load()
			if w&movedBit == 0 && t.idxs[p].Load() == idx && e.gen.Load() == gen {
				return w, true
			}
		}
		if e.gen.Load() != gen {
			return 0, false
		}
		runtime.Gosched()
	}
}

// slotLocked returns the table slot of the lease e, which is in the table.
// The caller holds the shard mutex.
func (sh *shard) slotLocked(e *leaseEntry) *leaseSlot {
	return &sh.table.Load().slots[e.pos.Load()]
}

// pack returns the state word of a live lease renewed at now (epoch ms), in
// a slot of generation gen.
func (r *Registry) pack(gen uint64, now int64) uint64 {
	d := min(max(now-r.msBase, 0), int64(renewedMask))
	return gen<<genShift | liveBit | uint64(d)
}

// renewedOf returns the epoch ms of the last renewal in state word w.
func (r *Registry) renewedOf(w uint64) int64 { return int64(w&renewedMask) + r.msBase }

func genOf(w uint64) uint64 { return w >> genShift }

// entryOf returns the entry of a member reference (shard<<32 | index).
func (r *Registry) entryOf(ref uint64) *leaseEntry {
	return r.shards[ref>>32].slab.entry(uint32(ref))
}

// renewal is the outcome of renewFrom.
type renewal uint8

const (
	renewFailed renewal = iota // removed or expired
	renewed
	renewMoved // the slot was copied by a rehash: probe the new table
)

// renewFrom renews the lease in slot s, whose state word was w when it was
// found, at now. It takes no lock: the compare-and-swap fails if the lease
// was removed or its slot copied since.
func (r *Registry) renewFrom(s *leaseSlot, w uint64, now int64) renewal {
	gen := genOf(w)
	for {
		if w&movedBit != 0 {
			return renewMoved
		}
		if w&liveBit == 0 || genOf(w) != gen || now >= r.renewedOf(w)+r.ttlMs {
			return renewFailed
		}
		if r.renewedOf(w) >= now || s.state.CompareAndSwap(w, r.pack(gen, now)) {
			return renewed
		}
		w = s.state.Load()
	}
}

// setRenewedLocked renews the live lease in slot s at now. The caller holds
// the shard mutex (so it stays live and in place); heartbeats may renew it
// concurrently.
func (r *Registry) setRenewedLocked(s *leaseSlot, now int64) {
	for {
		w := s.state.Load()
		if s.state.CompareAndSwap(w, r.pack(genOf(w), now)) {
			return
		}
	}
}

// record returns the current record of the lease e of generation gen, or
// nil when the lease was removed since. It takes no lock.
func (r *Registry) record(e *leaseEntry, gen uint32) *Record {
	for {
		var rec *Record
		// The handle is loaded before the directory: a writer publishes a
		// directory holding a chunk before any handle points into it, and
		// rewrites every handle before it drops the old chunks.
		if s := r.svcs.byID(e.svc.Load()); s != nil {
			rec = s.arena.dir.Load().resolve(e.rec.Load())
		}
		if e.gen.Load() != gen {
			return nil
		}
		if rec != nil {
			return rec
		}
		runtime.Gosched() // a compaction is rewriting the handle
	}
}

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
	if f := sh.find(h1, h2); f.idx != 0 && now < r.renewedOf(f.w)+r.ttlMs {
		if cur := r.record(sh.slab.entry(f.idx), f.gen); cur != nil && cur.sameAs(inst) && r.renewFrom(f.slot(), f.w, now) == renewed {
			r.registrations.Add(1)
			return cur
		}
	}

	// The record is encoded outside the lock, then copied into its
	// service's arena.
	buf := acquireBuf()
	defer releaseBuf(buf)
	*buf = encodeRecord((*buf)[:0], inst)
	blob := *buf

	sh.mu.Lock()
	defer sh.mu.Unlock()
	r.registrations.Add(1)
	if f := sh.find(h1, h2); f.idx != 0 {
		e := sh.slab.entry(f.idx)
		sh.releaseLocked(e)
		r.setRenewedLocked(f.slot(), now)
		old := r.record(e, f.gen)
		if old.sameAs(inst) {
			return old
		}
		return r.svcs.byID(e.svc.Load()).replace(r, e, blob, now)
	}
	idx := sh.slab.allocLocked()
	e := sh.slab.entry(idx)
	e.h1.Store(h1)
	e.pos.Store(posNone) // until the table holds it (see stateOf)
	e.created = now
	e.held = false
	// The lease enters the table (where heartbeats and lock-free finds get
	// it) once add has set its service and record. Its entry's generation
	// was bumped when its previous lease was removed, so a reader holding
	// that lease's index and generation gets no record from this one.
	ref := uint64(sh.id)<<32 | uint64(idx)
	var rec *Record
	for rec == nil {
		rec = r.svcs.acquire(r, inst.ServiceID).add(r, ref, e, blob, now)
	}
	sh.table.Store(sh.table.Load().insertLocked(&sh.slab, h1, h2, idx, r.pack(0, now)))
	sh.count.Add(1)
	sh.wheel.insert(e, idx, e.gen.Load(), now+r.ttlMs)
	return rec
}

// Heartbeat renews the leases of insts (only their key fields are read),
// skipping nil entries, and appends the ones it could not renew to failed.
// It is O(1) per instance, takes no lock (but waits for a rehash of its
// shard's table in progress, see renew), does not allocate when nothing
// fails, and never rebuilds a snapshot.
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
		h1, h2 := r.hash.instance(inst.RegionID, inst.ServiceID, inst.InstanceID)
		sh := r.shardFor(h1)
		ok, idx, gen := r.renew(sh, h1, h2, now, applied != nil)
		if !ok {
			failed = append(failed, FailedInstance{Instance: inst, Err: ErrNotFound})
		} else if applied != nil {
			// A lease removed just after it was renewed has no record
			// left to send on; its removal is replicated instead.
			if rec := r.record(sh.slab.entry(idx), gen); rec != nil {
				applied(rec)
			}
		}
	}
	return failed
}

// renew renews the lease with the key hash (h1, h2) in shard sh and reports
// whether a live lease had the key. It reads the lease's table slot only,
// unless lease is true: then it also returns the lease's index and
// generation, read before the renewal, so a lease removed since (perhaps
// re-registered, reusing the index) gets no record from Registry.record.
func (r *Registry) renew(sh *shard, h1, h2 uint64, now int64, lease bool) (ok bool, idx, gen uint32) {
	for {
		t := sh.table.Load()
		pos, w := t.renewable(h1, h2)
		if pos < 0 {
			return false, 0, 0
		}
		s := &t.slots[pos]
		if lease && w&movedBit == 0 {
			if idx, gen, ok = t.leaseAt(&sh.slab, pos, w); !ok {
				// Removed since w was read (as renewFrom would find), or
				// copied by a rehash: wait for it, and probe again.
				if s.state.Load()&movedBit == 0 {
					return false, 0, 0
				}
				w |= movedBit
			}
		}
		// A heartbeat racing an unregister may renew a lease just before it
		// is removed; it then reports success for an instance removed just
		// after.
		switch r.renewFrom(s, w, now) {
		case renewed:
			sh.renewals.Add(1)
			return true, idx, gen
		case renewFailed:
			return false, 0, 0
		}
		// A rehash copied the slot: it holds the shard mutex until the new
		// table is published.
		sh.mu.Lock()
		sh.mu.Unlock() // empty: only waiting for the rehash
	}
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
		if f := sh.find(h1, h2); f.idx != 0 {
			removed = r.record(sh.slab.entry(f.idx), f.gen)
			r.removeLocked(sh, f.idx, now)
			r.unregistrations.Add(1)
		}
		sh.mu.Unlock()
		if removed != nil && applied != nil {
			applied(removed)
		}
	}
	return failed
}

// removeLocked deletes the lease idx from its shard and service, logs a
// ChangeDelete if the change log announced it, and frees its entry. The
// caller holds sh.mu.
func (r *Registry) removeLocked(sh *shard, idx uint32, now int64) {
	e := sh.slab.entry(idx)
	gen := e.gen.Load()
	sh.table.Load().deleteLocked(e.pos.Load())
	e.pos.Store(posNone) // out of the table (see stateOf)
	sh.wheel.remove(e, idx, gen)
	sh.releaseLocked(e)
	sh.count.Add(-1)
	// A new generation before the service may free its slot id (when it
	// empties): a reader of the entry's record sees it is gone before the
	// slot id can name another service. (Emptying the slot already failed
	// the compare-and-swap of a heartbeat that found the lease before now.)
	e.gen.Store(gen + 1)
	r.svcs.byID(e.svc.Load()).remove(r, e, now)
	sh.slab.freeLocked(idx)
}

// holdLocked marks e as expired but kept by self-preservation.
func (sh *shard) holdLocked(e *leaseEntry) {
	if !e.held {
		e.held = true
		sh.held.Add(1)
	}
}

// releaseLocked clears the mark set by holdLocked.
func (sh *shard) releaseLocked(e *leaseEntry) {
	if e.held {
		e.held = false
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
		buf = s.leases(r, buf[:0])
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
