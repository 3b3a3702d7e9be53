package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// postgresEnv names the environment variable with the DSN of a PostgreSQL
// server the tests may create databases on (store/testdata/pg.sh starts
// one). Unset, the PostgreSQL tests skip.
const postgresEnv = "ARTEMIS_TEST_POSTGRES"

var testDBSeq atomic.Int64

// postgresDSN creates a fresh database for the test and returns its DSN.
func postgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		t.Skipf("PostgreSQL tests skipped: %s is unset (start one with store/testdata/pg.sh start DIR)", postgresEnv)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("cannot connect to %s=%s: %v", postgresEnv, dsn, err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("artemis_test_%d_%d", os.Getpid(), testDBSeq.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("cannot create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("cannot parse %s: %v", dsn, err)
	}
	return strings.Replace(dsn, "/"+cfg.Database, "/"+name, 1)
}

// opener opens the store under test; calling it twice opens the same data.
type opener func(t *testing.T) Store

func openers(t *testing.T) map[string]func(t *testing.T) opener {
	return map[string]func(t *testing.T) opener{
		"memory": func(t *testing.T) opener {
			m := NewMemory(Config{})
			t.Cleanup(func() { m.Close() })
			return func(t *testing.T) Store { return m }
		},
		"sqlite": func(t *testing.T) opener {
			path := filepath.Join(t.TempDir(), "sub", "artemis.db")
			return func(t *testing.T) Store {
				s, err := Open(context.Background(), "sqlite:"+path, Config{PollInterval: 20 * time.Millisecond})
				if err != nil {
					t.Fatalf("cannot open sqlite: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
		},
		"postgres": func(t *testing.T) opener {
			dsn := postgresDSN(t)
			return func(t *testing.T) Store {
				s, err := Open(context.Background(), dsn, Config{PollInterval: 20 * time.Millisecond})
				if err != nil {
					t.Fatalf("cannot open postgres: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
		},
	}
}

// forEachStore runs f against every implementation.
func forEachStore(t *testing.T, f func(t *testing.T, open opener)) {
	for _, name := range []string{"memory", "sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) { f(t, openers(t)[name](t)) })
	}
}

func update(t *testing.T, s Store, fn func(tx *Tx) error) int64 {
	t.Helper()
	v, err := s.Update(context.Background(), fn)
	if err != nil {
		t.Fatalf("cannot update: %v", err)
	}
	return v
}

func TestUpsertByNaturalKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		s := open(t)
		g := &Group{ServiceID: "Svc", RegionID: "R", ZoneID: "Z", Name: "g1", AppID: "a", Status: StatusActive}
		v1 := update(t, s, func(tx *Tx) error {
			created, err := Put(tx, g)
			if !created {
				t.Errorf("unexpected created; got false; want true")
			}
			return err
		})
		if g.GroupID == 0 {
			t.Fatalf("unexpected group id; got 0; want a server-given id")
		}
		// Same natural key in other case: an update of the same row.
		g2 := &Group{ServiceID: "SVC", RegionID: "r", ZoneID: "z", Name: "G1", AppID: "b", Status: StatusInactive}
		v2 := update(t, s, func(tx *Tx) error {
			created, err := Put(tx, g2)
			if created {
				t.Errorf("unexpected created; got true; want false")
			}
			return err
		})
		if g2.GroupID != g.GroupID {
			t.Fatalf("unexpected id after upsert; got %d; want %d", g2.GroupID, g.GroupID)
		}
		if v2 <= v1 {
			t.Fatalf("unexpected version order; got %d after %d", v2, v1)
		}
		update(t, s, func(tx *Tx) error {
			got, err := Get[Group](tx, g.GroupID)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(g2, got); diff != "" {
				t.Errorf("unexpected group (-want +got):\n%s", diff)
			}
			found, err := Find(tx, &Group{ServiceID: "svc", RegionID: "R", ZoneID: "Z", Name: "g1"})
			if err != nil {
				return err
			}
			if found == nil || found.GroupID != g.GroupID {
				t.Errorf("unexpected Find; got %+v; want id %d", found, g.GroupID)
			}
			all, err := List[Group](tx)
			if len(all) != 1 {
				t.Errorf("unexpected group count; got %d; want 1", len(all))
			}
			return err
		})
	})
}

func TestDeleteNeverReusesIDs(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		s := open(t)
		op := &InstanceOperation{InstanceKey: InstanceKey{"r", "s", "i"}, Operation: "pullout", OperatorID: "me"}
		update(t, s, func(tx *Tx) error { _, err := Put(tx, op); return err })
		first := op.ID
		update(t, s, func(tx *Tx) error {
			ok, err := Delete(tx, KindInstanceOperation, first)
			if !ok {
				t.Errorf("unexpected Delete result; got false; want true")
			}
			return err
		})
		update(t, s, func(tx *Tx) error {
			ok, err := Delete(tx, KindInstanceOperation, first)
			if ok {
				t.Errorf("unexpected second Delete result; got true; want false")
			}
			got, _ := Get[InstanceOperation](tx, first)
			if got != nil {
				t.Errorf("unexpected deleted row; got %+v; want nil", got)
			}
			return err
		})
		again := &InstanceOperation{InstanceKey: InstanceKey{"R", "S", "I"}, Operation: "PULLOUT", OperatorID: "me"}
		update(t, s, func(tx *Tx) error { _, err := Put(tx, again); return err })
		if again.ID <= first {
			t.Fatalf("unexpected id after delete and insert; got %d; want > %d", again.ID, first)
		}
	})
}

func TestRollbackOnError(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		s := open(t)
		ctx := context.Background()
		v0, err := s.Version(ctx)
		if err != nil {
			t.Fatalf("cannot read version: %v", err)
		}
		boom := errors.New("boom")
		_, err = s.Update(ctx, func(tx *Tx) error {
			if _, err := Put(tx, &RouteRule{ServiceID: "s", Name: "r", Status: "active", Strategy: "weighted-round-robin"}); err != nil {
				return err
			}
			if err := tx.Log(&LogEntry{Kind: KindRouteRule, Operation: "insert-route-rules", OperatorID: "me"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("unexpected error; got %v; want %v", err, boom)
		}
		d, err := s.Changes(ctx, 0)
		if err != nil {
			t.Fatalf("cannot read changes: %v", err)
		}
		if d.Version != v0 || len(d.Rows) != 0 {
			t.Fatalf("unexpected state after rollback; got version %d, %d rows; want %d, 0", d.Version, len(d.Rows), v0)
		}
		logs, err := s.Logs(ctx, LogQuery{Kind: KindRouteRule})
		if err != nil || len(logs) != 0 {
			t.Fatalf("unexpected logs after rollback; got %v, %v; want none", logs, err)
		}
	})
}

func TestChangesSince(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		s := open(t)
		ctx := context.Background()
		a := &GroupTag{GroupID: 1, Tag: "a", Value: "1"}
		b := &GroupTag{GroupID: 1, Tag: "b", Value: "2"}
		v1 := update(t, s, func(tx *Tx) error {
			if _, err := Put(tx, a); err != nil {
				return err
			}
			_, err := Put(tx, b)
			return err
		})
		v2 := update(t, s, func(tx *Tx) error { _, err := Delete(tx, KindGroupTag, a.ID); return err })
		b.Value = "3"
		v3 := update(t, s, func(tx *Tx) error { _, err := Put(tx, b); return err })

		full, err := s.Changes(ctx, 0)
		if err != nil {
			t.Fatalf("cannot read changes: %v", err)
		}
		if full.Version != v3 || len(full.Rows) != 1 || full.Rows[0].ID != b.ID {
			t.Fatalf("unexpected full load; got version %d rows %+v; want version %d, only tag b", full.Version, full.Rows, v3)
		}
		got, err := Decode[GroupTag](full.Rows[0])
		if err != nil || got.Value != "3" {
			t.Fatalf("unexpected decoded tag; got %+v, %v; want value 3", got, err)
		}
		d, err := s.Changes(ctx, v1)
		if err != nil {
			t.Fatalf("cannot read changes: %v", err)
		}
		want := []struct {
			id      int64
			deleted bool
			version int64
		}{{a.ID, true, v2}, {b.ID, false, v3}}
		if len(d.Rows) != len(want) {
			t.Fatalf("unexpected delta rows; got %+v; want %v", d.Rows, want)
		}
		for i, w := range want {
			r := d.Rows[i]
			if r.ID != w.id || r.Deleted != w.deleted || r.Version != w.version || r.Kind != KindGroupTag {
				t.Errorf("unexpected delta row %d; got %+v; want %+v", i, r, w)
			}
		}
		none, err := s.Changes(ctx, v3)
		if err != nil || len(none.Rows) != 0 || none.Version != v3 {
			t.Fatalf("unexpected empty delta; got %+v, %v; want no rows at %d", none, err, v3)
		}
	})
}

func TestReopenKeepsState(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			open := openers(t)[name](t)
			s := open(t)
			si := &ServiceInstance{ServiceID: "svc", InstanceID: "logic-1", URL: "http://x", Metadata: map[string]string{"k": "v"}, Port: 80}
			v := update(t, s, func(tx *Tx) error { _, err := Put(tx, si); return err })
			s.Close()
			s2 := open(t)
			d, err := s2.Changes(context.Background(), 0)
			if err != nil {
				t.Fatalf("cannot read changes after reopen: %v", err)
			}
			if d.Version != v || len(d.Rows) != 1 {
				t.Fatalf("unexpected state after reopen; got version %d rows %d; want %d, 1", d.Version, len(d.Rows), v)
			}
			got, err := Decode[ServiceInstance](d.Rows[0])
			if err != nil {
				t.Fatalf("cannot decode: %v", err)
			}
			if diff := cmp.Diff(si, got); diff != "" {
				t.Fatalf("unexpected instance after reopen (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogs(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		s := open(t)
		ctx := context.Background()
		for i, op := range []string{"pullout", "pullin", "pullout"} {
			update(t, s, func(tx *Tx) error {
				return tx.Log(&LogEntry{Kind: KindInstanceOperation, Operation: op, OperatorID: fmt.Sprint("op", i%2),
					Complete: op == "pullin", ServiceID: "Svc",
					Fields: map[string]any{"regionId": "r", "serviceId": "Svc", "instanceId": fmt.Sprint("i", i), "complete": op == "pullin", "extensions": "{}"}})
			})
		}
		update(t, s, func(tx *Tx) error {
			return tx.Log(&LogEntry{Kind: KindServerOperation, Operation: "pullout", OperatorID: "op0", Fields: map[string]any{"serverId": "1.2.3.4"}})
		})
		f := func(q LogQuery, wantInstances ...string) {
			t.Helper()
			logs, err := s.Logs(ctx, q)
			if err != nil {
				t.Fatalf("cannot read logs: %v", err)
			}
			var got []string
			for _, e := range logs {
				b, _ := e.MarshalJSON()
				var id string
				if i := strings.Index(string(b), `"instanceId":"`); i >= 0 {
					id = strings.SplitN(string(b)[i+len(`"instanceId":"`):], `"`, 2)[0]
				}
				got = append(got, id)
			}
			if diff := cmp.Diff(wantInstances, got); diff != "" {
				t.Errorf("unexpected logs for %+v (-want +got):\n%s", q, diff)
			}
		}
		f(LogQuery{Kind: KindInstanceOperation}, "i0", "i1", "i2")
		f(LogQuery{Kind: KindInstanceOperation, Filters: map[string]string{"operation": "PULLOUT"}}, "i0", "i2")
		f(LogQuery{Kind: KindInstanceOperation, Filters: map[string]string{"complete": "true"}}, "i1")
		f(LogQuery{Kind: KindInstanceOperation, Filters: map[string]string{"operatorId": "op0", "serviceId": "svc"}}, "i0", "i2")
		f(LogQuery{Kind: KindInstanceOperation, Filters: map[string]string{"InstanceId": "I2"}}, "i2")
		f(LogQuery{Kind: KindInstanceOperation, Filters: map[string]string{"instanceId": "nope"}})
		f(LogQuery{Kind: KindInstanceOperation, Filters: map[string]string{"regionId": ""}}, "i0", "i1", "i2")
		f(LogQuery{Kind: KindInstanceOperation, Limit: 2}, "i1", "i2")

		logs, err := s.Logs(ctx, LogQuery{Kind: KindServerOperation})
		if err != nil || len(logs) != 1 {
			t.Fatalf("unexpected server logs; got %v, %v; want one", logs, err)
		}
		b, _ := logs[0].MarshalJSON()
		for _, field := range []string{`"id":`, `"operation":"pullout"`, `"operatorId":"op0"`, `"token":""`, `"createTime":`, `"updateTime":`, `"serverId":"1.2.3.4"`} {
			if !strings.Contains(string(b), field) {
				t.Errorf("unexpected log row %s; want it to contain %s", b, field)
			}
		}
	})
}

func TestWatchSeesLocalUpdate(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		s := open(t)
		ctx, cancel := context.WithCancel(context.Background())
		ch := s.Watch(ctx)
		v := update(t, s, func(tx *Tx) error { _, err := Put(tx, &GroupInstance{GroupID: 7, InstanceID: "i"}); return err })
		waitVersion(t, ch, v)
		cancel()
		for range ch { // closed after cancel
		}
	})
}

// waitVersion waits until ch delivers a version >= v. The bound is generous:
// it checks that the change arrives, not how fast (see the log for that).
func waitVersion(t *testing.T, ch <-chan int64, v int64) time.Duration {
	t.Helper()
	start := time.Now()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case got, ok := <-ch:
			if !ok {
				t.Fatalf("watch channel closed before version %d", v)
			}
			if got >= v {
				return time.Since(start)
			}
		case <-timeout:
			t.Fatalf("no version >= %d seen by the watcher", v)
		}
	}
}

func TestUnavailable(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		m := NewMemory(Config{})
		defer m.Close()
		m.SetAvailable(false)
		_, err := m.Update(context.Background(), func(tx *Tx) error { return nil })
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("unexpected error; got %v; want %v", err, ErrUnavailable)
		}
		m.SetAvailable(true)
		if _, err := m.Update(context.Background(), func(tx *Tx) error { return nil }); err != nil {
			t.Fatalf("unexpected error after recovery: %v", err)
		}
	})
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			s := openers(t)[name](t)(t).(*SQL)
			s.DB().Close() // the database goes away under the store
			_, err := s.Update(context.Background(), func(tx *Tx) error { return nil })
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("unexpected update error; got %v; want %v", err, ErrUnavailable)
			}
			if _, err := s.Changes(context.Background(), 0); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("unexpected changes error; got %v; want %v", err, ErrUnavailable)
			}
		})
	}
}

func TestOpenBadDSN(t *testing.T) {
	for _, dsn := range []string{"", "mysql://x", "sqlite:", "sqlite::memory:"} {
		if _, err := Open(context.Background(), dsn, Config{}); !errors.Is(err, ErrBadDSN) {
			t.Errorf("unexpected error for %q; got %v; want %v", dsn, err, ErrBadDSN)
		}
	}
}

// TestTwoPostgresStores: two stores (two nodes) on one database; a change
// made through one reaches the other's watcher and its Changes.
func TestTwoPostgresStores(t *testing.T) {
	dsn := postgresDSN(t)
	ctx := context.Background()
	open := func() Store {
		// The default poll interval, as a node runs; NOTIFY usually wins.
		s, err := Open(ctx, dsn, Config{})
		if err != nil {
			t.Fatalf("cannot open postgres: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := b.Watch(wctx)
	for i := range 5 {
		op := &ServerOperation{ServerKey: ServerKey{"r", fmt.Sprint("10.0.0.", i)}, Operation: "pullout", OperatorID: "me"}
		v := update(t, a, func(tx *Tx) error { _, err := Put(tx, op); return err })
		took := waitVersion(t, ch, v)
		t.Logf("change %d seen by the other store after %v", i, took)
		d, err := b.Changes(ctx, v-1)
		if err != nil || len(d.Rows) != 1 || d.Rows[0].ID != op.ID {
			t.Fatalf("unexpected delta on the other store; got %+v, %v; want row %d", d, err, op.ID)
		}
	}
}

// TestTwoSQLiteStoresPoll: two processes' worth of stores on one SQLite file
// see each other's changes through the version poll.
func TestTwoSQLiteStoresPoll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	open := func() Store {
		s, err := OpenSQLite(context.Background(), path, Config{})
		if err != nil {
			t.Fatalf("cannot open sqlite: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := b.Watch(ctx)
	v := update(t, a, func(tx *Tx) error {
		_, err := Put(tx, &ZoneOperation{ZoneKey: ZoneKey{"r", "s", "z"}, Operation: "pullout"})
		return err
	})
	t.Logf("seen after %v", waitVersion(t, ch, v))
}

// Several processes opening one new SQLite file at once all open it: the
// migrations' race is retried (two nodes started together in one folder:
// one failed with "table store_version already exists").
func TestSQLiteConcurrentFirstOpen(t *testing.T) {
	if path := os.Getenv("ARTEMIS_TEST_OPEN_RACE"); path != "" { // a child: open and report
		st, err := Open(context.Background(), "sqlite:"+path, Config{})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		st.Close()
		return
	}
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "race.db")
		var cmds []*exec.Cmd
		var outs []*bytes.Buffer
		for range 4 {
			cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteConcurrentFirstOpen$", "-test.count=1")
			cmd.Env = append(os.Environ(), "ARTEMIS_TEST_OPEN_RACE="+path)
			out := &bytes.Buffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, outs = append(cmds, cmd), append(outs, out)
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("round %d: a process opening the new file failed: %v\n%s", round, err, outs[i])
			}
		}
	}
}

// A SQLite file deleted under a running store: an update answers
// ErrUnavailable (the write would go to a file no restart sees) instead of
// succeeding and being lost.
func TestSQLiteFileDeleted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone.db")
	st, err := Open(context.Background(), "sqlite:"+path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	write := func() error {
		_, err := st.Update(context.Background(), func(tx *Tx) error { return nil })
		return err
	}
	if err := write(); err != nil {
		t.Fatalf("an update before the file was deleted: %v", err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	if err := write(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("an update after the file was deleted answered %v; want ErrUnavailable", err)
	}
}
