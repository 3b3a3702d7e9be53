// Package core is the Artemis registry: instances and their leases,
// discovery snapshots, versions and the change log, self-preservation and
// statistics. It uses the standard library only (no HTTP, Hertz or sonic; a
// test enforces this) and never reads the clock except through Config.Now.
//
// # Data model
//
// An Instance is identified by its InstanceKey (regionId, serviceId,
// instanceId), compared ASCII-case-insensitively. The registry stores an
// immutable, compact Record per instance inside a lease. Leases live in a
// fixed power-of-two array of shards keyed by a seeded hash of the key; each
// shard has its own RWMutex. Services are indexed separately (64 stripes) and
// each service keeps its member leases and an immutable Snapshot.
//
// # Locks
//
//   - shard.mu guards a shard's lease map, collision chains and expiry wheel.
//     Heartbeats take it shared and store a timestamp atomically.
//   - service.mu guards a service's members and their shown flags, is held
//     when a member's record is replaced, and serialises snapshot rebuilds
//     and the service's ChangeNew, ChangeDelete and ChangeReload appends.
//   - the service index stripes guard the id -> service maps.
//   - changeLog.mu guards the change ring and its byte count.
//
// Lock order: shard.mu, then service.mu, then an index stripe or changeLog.mu.
// No lock is held while calling back into user code except Filters, which
// run under service.mu and must not call the Registry.
//
// # Lock-free paths
//
// Registry.Service returns a Snapshot through an atomic pointer: no lock, no
// allocation while the service is unchanged. A change marks the snapshot
// stale and the next reader rebuilds it once (filters applied, JSON encoded).
// Registry.Heartbeat takes one shard read lock per instance, allocates
// nothing and never touches a snapshot.
//
// # Leases
//
// Each shard has an expiry wheel of buckets one EvictionTick wide. A lease is
// queued at its deadline; when its bucket comes due the eviction goroutine
// either evicts it (if it really expired and self-preservation allows) or
// re-queues it at its current deadline, so a lease costs O(1) work per TTL.
// A removed lease leaves its bucket at once, so the wheel never keeps a
// removed lease's record alive.
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
