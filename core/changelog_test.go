package core

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func changeSummary(changes []*Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, c.Type.String()+":"+c.Record.InstanceID())
	}
	return out
}

func TestChangesSince(t *testing.T) {
	r := newTestRegistry(t, Config{ChangeLogSize: 4})
	start := r.Version()
	if start <= 0 {
		t.Fatalf("unexpected start version %d; want positive", start)
	}
	if changes, v, err := r.ChangesSince(start, nil); err != nil || len(changes) != 0 || v != start {
		t.Fatalf("unexpected delta at the current version: %v, %d, %v", changes, v, err)
	}
	r.Register([]*Instance{testInstance("s", "1"), testInstance("s", "2")}, nil)
	r.Unregister([]*Instance{testInstance("s", "1")}, nil)
	changes, v, err := r.ChangesSince(start, nil)
	if err != nil || v != start+3 {
		t.Fatalf("unexpected delta result %d, %v; want version %d", v, err, start+3)
	}
	if got, want := changeSummary(changes), []string{"new:1", "new:2", "delete:1"}; !cmp.Equal(got, want) {
		t.Fatalf("unexpected changes; got %v; want %v", got, want)
	}
	for i, c := range changes {
		if c.Version != start+int64(i)+1 {
			t.Fatalf("unexpected version %d at %d; want %d", c.Version, i, start+int64(i)+1)
		}
	}
	changes, _, _ = r.ChangesSince(start+2, nil)
	if got := changeSummary(changes); !cmp.Equal(got, []string{"delete:1"}) {
		t.Fatalf("unexpected changes since start+2; got %v", got)
	}
	r.Register([]*Instance{testInstance("s", "3"), testInstance("s", "4")}, nil) // 5 changes in a ring of 4
	for _, bad := range []int64{0, -1, start, start + 100} {
		if _, _, err := r.ChangesSince(bad, nil); !errors.Is(err, ErrVersionUnavailable) {
			t.Fatalf("unexpected error for version %d: %v; want ErrVersionUnavailable", bad, err)
		}
	}
	changes, _, err = r.ChangesSince(start+1, nil)
	if got, want := changeSummary(changes), []string{"new:2", "delete:1", "new:3", "new:4"}; err != nil || !cmp.Equal(got, want) {
		t.Fatalf("unexpected changes from the oldest retained version; got %v, %v; want %v", got, err, want)
	}
}

func TestChangeJSON(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{})
		defer r.Close()
		inst := &Instance{RegionID: "default", ServiceID: "s", InstanceID: "1", URL: "http://x"}
		v := r.Version()
		r.Register([]*Instance{inst}, nil)
		changes, _, _ := r.ChangesSince(v, nil)
		want := `{"changeType":"new","changeTime":946684800000,"instance":{"regionId":"default","serviceId":"s","instanceId":"1","port":0,"url":"http://x"}}`
		if got := string(changes[0].JSON()); got != want {
			t.Fatalf("unexpected change JSON;\ngot  %s\nwant %s", got, want)
		}
		if &changes[0].JSON()[0] != &changes[0].JSON()[0] {
			t.Fatalf("change JSON is encoded more than once")
		}
		if b := changes[0].JSON(); cap(b) != len(b) {
			t.Fatalf("retained change JSON wastes %d bytes of capacity", cap(b)-len(b))
		}
		// Concurrent first uses of a fresh change all get the same bytes.
		r.Register([]*Instance{{RegionID: "default", ServiceID: "s", InstanceID: "2", URL: "http://y"}}, nil)
		changes, _, _ = r.ChangesSince(v+1, nil)
		firsts := make([]*byte, 8)
		var wg sync.WaitGroup
		for i := range firsts {
			wg.Go(func() { firsts[i] = &changes[0].JSON()[0] })
		}
		wg.Wait()
		for _, p := range firsts {
			if p != firsts[0] {
				t.Fatalf("concurrent callers got different encodings of one change")
			}
		}
	})
}

func TestChangeLogAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{ChangeLogAge: 5 * time.Second, LeaseTTL: time.Hour})
		defer r.Close()
		v := r.Version()
		r.Register([]*Instance{testInstance("s", "old")}, nil)
		time.Sleep(3 * time.Second)
		mid := r.Version()
		r.Register([]*Instance{testInstance("s", "new")}, nil)
		time.Sleep(3 * time.Second) // the first change is now 6 s old
		if _, _, err := r.ChangesSince(v, nil); !errors.Is(err, ErrVersionUnavailable) {
			t.Fatalf("unexpected error %v for an aged-out version; want ErrVersionUnavailable", err)
		}
		changes, _, err := r.ChangesSince(mid, nil)
		if got := changeSummary(changes); err != nil || !cmp.Equal(got, []string{"new:new"}) {
			t.Fatalf("unexpected changes %v, %v", got, err)
		}
		if n := r.Stats().ChangeLogLen; n != 1 {
			t.Fatalf("unexpected change log length %d; want 1", n)
		}
	})
}

func TestWaitWakesOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{})
		defer r.Close()
		ch := r.Wait()
		select {
		case <-ch:
			t.Fatalf("wait channel closed before any change")
		default:
		}
		r.Register([]*Instance{testInstance("s", "1")}, nil)
		select {
		case <-ch:
		default:
			t.Fatalf("wait channel not closed after a change")
		}
	})
}

func TestFilters(t *testing.T) {
	r := newTestRegistry(t, Config{})
	for i := range 4 {
		r.Register([]*Instance{testInstance("svc", fmt.Sprint(i))}, nil)
	}
	hidden := "2"
	r.SetFilters(FilterFunc(func(v *ServiceView) {
		kept := v.Records[:0:0]
		for _, rec := range v.Records {
			if rec.InstanceID() != hidden {
				kept = append(kept, rec)
			}
		}
		v.Records = kept
	}), FilterFunc(func(v *ServiceView) {
		v.RouteRules = append(v.RouteRules, RouteRule{RouteID: "r1", Strategy: "weighted-round-robin",
			Groups: []ServiceGroup{{GroupKey: "g", Weight: 5, InstanceIDs: []string{"0", "1"}}}})
	}))
	snap := r.Service("svc")
	if got := instanceIDs(snap); !cmp.Equal(got, []string{"0", "1", "3"}) {
		t.Fatalf("unexpected filtered instances %v", got)
	}
	if want := `"routeRules":[{"routeId":"r1","strategy":"weighted-round-robin","groups":[{"groupKey":"g","weight":5,"instanceIds":["0","1"]}]}]}`; !strings.Contains(string(snap.AppendJSON(nil)), want) {
		t.Fatalf("route rules missing from %s", snap.AppendJSON(nil))
	}
	hidden = "0"
	if got := instanceIDs(r.Service("svc")); !cmp.Equal(got, []string{"0", "1", "3"}) {
		t.Fatalf("snapshot rebuilt without invalidation: %v", got)
	}
	r.Invalidate("SVC")
	if got := instanceIDs(r.Service("svc")); !cmp.Equal(got, []string{"1", "2", "3"}) {
		t.Fatalf("unexpected instances after invalidation %v", got)
	}
	if r.Stats().Instances != 4 {
		t.Fatalf("a filter removed registry data")
	}
}

func TestLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{LeaseTTL: 10 * time.Second})
		defer r.Close()
		r.Register([]*Instance{testInstance("a", "1"), testInstance("a", "2"), testInstance("b", "1")}, nil)
		time.Sleep(2 * time.Second)
		r.Heartbeat([]*Instance{testInstance("a", "2")}, nil)
		got := map[string][]string{}
		r.Leases([]string{"A", "missing"}, func(id string, ls []LeaseInfo) {
			for _, l := range ls {
				got[id] = append(got[id], fmt.Sprintf("%s %d %d %d %v", l.Record.InstanceID(), l.Created, l.Renewed, l.Eviction, l.TTL))
			}
		})
		want := map[string][]string{"a": {
			"1 946684800000 946684800000 946684810000 10s",
			"2 946684800000 946684802000 946684812000 10s",
		}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("unexpected leases (-want +got):\n%s", diff)
		}
		n := 0
		r.Leases(nil, func(string, []LeaseInfo) { n++ })
		if n != 2 {
			t.Fatalf("unexpected service count %d; want 2", n)
		}
	})
}

// testEntrySize is what a change of testInstance(service, id) costs the log
// (the same for every one-digit id).
func testEntrySize(service, id string) int64 {
	return entrySize(NewRecord(testInstance(service, id)), service)
}

// checkLogBytes fails t unless the log's byte count is the sum of its
// entries' sizes and its chunks' unused ends, and within the bound (or the log holds one oversized
// change), and returns the log's stats.
func checkLogBytes(t *testing.T, r *Registry) ChangeLogStats {
	t.Helper()
	var sum int64
	r.log.mu.RLock()
	for i := range r.log.n {
		sum += int64(r.log.ring[(r.log.head+i)%len(r.log.ring)].cost)
	}
	for _, w := range r.log.waste {
		sum += w
	}
	r.log.mu.RUnlock()
	st := r.Stats().ChangeLog
	if st.Bytes != sum || r.Stats().ChangeLogLen != st.Entries {
		t.Fatalf("unexpected change log stats %+v; want Bytes %d, the sum of its entries", st, sum)
	}
	if st.Bytes > st.MaxBytes && st.Entries > 1 {
		t.Fatalf("unexpected change log over its byte bound: %+v", st)
	}
	return st
}

func TestChangeLogBytesConfig(t *testing.T) {
	cfg, err := CheckConfig(Config{})
	if err != nil || cfg.ChangeLogBytes != 64<<20 {
		t.Fatalf("unexpected default ChangeLogBytes %d, %v; want %d", cfg.ChangeLogBytes, err, 64<<20)
	}
	if _, err := New(Config{ChangeLogBytes: -1}); err == nil || !strings.Contains(err.Error(), "ChangeLogBytes") {
		t.Fatalf("unexpected error %v for a negative ChangeLogBytes; want one naming ChangeLogBytes", err)
	}
	r := newTestRegistry(t, Config{ChangeLogBytes: 12345})
	if st := r.Stats().ChangeLog; st.MaxBytes != 12345 || st.MaxEntries != defaultChangeLogSize || st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("unexpected stats of an empty change log %+v", st)
	}
}

// TestChangeLogBytesAtTheLimit: changes that fill the byte bound exactly are
// kept; one byte less drops the oldest, which readers then cannot ask from.
func TestChangeLogBytesAtTheLimit(t *testing.T) {
	size := testEntrySize("s", "1")
	for _, tc := range []struct {
		name  string
		limit int64
		want  []string
	}{
		{"filled exactly", 3 * size, []string{"new:1", "new:2", "new:3"}},
		{"one byte over", 3*size - 1, []string{"new:2", "new:3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRegistry(t, Config{ChangeLogBytes: int(tc.limit)})
			v := r.Version()
			for _, id := range []string{"1", "2", "3"} {
				r.Register([]*Instance{testInstance("s", id)}, nil)
			}
			if st := checkLogBytes(t, r); st.Entries != len(tc.want) || st.Bytes != int64(len(tc.want))*size {
				t.Fatalf("unexpected change log %+v; want %d entries of %d bytes", st, len(tc.want), size)
			}
			oldest := v + int64(3-len(tc.want)) // the version before the oldest retained change
			changes, cur, err := r.ChangesSince(oldest, nil)
			if got := changeSummary(changes); err != nil || cur != v+3 || !cmp.Equal(got, tc.want) {
				t.Fatalf("unexpected changes since %d: %v, %d, %v; want %v", oldest, got, cur, err, tc.want)
			}
			if oldest > v {
				if _, _, err := r.ChangesSince(v, nil); !errors.Is(err, ErrVersionUnavailable) {
					t.Fatalf("unexpected error %v for a version that fell off by bytes; want ErrVersionUnavailable", err)
				}
			}
		})
	}
	t.Run("one more change", func(t *testing.T) {
		r := newTestRegistry(t, Config{ChangeLogBytes: int(3 * size)})
		v := r.Version()
		for _, id := range []string{"1", "2", "3", "4"} {
			r.Register([]*Instance{testInstance("s", id)}, nil)
		}
		if st := checkLogBytes(t, r); st.Entries != 3 || st.Bytes != 3*size {
			t.Fatalf("unexpected change log %+v; want 3 entries of %d bytes", st, size)
		}
		changes, _, err := r.ChangesSince(v+1, nil)
		if got, want := changeSummary(changes), []string{"new:2", "new:3", "new:4"}; err != nil || !cmp.Equal(got, want) {
			t.Fatalf("unexpected changes %v, %v; want %v", got, err, want)
		}
	})
}

// TestChangeLogBytesVersionFellOff: a reader whose version fell off the log
// by bytes gets ErrVersionUnavailable (services-delta.json answers "reload
// everything", the push hub reloads its subscribers); a version still
// inside gets exactly the changes after it.
func TestChangeLogBytesVersionFellOff(t *testing.T) {
	size := testEntrySize("s", "1")
	r := newTestRegistry(t, Config{ChangeLogBytes: int(5 * size)})
	v := r.Version()
	for i := range 5 {
		r.Register([]*Instance{testInstance("s", fmt.Sprint(i))}, nil)
	}
	r.Unregister([]*Instance{testInstance("s", "0"), testInstance("s", "1"), testInstance("s", "2"), testInstance("s", "3"), testInstance("s", "4")}, nil)
	all := []string{"new:0", "new:1", "new:2", "new:3", "new:4", "delete:0", "delete:1", "delete:2", "delete:3", "delete:4"}
	checkLogBytes(t, r)
	for k := range 11 {
		changes, cur, err := r.ChangesSince(v+int64(k), nil)
		if k < 5 {
			if !errors.Is(err, ErrVersionUnavailable) || len(changes) != 0 {
				t.Fatalf("unexpected answer for version v+%d, fallen off by bytes: %v, %v; want ErrVersionUnavailable", k, changeSummary(changes), err)
			}
			continue
		}
		if got, want := changeSummary(changes), all[k:]; err != nil || cur != v+10 || !cmp.Equal(got, want, cmpopts.EquateEmpty()) {
			t.Fatalf("unexpected answer for version v+%d: %v, %d, %v; want %v", k, got, cur, err, want)
		}
	}
}

// TestChangeLogKeepsAnOversizedChangeAlone: a change larger than the whole
// byte bound empties the log of older changes and is kept alone.
func TestChangeLogKeepsAnOversizedChangeAlone(t *testing.T) {
	size := testEntrySize("s", "1")
	r := newTestRegistry(t, Config{ChangeLogBytes: int(size / 2)})
	v := r.Version()
	for _, id := range []string{"1", "2", "3"} {
		r.Register([]*Instance{testInstance("s", id)}, nil)
		if st := checkLogBytes(t, r); st.Entries != 1 || st.Bytes != size {
			t.Fatalf("unexpected change log %+v; want the newest change alone (%d bytes)", st, size)
		}
	}
	changes, _, err := r.ChangesSince(v+2, nil)
	if got := changeSummary(changes); err != nil || !cmp.Equal(got, []string{"new:3"}) {
		t.Fatalf("unexpected changes %v, %v; want [new:3]", got, err)
	}
	if _, _, err := r.ChangesSince(v+1, nil); !errors.Is(err, ErrVersionUnavailable) {
		t.Fatalf("unexpected error %v; want ErrVersionUnavailable", err)
	}
}

// TestChangeLogBytesFollowEveryDrop: changes dropped by the count bound and
// by age give their bytes back.
func TestChangeLogBytesFollowEveryDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		size := testEntrySize("s", "1")
		r := newTestRegistry(t, Config{ChangeLogSize: 3, ChangeLogAge: 5 * time.Second, LeaseTTL: time.Hour})
		defer r.Close()
		for i := range 5 {
			r.Register([]*Instance{testInstance("s", fmt.Sprint(i))}, nil)
		}
		if st := checkLogBytes(t, r); st.Entries != 3 || st.Bytes != 3*size {
			t.Fatalf("unexpected change log %+v after the count bound; want 3 entries of %d bytes", st, size)
		}
		time.Sleep(6 * time.Second)
		if st := checkLogBytes(t, r); st.Entries != 0 || st.Bytes != 0 {
			t.Fatalf("unexpected change log %+v after every change aged out; want empty", st)
		}
	})
}

// largeInstance returns an instance at the size limits, every value
// escaped six-fold in JSON (about 110 KB), revision rev in its status.
func largeInstance(rev int) *Instance {
	f := strings.Repeat("\x01", MaxFieldLen)
	md := make(map[string]string, MaxMetadataLen)
	for i := range MaxMetadataLen {
		md[fmt.Sprintf("k%02d", i)] = strings.Repeat("\x01", MaxMetadataBytes/MaxMetadataLen-3)
	}
	return &Instance{RegionID: "default", ZoneID: f, GroupID: f, ServiceID: "big", InstanceID: "one", MachineName: f,
		IP: f, Port: 8080, Protocol: f, URL: f, HealthCheckURL: f, Status: fmt.Sprintf("%04d", rev) + f[4:], Metadata: md}
}

// TestChangeLogBytesBoundReregistrations is the regression test of defect
// 5: 3,000 re-registrations of one instance with large metadata, each
// followed by the change stream (which encodes each change, as the push hub
// does), used to keep 3,000 changes: about 700 MiB. The log stays within
// its 64 MiB default, its count is an upper bound of the heap it really
// keeps, and a delta from its oldest version is at most what the log counts.
func TestChangeLogBytesBoundReregistrations(t *testing.T) {
	r := newTestRegistry(t, Config{})
	if err := largeInstance(0).Validate("default"); err != nil {
		t.Fatalf("unexpected invalid test instance: %v", err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := r.Version()
	var buf []*Change
	for i := range 3000 {
		r.Register([]*Instance{largeInstance(i)}, nil)
		changes, cur, err := r.ChangesSince(v, buf[:0])
		if err != nil || len(changes) != 1 {
			t.Fatalf("unexpected change stream at re-registration %d: %d changes, %v", i, len(changes), err)
		}
		changes[0].JSON()
		v, buf = cur, changes
		clear(buf)
		if i%500 == 0 {
			checkLogBytes(t, r)
		}
	}
	st := checkLogBytes(t, r)
	if st.Bytes > st.MaxBytes || st.MaxBytes != defaultChangeLogBytes || st.Entries >= 3000 || st.Entries < 250 {
		t.Fatalf("unexpected change log after 3,000 large re-registrations %+v; want at most %d bytes (about 270 changes)", st, defaultChangeLogBytes)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if kept := int64(after.HeapAlloc) - int64(before.HeapAlloc); kept > st.Bytes+2<<20 {
		t.Fatalf("unexpected heap kept by the change log; got %d MiB; want at most its count %d MiB and 2 MiB", kept>>20, st.Bytes>>20)
	}
	first := v - int64(st.Entries)
	changes, _, err := r.ChangesSince(first, nil)
	if err != nil || len(changes) != st.Entries {
		t.Fatalf("unexpected delta from the oldest retained version: %d changes, %v; want %d", len(changes), err, st.Entries)
	}
	var answer int64
	for _, c := range changes {
		answer += int64(len(c.JSON()))
	}
	if answer > st.Bytes {
		t.Fatalf("unexpected delta of %d MiB; want at most the log's bytes, %d MiB", answer>>20, st.Bytes>>20)
	}
	if _, _, err := r.ChangesSince(first-1, nil); !errors.Is(err, ErrVersionUnavailable) {
		t.Fatalf("unexpected error %v for a version that fell off by bytes; want ErrVersionUnavailable", err)
	}
}
