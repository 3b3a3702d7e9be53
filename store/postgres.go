package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/postgres/*.sql
var postgresMigrations embed.FS

// OpenPostgres connects to PostgreSQL (a pgx connection string, e.g.
// postgres://user@host:5432/db) and applies pending migrations under a
// session advisory lock, so nodes starting together migrate once.
//
// Besides the version poll, a LISTEN connection hears each commit's NOTIFY,
// so other nodes usually see a change within milliseconds; the poll covers
// a lost LISTEN connection.
func OpenPostgres(ctx context.Context, dsn string, cfg Config) (*SQL, error) {
	pcfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadDSN, err)
	}
	db := stdlib.OpenDB(*pcfg)
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	migrations, err := fs.Sub(postgresMigrations, "migrations/postgres")
	if err != nil {
		panic("BUG: embedded postgres migrations missing: " + err.Error())
	}
	d := &dialect{name: "postgres", goose: goose.DialectPostgres, migrations: migrations, dollar: true, notify: true,
		locker: func() (lock.SessionLocker, error) { return lock.NewPostgresSessionLocker() }}
	s, err := openSQL(ctx, db, d, cfg)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot open postgres %s@%s/%s: %w", pcfg.User, pcfg.Host, pcfg.Database, err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.w.wg.Add(1)
	go func() {
		defer s.w.wg.Done()
		s.listen(lctx, pcfg)
	}()
	return s, nil
}

// listen holds a LISTEN connection and pokes the poller on every NOTIFY,
// reconnecting a second after a failure, until ctx is done.
func (s *SQL) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+notifyChannel)
			s.w.poke() // changes made while not listening
			for err == nil {
				if _, err = conn.WaitForNotification(ctx); err == nil {
					s.w.poke()
				}
			}
			conn.Close(context.Background())
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
