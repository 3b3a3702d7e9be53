package cluster

import (
	"testing"
	"time"

	"github.com/artemis-go/artemis/core"
)

func TestTombstones(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := NewTombstones(func() time.Time { return now })
	inst := instance("Svc", "I-1")
	rec := core.NewRecord(inst)
	if ts.Recent(inst) {
		t.Fatal("a tombstone before any unregister")
	}
	ts.Add(rec)
	other := *inst
	other.ServiceID, other.InstanceID = "svc", "i-1" // the same key, another case
	if !ts.Recent(&other) {
		t.Fatal("no tombstone right after the unregister")
	}
	now = now.Add(TombstoneWindow - time.Millisecond)
	if !ts.Recent(inst) {
		t.Fatal("the tombstone ended before its window")
	}
	now = now.Add(2 * time.Millisecond)
	if ts.Recent(inst) {
		t.Fatal("the tombstone outlived its window")
	}
	ts.Add(core.NewRecord(instance("svc", "i-2"))) // adding prunes the expired one
	if ts.Len() != 1 {
		t.Fatalf("unexpected tombstones kept %d; want 1", ts.Len())
	}
}
