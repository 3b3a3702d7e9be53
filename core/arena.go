package core

import (
	"iter"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"unsafe"
)

// Arena chunk sizes. A service's first chunk holds exactly its first record,
// so that the many services of one instance waste nothing; later chunks
// hold four records at least and an eighth of the service's live bytes, up
// to maxArenaChunk, so the unused end of the last chunk is at most about an
// eighth of the live bytes. A record larger than a chunk gets a chunk of
// its own size.
const (
	maxArenaChunk = 1 << 20
	// A service's arena is compacted when its dead bytes exceed both a share
	// of its live bytes (between compactShareMin and compactShareMax 64ths,
	// drawn at random at each compaction) and compactSlack, or when it has
	// more than compactChunks chunks (see needsCompaction).
	compactSlack    = 4 << 10
	compactChunks   = 8
	compactShareMin = 16 // a quarter
	compactShareMax = 32 // a half
)

// recordArena holds the record blobs of one service's members in chunks of
// bytes: pointer-free allocations the garbage collector marks without
// scanning. Blobs are appended and never written again, so a *Record stays
// valid (immutable) for as long as anyone holds it; the chunk it points
// into stays alive as long as that.
//
// A handle locates a blob: the chunk's id in the high 40 bits, the offset in
// the low 24 (chunks are at most maxArenaChunk, or one record, long). Chunk
// ids come from one counter for every arena and are never reused, so a
// stale handle (of a lease removed meanwhile, read by a lock-free reader
// through a service slot id reused by another service) never resolves in
// another arena, where it could read bytes being written.
//
// Space of replaced and removed blobs is reclaimed by compaction: when the
// dead bytes exceed a share of the live bytes (and compactSlack), or the
// chunks are many, the live blobs are copied into new chunks, the last with
// room for an eighth more (when that is compactSlack at least), and the old
// chunks are dropped from the directory; the collector frees them once no
// snapshot, change or caller holds a record in them. So an arena holds its
// live bytes, at most half as many dead ones (or compactSlack), and its
// last chunk's unused end, room for an eighth of the live bytes it had when
// that chunk was made: about 1.7 times its live bytes at most (removals
// that shrink the live bytes by a third after a compaction make the eighth
// 3/16; TestArenaBoundWhileShrinking). A compaction for dead bytes copies
// at most four bytes per dead byte it reclaims.
//
// The share is drawn at random between a quarter and a half at every
// compaction, so services under the same churn do not all compact at once:
// registered together (seeding) and replaced at the same rate, they would
// otherwise grow and compact in step, and the registry's live bytes would
// swing by a quarter of its record bytes in waves of a few minutes, which
// the collector's heap goal, and so the process's memory, follows. The
// headroom of the last chunk spares the next registrations a new chunk.
//
// Writers hold the service's mutex. Readers without it (heartbeats, the
// register fast path) load a member's handle, then the directory, and retry
// when the directory does not hold the handle's chunk (see resolve).
type recordArena struct {
	dir  atomic.Pointer[arenaDir]
	fill int   // bytes used of the last chunk
	size int64 // bytes of the directory's chunks
	live int64 // bytes of member blobs
	dead int64 // bytes of replaced or removed blobs and abandoned chunk tails
	// share is the dead bytes, in 64ths of the live ones, past which the
	// arena is compacted; 0 until the first chunk draws one.
	share int64
}

// drawShare picks the compaction share of the arena's next cycle.
func (a *recordArena) drawShare() {
	a.share = compactShareMin + rand.Int64N(compactShareMax-compactShareMin+1)
}

// arenaDir is an immutable directory of an arena's chunks: chunks[i] has id
// ids[i], ascending. byAddr lists the chunks by address, for ref.
type arenaDir struct {
	ids    []uint64
	chunks [][]byte
	byAddr []chunkAddr
}

// chunkIDs numbers the chunks of every arena.
var chunkIDs atomic.Uint64

const (
	handleOffBits = 24
	handleOffMask = 1<<handleOffBits - 1
)

func handle(id uint64, off int) uint64 { return id<<handleOffBits | uint64(off) }

type chunkAddr struct {
	lo, hi uintptr
	idx    uint32
}

func newArenaDir(ids []uint64, chunks [][]byte) *arenaDir {
	d := &arenaDir{ids: ids, chunks: chunks, byAddr: make([]chunkAddr, len(chunks))}
	for i, c := range chunks {
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(c)))
		d.byAddr[i] = chunkAddr{lo: lo, hi: lo + uintptr(len(c)), idx: uint32(i)}
	}
	slices.SortFunc(d.byAddr, func(a, b chunkAddr) int {
		if a.lo < b.lo {
			return -1
		}
		return 1
	})
	return d
}

// resolve returns the record of handle h, or nil when d does not hold its
// chunk or h does not locate a whole blob in it.
func (d *arenaDir) resolve(h uint64) *Record {
	if d == nil {
		return nil
	}
	i, ok := slices.BinarySearch(d.ids, h>>handleOffBits)
	if !ok {
		return nil
	}
	c := d.chunks[i]
	off := int(h & handleOffMask)
	if off+recordHeader > len(c) {
		return nil
	}
	rec := recordAt(c[off:])
	if off+int(rec.size) > len(c) || rec.size < uint32(recordHeader) {
		return nil
	}
	return rec
}

// ref returns the snapshot reference of rec (its chunk's index in d and
// offset), or false when rec is not in d.
func (d *arenaDir) ref(rec *Record) (uint64, bool) {
	p := uintptr(unsafe.Pointer(rec))
	i, _ := slices.BinarySearchFunc(d.byAddr, p, func(c chunkAddr, p uintptr) int {
		if c.hi <= p {
			return -1
		}
		if c.lo > p {
			return 1
		}
		return 0
	})
	if i == len(d.byAddr) || p < d.byAddr[i].lo || p >= d.byAddr[i].hi {
		return 0, false
	}
	c := d.byAddr[i]
	return uint64(c.idx)<<32 | uint64(p-c.lo), true
}

// at returns the record of snapshot reference ref.
func (d *arenaDir) at(ref uint64) *Record {
	return recordAt(d.chunks[ref>>32][uint32(ref):])
}

// add copies blob into the arena and returns its handle. The caller holds
// the service's mutex.
func (a *recordArena) add(blob []byte) uint64 {
	n := len(blob)
	d := a.dir.Load()
	if d == nil || a.fill+n > len(d.chunks[len(d.chunks)-1]) {
		d = a.grow(d, n)
	}
	last := len(d.chunks) - 1
	off := a.fill
	copy(d.chunks[last][off:], blob)
	a.fill += n
	a.live += int64(n)
	return handle(d.ids[last], off)
}

// grow publishes a directory with a new last chunk of room for n bytes at
// least, and returns it.
func (a *recordArena) grow(d *arenaDir, n int) *arenaDir {
	size := n // the first record of a service: most services with one instance never grow
	if d != nil {
		size = max(n, min(maxArenaChunk, max(4*n, int(a.live/8))))
	}
	var nd *arenaDir
	if d == nil {
		nd = newArenaDir([]uint64{chunkIDs.Add(1)}, [][]byte{alignedBytes(size)})
		a.drawShare()
	} else {
		a.dead += int64(len(d.chunks[len(d.chunks)-1]) - a.fill)
		nd = newArenaDir(append(slices.Clip(d.ids), chunkIDs.Add(1)), append(slices.Clip(d.chunks), alignedBytes(size)))
	}
	a.fill = 0
	a.size += int64(size)
	a.dir.Store(nd)
	return nd
}

// free counts the blob of rec, replaced or removed, as dead. The caller
// holds the service's mutex and calls compact afterwards.
func (a *recordArena) free(rec *Record) {
	a.live -= int64(rec.size)
	a.dead += int64(rec.size)
}

// needsCompaction reports whether compact would reclaim enough to pay: dead
// bytes over the arena's share of the live ones (a quarter to a half), or
// more chunks than compactChunks (and one per maxArenaChunk of live bytes).
// Either takes adding or freeing bytes of the order of the live ones since
// the last compaction, so compaction costs O(1) per byte added or freed.
func (a *recordArena) needsCompaction() bool {
	if 64*a.dead > a.share*a.live && a.dead > compactSlack {
		return true
	}
	d := a.dir.Load()
	return d != nil && len(d.chunks) > compactChunks+int(a.live/maxArenaChunk)
}

// tail returns the unused bytes of the last chunk.
func (a *recordArena) tail() int64 {
	d := a.dir.Load()
	if d == nil {
		return 0
	}
	return int64(len(d.chunks[len(d.chunks)-1]) - a.fill)
}

// compact copies the blobs of the members into new chunks, the last with
// room for an eighth of the live bytes more when that is compactSlack at
// least, and drops the old chunks. members yields each member's handle
// word, which compact reads and rewrites; the caller holds the service's
// mutex, under which member
// handles change. Readers that loaded an old handle find its chunk in the
// directory until every handle is rewritten; one that loads the final
// directory with an old handle reloads the handle and gets the new one.
func (a *recordArena) compact(members iter.Seq[*atomic.Uint64]) {
	old := a.dir.Load()
	if old == nil {
		return
	}
	var fresh [][]byte
	var freshIDs []uint64
	fill, live := 0, int64(0)
	type move struct {
		p *atomic.Uint64
		h uint64
	}
	var moves []move
	remaining, headroom := a.live, a.live/8
	if headroom < compactSlack {
		headroom = 0 // a small service: most add a record or two, if any
	}
	for p := range members {
		rec := old.resolve(p.Load())
		n := int(rec.size)
		if len(fresh) == 0 || fill+n > len(fresh[len(fresh)-1]) {
			fresh = append(fresh, alignedBytes(max(n, min(maxArenaChunk, int(remaining+headroom)))))
			freshIDs = append(freshIDs, chunkIDs.Add(1))
			fill = 0
		}
		copy(fresh[len(fresh)-1][fill:], rec.blob())
		moves = append(moves, move{p, handle(freshIDs[len(fresh)-1], fill)})
		fill += n
		live += int64(n)
		remaining -= int64(n)
	}
	if len(fresh) == 0 {
		a.dir.Store(nil)
		a.fill, a.size, a.live, a.dead = 0, 0, 0, 0
		return
	}
	// Publish the old and new chunks together, rewrite the handles, then
	// publish the new chunks alone.
	a.dir.Store(newArenaDir(append(slices.Clip(old.ids), freshIDs...), append(slices.Clip(old.chunks), fresh...)))
	for _, m := range moves {
		m.p.Store(m.h)
	}
	a.dir.Store(newArenaDir(freshIDs, fresh))
	a.fill, a.live, a.dead = fill, live, 0
	a.drawShare()
	a.size = 0
	for _, c := range fresh {
		a.size += int64(len(c))
	}
}

// RecordList is the instances of a snapshot. It references its records by
// chunk and offset in the arena directory the snapshot was built from, so
// the collector sees a few pointers per snapshot rather than one per
// instance. The zero value is an empty list.
type RecordList struct {
	dir   *arenaDir
	refs  []uint64  // a reference into dir, or otherRef|index into other
	other []*Record // records not in dir (a filter may add any record)
}

const otherRef = 1 << 63

// Len returns the number of records.
func (l *RecordList) Len() int { return len(l.refs) }

// At returns record i. It does not allocate.
func (l *RecordList) At(i int) *Record {
	ref := l.refs[i]
	if ref&otherRef != 0 {
		return l.other[ref&^otherRef]
	}
	return l.dir.at(ref)
}

// All yields the records in order.
func (l *RecordList) All() iter.Seq2[int, *Record] {
	return func(yield func(int, *Record) bool) {
		for i := range l.refs {
			if !yield(i, l.At(i)) {
				return
			}
		}
	}
}

// Slice returns the records as a new slice the caller owns.
func (l *RecordList) Slice() []*Record {
	out := make([]*Record, len(l.refs))
	for i := range l.refs {
		out[i] = l.At(i)
	}
	return out
}

// newRecordList references recs, which are in d or not.
func newRecordList(d *arenaDir, recs []*Record) RecordList {
	l := RecordList{dir: d, refs: make([]uint64, len(recs))}
	for i, rec := range recs {
		if d != nil {
			if ref, ok := d.ref(rec); ok {
				l.refs[i] = ref
				continue
			}
		}
		l.refs[i] = otherRef | uint64(len(l.other))
		l.other = append(l.other, rec)
	}
	return l
}
