package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newTestRegistry(t testing.TB, cfg Config) *Registry {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("cannot create registry: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

func testInstance(service, id string) *Instance {
	return &Instance{
		RegionID: "default", ZoneID: "zone-a", ServiceID: service, InstanceID: id,
		IP: "10.0.0.1", Port: 8080, Protocol: "http", URL: "http://10.0.0.1:8080/" + id,
		HealthCheckURL: "http://10.0.0.1:8080/health", Status: StatusUp,
		MachineName: "host-" + id, Metadata: map[string]string{"version": "1.2.3", "weight": "5", "owner": id},
	}
}

func errorsOf(failed []FailedInstance) []string {
	var out []string
	for _, f := range failed {
		switch {
		case errors.Is(f.Err, ErrNoPermission):
			out = append(out, f.Instance.InstanceID+":no-permission")
		case errors.Is(f.Err, ErrInvalidInstance):
			out = append(out, f.Instance.InstanceID+":invalid")
		case errors.Is(f.Err, ErrNotFound):
			out = append(out, f.Instance.InstanceID+":not-found")
		default:
			out = append(out, f.Instance.InstanceID+":"+f.Err.Error())
		}
	}
	return out
}

func instanceIDs(snap *Snapshot) []string {
	if snap == nil {
		return nil
	}
	var ids []string
	for _, rec := range snap.Records.All() {
		ids = append(ids, rec.InstanceID())
	}
	return ids
}

func TestRegisterValidation(t *testing.T) {
	r := newTestRegistry(t, Config{})
	mod := func(id string, f func(*Instance)) *Instance {
		inst := testInstance("svc", id)
		f(inst)
		return inst
	}
	insts := []*Instance{
		testInstance("svc", "ok"),
		nil,
		mod("other-region", func(i *Instance) { i.RegionID = "elsewhere" }),
		mod("region-case", func(i *Instance) { i.RegionID = "DEFAULT" }),
		mod("", func(i *Instance) {}),
		mod("blank-service", func(i *Instance) { i.ServiceID = "  " }),
		mod("no-url", func(i *Instance) { i.URL = "" }),
		mod("bad-port", func(i *Instance) { i.Port = 70000 }),
		mod("neg-port", func(i *Instance) { i.Port = -1 }),
		mod("long-field", func(i *Instance) { i.MachineName = string(make([]byte, MaxFieldLen+1)) }),
	}
	got := errorsOf(r.Register(insts, nil))
	want := []string{"other-region:no-permission", ":invalid", "blank-service:invalid", "no-url:invalid",
		"bad-port:invalid", "neg-port:invalid", "long-field:invalid"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("unexpected failures (-want +got):\n%s", diff)
	}
	if got, want := instanceIDs(r.Service("svc")), []string{"ok", "region-case"}; !cmp.Equal(got, want) {
		t.Fatalf("unexpected instances; got %v; want %v", got, want)
	}
}

func TestBatchOperations(t *testing.T) {
	r := newTestRegistry(t, Config{Region: "us", Zone: "z1"})
	a, b := testInstance("svc-a", "a1"), testInstance("svc-b", "b1")
	a.RegionID, b.RegionID = "us", "US"
	ghost := testInstance("svc-a", "ghost")
	ghost.RegionID = "us"
	foreign := testInstance("svc-a", "foreign")

	steps := []struct {
		name     string
		op       func([]*Instance, []FailedInstance) []FailedInstance
		insts    []*Instance
		failures []string
		services map[string][]string
	}{
		{"register two services", r.Register, []*Instance{a, b}, nil,
			map[string][]string{"svc-a": {"a1"}, "svc-b": {"b1"}}},
		{"heartbeat known, unknown and foreign", r.Heartbeat, []*Instance{a, ghost, nil, foreign},
			[]string{"ghost:not-found", "foreign:no-permission"}, map[string][]string{"svc-a": {"a1"}, "svc-b": {"b1"}}},
		{"unregister unknown is not an error", r.Unregister, []*Instance{ghost}, nil,
			map[string][]string{"svc-a": {"a1"}, "svc-b": {"b1"}}},
		{"unregister removes at once", r.Unregister, []*Instance{a, foreign}, []string{"foreign:no-permission"},
			map[string][]string{"svc-a": nil, "svc-b": {"b1"}}},
		{"heartbeat after unregister fails", r.Heartbeat, []*Instance{a}, []string{"a1:not-found"},
			map[string][]string{"svc-a": nil, "svc-b": {"b1"}}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if got := errorsOf(st.op(st.insts, nil)); !cmp.Equal(got, st.failures) {
				t.Fatalf("unexpected failures; got %v; want %v", got, st.failures)
			}
			for svc, want := range st.services {
				if got := instanceIDs(r.Service(svc)); !cmp.Equal(got, want) {
					t.Fatalf("unexpected instances of %s; got %v; want %v", svc, got, want)
				}
			}
		})
	}
	if got := r.Stats(); got.Instances != 1 || got.Services != 1 || got.Registrations != 2 || got.Unregistrations != 1 || got.Renewals != 1 {
		t.Fatalf("unexpected stats; got %+v", got)
	}
}

func TestKeysAreCaseInsensitive(t *testing.T) {
	r := newTestRegistry(t, Config{})
	r.Register([]*Instance{testInstance("MyService", "Inst-1")}, nil)
	other := testInstance("MYSERVICE", "INST-1")
	other.RegionID = "Default"
	if failed := r.Heartbeat([]*Instance{other}, nil); len(failed) != 0 {
		t.Fatalf("unexpected heartbeat failures; got %v; want none", errorsOf(failed))
	}
	other.URL = "http://changed/"
	r.Register([]*Instance{other}, nil)
	snap := r.Service("myservice")
	if snap == nil || snap.Records.Len() != 1 {
		t.Fatalf("unexpected snapshot; got %v; want one instance", instanceIDs(snap))
	}
	if snap.ServiceID != "MyService" || snap.Records.At(0).URL() != "http://changed/" {
		t.Fatalf("unexpected service %q url %q; want MyService and the replaced url", snap.ServiceID, snap.Records.At(0).URL())
	}
	if got := r.Stats().Instances; got != 1 {
		t.Fatalf("unexpected instance count; got %d; want 1", got)
	}
}

func TestSnapshotJSON(t *testing.T) {
	r := newTestRegistry(t, Config{})
	inst := testInstance("svc", "i1")
	inst.GroupID = ""
	inst.Metadata = map[string]string{"b": "2", "a": "quote\"\n\x01"}
	r.Register([]*Instance{inst}, nil)
	got := string(r.Service("SVC").AppendJSON(nil))
	want := `{"serviceId":"svc","instances":[{"regionId":"default","zoneId":"zone-a","serviceId":"svc",` +
		`"instanceId":"i1","machineName":"host-i1","ip":"10.0.0.1","port":8080,"protocol":"http",` +
		`"url":"http://10.0.0.1:8080/i1","healthCheckUrl":"http://10.0.0.1:8080/health","status":"up",` +
		`"metadata":{"a":"quote\"\n\u0001","b":"2"}}]}`
	if got != want {
		t.Fatalf("unexpected JSON;\ngot  %s\nwant %s", got, want)
	}
	var decoded struct {
		ServiceID string     `json:"serviceId"`
		Instances []Instance `json:"instances"`
	}
	if err := json.Unmarshal([]byte(got), &decoded); err != nil {
		t.Fatalf("cannot decode snapshot JSON: %v", err)
	}
	if diff := cmp.Diff(*inst, decoded.Instances[0]); diff != "" {
		t.Fatalf("unexpected round trip (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(*inst, r.Service("svc").Records.At(0).Instance()); diff != "" {
		t.Fatalf("unexpected record accessors (-want +got):\n%s", diff)
	}
	if r.Service("unknown") != nil {
		t.Fatalf("unexpected snapshot for an unknown service")
	}
	if got := string(AppendEmptyService(nil, "x\"y")); got != `{"serviceId":"x\"y","instances":[]}` {
		t.Fatalf("unexpected empty service JSON %s", got)
	}
}

func TestServicesListsOnlyVisible(t *testing.T) {
	r := newTestRegistry(t, Config{})
	r.Register([]*Instance{testInstance("b", "1"), testInstance("a", "1"), testInstance("c", "1")}, nil)
	r.Unregister([]*Instance{testInstance("c", "1")}, nil)
	snaps, version := r.Services()
	var ids []string
	for _, s := range snaps {
		ids = append(ids, s.ServiceID)
	}
	if !cmp.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("unexpected services; got %v; want [a b]", ids)
	}
	if version != r.Version() {
		t.Fatalf("unexpected version %d; want %d", version, r.Version())
	}
}

func TestReregisterIdenticalEmitsNothing(t *testing.T) {
	r := newTestRegistry(t, Config{})
	r.Register([]*Instance{testInstance("svc", "1")}, nil)
	v := r.Version()
	r.Register([]*Instance{testInstance("svc", "1")}, nil)
	if r.Version() != v {
		t.Fatalf("unexpected version change on identical re-register; got %d; want %d", r.Version(), v)
	}
	changed := testInstance("svc", "1")
	changed.Status = StatusDown
	r.Register([]*Instance{changed}, nil)
	changes, _, err := r.ChangesSince(v, nil)
	if err != nil || len(changes) != 1 || changes[0].Type != ChangeNew || changes[0].Record.Status() != StatusDown {
		t.Fatalf("unexpected changes %v, %v; want one new with status down", changes, err)
	}
}

func TestConfigErrors(t *testing.T) {
	f := func(cfg Config, wantErr string) {
		t.Helper()
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("unexpected error %v; want one naming %q", err, wantErr)
		}
	}
	f(Config{LeaseTTL: time.Millisecond}, "LeaseTTL")
	f(Config{Shards: -1}, "Shards")
	f(Config{ChangeLogSize: -5}, "ChangeLogSize")
	f(Config{SelfPreservation: SelfPreservationConfig{Threshold: 2}}, "Threshold")
	f(Config{EvictionTick: time.Hour}, "EvictionTick")
}

func TestShardsRoundUp(t *testing.T) {
	r := newTestRegistry(t, Config{Shards: 5})
	if len(r.shards) != 8 {
		t.Fatalf("unexpected shard count; got %d; want 8", len(r.shards))
	}
	for i := range 100 {
		r.Register([]*Instance{testInstance("svc", fmt.Sprint(i))}, nil)
	}
	if got := r.Service("svc").Records.Len(); got != 100 {
		t.Fatalf("unexpected instance count; got %d; want 100", got)
	}
}

func TestLeaseExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{LeaseTTL: 3 * time.Second})
		defer r.Close()
		kept, dropped := testInstance("svc", "kept"), testInstance("svc", "dropped")
		r.Register([]*Instance{kept, dropped}, nil)
		v := r.Version()
		for range 5 { // 5 s: the kept one heartbeats every second
			time.Sleep(time.Second)
			if failed := r.Heartbeat([]*Instance{kept}, nil); len(failed) != 0 {
				t.Fatalf("unexpected heartbeat failure: %v", errorsOf(failed))
			}
		}
		if got := instanceIDs(r.Service("svc")); !cmp.Equal(got, []string{"kept"}) {
			t.Fatalf("unexpected instances after expiry; got %v; want [kept]", got)
		}
		changes, _, err := r.ChangesSince(v, nil)
		if err != nil || len(changes) != 1 || changes[0].Type != ChangeDelete || changes[0].Record.InstanceID() != "dropped" {
			t.Fatalf("unexpected changes %v, %v; want one delete of dropped", changes, err)
		}
		if r.Stats().Evictions != 1 {
			t.Fatalf("unexpected evictions; got %d; want 1", r.Stats().Evictions)
		}
	})
}

// TestEvictionIsAtMostTwoTicksLate tests the promise of Config.EvictionTick
// and the README: an expired lease is evicted no earlier than its deadline
// (last registration or heartbeat plus the TTL) and at most two ticks after
// it, whatever the phase of the registry's ticker, of the registration and
// of the last heartbeat relative to the tick grid.
func TestEvictionIsAtMostTwoTicksLate(t *testing.T) {
	type tc struct {
		tick, ttl       time.Duration
		start, register time.Duration // sleeps before New and before Register
		heartbeat       time.Duration // after Register; 0: none
	}
	var cases []tc
	for _, tick := range []time.Duration{250 * time.Millisecond, 100 * time.Millisecond} {
		for _, start := range []time.Duration{0, 37 * time.Millisecond} {
			for _, register := range []time.Duration{0, time.Millisecond, 123 * time.Millisecond, tick - time.Millisecond, tick} {
				for _, hb := range []time.Duration{0, 1700 * time.Millisecond} {
					cases = append(cases, tc{tick, 3 * time.Second, start, register, hb})
				}
			}
		}
	}
	cases = append(cases, tc{250 * time.Millisecond, 1100 * time.Millisecond, 5 * time.Millisecond, 240 * time.Millisecond, 0})
	// TTLs past the wheel's horizon (maxWheelSlots ticks): queued at the
	// horizon, re-queued until their deadline is within it.
	cases = append(cases, tc{250 * time.Millisecond, 5 * time.Minute, 0, 123 * time.Millisecond, 0},
		tc{100 * time.Millisecond, 2 * time.Minute, 37 * time.Millisecond, 0, 70 * time.Second})
	for _, c := range cases {
		name := fmt.Sprintf("tick=%v/ttl=%v/start=%v/register=%v/heartbeat=%v", c.tick, c.ttl, c.start, c.register, c.heartbeat)
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				time.Sleep(c.start)
				r := newTestRegistry(t, Config{LeaseTTL: c.ttl, EvictionTick: c.tick})
				defer r.Close()
				time.Sleep(c.register)
				inst := testInstance("svc", "1")
				r.Register([]*Instance{inst}, nil)
				v := r.Version()
				renewed := time.Now()
				if c.heartbeat > 0 {
					time.Sleep(c.heartbeat)
					if failed := r.Heartbeat([]*Instance{inst}, nil); len(failed) != 0 {
						t.Fatalf("unexpected heartbeat failure: %v", errorsOf(failed))
					}
					renewed = time.Now()
				}
				deadline := renewed.Add(c.ttl)
				time.Sleep(time.Until(deadline) - time.Millisecond)
				synctest.Wait()
				if got := instanceIDs(r.Service("svc")); len(got) != 1 || r.Stats().Evictions != 0 {
					t.Fatalf("evicted before its deadline: instances %v, %d evictions, 1 ms before the deadline", got, r.Stats().Evictions)
				}
				time.Sleep(time.Until(deadline.Add(2*c.tick)) + time.Millisecond)
				synctest.Wait()
				if got := instanceIDs(r.Service("svc")); len(got) != 0 || r.Stats().Evictions != 1 {
					t.Fatalf("not evicted two ticks after its deadline: instances %v, %d evictions", got, r.Stats().Evictions)
				}
				changes, _, err := r.ChangesSince(v, nil)
				if err != nil || len(changes) != 1 || changes[0].Type != ChangeDelete {
					t.Fatalf("unexpected changes %v, %v; want one delete", changes, err)
				}
				late := time.Duration(changes[0].Time-deadline.UnixMilli()) * time.Millisecond
				if late < 0 || late > 2*c.tick {
					t.Fatalf("unexpected eviction lateness %v; want within 0..%v (two ticks)", late, 2*c.tick)
				}
			})
		})
	}
}

func TestExpiredHeartbeatFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A registry whose eviction is suspended by self-preservation still
		// refuses heartbeats of expired leases: the client must re-register.
		r := newTestRegistry(t, Config{LeaseTTL: 2 * time.Second, SelfPreservation: SelfPreservationConfig{MinPeak: 1, Window: time.Second}})
		defer r.Close()
		a, b := testInstance("svc", "a"), testInstance("svc", "b")
		r.Register([]*Instance{a, b}, nil)
		for range 20 {
			time.Sleep(500 * time.Millisecond)
			r.Heartbeat([]*Instance{a, b}, nil)
		}
		for range 10 { // b stops: renewals halve, eviction is suspended
			time.Sleep(500 * time.Millisecond)
			r.Heartbeat([]*Instance{a}, nil)
		}
		if !r.Stats().SelfPreservation.Active {
			t.Fatalf("self-preservation not active: %+v", r.Stats())
		}
		if got := errorsOf(r.Heartbeat([]*Instance{b}, nil)); !cmp.Equal(got, []string{"b:not-found"}) {
			t.Fatalf("unexpected heartbeat result %v; want not-found", got)
		}
		if got := instanceIDs(r.Service("svc")); !cmp.Equal(got, []string{"a", "b"}) {
			t.Fatalf("unexpected instances %v while self-preservation is active; want [a b]", got)
		}
		if got := r.Stats().Expired; got != 1 {
			t.Fatalf("unexpected expired count %d; want 1", got)
		}
		r.Register([]*Instance{b}, nil)
		if failed := r.Heartbeat([]*Instance{b}, nil); len(failed) != 0 {
			t.Fatalf("unexpected heartbeat failure after re-register: %v", errorsOf(failed))
		}
		if got := r.Stats().Expired; got != 0 {
			t.Fatalf("unexpected expired count %d after re-register; want 0", got)
		}
	})
}

func TestSelfPreservation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{LeaseTTL: 5 * time.Second})
		defer r.Close()
		var insts []*Instance
		for i := range 100 {
			insts = append(insts, testInstance(fmt.Sprintf("svc-%d", i%10), fmt.Sprint(i)))
		}
		r.Register(insts, nil)
		// beat heartbeats insts[:n] once a second, a quarter every 250 ms as
		// real clients spread out, so the window count does not alias. The
		// refused ones re-register when reregister is set, as clients do.
		beat := func(n int, d time.Duration, reregister bool) {
			for i := range int(d / (250 * time.Millisecond)) {
				time.Sleep(250 * time.Millisecond)
				for j := i % 4; j < n; j += 4 {
					if f := r.Heartbeat(insts[j:j+1], nil); len(f) > 0 && reregister {
						r.Register(insts[j:j+1], nil)
					}
				}
			}
		}
		beat(100, 20*time.Second, false) // steady: 1000 renewals per 10 s window
		if sp := r.Stats().SelfPreservation; sp.Active || sp.Peak < 900 || !sp.Enabled {
			t.Fatalf("unexpected state in steady traffic: %+v", sp)
		}
		beat(10, 30*time.Second, false) // 90 % stop heartbeating
		st := r.Stats()
		if !st.SelfPreservation.Active || st.Instances != 100 || st.Evictions != 0 || st.Expired != 90 {
			t.Fatalf("unexpected state after mass expiry: %+v", st)
		}
		// Heartbeats resume; the refused ones re-register, as clients do.
		beat(100, 12*time.Second, true)
		st = r.Stats()
		if st.SelfPreservation.Active || st.Instances != 100 || st.Evictions != 0 {
			t.Fatalf("unexpected state after recovery: %+v", st)
		}
		// Normal eviction is back: 5 % stop and are evicted.
		beat(95, 10*time.Second, false)
		st = r.Stats()
		if st.SelfPreservation.Active || st.Instances != 95 || st.Evictions != 5 {
			t.Fatalf("unexpected state after a small loss: %+v", st)
		}
	})
}

func TestSelfPreservationDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{LeaseTTL: 2 * time.Second, SelfPreservation: SelfPreservationConfig{Disabled: true, MinPeak: 1}})
		defer r.Close()
		insts := []*Instance{testInstance("svc", "1"), testInstance("svc", "2")}
		r.Register(insts, nil)
		for range 10 {
			time.Sleep(500 * time.Millisecond)
			r.Heartbeat(insts, nil)
		}
		time.Sleep(3 * time.Second)
		if st := r.Stats(); st.Instances != 0 || st.SelfPreservation.Active || st.SelfPreservation.Enabled {
			t.Fatalf("unexpected state with self-preservation disabled: %+v", st)
		}
	})
}

// TestPeakHoldsDuringAnOutage: with 90 % of the renewals lost, the peak
// does not decay while protection is on (issue 10, defect 9: it used to
// decay after PeakDecay and end protection); core/selfpreservation_test.go
// covers the outage's end and a fleet that shrinks while safe.
func TestPeakHoldsDuringAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{LeaseTTL: 5 * time.Second, SelfPreservation: SelfPreservationConfig{PeakDecay: time.Minute}})
		defer r.Close()
		var insts []*Instance
		for i := range 100 {
			insts = append(insts, testInstance("svc", fmt.Sprint(i)))
		}
		r.Register(insts, nil)
		for range 15 {
			time.Sleep(time.Second)
			r.Heartbeat(insts, nil)
		}
		for i := range 280 { // 70 s at 40 renewals/s
			time.Sleep(250 * time.Millisecond)
			r.Heartbeat(insts[:10], nil)
			if i == 120 && !r.Stats().SelfPreservation.Active {
				t.Fatalf("self-preservation not active before the peak decayed: %+v", r.Stats())
			}
		}
		st := r.Stats().SelfPreservation
		if !st.Active || st.Peak < 1000 {
			t.Fatalf("protection ended during the outage, after PeakDecay: %+v", st)
		}
	})
}

// TestClockResolution: with a positive ClockResolution, operations are
// stamped with the registry's own clock, at most one resolution behind
// Now, and eviction still happens by Now. Runs on synctest's clock.
func TestClockResolution(t *testing.T) {
	if _, err := New(Config{ClockResolution: time.Microsecond}); err == nil {
		t.Fatal("unexpected no error for a ClockResolution under 1ms")
	}
	if _, err := New(Config{ClockResolution: time.Second}); err == nil {
		t.Fatal("unexpected no error for a ClockResolution over EvictionTick")
	}
	synctest.Test(t, func(t *testing.T) {
		const res = 10 * time.Millisecond
		r := newTestRegistry(t, Config{ClockResolution: res, LeaseTTL: 5 * time.Second, SelfPreservation: SelfPreservationConfig{Disabled: true}})
		var info LeaseInfo
		// Before the clock's first tick, and after some.
		for _, wait := range []time.Duration{0, 1234 * time.Millisecond} {
			time.Sleep(wait)
			r.Register([]*Instance{testInstance("svc", "a")}, nil)
			now := time.Now().UnixMilli()
			r.Leases(nil, func(_ string, l []LeaseInfo) { info = l[0] })
			if info.Renewed > now || info.Renewed < now-res.Milliseconds() {
				t.Fatalf("unexpected renewal stamp %d after %v; want within %v before %d", info.Renewed, wait, res, now)
			}
		}
		inst := testInstance("svc", "a")
		time.Sleep(3 * time.Second)
		if failed := r.Heartbeat([]*Instance{inst}, nil); len(failed) != 0 {
			t.Fatalf("unexpected heartbeat failure: %v", failed[0].Err)
		}
		r.Leases(nil, func(_ string, l []LeaseInfo) { info = l[0] })
		if now := time.Now().UnixMilli(); info.Renewed > now || info.Renewed < now-res.Milliseconds() {
			t.Fatalf("unexpected heartbeat stamp %d; want within %v before %d", info.Renewed, res, now)
		}
		time.Sleep(6 * time.Second) // past the TTL and two eviction ticks
		if st := r.Stats(); st.Instances != 0 || st.Evictions != 1 {
			t.Fatalf("unexpected stats after the lease expired: %+v", st)
		}
	})
}
