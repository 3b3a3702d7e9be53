package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// hideFilter is a RecordFilter standing in for management: it hides the
// instances whose id or IP is in its set.
type hideFilter struct {
	set atomic.Pointer[map[string]bool]
}

func newHideFilter(keys ...string) *hideFilter {
	f := &hideFilter{}
	f.hide(keys...)
	return f
}

// hide replaces the hidden set.
func (f *hideFilter) hide(keys ...string) {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	f.set.Store(&m)
}

func (f *hideFilter) Hidden(rec *Record) bool {
	m := *f.set.Load()
	return m[rec.InstanceID()] || m[rec.IP()]
}

func (f *hideFilter) FilterService(v *ServiceView) {
	kept := v.Records[:0]
	for _, rec := range v.Records {
		if !f.Hidden(rec) {
			kept = append(kept, rec)
		}
	}
	v.Records = kept
}

// changesSince returns the changes after v as type:instanceId, failing the
// test on an error, and checks that their versions follow v one by one.
func changesSince(t *testing.T, r *Registry, v int64) []string {
	t.Helper()
	changes, cur, err := r.ChangesSince(v, nil)
	if err != nil {
		t.Fatalf("unexpected error reading changes since %d: %v", v, err)
	}
	for i, c := range changes {
		if c.Version != v+int64(i)+1 {
			t.Fatalf("unexpected version of change %d; got %d; want %d", i, c.Version, v+int64(i)+1)
		}
	}
	if cur != v+int64(len(changes)) {
		t.Fatalf("unexpected current version; got %d; want %d", cur, v+int64(len(changes)))
	}
	return changeSummary(changes)
}

func wantChanges(t *testing.T, r *Registry, v int64, want ...string) {
	t.Helper()
	if got := changesSince(t, r, v); !cmp.Equal(got, want) {
		t.Fatalf("unexpected changes; got %v; want %v", got, want)
	}
}

func wantInstances(t *testing.T, r *Registry, service string, want ...string) {
	t.Helper()
	if got := instanceIDs(r.Service(service)); !cmp.Equal(got, want) {
		t.Fatalf("unexpected instances of %s; got %v; want %v", service, got, want)
	}
}

// TestRefilterHideAndShow: hiding announced instances logs their deletes,
// showing them again their news, in instance id order with consecutive
// versions; a Refilter with nothing to change logs nothing.
func TestRefilterHideAndShow(t *testing.T) {
	r := newTestRegistry(t, Config{})
	f := newHideFilter()
	r.SetFilters(f)
	r.Register([]*Instance{testInstance("Svc", "1"), testInstance("svc", "2"), testInstance("svc", "3")}, nil)
	wantInstances(t, r, "svc", "1", "2", "3")

	v := r.Version()
	f.hide("2")
	r.Refilter("SVC")
	wantChanges(t, r, v, "delete:2")
	wantInstances(t, r, "svc", "1", "3")
	changes, _, _ := r.ChangesSince(v, nil)
	if changes[0].ServiceID != "Svc" {
		t.Fatalf("unexpected service id of the change; got %q; want %q", changes[0].ServiceID, "Svc")
	}

	v = r.Version()
	f.hide("3", "2", "1")
	r.Refilter("svc")
	r.Refilter("svc", "unknown") // nothing more to do; an unknown service is skipped
	f.hide()
	r.Refilter("svc")
	wantChanges(t, r, v, "delete:1", "delete:3", "new:1", "new:2", "new:3")
	wantInstances(t, r, "svc", "1", "2", "3")
}

// TestHiddenInstanceLifecycle: a hidden instance's register, re-register
// with new data, heartbeat and unregister log nothing; new data that hides
// an announced instance logs its delete (of the record subscribers saw),
// and new data that shows a hidden one its new.
func TestHiddenInstanceLifecycle(t *testing.T) {
	r := newTestRegistry(t, Config{})
	r.SetFilters(newHideFilter("h", "10.9.9.9"))
	v := r.Version()
	h := testInstance("svc", "h")
	r.Register([]*Instance{h}, nil)
	h2 := testInstance("svc", "h")
	h2.Metadata["version"] = "2"
	r.Register([]*Instance{h2}, nil)
	if failed := r.Heartbeat([]*Instance{h}, nil); len(failed) != 0 {
		t.Fatalf("unexpected heartbeat failures %v", errorsOf(failed))
	}
	r.Unregister([]*Instance{h}, nil)
	wantChanges(t, r, v)
	if r.Stats().Registrations != 2 || r.Stats().Unregistrations != 1 {
		t.Fatalf("unexpected stats %+v", r.Stats())
	}

	a := testInstance("svc", "a")
	r.Register([]*Instance{a}, nil)
	moved := testInstance("svc", "a")
	moved.IP = "10.9.9.9" // onto a hidden server
	r.Register([]*Instance{moved}, nil)
	moved.Status = StatusDown // still hidden: nothing
	r.Register([]*Instance{moved}, nil)
	r.Register([]*Instance{a}, nil) // back
	wantChanges(t, r, v, "new:a", "delete:a", "new:a")
	changes, _, _ := r.ChangesSince(v, nil)
	if ip := changes[1].Record.IP(); ip != a.IP {
		t.Fatalf("unexpected record of the delete; got IP %s; want the announced %s", ip, a.IP)
	}
	wantInstances(t, r, "svc", "a")
}

// TestEvictionOfHiddenInstance: an evicted hidden instance logs no delete.
func TestEvictionOfHiddenInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{LeaseTTL: 3 * time.Second})
		defer r.Close()
		r.SetFilters(newHideFilter("hidden"))
		r.Register([]*Instance{testInstance("svc", "hidden"), testInstance("svc", "shown"), testInstance("svc", "kept")}, nil)
		v := r.Version()
		for range 5 {
			time.Sleep(time.Second)
			r.Heartbeat([]*Instance{testInstance("svc", "kept")}, nil)
		}
		if r.Stats().Evictions != 2 {
			t.Fatalf("unexpected evictions; got %d; want 2", r.Stats().Evictions)
		}
		wantChanges(t, r, v, "delete:shown")
	})
}

// TestSetFiltersRefilters: installing a RecordFilter withdraws the
// instances it hides; removing it announces them.
func TestSetFiltersRefilters(t *testing.T) {
	r := newTestRegistry(t, Config{})
	r.Register([]*Instance{testInstance("svc", "1"), testInstance("svc", "2"), testInstance("other", "2")}, nil)
	v := r.Version()
	r.SetFilters(newHideFilter("2"))
	if got := changesSince(t, r, v); !cmp.Equal(sortedCopy(got), []string{"delete:2", "delete:2"}) {
		t.Fatalf("unexpected changes; got %v; want two deletes of 2", got)
	}
	wantInstances(t, r, "svc", "1")
	v = r.Version()
	r.SetFilters()
	if got := changesSince(t, r, v); !cmp.Equal(got, []string{"new:2", "new:2"}) {
		t.Fatalf("unexpected changes; got %v; want two news of 2", got)
	}
	wantInstances(t, r, "svc", "1", "2")
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestReload: Reload logs one reload per service, registered or not, whose
// JSON is the contract's reload InstanceChange (the frame the server's
// push hub sends when a subscriber must re-fetch).
func TestReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{})
		defer r.Close()
		r.Register([]*Instance{testInstance("Svc", "1")}, nil)
		v := r.Version()
		r.Reload("SVC", "absent")
		wantChanges(t, r, v, "reload:reload", "reload:reload")
		changes, _, _ := r.ChangesSince(v, nil)
		for i, want := range []string{
			`{"changeType":"reload","changeTime":946684800000,"instance":{"serviceId":"Svc","instanceId":"reload"}}`,
			`{"changeType":"reload","changeTime":946684800000,"instance":{"serviceId":"absent","instanceId":"reload"}}`,
		} {
			c := changes[i]
			if got := string(c.JSON()); got != want {
				t.Fatalf("unexpected reload JSON;\ngot  %s\nwant %s", got, want)
			}
			if c.Type != ChangeReload || c.ServiceID != c.Record.ServiceID() || c.Record.Port() != 0 || c.Record.MetadataLen() != 0 {
				t.Fatalf("unexpected reload change %+v", c)
			}
		}
	})
}

// TestRefilterRacesRegistrations: registrations, re-registrations with new
// data, unregistrations and heartbeats race filter changes with their
// Refilter. Replaying the log never withdraws an instance it did not
// announce, and ends with exactly what discovery shows and the filter
// allows.
func TestRefilterRacesRegistrations(t *testing.T) {
	r := newTestRegistry(t, Config{ChangeLogSize: 1 << 20, ChangeLogBytes: 1 << 30})
	f := newHideFilter()
	r.SetFilters(f)
	start := r.Version()
	const ids, workers, rounds = 16, 4, 1000
	inst := func(i int, ip string) *Instance {
		in := testInstance("svc", fmt.Sprint(i))
		in.IP = ip
		return in
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				in := inst(rng.IntN(ids), fmt.Sprintf("10.0.0.%d", rng.IntN(3)))
				switch rng.IntN(4) {
				case 0, 1:
					r.Register([]*Instance{in}, nil)
				case 2:
					r.Unregister([]*Instance{in}, nil)
				case 3:
					r.Heartbeat([]*Instance{in}, nil)
				}
			}
		})
	}
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(99, 1))
		for range rounds {
			f.hide(fmt.Sprint(rng.IntN(ids)), fmt.Sprintf("10.0.0.%d", rng.IntN(3)))
			r.Refilter("svc")
			r.Service("svc") // rebuild a snapshot now and then
		}
	})
	wg.Wait()

	changes, _, err := r.ChangesSince(start, nil)
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	shown := map[string]bool{}
	for _, c := range changes {
		id := c.Record.InstanceID()
		switch c.Type {
		case ChangeNew:
			shown[id] = true
		case ChangeDelete:
			if !shown[id] {
				t.Fatalf("delete of %s at version %d, which the log did not announce", id, c.Version)
			}
			delete(shown, id)
		default:
			t.Fatalf("unexpected change type %v", c.Type)
		}
	}
	var replayed, allowed []string
	for id := range shown {
		replayed = append(replayed, id)
	}
	slices.Sort(replayed)
	r.Leases(nil, func(_ string, ls []LeaseInfo) {
		for _, l := range ls {
			if !f.Hidden(l.Record) {
				allowed = append(allowed, l.Record.InstanceID())
			}
		}
	})
	slices.Sort(allowed)
	if !cmp.Equal(replayed, allowed) {
		t.Fatalf("unexpected instances after replaying the log; got %v; want %v", replayed, allowed)
	}
	if len(allowed) > 0 {
		if got := instanceIDs(r.Service("svc")); !cmp.Equal(got, allowed) {
			t.Fatalf("unexpected instances in discovery; got %v; want %v", got, allowed)
		}
	}
}
