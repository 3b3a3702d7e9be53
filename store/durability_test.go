package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// childDSNEnv, when set, turns TestDurableAfterKill into the child: it
// opens the store, commits one pull-out, prints its id and waits to be killed.
const childDSNEnv = "ARTEMIS_STORE_CHILD_DSN"

func TestDurableAfterKill(t *testing.T) {
	if dsn := os.Getenv(childDSNEnv); dsn != "" {
		durabilityChild(dsn)
		return
	}
	dsns := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "kill.db")}
	if os.Getenv(postgresEnv) != "" {
		dsns["postgres"] = postgresDSN(t)
	} else {
		t.Logf("postgres case skipped: %s is unset", postgresEnv)
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			id := runKilledChild(t, dsn)
			s, err := Open(context.Background(), dsn, Config{})
			if err != nil {
				t.Fatalf("cannot reopen: %v", err)
			}
			defer s.Close()
			d, err := s.Changes(context.Background(), 0)
			if err != nil {
				t.Fatalf("cannot read changes: %v", err)
			}
			if len(d.Rows) != 1 || d.Rows[0].ID != id {
				t.Fatalf("unexpected rows after kill -9; got %+v; want the committed row %d", d.Rows, id)
			}
			logs, err := s.Logs(context.Background(), LogQuery{Kind: KindInstanceOperation})
			if err != nil || len(logs) != 1 {
				t.Fatalf("unexpected log rows after kill -9; got %v, %v; want one", logs, err)
			}
		})
	}
}

// runKilledChild runs the child, SIGKILLs it as soon as it reports the
// committed id, and returns the id.
func runKilledChild(t *testing.T, dsn string) int64 {
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurableAfterKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDSNEnv+"="+dsn)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("cannot pipe: %v", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start the child: %v", err)
	}
	sc := bufio.NewScanner(out)
	var id int64
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
			id, _ = strconv.ParseInt(rest, 10, 64)
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if id == 0 {
		t.Fatalf("the child reported no committed id")
	}
	return id
}

func durabilityChild(dsn string) {
	s, err := Open(context.Background(), dsn, Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	op := &InstanceOperation{InstanceKey: InstanceKey{"r", "svc", "inst"}, Operation: "pullout", OperatorID: "kill"}
	_, err = s.Update(context.Background(), func(tx *Tx) error {
		if _, err := Put(tx, op); err != nil {
			return err
		}
		return tx.Log(&LogEntry{Kind: KindInstanceOperation, Operation: "pullout", OperatorID: "kill", ServiceID: "svc"})
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	fmt.Printf("committed %d\n", op.ID)
	select {} // killed here, store open, nothing closed or flushed
}
