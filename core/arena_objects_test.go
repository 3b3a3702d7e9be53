//go:build !race

package core

import (
	"runtime"
	"strconv"
	"testing"
)

// Not under -race: the race detector's allocations change the count.

// TestRegistryHeapObjects: the registry's heap is a few large pointer-free
// allocations, not objects per instance (what a collection must mark).
// 100,000 instances of 1,000 services, snapshots built, changes logged,
// must take fewer than one heap object per 5 instances; the layout before
// the arenas took about four per instance.
func TestRegistryHeapObjects(t *testing.T) {
	const n = 100_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := newTestRegistry(t, Config{})
	registerRealistic(r, n)
	for i := 0; i < n; i += instancesPerService {
		if snap := r.Service("service-" + strconv.Itoa(i/instancesPerService)); snap.Records.Len() != instancesPerService {
			t.Fatalf("unexpected snapshot of %d instances; want %d", snap.Records.Len(), instancesPerService)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	objects := int64(after.HeapObjects) - int64(before.HeapObjects)
	if objects > n/5 {
		t.Fatalf("unexpected %d heap objects for %d instances; want at most %d", objects, n, n/5)
	}
	var inst Instance
	realisticInstance(&inst, n-1) // the last registered
	if st := r.Stats(); st.Instances != n || st.RecordBytes < n*int64(NewRecord(&inst).size) {
		t.Fatalf("unexpected stats %+v; want %d instances and their records' bytes at least", st, n)
	}
	runtime.KeepAlive(r)
}
