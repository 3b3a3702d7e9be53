package core

import (
	"runtime"
	"sync/atomic"
	"time"
)

// sweepChunk bounds how many leases the sweeper examines per acquisition of
// a shard lock, so eviction never stalls requests behind a long scan.
const sweepChunk = 256

// maxWheelSlots caps a shard's wheel: TTL/tick slots at most 512 (128 s at
// the default 250 ms tick). A lease whose deadline lies past the horizon is
// queued at the horizon and re-queued from there (insert clamps), so a long
// TTL costs a re-examination every horizon instead of a ring of slice
// headers the collector scans: a 30-minute TTL asked for 8,192 slots a
// shard, 25 MB over 128 shards.
const maxWheelSlots = 512

// wheel is a shard's expiry queue: a ring of buckets, one per tick, holding
// the leases whose deadline falls in that tick. A heartbeat only stores a
// timestamp; when a bucket comes due, each lease in it is either evicted or
// moved to the bucket of its real deadline. So every lease is examined about
// once per TTL (once per horizon, maxWheelSlots ticks, when the TTL is
// longer), and heartbeats never touch the wheel.
//
// Buckets hold gen<<32 | entry index, pointer-free: an entry removed (and
// perhaps reused by another lease) since it was queued has another
// generation, and the sweep skips it.
type wheel struct {
	slots  [][]uint64
	spare  []uint64
	mask   int64
	tickMs int64
	last   int64 // last tick processed
}

func (w *wheel) init(minSlots int, tickMs, now int64) {
	n := 1
	for n < minSlots {
		n <<= 1
	}
	w.slots = make([][]uint64, n)
	w.mask = int64(n - 1)
	w.tickMs = tickMs
	w.last = now/tickMs - 1
}

// wheelRef is the wheel's reference to the lease idx of generation gen.
func wheelRef(gen, idx uint32) uint64 { return uint64(gen)<<32 | uint64(idx) }

// insert queues the lease idx of generation gen in the bucket of deadline,
// clamped to the wheel's horizon; a lease queued early is simply re-queued
// when its bucket comes due.
func (w *wheel) insert(e *leaseEntry, idx, gen uint32, deadline int64) {
	t := deadline / w.tickMs
	if t <= w.last {
		t = w.last + 1
	}
	if t-w.last > w.mask {
		t = w.last + w.mask
	}
	i := t & w.mask
	e.wslot, e.wpos = int16(i), int32(len(w.slots[i]))
	w.slots[i] = append(w.slots[i], wheelRef(gen, idx))
}

// remove unqueues the lease idx, which is being removed from the registry,
// so that its bucket does not keep its index: the entry is reused by the
// next registration. A lease in a bucket being swept is no longer in the
// wheel; the sweep skips it by its generation.
func (w *wheel) remove(e *leaseEntry, idx, gen uint32) {
	if s := w.slots[e.wslot]; int(e.wpos) < len(s) && s[e.wpos] == wheelRef(gen, idx) {
		s[e.wpos] = 0
	}
}

// sweep processes every bucket whose tick has fully passed. It evicts expired
// leases when evict is true, holds them otherwise, and re-queues the others.
// It returns the number of leases evicted.
func (r *Registry) sweep(sh *shard, now int64, evict bool) (evicted int64) {
	w := &sh.wheel
	nowTick := now / w.tickMs
	sh.mu.Lock()
	first := max(w.last+1, nowTick-w.mask-1)
	sh.mu.Unlock()
	for t := first; t < nowTick; t++ {
		sh.mu.Lock()
		i := t & w.mask
		due := w.slots[i]
		w.slots[i] = w.spare[:0]
		w.spare = nil
		w.last = t
		sh.mu.Unlock()

		for start := 0; start < len(due); start += sweepChunk {
			end := min(start+sweepChunk, len(due))
			sh.mu.Lock()
			for _, ref := range due[start:end] {
				if ref == 0 {
					continue
				}
				idx, gen := uint32(ref), uint32(ref>>32)
				e := sh.slab.entry(idx)
				if e.gen.Load() != gen {
					continue // removed since it was queued
				}
				deadline := r.renewedOf(sh.slotLocked(e).state.Load()) + r.ttlMs
				if deadline > now {
					w.insert(e, idx, gen, deadline)
					continue
				}
				if evict {
					r.removeLocked(sh, idx, now)
					evicted++
				} else {
					sh.holdLocked(e)
					w.insert(e, idx, gen, now+requeueProtectedLeases.Milliseconds())
				}
			}
			sh.mu.Unlock()
			// Let request goroutines run between chunks: with one P the
			// sweep would otherwise hold the CPU until preempted (10 ms).
			runtime.Gosched()
		}
		clear(due)
		sh.mu.Lock()
		if w.spare == nil {
			w.spare = due[:0]
		}
		sh.mu.Unlock()
	}
	return evicted
}

// tick is one round of the eviction goroutine (Registry.every, every
// EvictionTick): eviction, self-preservation and change-log trimming.
func (r *Registry) tick(now int64) {
	var renewals, instances, held int64
	for i := range r.shards {
		renewals += r.shards[i].renewals.Load()
		instances += r.shards[i].count.Load()
		held += r.shards[i].held.Load()
	}
	evict := r.sp.update(renewals, instances, held, now)
	var evicted int64
	for i := range r.shards {
		evicted += r.sweep(&r.shards[i], now, evict)
	}
	r.evictions.Add(evicted)
	r.log.trim(now)
}

// selfPreservation counts renewals over a sliding window and decides whether
// expired leases may be evicted (contract section 6). Only the eviction
// goroutine writes it; the atomics publish its state to Stats.
//
// The peak decays to the current count PeakDecay after it was set, but only
// while eviction is allowed (Java resets the peak only while safe): a peak
// that decayed during an outage would end the outage's own protection and
// evict everything it kept. So protection lasts as long as the outage.
// The one exception is protection with nothing to protect (see settled).
type selfPreservation struct {
	cfg       SelfPreservationConfig
	slots     []int64 // renewals per tick over the window, a ring
	idx       int
	lastTotal int64
	lastTick  int64 // tick (epoch ms / tickMs) the window was last advanced to
	tickMs    int64
	decayMs   int64
	// settleMs, quietSince and quietCur: see settled.
	settleMs   int64
	quietSince int64
	quietCur   int64

	current atomic.Int64 // renewals in the window
	peak    atomic.Int64
	peakAt  atomic.Int64 // epoch ms the peak was last set
	active  atomic.Bool  // eviction is suspended
}

func (sp *selfPreservation) init(cfg SelfPreservationConfig, ttl, tick time.Duration, now int64) {
	sp.cfg = cfg
	sp.slots = make([]int64, max(1, int(cfg.Window/tick)))
	sp.tickMs = tick.Milliseconds()
	sp.lastTick = now / sp.tickMs
	sp.decayMs = cfg.PeakDecay.Milliseconds()
	// A lease that stops renewing is held at most two ticks after its
	// deadline, and update sees the count one tick later.
	sp.settleMs = ttl.Milliseconds() + 4*sp.tickMs
	sp.quietSince = now
	sp.peakAt.Store(now)
}

// update folds the renewal total into the window and reports whether
// expired leases may be evicted now. instances and held are the numbers of
// leases and of expired leases kept by self-preservation.
func (sp *selfPreservation) update(total, instances, held, now int64) bool {
	cur := sp.count(total, now)
	sp.current.Store(cur)
	peak := sp.peak.Load()
	if cur > peak {
		peak = cur
		sp.peak.Store(peak)
		sp.peakAt.Store(now)
	}
	protect := sp.protects(cur, peak)
	if sp.settled(protect, cur, instances, held, now) && now-sp.peakAt.Load() >= sp.decayMs {
		peak = cur
		sp.peak.Store(peak)
		sp.peakAt.Store(now)
		protect = sp.protects(cur, peak)
	}
	sp.active.Store(protect)
	return !protect
}

// protects reports whether cur renewals against peak suspend eviction.
func (sp *selfPreservation) protects(cur, peak int64) bool {
	return !sp.cfg.Disabled && peak >= sp.cfg.MinPeak && float64(cur) < sp.cfg.Threshold*float64(peak)
}

// count folds the renewal total into the window and returns the renewals in
// it. The window advances by the ticks that really passed, not by one per
// call, and the renewals since the last call are spread evenly over them:
// the ticker drops ticks when a round runs long, and a window that spanned
// more than Window, or kept a stall's renewals in one slot, would overstate
// renewals and end protection for the round that evicts. After a pause or a
// clock step longer than the window, the window holds only its share of
// the renewals. A call that comes early, or a clock stepped back, advances
// it by one tick, as before.
func (sp *selfPreservation) count(total, now int64) int64 {
	delta := total - sp.lastTotal
	sp.lastTotal = total
	steps := max(1, now/sp.tickMs-sp.lastTick)
	sp.lastTick += steps
	per := delta / steps
	for range min(steps, int64(len(sp.slots))) {
		sp.idx = (sp.idx + 1) % len(sp.slots)
		sp.slots[sp.idx] = per
	}
	sp.slots[sp.idx] += delta - per*steps
	var cur int64
	for _, v := range sp.slots {
		cur += v
	}
	return cur
}

// settled reports whether the peak may decay now. While eviction is allowed
// it may: the peak follows a fleet that shrinks slowly. While protection is
// active it may not, with one exception, so that a fleet that shrank on
// purpose (instances unregistered) is not protected for ever, with every
// later crash kept: when for settleMs (a lease TTL and more) renewals have
// held steady (not fallen under Threshold of their level then) and fewer
// than 1-Threshold of the leases have expired, the renewals missing are
// those of instances that left, not of instances that went silent (those
// would be held by now), and there is no outage to protect.
func (sp *selfPreservation) settled(protect bool, cur, instances, held, now int64) bool {
	few := float64(held) < (1-sp.cfg.Threshold)*float64(instances)
	if !protect || !few || float64(cur) < sp.cfg.Threshold*float64(sp.quietCur) {
		sp.quietSince, sp.quietCur = now, cur
		return !protect
	}
	return now-sp.quietSince >= sp.settleMs
}
