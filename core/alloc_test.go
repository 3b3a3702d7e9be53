//go:build !race

package core

import (
	"fmt"
	"testing"
)

// Allocation gates for the hot paths (the race detector allocates, so these
// run only without it).

func TestHeartbeatDoesNotAllocate(t *testing.T) {
	r := newTestRegistry(t, Config{})
	var insts []*Instance
	for i := range 100 {
		insts = append(insts, testInstance("svc", fmt.Sprint(i)))
	}
	r.Register(insts, nil)
	one := insts[7:8]
	if n := testing.AllocsPerRun(1000, func() { r.Heartbeat(one, nil) }); n != 0 {
		t.Fatalf("unexpected allocations per heartbeat; got %v; want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { r.Heartbeat(insts, nil) }); n != 0 {
		t.Fatalf("unexpected allocations per batch heartbeat; got %v; want 0", n)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	r := newTestRegistry(t, Config{})
	for i := range 100 {
		r.Register([]*Instance{testInstance("Svc-Lookup", fmt.Sprint(i))}, nil)
	}
	buf := r.Service("svc-lookup").AppendJSON(nil) // build the snapshot once
	var n int
	if a := testing.AllocsPerRun(1000, func() { n = len(r.Service("SVC-LOOKUP").AppendJSON(buf[:0])) }); a != 0 {
		t.Fatalf("unexpected allocations per lookup; got %v; want 0", a)
	}
	if n == 0 {
		t.Fatalf("lookup returned no JSON")
	}
}
