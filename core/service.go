package core

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const serviceStripes = 64

// serviceIndex maps service ids (case-insensitively) to services.
type serviceIndex struct {
	stripes [serviceStripes]struct {
		mu sync.RWMutex
		m  map[uint64]*service // guarded by mu; collisions chain through service.next
		_  [40]byte
	}
	count atomic.Int64
}

// service is the set of leases of one service id and its discovery snapshot.
type service struct {
	id   string // as first registered; immutable
	hash uint64
	next *service // guarded by the index stripe's mu

	mu      sync.Mutex
	members map[*lease]struct{} // guarded by mu; so are their shown flags
	dead    bool                // guarded by mu; set when removed from the index
	snap    atomic.Pointer[Snapshot]
}

// Snapshot is an immutable view of one service as discovery serves it:
// filters applied, instances sorted by instance id, each instance's JSON
// pre-encoded (AppendJSON copies bytes, it does not encode).
// Callers must not modify any part of it.
type Snapshot struct {
	ServiceID      string
	Records        []*Record
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

// acquire returns the service of rec, creating it if needed.
func (x *serviceIndex) acquire(r *Registry, rec *Record) *service {
	id := rec.ServiceID()
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
	s := &service{id: strings.Clone(id), hash: h, members: make(map[*lease]struct{})}
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

// add makes l, a new lease, a member, announces it (ChangeNew) unless a
// RecordFilter hides it, and reports true; or reports false when the
// service was dropped meanwhile (its last member, on another shard, left
// between acquire and add): the caller then acquires a live service and
// retries.
func (s *service) add(r *Registry, l *lease, now int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return false
	}
	s.members[l] = struct{}{}
	s.snap.Store(nil)
	rec := l.rec.Load()
	if l.shown = !r.hidden(rec); l.shown {
		r.log.append(ChangeNew, s.id, rec, now)
	}
	return true
}

// replace gives l, a member, the record rec of a re-registration with new
// data and logs what a subscriber needs: ChangeNew if the instance is
// visible (announced before or not), ChangeDelete of the old record if it
// was announced and rec is hidden, nothing if it stays hidden.
func (s *service) replace(r *Registry, l *lease, rec *Record, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := l.rec.Load()
	l.rec.Store(rec)
	s.snap.Store(nil)
	switch hidden := r.hidden(rec); {
	case !hidden:
		l.shown = true
		r.log.append(ChangeNew, s.id, rec, now)
	case l.shown:
		l.shown = false
		r.log.append(ChangeDelete, s.id, old, now)
	}
}

// remove drops l, withdraws it (ChangeDelete) if it was announced, and
// removes the service from the index when it empties.
func (s *service) remove(r *Registry, l *lease, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.members, l)
	s.snap.Store(nil)
	if l.shown {
		l.shown = false
		r.log.append(ChangeDelete, s.id, l.rec.Load(), now)
	}
	if len(s.members) == 0 && !s.dead {
		s.dead = true
		r.svcs.drop(s)
	}
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
	var flips []*lease
	for l := range s.members {
		if r.hidden(l.rec.Load()) == l.shown {
			flips = append(flips, l)
		}
	}
	slices.SortFunc(flips, func(a, b *lease) int { return strings.Compare(a.rec.Load().InstanceID(), b.rec.Load().InstanceID()) })
	for _, l := range flips {
		t := ChangeNew
		if l.shown {
			t = ChangeDelete
		}
		l.shown = !l.shown
		r.log.append(t, s.id, l.rec.Load(), now)
	}
	return true
}

// invalidate marks the snapshot stale; the next reader rebuilds it.
func (s *service) invalidate() {
	s.mu.Lock()
	s.snap.Store(nil)
	s.mu.Unlock()
}

func (s *service) leases(dst []LeaseInfo, ttlMs int64, ttl time.Duration) []LeaseInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.members {
		renewed := l.renewed.Load()
		dst = append(dst, LeaseInfo{Record: l.rec.Load(), Created: l.created, Renewed: renewed, Eviction: renewed + ttlMs, TTL: ttl})
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
	v := ServiceView{ServiceID: s.id, Records: make([]*Record, 0, len(s.members))}
	for l := range s.members {
		v.Records = append(v.Records, l.rec.Load())
	}
	slices.SortFunc(v.Records, func(a, b *Record) int { return strings.Compare(a.InstanceID(), b.InstanceID()) })
	if c := r.filters.Load(); c != nil {
		for _, f := range c.filters {
			f.FilterService(&v)
		}
	}
	snap := &Snapshot{ServiceID: s.id, Records: v.Records, LogicInstances: v.LogicInstances, RouteRules: v.RouteRules}
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
		if snap := s.snapshot(r); len(snap.Records) > 0 {
			out = append(out, snap)
		}
	}
	slices.SortFunc(out, func(a, b *Snapshot) int { return strings.Compare(a.ServiceID, b.ServiceID) })
	return out, version
}
