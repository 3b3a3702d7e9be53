package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// SQL is a Store in a SQL database: SQLite (OpenSQLite) or PostgreSQL
// (OpenPostgres). Both share this code; they differ in placeholders, DDL
// and how a change is announced.
//
// Schema (see migrations/): entity rows (id, kind, nkey, body, version,
// deleted) hold every management entity as JSON under its folded natural
// key; a deleted row becomes a tombstone (nkey NULL) so that Changes can
// report it; oplog holds the operation log; store_version is a one-row
// counter that every Update increments first, which both serialises
// updates (the row lock) and orders versions as commits.
type SQL struct {
	db      *sql.DB
	dialect *dialect
	cfg     Config
	w       *watchers

	stop      context.CancelFunc // stops the LISTEN loop, if any
	closeOnce sync.Once
}

// dialect is what differs between the SQL databases.
type dialect struct {
	name       string
	goose      goose.Dialect
	migrations fs.FS
	locker     func() (lock.SessionLocker, error) // nil: no migration lock
	dollar     bool                               // placeholders $1.. instead of ?
	notify     bool                               // pg_notify on commit
	// check, when set, runs before every update: SQLite's makes sure the
	// file at the path is still the one open (a deleted or replaced file
	// would take writes that no restart sees).
	check func() error
}

// notifyChannel is the PostgreSQL channel an Update notifies on commit.
const notifyChannel = "artemis_store"

// openSQL migrates db and starts the version poller.
func openSQL(ctx context.Context, db *sql.DB, d *dialect, cfg Config) (*SQL, error) {
	if err := migrate(ctx, db, d); err != nil {
		return nil, err
	}
	s := &SQL{db: db, dialect: d, cfg: cfg.withDefaults(), w: newWatchers()}
	s.w.poll(s.cfg.PollInterval, s.Version)
	return s, nil
}

// migrate applies the embedded migrations not yet applied.
func migrate(ctx context.Context, db *sql.DB, d *dialect) error {
	var opts []goose.ProviderOption
	if d.locker != nil {
		l, err := d.locker()
		if err != nil {
			return fmt.Errorf("cannot create the %s migration lock: %w", d.name, err)
		}
		opts = append(opts, goose.WithSessionLocker(l))
	}
	p, err := goose.NewProvider(d.goose, db, d.migrations, opts...)
	if err != nil {
		return fmt.Errorf("cannot load the %s migrations: %w", d.name, err)
	}
	// Without a lock (SQLite), two processes opening one new file race to
	// create the version table; the loser finds it made and tries again.
	deadline := time.Now().Add(migrateRetryFor)
	for {
		_, err = p.Up(ctx)
		if err == nil || d.locker != nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return unavailable("apply the "+d.name+" migrations", err)
	}
	return nil
}

// migrateRetryFor bounds the retries of migrations that raced another
// process's.
const migrateRetryFor = 5 * time.Second

// q rewrites ? placeholders for the dialect.
func (s *SQL) q(query string) string {
	if !s.dialect.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// Update implements Store.
func (s *SQL) Update(ctx context.Context, fn func(tx *Tx) error) (int64, error) {
	if s.dialect.check != nil {
		if err := s.dialect.check(); err != nil {
			return 0, unavailable("write", err)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, unavailable("begin a transaction", err)
	}
	defer tx.Rollback()
	var v int64
	if err := tx.QueryRowContext(ctx, "UPDATE store_version SET version = version + 1 WHERE id = 1 RETURNING version").Scan(&v); err != nil {
		return 0, unavailable("take the next version", err)
	}
	b := &sqlTx{s: s, tx: tx, ctx: ctx, version: v}
	if err := fn(&Tx{b: b, version: v, now: s.cfg.Now().UnixMilli()}); err != nil {
		return 0, err
	}
	if s.dialect.notify {
		if _, err := tx.ExecContext(ctx, "SELECT pg_notify($1, $2)", notifyChannel, strconv.FormatInt(v, 10)); err != nil {
			return 0, unavailable("notify", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, unavailable("commit", err)
	}
	s.w.observe(v)
	return v, nil
}

// Version implements Store.
func (s *SQL) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := s.db.QueryRowContext(ctx, "SELECT version FROM store_version WHERE id = 1").Scan(&v); err != nil {
		return 0, unavailable("read the version", err)
	}
	return v, nil
}

// Changes implements Store. It reads the version first and then the rows
// up to it: updates are serialised and commit in version order, so every
// row up to that version is visible and none is missed or torn.
func (s *SQL) Changes(ctx context.Context, since int64) (*Delta, error) {
	v, err := s.Version(ctx)
	if err != nil {
		return nil, err
	}
	d := &Delta{Version: v}
	if v <= since {
		d.Version = since
		return d, nil
	}
	query := "SELECT id, kind, body, deleted, version FROM entity WHERE version > ? AND version <= ?"
	if since == 0 {
		query += " AND NOT deleted"
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+" ORDER BY id"), since, v)
	if err != nil {
		return nil, unavailable("read changes", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Row
		var kind string
		if err := rows.Scan(&r.ID, &kind, &r.Body, &r.Deleted, &r.Version); err != nil {
			return nil, unavailable("read changes", err)
		}
		r.Kind = Kind(kind)
		d.Rows = append(d.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read changes", err)
	}
	return d, nil
}

// Watch implements Store.
func (s *SQL) Watch(ctx context.Context) <-chan int64 { return s.w.watch(ctx) }

// Logs implements Store. Kind and service filter in SQL, the rest in Go
// over the newest rows until the limit is reached.
func (s *SQL) Logs(ctx context.Context, q LogQuery) ([]LogEntry, error) {
	f := compileLogQuery(q)
	query := "SELECT id, operation, operator_id, service_key, complete, create_time, body FROM oplog WHERE kind = ?"
	args := []any{string(q.Kind)}
	if f.serviceID != "" {
		query += " AND service_key = ?"
		args = append(args, f.serviceID)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+" ORDER BY id DESC"), args...)
	if err != nil {
		return nil, unavailable("read the operation log", err)
	}
	defer rows.Close()
	var out []LogEntry
	for rows.Next() && len(out) < f.limit {
		e := LogEntry{Kind: q.Kind}
		if err := rows.Scan(&e.ID, &e.Operation, &e.OperatorID, &e.ServiceID, &e.Complete, &e.CreateTime, &e.Body); err != nil {
			return nil, unavailable("read the operation log", err)
		}
		if f.matchIndexed(e.Operation, e.OperatorID, e.ServiceID, e.Complete) && f.matchBody(e.Body) {
			out = append(out, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read the operation log", err)
	}
	reverseLogs(out)
	return out, nil
}

// Close implements Store.
func (s *SQL) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.stop != nil {
			s.stop()
		}
		s.w.close()
		err = s.db.Close()
	})
	return err
}

// DB returns the underlying database handle, for tests and tools.
func (s *SQL) DB() *sql.DB { return s.db }

// sqlTx implements backend inside one database transaction.
type sqlTx struct {
	s       *SQL
	tx      *sql.Tx
	ctx     context.Context
	version int64
}

func (t *sqlTx) lookup(kind Kind, key string) (int64, []byte, error) {
	var id int64
	var body []byte
	err := t.tx.QueryRowContext(t.ctx, t.s.q("SELECT id, body FROM entity WHERE kind = ? AND nkey = ?"), string(kind), key).Scan(&id, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, unavailable("look up a "+string(kind), err)
	}
	return id, body, nil
}

func (t *sqlTx) byID(kind Kind, id int64) ([]byte, error) {
	var body []byte
	err := t.tx.QueryRowContext(t.ctx, t.s.q("SELECT body FROM entity WHERE id = ? AND kind = ? AND NOT deleted"), id, string(kind)).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable("read a "+string(kind), err)
	}
	return body, nil
}

func (t *sqlTx) list(kind Kind) ([]Row, error) {
	rows, err := t.tx.QueryContext(t.ctx, t.s.q("SELECT id, body FROM entity WHERE kind = ? AND NOT deleted ORDER BY id"), string(kind))
	if err != nil {
		return nil, unavailable("list "+string(kind), err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		r := Row{Kind: kind}
		if err := rows.Scan(&r.ID, &r.Body); err != nil {
			return nil, unavailable("list "+string(kind), err)
		}
		out = append(out, r)
	}
	return out, unavailable("list "+string(kind), rows.Err())
}

func (t *sqlTx) insert(kind Kind, key string, body []byte) (int64, error) {
	var id int64
	err := t.tx.QueryRowContext(t.ctx, t.s.q("INSERT INTO entity (kind, nkey, body, version, deleted) VALUES (?, ?, ?, ?, FALSE) RETURNING id"),
		string(kind), key, string(body), t.version).Scan(&id)
	if err != nil {
		return 0, unavailable("insert a "+string(kind), err)
	}
	return id, nil
}

func (t *sqlTx) update(kind Kind, id int64, key string, body []byte) error {
	_, err := t.tx.ExecContext(t.ctx, t.s.q("UPDATE entity SET nkey = ?, body = ?, version = ? WHERE id = ? AND kind = ?"),
		key, string(body), t.version, id, string(kind))
	return unavailable("update a "+string(kind), err)
}

func (t *sqlTx) remove(kind Kind, id int64) (bool, error) {
	res, err := t.tx.ExecContext(t.ctx, t.s.q("UPDATE entity SET deleted = TRUE, nkey = NULL, version = ? WHERE id = ? AND kind = ? AND NOT deleted"),
		t.version, id, string(kind))
	if err != nil {
		return false, unavailable("delete a "+string(kind), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, unavailable("delete a "+string(kind), err)
	}
	return n > 0, nil
}

func (t *sqlTx) appendLog(e *LogEntry, body []byte) error {
	_, err := t.tx.ExecContext(t.ctx, t.s.q("INSERT INTO oplog (kind, operation, operator_id, service_key, complete, create_time, body) VALUES (?, ?, ?, ?, ?, ?, ?)"),
		string(e.Kind), e.Operation, e.OperatorID, foldService(e.ServiceID), e.Complete, e.CreateTime, string(body))
	return unavailable("write the operation log", err)
}
