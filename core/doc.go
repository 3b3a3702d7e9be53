// Package core is the Artemis registry: instances and their leases,
// discovery snapshots, versions and the change log, self-preservation and
// statistics. It uses the standard library only (no HTTP, Hertz or sonic; a
// test enforces this) and never reads the clock except through Config.Now.
//
// # Data model
//
// An Instance is identified by its InstanceKey (regionId, serviceId,
// instanceId), compared ASCII-case-insensitively. The registry stores an
// immutable, compact Record per instance. Leases live in a fixed
// power-of-two array of shards keyed by a seeded hash of the key; each
// shard has its own mutex. Services are indexed separately (64 stripes) and
// each service keeps its member leases, their records and an immutable
// Snapshot.
//
// # Memory layout: a heap the collector does not scan
//
// A garbage collection cycle costs in proportion to the objects and
// pointers it must mark, not to the bytes. So the registry's steady-state
// heap is nearly pointer-free: a million instances are a few hundred
// thousand large allocations without pointers, which the collector marks
// without reading, instead of four million small objects full of pointers
// (BenchmarkGCWithInstances measures a forced collection).
//
//   - A lease is an entry in its shard's slab (index.go): chunks of
//     pointer-free entries, named by index. Entries hold half the key hash
//     (h1), the service's slot id, the record's handle, a generation and
//     the position of the lease's table slot. A shard's lease table is
//     open addressing over 16-byte slots, each the other half of the key
//     hash (h2) and the lease's state word (last renewal, live and moved
//     bits, the slot's generation), with the lease indexes in a parallel
//     array: a heartbeat reads and renews one slot, one random memory
//     read. The expiry wheel holds generation and index.
//   - A record is one blob of bytes (record.go): header, metadata spans,
//     JSON, unescaped values. A service's records live in its arena
//     (arena.go), chunks of bytes, and a lease names its record by handle
//     (chunk id and offset). A *Record handed out points into its chunk and
//     keeps it alive; chunks are never written again once a blob is in
//     them, so records stay immutable.
//   - A service's members are lease references (shard and index).
//   - A Snapshot's RecordList references its records by chunk and offset
//     in the arena directory it was built from (a few pointers per
//     service).
//   - The change log (changelog.go) keeps each change's bytes (a copy of
//     the record, its encoded InstanceChange, the service id) in a FIFO of
//     byte chunks and a pointer-free ring; ChangesSince materialises Change
//     values pointing into them, once per call.
//
// Reclaiming space:
//
//   - Lease entries of removed leases go to their shard's free list and are
//     reused by the next registration on that shard; a shard's slab keeps
//     the entries of its peak number of leases (48 bytes each). Removal
//     leaves a tombstone in the lease's table slot with the slot's
//     generation bumped, so a lock-free heartbeat that found the lease
//     before the removal fails its compare-and-swap instead of renewing a
//     lease that reuses the slot, and bumps the entry's generation, so a
//     reader holding the index (wheel, record lookups) skips it. A table
//     is rehashed into a new one (twice its live leases) when live leases
//     and tombstones fill three quarters of it; the rehash marks each slot
//     it copies, so a concurrent renewal is copied or retried, never lost.
//   - A service's arena counts its live bytes and its dead ones (blobs of
//     replaced or removed records, unused chunk ends). When the dead bytes
//     exceed a share of the live ones and 4 KiB, or the chunks are more
//     than 8 (and one per MiB of live bytes), the live blobs are copied
//     into new chunks, the last with room for an eighth more (from 32 KiB
//     of live bytes), and the old chunks dropped: an arena holds its live
//     bytes, at most half as many dead ones (or 4 KiB), and its last
//     chunk's unused end (an eighth of the live bytes it had when the chunk
//     was made), so about 1.7 times its live bytes at most; a compaction
//     for dead bytes copies at most four bytes per dead byte it reclaims. The
//     share is drawn at random between a quarter and a half at each
//     compaction, so services churned at the same rate (and registered
//     together) do not compact in step: in step, the registry's record
//     bytes, and with them the collector's heap goal and the process's
//     memory, swing in waves. The collector frees a dropped chunk once no
//     snapshot, change or caller holds a record in it. Compactions are
//     counted in Stats.Compactions.
//   - A service with no member left is dropped with its arena.
//   - The change log releases a chunk when its last change is dropped; its
//     bound (Config.ChangeLogBytes) counts every change's bytes and every
//     chunk's unused end.
//
// # Locks
//
//   - shard.mu guards a shard's slab, lease table and expiry wheel. Writers
//     hold it; heartbeats take no lock (see Lock-free paths) but wait for
//     it while a rehash it guards is copying their slot.
//   - service.mu guards a service's members, their shown flags and record
//     handles, and its arena; it serialises snapshot rebuilds and the
//     service's ChangeNew, ChangeDelete and ChangeReload appends.
//   - the service index stripes guard the id -> service maps.
//   - changeLog.mu guards the change ring, its chunks and its byte count.
//
// Lock order: shard.mu, then service.mu, then an index stripe or changeLog.mu.
// No lock is held while calling back into user code except Filters, which
// run under service.mu and must not call the Registry. The status API reads
// a member's state word holding only service.mu; it waits for a rehash in
// progress (which takes no service mutex), never for a registration or a
// removal (which may wait for that service.mu) to finish: it reports a
// lease whose slot is emptied, or not yet filled, as gone (shard.stateOf).
//
// # Lock-free paths
//
// Registry.Service returns a Snapshot through an atomic pointer: no lock, no
// allocation while the service is unchanged. A change marks the snapshot
// stale and the next reader rebuilds it once (filters applied).
// Registry.Heartbeat finds the lease in the shard's table without a lock,
// renews it with one compare-and-swap of its state word in the slot,
// allocates nothing and never touches a snapshot. (A heartbeat that meets a
// slot a rehash has copied waits for the shard mutex, which the rehash holds
// until the new table is published, and probes again.) A replicated
// heartbeat also reads the lease's index and generation, before its
// compare-and-swap, so a lease removed since gets no record. A reader that
// needs a lease's record without a lock (a replicated heartbeat, the
// register fast path) loads
// the record's handle, then the arena's directory, and retries when the
// directory no longer holds the handle's chunk: a compaction rewrites every
// handle before it drops the old chunks.
//
// # Leases
//
// Each shard has an expiry wheel of buckets one EvictionTick wide. A lease is
// queued at its deadline; when its bucket comes due the eviction goroutine
// either evicts it (if it really expired and self-preservation allows) or
// re-queues it at its current deadline, so a lease costs O(1) work per TTL.
// A removed lease leaves its bucket at once; a bucket being swept skips an
// entry whose generation changed since it was queued.
// The sweep takes a shard lock for at most sweepChunk leases at a time.
//
// # Versions and the change stream
//
// Every change (new, delete, change, reload) gets the next version and
// enters a change log bounded by count, by bytes and by age
// (Config.ChangeLogSize, ChangeLogBytes, ChangeLogAge; the oldest changes
// go first). The log
// answers deltas (ChangesSince) and, with Wait, is the one stream that push
// and replication consume; a consumer whose version fell off the log gets
// ErrVersionUnavailable and reloads everything. Versions start at the
// node's start time in microseconds.
//
// # Filters and the change stream
//
// Filters shape snapshots when they are rebuilt; a RecordFilter also says,
// record by record, which instances it hides, and the change log follows
// it, so that deltas and push never announce an instance discovery hides.
// Each lease has a shown flag, guarded by service.mu: whether the log's
// last word on the instance was ChangeNew. Every ChangeNew or ChangeDelete
// of an instance is appended under its service's lock, decided there from
// the instance's current record and the RecordFilters' answer at that
// moment, and sets the flag: a register of a hidden instance logs nothing,
// nor does its unregister or eviction; new data that hides an announced
// instance logs its delete. When a filter's state changes, its owner calls
// Registry.Refilter for the services it touches: under each one's lock it
// asks the RecordFilters about every member (O(instances of the service))
// and logs a delete for each announced one now hidden and a new for each
// unannounced one now visible. So however a Refilter and registrations
// interleave, the log matches the filters once the last Refilter is done.
// Registry.Reload logs a ChangeReload, which tells subscribers to re-fetch
// a service whose route rules or logical instances changed. None of this
// touches the read path: snapshots stay lock-free and allocation-free.
//
// # Self-preservation
//
// Renewals are counted over a sliding window of wall time. While they are
// under Threshold of their peak, expired leases are held, not evicted. The
// peak decays after PeakDecay only while eviction is allowed, so protection
// lasts as long as the outage; see Config.SelfPreservation.
//
// # Ownership
//
// Records, Snapshots and Changes returned by the registry are shared and
// immutable: callers may keep them but must not modify them. Slices passed to
// callbacks (Leases) are reused after the callback returns. Instances passed
// in are read during the call and never retained.
package core
