package core

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// changedInstance is instance i of service "svc" at revision rev: its URL
// and metadata change with rev, so each revision is a new record.
func changedInstance(i, rev int) *Instance {
	id := "i" + strconv.Itoa(i)
	return &Instance{RegionID: "default", ServiceID: "svc", InstanceID: id, IP: "10.0.0.1", Port: 80,
		URL: fmt.Sprintf("http://%s/%d", id, rev), Status: StatusUp, Metadata: map[string]string{"rev": strconv.Itoa(rev)}}
}

// TestArenaCompactionBoundsMemory: re-registrations with new data and
// unregistrations leave dead records in the service's arena; compaction
// keeps the arena within about 1.5 times its live bytes and an eighth more,
// and records handed out before a compaction keep their content.
func TestArenaCompactionBoundsMemory(t *testing.T) {
	r := newTestRegistry(t, Config{Shards: 4})
	const n = 200
	var kept []*Record
	for rev := range 50 {
		for i := range n {
			var got *Record
			r.RegisterEach([]*Instance{changedInstance(i, rev)}, nil, func(rec *Record) { got = rec })
			if i == 7 {
				kept = append(kept, got)
			}
		}
		// Unregister a tenth and bring it back, so removals leave dead
		// blobs too.
		for i := 0; i < n; i += 10 {
			r.Unregister([]*Instance{changedInstance(i, rev)}, nil)
			r.Register([]*Instance{changedInstance(i, rev)}, nil)
		}
		s := r.svcs.find(r.hash.service("svc"), "svc")
		s.mu.Lock()
		live, size := s.arena.live, s.arena.size
		s.mu.Unlock()
		if want := live + live/2 + live/8 + int64(maxArenaRecord(n, rev)); size > want {
			t.Fatalf("unexpected arena of %d bytes for %d live bytes at revision %d; want at most %d", size, live, rev, want)
		}
		if st := r.Stats(); st.RecordBytes != size {
			t.Fatalf("unexpected Stats.RecordBytes %d; want the arena's %d", st.RecordBytes, size)
		}
	}
	if r.Stats().Compactions == 0 {
		t.Fatal("unexpected no compaction after 50 revisions of 200 instances")
	}
	for rev, rec := range kept {
		if want := fmt.Sprintf("http://i7/%d", rev); rec.URL() != want || rec.InstanceID() != "i7" {
			t.Fatalf("unexpected record kept from revision %d: url %q id %q; want %q", rev, rec.URL(), rec.InstanceID(), want)
		}
		if k, v := rec.Metadata(0); k != "rev" || v != strconv.Itoa(rev) {
			t.Fatalf("unexpected metadata %q=%q of the record kept from revision %d", k, v, rev)
		}
	}
	snap := r.Service("svc")
	for i, rec := range snap.Records.All() {
		if rec.ServiceID() != "svc" || rec.URL() != fmt.Sprintf("http://%s/49", rec.InstanceID()) {
			t.Fatalf("unexpected record %d of the snapshot: %s", i, rec.JSON())
		}
	}
	// Every instance leaves: the service and its arena go.
	for i := range n {
		r.Unregister([]*Instance{changedInstance(i, 49)}, nil)
	}
	if st := r.Stats(); st.RecordBytes != 0 || st.Services != 0 {
		t.Fatalf("unexpected stats after every instance left: %+v", st)
	}
}

// maxArenaRecord is four records' blobs: a chunk made by grow holds four at
// least, so its unused end can exceed its eighth of the live bytes by that.
func maxArenaRecord(n, rev int) int { return 4 * int(NewRecord(changedInstance(n, rev)).size) }

// TestHeartbeatOfARemovedLeaseFailsAfterReuse: a heartbeat that found a
// lease just before it was removed, and whose table slot and entry were
// reused by another registration, must not renew the new lease, and a
// reader holding the old lease's index and generation gets no record.
func TestHeartbeatOfARemovedLeaseFailsAfterReuse(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	var mu sync.Mutex
	r := newTestRegistry(t, Config{Shards: 1, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	a := testInstance("svc", "a")
	r.Register([]*Instance{a}, nil)
	h1, h2 := r.hash.instance(a.RegionID, a.ServiceID, a.InstanceID)
	sh := r.shardFor(h1)
	f := sh.find(h1, h2)
	if f.idx == 0 {
		t.Fatal("unexpected lease not found")
	}
	r.Unregister([]*Instance{a}, nil)
	// Another key whose probe starts at a's slot takes its tombstone (and
	// the freed entry).
	var b *Instance
	var bh1, bh2 uint64
	for i := 0; b == nil; i++ {
		x := testInstance("svc", "b"+strconv.Itoa(i))
		if xh1, xh2 := r.hash.instance(x.RegionID, x.ServiceID, x.InstanceID); xh1&f.t.mask == uint64(f.pos) {
			b, bh1, bh2 = x, xh1, xh2
		}
	}
	r.Register([]*Instance{b}, nil)
	fb := sh.find(bh1, bh2)
	if fb.idx != f.idx || fb.t != f.t || fb.pos != f.pos {
		t.Fatalf("unexpected entry %d, slot %d for the new lease; want the reused %d, %d", fb.idx, fb.pos, f.idx, f.pos)
	}
	if genOf(fb.w) == genOf(f.w) {
		t.Fatalf("unexpected slot generation %d kept across the removal", genOf(fb.w))
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if got := r.renewFrom(f.slot(), f.w, r.nowMs()); got != renewFailed {
		t.Fatalf("unexpected outcome %d renewing through a state word read before the lease was removed", got)
	}
	if st := fb.slot().state.Load(); st != fb.w {
		t.Fatalf("unexpected state %x of the new lease; want %x, untouched", st, fb.w)
	}
	e := sh.slab.entry(f.idx)
	if r.record(e, f.gen) != nil {
		t.Fatal("unexpected record of a removed lease")
	}
	if rec := r.record(e, fb.gen); rec == nil || rec.InstanceID() != b.InstanceID {
		t.Fatalf("unexpected record %v of the new lease; want %s", rec, b.InstanceID)
	}
}

// TestLeaseEntriesAreReused: churn does not grow a shard's slab past its
// peak number of leases.
func TestLeaseEntriesAreReused(t *testing.T) {
	r := newTestRegistry(t, Config{Shards: 2})
	const n = 1000
	peak := make([]int64, len(r.shards))
	for round := range 20 {
		for i := range n {
			r.Register([]*Instance{testInstance("svc", strconv.Itoa(round*n+i))}, nil)
		}
		for i := range r.shards {
			peak[i] = max(peak[i], r.shards[i].count.Load())
		}
		for i := range n {
			r.Unregister([]*Instance{testInstance("svc", strconv.Itoa(round*n+i))}, nil)
		}
	}
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		used := int64(sh.slab.next - 1)
		sh.mu.Unlock()
		if used != peak[i] {
			t.Fatalf("unexpected %d lease entries used in shard %d after churn; want its peak of %d leases", used, i, peak[i])
		}
	}
}

// TestChangeLogReleasesChunks: once its changes are dropped, the log keeps
// one chunk at most.
func TestChangeLogReleasesChunks(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := newTestRegistry(t, Config{ChangeLogAge: time.Minute, Now: clock})
	for i := range 10 {
		r.Register([]*Instance{largeInstance(i)}, nil)
	}
	r.log.mu.RLock()
	chunks := len(r.log.chunks)
	r.log.mu.RUnlock()
	if chunks < 2 {
		t.Fatalf("unexpected %d chunks for 10 large changes; want several", chunks)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	r.log.trim(r.nowMs())
	r.log.mu.RLock()
	defer r.log.mu.RUnlock()
	if r.log.n != 0 || len(r.log.chunks) > 1 || r.log.bytes != 0 {
		t.Fatalf("unexpected log after every change aged out: %d entries, %d chunks, %d bytes", r.log.n, len(r.log.chunks), r.log.bytes)
	}
}

// TestConcurrentChurnKeepsRecordsConsistent runs heartbeats (with the
// replicator's callback, which reads records without a lock), snapshot
// reads, re-registrations with new data (compactions) and unregistrations
// at once, under -race in CI. Every record anyone gets must be whole and
// belong to the right instance, and heartbeats of instances never removed
// must always succeed.
func TestConcurrentChurnKeepsRecordsConsistent(t *testing.T) {
	r := newTestRegistry(t, Config{Shards: 4})
	const stable, churned = 50, 50
	for i := range stable + churned {
		r.Register([]*Instance{changedInstance(i, 0)}, nil)
	}
	var stop atomic.Bool
	var bad atomic.Value
	fail := func(format string, args ...any) { bad.CompareAndSwap(nil, fmt.Sprintf(format, args...)) }
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // heartbeats of the stable instances, with records
		defer wg.Done()
		for k := 0; !stop.Load(); k++ {
			i := k % stable
			inst := changedInstance(i, 0)
			failed := r.HeartbeatEach([]*Instance{inst}, nil, func(rec *Record) {
				if rec.InstanceID() != inst.InstanceID || rec.ServiceID() != "svc" {
					fail("heartbeat of %s applied record %s", inst.InstanceID, rec.JSON())
				}
			})
			if len(failed) != 0 {
				fail("heartbeat of stable instance %s failed: %v", inst.InstanceID, failed[0].Err)
			}
		}
	}()
	go func() { // snapshot reads
		defer wg.Done()
		for !stop.Load() {
			snap := r.Service("svc")
			for _, rec := range snap.Records.All() {
				if rec.ServiceID() != "svc" || len(rec.JSON()) == 0 || rec.JSON()[len(rec.JSON())-1] != '}' {
					fail("snapshot record %q", rec.JSON())
				}
			}
		}
	}()
	go func() { // churn: new data for the stable ones, leave and come back for the others
		defer wg.Done()
		for rev := 1; !stop.Load(); rev++ {
			for i := range stable {
				r.Register([]*Instance{changedInstance(i, 0)}, nil) // identical: fast path
			}
			for i := stable; i < stable+churned; i++ {
				r.Register([]*Instance{changedInstance(i, rev)}, nil)
				if rev%3 == 0 {
					r.Unregister([]*Instance{changedInstance(i, rev)}, nil)
				}
			}
		}
	}()
	time.Sleep(500 * time.Millisecond) // how long the three race; the checks do not depend on it
	stop.Store(true)
	wg.Wait()
	if msg := bad.Load(); msg != nil {
		t.Fatal(msg)
	}
	if r.Stats().Compactions == 0 {
		t.Fatal("unexpected no compaction while records churned")
	}
}

// TestHeartbeatDuringReRegistrationOfAReusedEntry: a heartbeat of key K
// while K, just removed, is re-registered (reusing K's own entry) must not
// find K before its service and record are set: the lease enters the table
// only then. Here the re-registration is held in acquire (its index stripe
// is locked), holding the shard mutex, after the entry was reused.
func TestHeartbeatDuringReRegistrationOfAReusedEntry(t *testing.T) {
	r := newTestRegistry(t, Config{Shards: 2})
	k := testInstance("svc-s", "k")
	r.Register([]*Instance{k}, nil)
	h1, h2 := r.hash.instance(k.RegionID, k.ServiceID, k.InstanceID)
	sh := r.shardFor(h1)
	f0 := sh.find(h1, h2)
	r.Unregister([]*Instance{k}, nil)
	// A first instance of another service, on the other shard, takes the
	// dropped service's slot id.
	for i := 0; ; i++ {
		x := testInstance("svc-t", "x"+strconv.Itoa(i))
		if xh, _ := r.hash.instance(x.RegionID, x.ServiceID, x.InstanceID); r.shardFor(xh) != sh {
			r.Register([]*Instance{x}, nil)
			break
		}
	}
	st := &r.svcs.stripes[r.hash.service("svc-s")%serviceStripes]
	st.mu.Lock()
	done := make(chan struct{})
	go func() { r.Register([]*Instance{k}, nil); close(done) }()
	// The registration takes the shard mutex before acquire, and keeps it.
	for sh.mu.TryLock() {
		sh.mu.Unlock()
		runtime.Gosched()
	}
	e := sh.slab.entry(f0.idx)
	failed := r.Heartbeat([]*Instance{k}, nil)
	fk := sh.find(h1, h2)
	rec := r.record(e, f0.gen)
	st.mu.Unlock()
	<-done
	if len(failed) != 1 || !errors.Is(failed[0].Err, ErrNotFound) {
		t.Fatalf("unexpected heartbeat outcome %v while the registration waits to join its service; want not found", failed)
	}
	if fk.idx != 0 || rec != nil {
		t.Fatalf("unexpected lease %d or record %v while the registration waits to join its service", fk.idx, rec)
	}
	f := sh.find(h1, h2)
	if f.idx != f0.idx {
		t.Fatalf("unexpected entry %d after the re-registration; want %d", f.idx, f0.idx)
	}
	if rec := r.record(e, f.gen); rec == nil || rec.InstanceID() != "k" || rec.ServiceID() != "svc-s" {
		t.Fatalf("unexpected record %v of the re-registered lease", rec)
	}
}

// TestHeartbeatRecordsUnderServiceChurn (found by review): heartbeats of
// keys whose single-instance services are dropped and recreated, while
// other services take and free service slot ids, must only ever be applied
// with their own record. It ran 120 s at GOMAXPROCS=32 under -race to show
// 79 wrong records before the fix; CI runs it briefly.
func TestHeartbeatRecordsUnderServiceChurn(t *testing.T) {
	r := newTestRegistry(t, Config{Shards: 4})
	const keys = 8
	var stop atomic.Bool
	var bad atomic.Value
	var applied atomic.Int64
	fail := func(format string, args ...any) { bad.CompareAndSwap(nil, fmt.Sprintf(format, args...)) }
	var wg sync.WaitGroup
	for j := range keys {
		k := testInstance("svc-s"+strconv.Itoa(j), "k")
		r.Register([]*Instance{k}, nil)
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					r.HeartbeatEach([]*Instance{k}, nil, func(rec *Record) {
						applied.Add(1)
						if rec.InstanceID() != "k" || rec.ServiceID() != k.ServiceID {
							fail("heartbeat of %s/k applied %s", k.ServiceID, rec.JSON())
						}
					})
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				r.Unregister([]*Instance{k}, nil)
				r.Register([]*Instance{k}, nil)
			}
		}()
	}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				x := testInstance("svc-t"+strconv.Itoa(g)+"-"+strconv.Itoa(n%16), "x")
				r.Register([]*Instance{x}, nil)
				r.Unregister([]*Instance{x}, nil)
			}
		}()
	}
	time.Sleep(time.Second) // how long they race; the checks do not depend on it
	stop.Store(true)
	wg.Wait()
	if msg := bad.Load(); msg != nil {
		t.Fatal(msg)
	}
	if applied.Load() == 0 {
		t.Fatal("unexpected no heartbeat applied")
	}
}

// TestArenaBoundWhileShrinking: removals shrink the live bytes after a
// compaction left an eighth of headroom; until the next compaction the
// arena holds at most its live bytes, half as many dead ones (or
// compactSlack) and that headroom: about 1.7 times its live bytes.
func TestArenaBoundWhileShrinking(t *testing.T) {
	r := newTestRegistry(t, Config{Shards: 4})
	const n = 2000
	for rev := range 3 { // replacements: compactions with headroom
		for i := 0; i < n; i += 100 {
			batch := make([]*Instance, 0, 100)
			for k := i; k < i+100; k++ {
				batch = append(batch, changedInstance(k, rev))
			}
			r.Register(batch, nil)
		}
	}
	s := r.svcs.find(r.hash.service("svc"), "svc")
	for i := 0; i < n-10; i++ {
		r.Unregister([]*Instance{changedInstance(i, 2)}, nil)
		s.mu.Lock()
		live, size := s.arena.live, s.arena.size
		s.mu.Unlock()
		if want := live + max(live/2, compactSlack) + 3*live/16 + int64(maxArenaRecord(n, 2)); size > want {
			t.Fatalf("unexpected arena of %d bytes for %d live bytes after %d removals; want at most %d", size, live, i+1, want)
		}
	}
}

// TestArenaCompactionsSpread: services registered together and churned at
// the same rate must not compact in step (each draws its share of dead
// bytes at random at every compaction); in step, the registry's record
// bytes, and the process's memory with them, swing in waves.
func TestArenaCompactionsSpread(t *testing.T) {
	r := newTestRegistry(t, Config{Shards: 8})
	const services, perService, perRound, rounds = 64, 200, 10, 60
	inst := func(s, i, rev int) *Instance {
		in := changedInstance(i, rev)
		in.ServiceID = "svc-" + strconv.Itoa(s)
		return in
	}
	insts := make([]*Instance, 0, services*perService)
	for s := range services {
		for i := range perService {
			insts = append(insts, inst(s, i, 0))
		}
	}
	r.Register(insts, nil)
	var perRoundCompactions []int64
	for round := 1; round <= rounds; round++ {
		before := r.Stats().Compactions
		batch := insts[:0]
		for s := range services {
			for k := range perRound {
				batch = append(batch, inst(s, (round*perRound+k)%perService, round))
			}
		}
		if failed := r.Register(batch, nil); len(failed) != 0 {
			t.Fatalf("unexpected failure: %v", failed[0].Err)
		}
		perRoundCompactions = append(perRoundCompactions, r.Stats().Compactions-before)
	}
	var total, most int64
	for _, n := range perRoundCompactions {
		total += n
		most = max(most, n)
	}
	// Each round replaces 5 % of every service's records: a share of a
	// quarter to a half is reached in 5 to 10 rounds, so every service
	// compacts several times; in step, each compaction round would hold
	// all 64 services.
	if total < 3*services {
		t.Fatalf("unexpected %d compactions in %d rounds of %d services; want at least %d (%v)", total, rounds, services, 3*services, perRoundCompactions)
	}
	if most > services/2 {
		t.Fatalf("unexpected %d of %d services compacting in one round; want them spread (%v)", most, services, perRoundCompactions)
	}
}
