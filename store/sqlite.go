package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

//go:embed migrations/sqlite/*.sql
var sqliteMigrations embed.FS

// SQLite settings. WAL lets discovery-side reads (Changes, Logs) run beside
// a write. synchronous=FULL makes a commit fsync the WAL before it returns,
// so an answered mutation survives kill -9 and power loss alike (NORMAL
// would survive kill -9 only); management writes are rare, so the fsync per
// commit costs nothing that matters. Every transaction begins IMMEDIATE:
// writers queue on the busy timeout instead of failing on a lock upgrade.
const sqliteParams = "_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"

// OpenSQLite opens (creating if needed) the SQLite database at path and
// applies pending migrations. Several processes may share the file; each
// sees the others' changes through the version poll.
func OpenSQLite(ctx context.Context, path string, cfg Config) (*SQL, error) {
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("%w: sqlite needs a file path", ErrBadDSN)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create the folder of %s: %w", path, err)
		}
	}
	u := url.URL{Scheme: "file", Opaque: path, RawQuery: sqliteParams}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("cannot open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	migrations, err := fs.Sub(sqliteMigrations, "migrations/sqlite")
	if err != nil {
		panic("BUG: embedded sqlite migrations missing: " + err.Error())
	}
	d := &dialect{name: "sqlite", goose: goose.DialectSQLite3, migrations: migrations}
	s, err := openSQL(ctx, db, d, cfg)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot open sqlite %s: %w", path, err)
	}
	opened, err := os.Stat(path)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("cannot open sqlite %s: %w", path, err)
	}
	d.check = func() error { return sameFile(path, opened) }
	return s, nil
}

// errFileGone: the SQLite file at the store's path was deleted or replaced
// while the store had it open.
var errFileGone = errors.New("the database file was deleted or replaced")

// sameFile reports errFileGone unless the file at path is opened.
func sameFile(path string, opened os.FileInfo) error {
	now, err := os.Stat(path)
	if err != nil || !os.SameFile(now, opened) {
		return fmt.Errorf("%w: %s", errFileGone, path)
	}
	return nil
}
