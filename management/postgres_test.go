package management

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/artemis-go/artemis/store"
)

// postgresDSN creates a fresh database on the server named by
// ARTEMIS_TEST_POSTGRES (see store/testdata/pg.sh) and returns its DSN; the
// test skips when the variable is unset.
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("ARTEMIS_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("PostgreSQL tests skipped: ARTEMIS_TEST_POSTGRES is unset (start one with store/testdata/pg.sh start DIR)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("cannot connect to %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("artemis_mgmt_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("cannot create database: %v", err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	cfg, _ := pgx.ParseConfig(dsn)
	return strings.Replace(dsn, "/"+cfg.Database, "/"+name, 1)
}

// TestTwoNodesOnPostgres: two nodes (a store, manager and registry each) on
// one PostgreSQL database. A pull-out answered by one is hidden by the other
// once its notification arrives (the latency is logged, not asserted), and
// a pull-in brings the instance back there.
func TestTwoNodesOnPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	open := func() *env {
		st, err := store.Open(context.Background(), dsn, store.Config{})
		if err != nil {
			t.Fatalf("cannot open postgres: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return newEnvOn(t, st)
	}
	a, b := open(), open()
	for _, e := range []*env{a, b} {
		e.register(inst("svc", "x", "10.0.0.1", "z1", ""), inst("svc", "y", "10.0.0.2", "z1", ""))
		e.wantVisible("svc", "x", "y")
	}
	req := &OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: region, ServiceID: "svc", InstanceID: "x"}, Operation: "pullout", OperatorID: "o"}
	var took []time.Duration
	for range 5 {
		req.OperationComplete = false
		a.must(a.m.OperateInstance(a.ctx, req))
		start := time.Now()
		a.wantVisible("svc", "y") // on its own node before the answer
		waitVisible(t, b, "svc", "y")
		took = append(took, time.Since(start))
		req.OperationComplete = true
		a.must(a.m.OperateInstance(a.ctx, req))
		waitVisible(t, b, "svc", "x", "y")
	}
	slices.Sort(took)
	t.Logf("pull-out seen by the other node after: min %v, median %v, max %v", took[0], took[len(took)/2], took[len(took)-1])
	if logs := b.logs(store.KindInstanceOperation, map[string]string{"instanceId": "x"}); len(logs) != 10 {
		t.Fatalf("unexpected log rows seen from the other node; got %d; want 10", len(logs))
	}
}

// TestRestartKeepsState: a manager on a reopened SQLite store starts with
// the operations made before.
func TestRestartKeepsState(t *testing.T) {
	path := t.TempDir() + "/artemis.db"
	st, err := store.Open(context.Background(), "sqlite:"+path, store.Config{})
	if err != nil {
		t.Fatalf("cannot open sqlite: %v", err)
	}
	e := newEnvOn(t, st)
	e.must(e.m.OperateServer(e.ctx, &OperateServerRequest{ServerKey: store.ServerKey{RegionID: region, ServerID: "10.0.0.1"}, Operation: "pullout", OperatorID: "o"}))
	e.m.Close()
	st.Close()

	st2, err := store.Open(context.Background(), "sqlite:"+path, store.Config{})
	if err != nil {
		t.Fatalf("cannot reopen sqlite: %v", err)
	}
	t.Cleanup(func() { st2.Close() })
	e2 := newEnvOn(t, st2)
	e2.register(inst("svc", "x", "10.0.0.1", "z1", ""), inst("svc", "y", "10.0.0.2", "z1", ""))
	e2.wantVisible("svc", "y")
}
