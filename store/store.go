package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Store keeps management state durably and tells every node sharing it when
// it changes. Implementations: Memory, and SQL over SQLite or PostgreSQL.
// All methods are safe for concurrent use.
type Store interface {
	// Update runs fn in one transaction and commits it: the change and its
	// log rows are durable when Update returns nil. It returns the store
	// version the change was given. An error from fn rolls everything back
	// and is returned as it is; a database failure wraps ErrUnavailable.
	// Updates are serialised: versions are issued in commit order.
	Update(ctx context.Context, fn func(tx *Tx) error) (int64, error)
	// Changes returns every row written after version since (inserted,
	// updated or deleted), or every live row when since is 0, and the
	// version they bring the caller to.
	Changes(ctx context.Context, since int64) (*Delta, error)
	// Version returns the current store version; 0 for an empty store.
	Version(ctx context.Context) (int64, error)
	// Watch returns a channel that receives the store version each time it
	// is seen to advance, by this process or another sharing the store
	// (within Config.PollInterval, or at once on PostgreSQL NOTIFY).
	// Sends coalesce: a slow reader gets the latest version. The channel is
	// closed when ctx is done or the store is closed.
	Watch(ctx context.Context) <-chan int64
	// Logs returns the log rows matching q, oldest first.
	Logs(ctx context.Context, q LogQuery) ([]LogEntry, error)
	// Close releases the store; it is idempotent.
	Close() error
}

// Row is one stored entity as Changes returns it. Body is the entity's JSON
// (decode it with Decode); a deleted row has Deleted set and keeps the body
// it had.
type Row struct {
	Kind    Kind
	ID      int64
	Version int64
	Deleted bool
	Body    []byte
}

// Delta is the answer of Changes: rows in id order and the version they
// reflect.
type Delta struct {
	Version int64
	Rows    []Row
}

// Decode decodes a row's body into a new entity of type P.
func Decode[T any, P interface {
	*T
	Entity
}](r Row) (P, error) {
	p := P(new(T))
	if err := json.Unmarshal(r.Body, p); err != nil {
		return nil, fmt.Errorf("cannot decode %s row %d: %w", r.Kind, r.ID, err)
	}
	p.SetEntityID(r.ID)
	return p, nil
}

// Config configures a store. Zero fields take the named defaults.
type Config struct {
	// PollInterval is how often the store version is polled for changes
	// made by other processes; defaultPollInterval when zero.
	PollInterval time.Duration
	// Now is the clock stamped on log rows; time.Now when nil.
	Now func() time.Time
}

const defaultPollInterval = 200 * time.Millisecond

func (c Config) withDefaults() Config {
	if c.PollInterval <= 0 {
		c.PollInterval = defaultPollInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Open opens the store a DSN names and applies pending migrations:
//
//	memory                  a Memory store (nothing kept)
//	sqlite:PATH             SQLite at PATH (created, with its folder, if missing)
//	postgres://… or postgresql://…   PostgreSQL
func Open(ctx context.Context, dsn string, cfg Config) (Store, error) {
	switch {
	case dsn == "memory":
		return NewMemory(cfg), nil
	case strings.HasPrefix(dsn, "sqlite:"):
		return OpenSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"), cfg)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return OpenPostgres(ctx, dsn, cfg)
	}
	return nil, fmt.Errorf("%w: %q; want memory, sqlite:PATH or postgres://...", ErrBadDSN, dsn)
}

// backend is what a transaction needs from an implementation. Every method
// runs inside the transaction; errors from the database wrap ErrUnavailable.
type backend interface {
	// lookup returns the live row of kind with the natural key, or id 0.
	lookup(kind Kind, key string) (id int64, body []byte, err error)
	// byID returns the body of the live row of kind with id, or nil.
	byID(kind Kind, id int64) ([]byte, error)
	// list returns the live rows of kind in id order.
	list(kind Kind) ([]Row, error)
	insert(kind Kind, key string, body []byte) (int64, error)
	update(kind Kind, id int64, key string, body []byte) error
	// remove deletes the live row of kind with id and reports whether it existed.
	remove(kind Kind, id int64) (bool, error)
	appendLog(e *LogEntry, body []byte) error
}

// Tx is one store transaction, valid only during the Update callback.
// Use the generic functions Put, Get, Find, List and Delete on it.
type Tx struct {
	b       backend
	version int64
	now     int64
}

// Version returns the version this transaction commits as.
func (tx *Tx) Version() int64 { return tx.version }

// Now returns the transaction's time in epoch ms.
func (tx *Tx) Now() int64 { return tx.now }

// Log appends an operation log row, committed with the transaction.
func (tx *Tx) Log(e *LogEntry) error {
	e.CreateTime = tx.now
	body, err := e.encodeBody(tx.now)
	if err != nil {
		return err
	}
	return tx.b.appendLog(e, body)
}

// Put inserts e, or updates the row with its natural key, and sets e's id.
// It reports whether a row was created.
func Put(tx *Tx, e Entity) (created bool, err error) {
	key := e.NaturalKey()
	id, _, err := tx.b.lookup(e.Kind(), key)
	if err != nil {
		return false, err
	}
	e.SetEntityID(id)
	body, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("cannot encode %s: %w", e.Kind(), err)
	}
	if id != 0 {
		return false, tx.b.update(e.Kind(), id, key, body)
	}
	id, err = tx.b.insert(e.Kind(), key, body)
	if err != nil {
		return false, err
	}
	e.SetEntityID(id)
	return true, nil
}

// Get returns the live entity of type P with id, or nil.
func Get[T any, P interface {
	*T
	Entity
}](tx *Tx, id int64) (P, error) {
	kind := P(new(T)).Kind()
	body, err := tx.b.byID(kind, id)
	if err != nil || body == nil {
		return nil, err
	}
	return Decode[T, P](Row{Kind: kind, ID: id, Body: body})
}

// Find returns the live entity with probe's natural key, or nil.
func Find[T any, P interface {
	*T
	Entity
}](tx *Tx, probe P) (P, error) {
	id, body, err := tx.b.lookup(probe.Kind(), probe.NaturalKey())
	if err != nil || id == 0 {
		return nil, err
	}
	return Decode[T, P](Row{Kind: probe.Kind(), ID: id, Body: body})
}

// List returns the live entities of type P in id order.
func List[T any, P interface {
	*T
	Entity
}](tx *Tx) ([]P, error) {
	rows, err := tx.b.list(P(new(T)).Kind())
	if err != nil {
		return nil, err
	}
	out := make([]P, 0, len(rows))
	for _, r := range rows {
		p, err := Decode[T, P](r)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Delete removes the live row of kind with id and reports whether there was
// one; a missing row is not an error.
func Delete(tx *Tx, kind Kind, id int64) (bool, error) { return tx.b.remove(kind, id) }
