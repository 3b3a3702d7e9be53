package core

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

const serviceStripes = 64

// serviceIndex maps service ids (case-insensitively) to services, and
// service slot ids (what a lease entry names its service by) to services.
type serviceIndex struct {
	stripes [serviceStripes]struct {
		mu sync.RWMutex
		m  map[uint64]*service // guarded by mu; collisions chain through service.next
		_  [40]byte
	}
	count atomic.Int64

	// Slot ids: a directory of chunks of slots, read without a lock;
	// written under idMu. Id 0 is never used. The id of a dropped service
	// is reused.
	idMu    sync.Mutex
	ids     atomic.Pointer[[]*serviceSlots]
	freeIDs []uint32 // guarded by idMu
	nextID  uint32   // guarded by idMu
}

const serviceSlotBits = 10

type serviceSlots [1 << serviceSlotBits]atomic.Pointer[service]

// service is the set of leases of one service id, their records and its
// discovery snapshot.
type service struct {
	id   string // as first registered; immutable
	hash uint64
	sid  uint32   // slot id; immutable
	next *service // guarded by the index stripe's mu

	mu sync.Mutex
	// members are the service's leases, as shard<<32 | entry index; each
	// entry's mpos is its index here. Guarded by mu; so are the entries'
	// shown flags and record handles.
	members []uint64
	arena   recordArena // the members' records; written under mu
	dead    bool        // guarded by mu; set when removed from the index
	snap    atomic.Pointer[Snapshot]
}

// Snapshot is an immutable view of one service as discovery serves it:
// filters applied, instances sorted by instance id, each instance's JSON
// pre-encoded (AppendJSON copies bytes, it does not encode).
// Callers must not modify any part of it.
type Snapshot struct {
	ServiceID      string
	Records        RecordList
	LogicInstances []*Record
	RouteRules     []RouteRule

	size int // bytes AppendJSON writes
}

// Size returns the number of bytes AppendJSON appends, so callers can grow
// their buffer once.
func (snap *Snapshot) Size() int { return snap.size }

func (x *serviceIndex) init() {
	for i := range x.stripes {
		x.stripes[i].m = make(map[uint64]*service)
	}
	x.ids.Store(&[]*serviceSlots{})
	x.nextID = 1
}

// byID returns the service of slot id, or nil. It takes no lock.
func (x *serviceIndex) byID(id uint32) *service {
	dir := *x.ids.Load()
	if c := int(id >> serviceSlotBits); c < len(dir) {
		return dir[c][id&(1<<serviceSlotBits-1)].Load()
	}
	return nil
}

// newID gives s a slot id and publishes it there.
func (x *serviceIndex) newID(s *service) {
	x.idMu.Lock()
	defer x.idMu.Unlock()
	var id uint32
	if n := len(x.freeIDs); n > 0 {
		id = x.freeIDs[n-1]
		x.freeIDs = x.freeIDs[:n-1]
	} else {
		id = x.nextID
		x.nextID++
		if dir := *x.ids.Load(); int(id>>serviceSlotBits) == len(dir) {
			nd := append(dir[:len(dir):len(dir)], new(serviceSlots))
			x.ids.Store(&nd)
		}
	}
	s.sid = id
	(*x.ids.Load())[id>>serviceSlotBits][id&(1<<serviceSlotBits-1)].Store(s)
}

// freeID releases the slot id of s, a dropped service.
func (x *serviceIndex) freeID(s *service) {
	x.idMu.Lock()
	defer x.idMu.Unlock()
	(*x.ids.Load())[s.sid>>serviceSlotBits][s.sid&(1<<serviceSlotBits-1)].Store(nil)
	x.freeIDs = append(x.freeIDs, s.sid)
}

// find returns the live service with id, or nil.
func (x *serviceIndex) find(h uint64, id string) *service {
	st := &x.stripes[h%serviceStripes]
	st.mu.RLock()
	defer st.mu.RUnlock()
	for s := st.m[h]; s != nil; s = s.next {
		if s.hash == h && asciiEqualFold(s.id, id) {
			return s
		}
	}
	return nil
}

// acquire returns the service id, creating it if needed.
func (x *serviceIndex) acquire(r *Registry, id string) *service {
	h := r.hash.service(id)
	if s := x.find(h, id); s != nil {
		return s
	}
	st := &x.stripes[h%serviceStripes]
	st.mu.Lock()
	defer st.mu.Unlock()
	for s := st.m[h]; s != nil; s = s.next {
		if s.hash == h && asciiEqualFold(s.id, id) {
			return s
		}
	}
	s := &service{id: strings.Clone(id), hash: h}
	x.newID(s)
	s.next = st.m[h]
	st.m[h] = s
	x.count.Add(1)
	return s
}

// drop removes s from the index. The caller holds s.mu and has marked it dead.
func (x *serviceIndex) drop(s *service) {
	st := &x.stripes[s.hash%serviceStripes]
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.m[s.hash] == s {
		if s.next == nil {
			delete(st.m, s.hash)
		} else {
			st.m[s.hash] = s.next
		}
	} else {
		for p := st.m[s.hash]; p != nil; p = p.next {
			if p.next == s {
				p.next = s.next
				break
			}
		}
	}
	x.freeID(s)
	x.count.Add(-1)
}

// all returns every live service.
func (x *serviceIndex) all() []*service {
	out := make([]*service, 0, x.count.Load())
	for i := range x.stripes {
		st := &x.stripes[i]
		st.mu.RLock()
		for _, s := range st.m {
			for ; s != nil; s = s.next {
				out = append(out, s)
			}
		}
		st.mu.RUnlock()
	}
	return out
}

// recordLocked returns the record of e, a member. The caller holds s.mu.
func (s *service) recordLocked(e *leaseEntry) *Record {
	return s.arena.dir.Load().resolve(e.rec.Load())
}

// add makes the new lease e (member reference ref) a member with the record
// blob, announces it (ChangeNew) unless a RecordFilter hides it, and
// returns its record; or returns nil when the service was dropped
// meanwhile (its last member, on another shard, left between acquire and
// add): the caller then acquires a live service and retries.
func (s *service) add(r *Registry, ref uint64, e *leaseEntry, blob []byte, now int64) *Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return nil
	}
	before := s.arena.size
	e.rec.Store(s.arena.add(blob))
	r.arenaBytes.Add(s.arena.size - before)
	e.svc.Store(s.sid)
	e.mpos = uint32(len(s.members))
	s.members = append(s.members, ref)
	s.snap.Store(nil)
	rec := s.recordLocked(e)
	if e.shown = !r.hidden(rec); e.shown {
		r.log.append(ChangeNew, s.id, rec, now)
	}
	s.compactLocked(r)
	return rec
}

// replace gives e, a member, the record blob of a re-registration with new
// data, returns the new record and logs what a subscriber needs: ChangeNew
// if the instance is visible (announced before or not), ChangeDelete of the
// old record if it was announced and the new one is hidden, nothing if it
// stays hidden.
func (s *service) replace(r *Registry, e *leaseEntry, blob []byte, now int64) *Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.recordLocked(e)
	before := s.arena.size
	e.rec.Store(s.arena.add(blob))
	r.arenaBytes.Add(s.arena.size - before)
	rec := s.recordLocked(e)
	s.arena.free(old)
	s.snap.Store(nil)
	switch hidden := r.hidden(rec); {
	case !hidden:
		e.shown = true
		r.log.append(ChangeNew, s.id, rec, now)
	case e.shown:
		e.shown = false
		r.log.append(ChangeDelete, s.id, old, now)
	}
	s.compactLocked(r)
	return rec
}

// remove drops e, withdraws it (ChangeDelete) if it was announced, and
// removes the service from the index when it empties.
func (s *service) remove(r *Registry, e *leaseEntry, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.recordLocked(e)
	last := len(s.members) - 1
	if int(e.mpos) != last {
		moved := s.members[last]
		s.members[e.mpos] = moved
		r.entryOf(moved).mpos = e.mpos
	}
	s.members = s.members[:last]
	if cap(s.members) > 64 && len(s.members) < cap(s.members)/4 {
		s.members = slices.Clone(s.members)
	}
	s.snap.Store(nil)
	if e.shown {
		e.shown = false
		r.log.append(ChangeDelete, s.id, rec, now)
	}
	s.arena.free(rec)
	if len(s.members) == 0 {
		if !s.dead {
			s.dead = true
			r.svcs.drop(s)
			r.arenaBytes.Add(-s.arena.size) // the arena goes with the service
		}
		return
	}
	s.compactLocked(r)
}

// compactLocked compacts the service's arena when it holds dead bytes past
// its share of the live ones, or too many chunks (see recordArena). The
// caller holds s.mu.
func (s *service) compactLocked(r *Registry) {
	if !s.arena.needsCompaction() {
		return
	}
	before := s.arena.size
	defer func() { r.arenaBytes.Add(s.arena.size - before) }()
	s.arena.compact(func(yield func(*atomic.Uint64) bool) {
		for _, ref := range s.members {
			if !yield(&r.entryOf(ref).rec) {
				return
			}
		}
	})
	r.compactions.Add(1)
}

// refilter brings what the change log announced of the members in line
// with the RecordFilters (see Registry.Refilter) and marks the snapshot
// stale. It reports false, doing nothing, when the service was dropped.
func (s *service) refilter(r *Registry, now int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return false
	}
	s.snap.Store(nil)
	type flip struct {
		e   *leaseEntry
		rec *Record
	}
	var flips []flip
	for _, ref := range s.members {
		e := r.entryOf(ref)
		if rec := s.recordLocked(e); r.hidden(rec) == e.shown {
			flips = append(flips, flip{e, rec})
		}
	}
	slices.SortFunc(flips, func(a, b flip) int { return strings.Compare(a.rec.InstanceID(), b.rec.InstanceID()) })
	for _, f := range flips {
		t := ChangeNew
		if f.e.shown {
			t = ChangeDelete
		}
		f.e.shown = !f.e.shown
		r.log.append(t, s.id, f.rec, now)
	}
	return true
}

// invalidate marks the snapshot stale; the next reader rebuilds it.
func (s *service) invalidate() {
	s.mu.Lock()
	s.snap.Store(nil)
	s.mu.Unlock()
}

func (s *service) leases(r *Registry, dst []LeaseInfo) []LeaseInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ref := range s.members {
		e := r.entryOf(ref)
		w, ok := r.shards[ref>>32].stateOf(uint32(ref))
		if !ok {
			continue // being removed, or registered: not in the table yet
		}
		renewed := r.renewedOf(w)
		dst = append(dst, LeaseInfo{Record: s.recordLocked(e), Created: e.created, Renewed: renewed,
			Eviction: renewed + r.ttlMs, TTL: r.cfg.LeaseTTL})
	}
	slices.SortFunc(dst, func(a, b LeaseInfo) int { return strings.Compare(a.Record.InstanceID(), b.Record.InstanceID()) })
	return dst
}

// snapshot returns the current snapshot, rebuilding it if it is stale.
// Readers of a fresh snapshot take no lock and do not allocate.
func (s *service) snapshot(r *Registry) *Snapshot {
	if snap := s.snap.Load(); snap != nil {
		return snap
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if snap := s.snap.Load(); snap != nil {
		return snap
	}
	d := s.arena.dir.Load()
	v := ServiceView{ServiceID: s.id, Records: make([]*Record, 0, len(s.members))}
	for _, ref := range s.members {
		v.Records = append(v.Records, d.resolve(r.entryOf(ref).rec.Load()))
	}
	slices.SortFunc(v.Records, func(a, b *Record) int { return strings.Compare(a.InstanceID(), b.InstanceID()) })
	if c := r.filters.Load(); c != nil {
		for _, f := range c.filters {
			f.FilterService(&v)
		}
	}
	snap := &Snapshot{ServiceID: s.id, Records: newRecordList(d, v.Records), LogicInstances: v.LogicInstances, RouteRules: v.RouteRules}
	buf := acquireBuf()
	snap.size = len(snap.AppendJSON((*buf)[:0]))
	releaseBuf(buf)
	s.snap.Store(snap)
	return snap
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func acquireBuf() *[]byte { return bufPool.Get().(*[]byte) }

// releaseBuf returns b to the pool unless it grew past 4 MiB.
func releaseBuf(b *[]byte) {
	if cap(*b) <= 4<<20 {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

// Service returns the snapshot of the service id (case-insensitive), or nil
// when no instance of it is registered. It takes no lock and does not
// allocate while the service is unchanged.
func (r *Registry) Service(id string) *Snapshot {
	s := r.svcs.find(r.hash.service(id), id)
	if s == nil {
		return nil
	}
	return s.snapshot(r)
}

// Services returns the snapshots of every service with at least one visible
// instance, sorted by service id, and the version they reflect at least.
func (r *Registry) Services() ([]*Snapshot, int64) {
	version := r.log.current()
	all := r.svcs.all()
	out := make([]*Snapshot, 0, len(all))
	for _, s := range all {
		if snap := s.snapshot(r); snap.Records.Len() > 0 {
			out = append(out, snap)
		}
	}
	slices.SortFunc(out, func(a, b *Snapshot) int { return strings.Compare(a.ServiceID, b.ServiceID) })
	return out, version
}
