package core

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
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
