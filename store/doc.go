// Package store keeps Artemis management state (contract section 9):
// instance, server, zone and group operations, groups, group tags, group
// members, logical service instances, route rules and their group bindings,
// and the operation log. One interface, Store, has three implementations:
//
//   - SQL over SQLite (OpenSQLite; pure Go, modernc.org/sqlite), the default,
//   - SQL over PostgreSQL (OpenPostgres; pgx), for nodes sharing one database,
//   - Memory, for tests and `--store memory`.
//
// Open picks one from a DSN: "memory", "sqlite:PATH", "postgres://…".
//
// # Model
//
// Every entity is a Go struct (Group, RouteRule, InstanceOperation, …) with
// a server-given int64 id and a natural key. Put upserts by natural key
// (keys fold with core.FoldKey: ASCII-case-insensitive, trimmed); ids come
// from a database sequence and are never reused, not even after a delete.
// The SQL schema stores each entity as JSON under its folded natural key in
// one table, beside an append-only operation log; the schema is versioned by
// goose migrations embedded in the binary (migrations/) and applied by Open.
//
// # Transactions and durability
//
// Store.Update runs a callback in one transaction: the change and its
// operation-log rows (Tx.Log) commit together or not at all, and once
// Update returns nil the commit is durable (SQLite: WAL with
// synchronous=FULL; PostgreSQL: its commit). Updates are serialised by a
// one-row version counter each increments first, so store versions follow
// commit order. The callback must not keep the Tx.
//
// # Change notification
//
// Every committed Update gets a new store version. Changes(since) returns
// the rows written after a version, deleted ones as tombstones, so a
// consumer reloads only what changed. Watch delivers each new version seen:
// at once for this process's commits, within Config.PollInterval (200 ms)
// for another process's through a version poll, and at once on PostgreSQL
// through LISTEN/NOTIFY.
//
// # Failure
//
// A database that cannot be reached makes calls fail with an error wrapping
// ErrUnavailable; nothing is changed. Consumers keep serving the last state
// they loaded and retry; the poller resumes when the database returns.
//
// # Concurrency and ownership
//
// Stores are safe for concurrent use. Rows and log entries returned are the
// caller's. Entities passed to Put are read and get their id set; the store
// keeps no reference to them.
package store
