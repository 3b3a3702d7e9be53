package memreturn

import (
	"runtime"
	"testing"
	"time"
)

func TestWorthReturning(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		idle, inUse, base, min int64
		gcOn, want             bool
	}{
		{0, 0, 0, 32 * mib, true, false},
		{32*mib - 1, 0, 0, 32 * mib, true, false},
		{32 * mib, 0, 0, 32 * mib, true, true},
		{32 * mib, 256 * mib, 256 * mib, 32 * mib, true, true},    // exactly an eighth
		{32 * mib, 256*mib + 8, 256 * mib, 32 * mib, true, false}, // under an eighth of a big heap
		{100 * mib, 200 * mib, 200 * mib, 32 * mib, false, true},  // idle: returned with the GC percent off too
		{0, 192 * mib, 160 * mib, 32 * mib, true, true},           // grew by 32 MiB since the last return
		{0, 192 * mib, 160 * mib, 32 * mib, false, false},         // not with the GC percent off
		{0, 192*mib - 1, 160 * mib, 32 * mib, true, false},        // by less
		{0, 1200 * mib, 1100 * mib, 32 * mib, true, false},        // by less than an eighth of a big heap
		{0, 1300 * mib, 1100 * mib, 32 * mib, true, true},         // by more
		{0, 100 * mib, 300 * mib, 32 * mib, true, false},          // shrank
	} {
		if got := worthReturning(c.idle, c.inUse, c.base, c.min, c.gcOn); got != c.want {
			t.Errorf("worthReturning(%d, %d, %d, %d, %v) = %v; want %v", c.idle, c.inUse, c.base, c.min, c.gcOn, got, c.want)
		}
	}
}

var sink []byte

// garbage leaves n resident bytes for the next collection to free.
func garbage(n int) {
	sink = make([]byte, n)
	for i := 0; i < len(sink); i += 4096 {
		sink[i] = 1 // resident
	}
	sink = nil
}

// TestReturnIdle frees 64 MiB and returns it: the idle heap drops to under
// what was freed, the estimate counts most of it, and the totals count the
// return.
func TestReturnIdle(t *testing.T) {
	garbage(64 << 20)
	runtime.GC()
	before := Returned()
	idle, _ := heapBytes()
	n, _, ok := returnIdle(1, 1<<62)
	if !ok {
		t.Fatalf("unexpected no return with %d idle bytes", idle)
	}
	after, _ := heapBytes()
	if after >= 8<<20 {
		t.Fatalf("unexpected %d idle bytes left after returning (%d before)", after, idle)
	}
	if n < 48<<20 {
		t.Fatalf("unexpected %d bytes counted released of the 64 MiB freed", n)
	}
	got := Returned()
	if got.Returns != before.Returns+1 || got.Bytes != before.Bytes+n {
		t.Fatalf("unexpected totals %+v after %+v and one return of %d bytes", got, before, n)
	}
	// Nothing idle worth a collection: no return.
	if _, _, ok := returnIdle(1<<40, 1<<62); ok {
		t.Fatal("unexpected return under MinBytes")
	}
	if Returned().Returns != got.Returns {
		t.Fatal("unexpected return counted under MinBytes")
	}
}

// TestLoop drives the returner's loop with its own ticks: once the heap in
// use has grown by 64 MiB a tick returns (the growth trigger), the next one
// does not, and closing done ends the loop.
func TestLoop(t *testing.T) {
	done, ticks, handled, ended := make(chan struct{}), make(chan time.Time), make(chan struct{}), make(chan struct{})
	go func() { loop(done, ticks, 32<<20, nil, handled); close(ended) }()
	tick := func() int64 {
		before := Returned().Returns
		ticks <- time.Time{}
		<-handled
		return Returned().Returns - before
	}
	tick() // whatever is idle now is returned
	live := make([]byte, 64<<20)
	for i := 0; i < len(live); i += 4096 {
		live[i] = 1
	}
	if n := tick(); n != 1 {
		t.Fatalf("unexpected %d returns at a tick after the heap grew by 64 MiB; want 1", n)
	}
	if n := tick(); n != 0 {
		t.Fatalf("unexpected %d returns at a tick with nothing idle or grown; want 0", n)
	}
	runtime.KeepAlive(live)
	close(done)
	<-ended
}

// TestStartOff: a zero interval starts nothing; stop may be called twice.
func TestStartOff(t *testing.T) {
	Start(Config{}, nil)()
	stop := Start(Config{Interval: time.Hour}, nil)
	stop()
	stop()
}
