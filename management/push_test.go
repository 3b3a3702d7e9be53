package management

import (
	"slices"
	"testing"
	"time"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/store"
)

// Contract section 11, push: management taking a registered instance down
// logs (and so pushes) a delete, bringing it back a new, for every kind of
// operation; other changes to what discovery attaches to a service log one
// reload; a down instance is never announced.

// changes returns the changes logged on e since version v as
// type:service/instance (type:service for a reload).
func (e *env) changes(v int64) []string {
	e.t.Helper()
	changes, _, err := e.reg.ChangesSince(v, nil)
	if err != nil {
		e.t.Fatalf("unexpected error reading changes since %d: %v", v, err)
	}
	var out []string
	for _, c := range changes {
		s := c.Type.String() + ":" + c.ServiceID
		if c.Type != core.ChangeReload {
			s += "/" + c.Record.InstanceID()
		}
		out = append(out, s)
	}
	return out
}

// wantChanges checks what fn logs.
func (e *env) wantChanges(fn func(), want ...string) {
	e.t.Helper()
	v := e.reg.Version()
	fn()
	if got := e.changes(v); !slices.Equal(got, want) {
		e.t.Fatalf("unexpected changes; got %v; want %v", got, want)
	}
}

// TestPullOutAndInPushDeleteAndNew: each kind of operation logs a delete
// for exactly the registered instances it takes down, and its completion a
// new for each, in service then instance id order, and no reload.
func TestPullOutAndInPushDeleteAndNew(t *testing.T) {
	type op func(e *env, complete bool)
	cases := []struct {
		name string
		op   op
		want []string // the deletes; the news follow the same order
	}{
		{"instance", func(e *env, complete bool) {
			e.must(e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: region, ServiceID: "SVC", InstanceID: "A"},
				Operation: "pullout", OperatorID: "o", OperationComplete: complete}))
		}, []string{"svc/a"}},
		{"server", func(e *env, complete bool) {
			e.must(e.m.OperateServer(e.ctx, &OperateServerRequest{ServerKey: store.ServerKey{RegionID: region, ServerID: "10.0.0.1"},
				Operation: "pullout", OperatorID: "o", OperationComplete: complete}))
		}, []string{"other/d", "svc/a"}},
		{"zone", func(e *env, complete bool) {
			e.must(e.m.OperateZoneOperations(e.ctx, &OperateZonesRequest{OperationComplete: complete, Audit: Audit{OperatorID: "o"},
				ZoneOperationsList: []ZoneOperations{{ZoneKey: store.ZoneKey{RegionID: region, ServiceID: "svc", ZoneID: "z1"}, Operations: []string{"pullout"}}}}))
		}, []string{"svc/a", "svc/b"}},
		{"group", func(e *env, complete bool) {
			e.must(e.m.OperateGroupOperation(e.ctx, &OperateGroupRequest{ServiceID: "svc", RegionID: region, ZoneID: "z1", Name: "blue", AppID: "app",
				OperationComplete: complete, Audit: Audit{Operation: "pullout", OperatorID: "o"}}))
		}, []string{"svc/a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.register(inst("svc", "a", "10.0.0.1", "z1", "blue"), inst("svc", "b", "10.0.0.2", "z1", ""), inst("svc", "c", "10.0.0.3", "z2", "blue"),
				inst("other", "d", "10.0.0.1", "z1", ""))
			var deletes, news []string
			for _, id := range c.want {
				deletes = append(deletes, "delete:"+id)
				news = append(news, "new:"+id)
			}
			e.wantChanges(func() { c.op(e, false) }, deletes...)
			e.wantChanges(func() { c.op(e, false) }) // again: already down
			e.wantChanges(func() { c.op(e, true) }, news...)
			e.wantVisible("svc", "a", "b", "c")
		})
	}
}

// TestDownInstanceIsNotAnnounced: no new for an instance still down by
// another operation, nor on the register (or re-register) of a down one;
// its unregister logs nothing either.
func TestDownInstanceIsNotAnnounced(t *testing.T) {
	e := newEnv(t)
	e.register(inst("svc", "a", "10.0.0.1", "z1", ""))
	key := store.InstanceKey{RegionID: region, ServiceID: "svc", InstanceID: "a"}
	zone := []ZoneOperations{{ZoneKey: store.ZoneKey{RegionID: region, ServiceID: "svc", ZoneID: "z1"}, Operations: []string{"pullout"}}}
	e.wantChanges(func() {
		e.must(e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: key, Operation: "pullout", OperatorID: "o"}))
		e.must(e.m.OperateZoneOperations(e.ctx, &OperateZonesRequest{ZoneOperationsList: zone}))
	}, "delete:svc/a")
	e.wantChanges(func() {
		e.must(e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: key, Operation: "pullout", OperatorID: "o", OperationComplete: true}))
		e.register(inst("svc", "b", "10.0.0.2", "z1", ""))
		moved := inst("svc", "b", "10.0.0.3", "z1", "")
		e.register(moved)
		e.reg.Unregister([]*core.Instance{moved}, nil)
		e.register(inst("svc", "c", "10.0.0.4", "z1", ""))
	})
	e.wantVisible("svc")
	e.wantChanges(func() {
		e.must(e.m.OperateZoneOperations(e.ctx, &OperateZonesRequest{ZoneOperationsList: zone, OperationComplete: true}))
	}, "new:svc/a", "new:svc/c")
}

// TestViewChangesPushReload: a change to a service's route rules, group
// weights, canary members or logical instances logs one reload, for a
// service with registered instances (spelled as registered) or without;
// a pulled-out logical instance too, and a server pull-out logs the
// deletes of its registered instances before the reload of the logical
// instance it takes down.
func TestViewChangesPushReload(t *testing.T) {
	e := newEnv(t)
	e.register(inst("Svc", "a", "10.0.0.1", "z1", "g1"))
	e.wantChanges(func() {
		e.must(e.m.CreateRouteRule(e.ctx, &CreateRouteRuleRequest{
			RouteRule: store.RouteRule{ServiceID: "svc", Name: "rule", Status: "active", Strategy: "weighted-round-robin"},
			Groups:    []GroupWeight{{Group: store.Group{ServiceID: "svc", RegionID: region, ZoneID: "z1", Name: "g1", AppID: "app", Status: "active"}}},
		}))
	}, "reload:Svc")
	rr := e.m.AllRouteRuleGroups()[0]
	e.wantChanges(func() {
		e.must(e.m.UpdateRouteRuleGroups(e.ctx, []store.RouteRuleGroup{{RouteRuleID: rr.RouteRuleID, GroupID: rr.GroupID, UnreleasedWeight: intp(70)}}, &Audit{}))
	}) // staged: discovery shows the released weight, unchanged
	e.wantChanges(func() {
		e.must(e.m.ReleaseRouteRuleGroups(e.ctx, []store.RouteRuleGroup{{RouteRuleID: rr.RouteRuleID, GroupID: rr.GroupID}}, &Audit{}))
	}, "reload:Svc")
	e.wantChanges(func() {
		e.must(e.m.UpdateCanaryIPs(e.ctx, &CanaryRequest{ServiceID: "svc", AppID: "app", CanaryIPs: []string{"10.0.0.1"}}))
	}, "reload:Svc")
	e.wantChanges(func() {
		e.must(e.m.InsertServiceInstances(e.ctx, []store.ServiceInstance{{ServiceID: "svc", InstanceID: "logic", IP: "10.0.0.1", RegionID: region,
			ZoneID: "z1", URL: "http://logic"}}, &Audit{}))
	}, "reload:Svc")
	e.wantChanges(func() {
		e.must(e.m.OperateServer(e.ctx, &OperateServerRequest{ServerKey: store.ServerKey{RegionID: region, ServerID: "10.0.0.1"},
			Operation: "pullout", OperatorID: "o"}))
	}, "delete:Svc/a", "reload:Svc")
	e.wantChanges(func() {
		e.must(e.m.InsertServiceInstances(e.ctx, []store.ServiceInstance{{ServiceID: "Unregistered", InstanceID: "l", IP: "10.0.0.9", RegionID: region,
			URL: "http://l"}}, &Audit{}))
	}, "reload:Unregistered")
	e.wantChanges(func() { // a pull-out of an instance nobody registered changes nothing visible
		e.must(e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: region, ServiceID: "nobody", InstanceID: "x"},
			Operation: "pullout", OperatorID: "o"}))
	})
}

// TestOtherNodeSeesPush: a pull-out made through one node's manager reaches
// the change log (and so push and deltas) of another node sharing the
// store, as a delete, and its pull-in as a new; the other node's version
// moves with them.
func TestOtherNodeSeesPush(t *testing.T) {
	st := store.NewMemory(store.Config{})
	defer st.Close()
	a, b := newEnvOn(t, st), newEnvOn(t, st)
	b.register(inst("svc", "x", "10.0.0.1", "z1", ""), inst("svc", "y", "10.0.0.2", "z1", ""))
	req := &OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: region, ServiceID: "svc", InstanceID: "x"}, Operation: "pullout", OperatorID: "o"}
	v := b.reg.Version()
	a.must(a.m.OperateInstance(a.ctx, req))
	waitChanges(t, b, v, "delete:svc/x")
	b.wantVisible("svc", "y")
	v = b.reg.Version()
	req.OperationComplete = true
	a.must(a.m.OperateInstance(a.ctx, req))
	waitChanges(t, b, v, "new:svc/x")
}

// waitChanges waits (generously: it checks that the change arrives, not
// how fast) until e has logged changes since v, and checks they are want.
func waitChanges(t *testing.T, e *env, v int64, want ...string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for e.reg.Version() == v {
		select {
		case <-e.reg.Wait():
		case <-deadline:
			t.Fatalf("no change logged; want %v", want)
		}
	}
	if got := e.changes(v); !slices.Equal(got, want) {
		t.Fatalf("unexpected changes on the other node; got %v; want %v", got, want)
	}
}
