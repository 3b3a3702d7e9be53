package management

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/store"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

const region = "r1"

// countingRegistry records which services were re-filtered.
type countingRegistry struct {
	*core.Registry
	mu          sync.Mutex
	invalidated []string
}

func (c *countingRegistry) Refilter(ids ...string) {
	c.mu.Lock()
	for _, id := range ids {
		c.invalidated = append(c.invalidated, core.FoldKey(id))
	}
	c.mu.Unlock()
	c.Registry.Refilter(ids...)
}

func (c *countingRegistry) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.invalidated
	c.invalidated = nil
	slices.Sort(out)
	return slices.Compact(out)
}

type env struct {
	t   *testing.T
	st  store.Store
	reg *countingRegistry
	m   *Manager
	ctx context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := store.NewMemory(store.Config{})
	t.Cleanup(func() { st.Close() })
	return newEnvOn(t, st)
}

func newEnvOn(t *testing.T, st store.Store) *env {
	t.Helper()
	r, err := core.New(core.Config{Region: region, Zone: "z1"})
	if err != nil {
		t.Fatalf("cannot create registry: %v", err)
	}
	t.Cleanup(r.Close)
	reg := &countingRegistry{Registry: r}
	m, err := New(context.Background(), Config{Store: st, Registry: reg, Region: region, AdminToken: "secret"})
	if err != nil {
		t.Fatalf("cannot create manager: %v", err)
	}
	t.Cleanup(m.Close)
	r.SetFilters(m.Filter())
	return &env{t: t, st: st, reg: reg, m: m, ctx: context.Background()}
}

func inst(service, id, ip, zone, group string) *core.Instance {
	return &core.Instance{RegionID: region, ZoneID: zone, GroupID: group, ServiceID: service, InstanceID: id, IP: ip, Port: 80,
		URL: "http://" + ip + "/" + id, Status: core.StatusUp}
}

func (e *env) register(insts ...*core.Instance) {
	e.t.Helper()
	if failed := e.reg.Register(insts, nil); len(failed) != 0 {
		e.t.Fatalf("cannot register: %v", failed[0].Err)
	}
}

// visible returns the instance ids discovery shows for the service.
func (e *env) visible(service string) []string {
	snap := e.reg.Service(service)
	if snap == nil {
		return nil
	}
	var ids []string
	for _, rec := range snap.Records.All() {
		ids = append(ids, rec.InstanceID())
	}
	return ids
}

func (e *env) wantVisible(service string, want ...string) {
	e.t.Helper()
	if got := e.visible(service); !cmp.Equal(got, want, cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })) {
		e.t.Fatalf("unexpected visible instances of %s; got %v; want %v", service, got, want)
	}
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("unexpected error: %v", err)
	}
}

func wantBadRequest(t *testing.T, err error, msg string) {
	t.Helper()
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("unexpected error; got %v; want %v", err, ErrBadRequest)
	}
	if err.Error() != msg {
		t.Fatalf("unexpected message; got %q; want %q", err.Error(), msg)
	}
}

func (e *env) logs(kind store.Kind, filters map[string]string) []map[string]any {
	e.t.Helper()
	rows, err := e.m.Logs(e.ctx, kind, filters)
	e.must(err)
	var out []map[string]any
	for i := range rows {
		b, err := rows[i].MarshalJSON()
		e.must(err)
		var m map[string]any
		e.must(json.Unmarshal(b, &m))
		delete(m, "createTime")
		delete(m, "updateTime")
		delete(m, "id")
		out = append(out, m)
	}
	return out
}

func TestOperateInstance(t *testing.T) {
	e := newEnv(t)
	e.register(inst("svc", "a", "10.0.0.1", "z1", ""), inst("svc", "b", "10.0.0.2", "z1", ""), inst("other", "a", "10.0.0.3", "z1", ""))
	e.wantVisible("svc", "a", "b")
	e.reg.take()

	req := &OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: "R1", ServiceID: "SVC", InstanceID: "A"},
		Operation: "pullout", OperatorID: "alice", Token: "secret"}
	e.must(e.m.OperateInstance(e.ctx, req))
	e.wantVisible("svc", "b")
	e.wantVisible("other", "a")
	if got := e.reg.take(); !slices.Equal(got, []string{"svc"}) {
		t.Fatalf("unexpected invalidations; got %v; want [svc]", got)
	}
	ops, err := e.m.InstanceOperations(store.InstanceKey{RegionID: "r1", ServiceID: "svc", InstanceID: "a"})
	e.must(err)
	if !slices.Equal(ops, []string{"pullout"}) {
		t.Fatalf("unexpected operations; got %v; want [pullout]", ops)
	}
	if !e.m.InstanceDown(inst("svc", "a", "10.0.0.1", "z1", "")) || e.m.InstanceDown(inst("svc", "b", "10.0.0.2", "z1", "")) {
		t.Fatalf("unexpected InstanceDown answers")
	}
	// Re-adding succeeds and changes nothing visible.
	e.must(e.m.OperateInstance(e.ctx, req))
	all := e.m.AllInstanceOperations("")
	if len(all) != 1 || !slices.Equal(all[0].Operations, []string{"pullout"}) {
		t.Fatalf("unexpected all-instance-operations; got %+v", all)
	}
	if got := e.m.AllInstanceOperations("other-region"); len(got) != 0 {
		t.Fatalf("unexpected operations in another region; got %+v", got)
	}

	req.OperationComplete = true
	e.must(e.m.OperateInstance(e.ctx, req))
	e.wantVisible("svc", "a", "b")
	e.must(e.m.OperateInstance(e.ctx, req)) // removing an absent one succeeds
	ops, _ = e.m.InstanceOperations(store.InstanceKey{RegionID: "r1", ServiceID: "svc", InstanceID: "a"})
	if ops != nil {
		t.Fatalf("unexpected operations after pull-in; got %v; want nil", ops)
	}

	logs := e.logs(store.KindInstanceOperation, nil)
	if len(logs) != 4 {
		t.Fatalf("unexpected log rows; got %d; want 4", len(logs))
	}
	want := map[string]any{"operation": "pullout", "operatorId": "alice", "token": "", "regionId": "R1", "serviceId": "SVC",
		"instanceId": "A", "complete": true, "extensions": "{}"}
	if diff := cmp.Diff(want, logs[3]); diff != "" {
		t.Fatalf("unexpected log row (-want +got):\n%s", diff)
	}
	if got := e.logs(store.KindInstanceOperation, map[string]string{"complete": "false"}); len(got) != 2 {
		t.Fatalf("unexpected pull-out rows; got %d; want 2", len(got))
	}

	for _, c := range []struct {
		req OperateInstanceRequest
		msg string
	}{
		{OperateInstanceRequest{InstanceKey: store.InstanceKey{ServiceID: "s", InstanceID: "i"}, Operation: "o", OperatorID: "x"}, "regionId is null or empty"},
		{OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: "r", ServiceID: " ", InstanceID: "i"}, Operation: "o", OperatorID: "x"}, "serviceId is null or empty"},
		{OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: "r", ServiceID: "s"}, Operation: "o", OperatorID: "x"}, "instanceId is null or empty"},
		{OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: "r", ServiceID: "s", InstanceID: "i"}, OperatorID: "x"}, "operation is null or empty"},
		{OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: "r", ServiceID: "s", InstanceID: "i"}, Operation: "o"}, "operatorId is null or empty"},
	} {
		wantBadRequest(t, e.m.OperateInstance(e.ctx, &c.req), c.msg)
	}
	_, err = e.m.InstanceOperations(store.InstanceKey{})
	wantBadRequest(t, err, "regionId is null or empty")
}

func TestOperateServer(t *testing.T) {
	e := newEnv(t)
	e.register(inst("s1", "a", "10.0.0.1", "z1", ""), inst("s1", "b", "10.0.0.2", "z1", ""), inst("s2", "c", "10.0.0.1", "z1", ""),
		inst("s3", "d", "10.0.0.9", "z1", ""))
	e.must(e.m.InsertServiceInstances(e.ctx, []store.ServiceInstance{{ServiceID: "s4", InstanceID: "l", IP: "10.0.0.1", RegionID: region, URL: "http://l"}}, &Audit{}))
	for _, s := range []string{"s1", "s2", "s3"} {
		e.visible(s)
	}
	e.reg.take()
	req := &OperateServerRequest{ServerKey: store.ServerKey{RegionID: region, ServerID: "10.0.0.1"}, Operation: "pullout", OperatorID: "ops"}
	e.must(e.m.OperateServer(e.ctx, req))
	e.wantVisible("s1", "b")
	e.wantVisible("s2")
	e.wantVisible("s3", "d")
	if got := e.reg.take(); !slices.Equal(got, []string{"s1", "s2", "s4"}) {
		t.Fatalf("unexpected invalidations; got %v; want [s1 s2 s4]", got)
	}
	if v := e.m.ServiceView("s4", nil); len(v.LogicInstances) != 0 {
		t.Fatalf("unexpected logical instances on a pulled-out server; got %d; want 0", len(v.LogicInstances))
	}
	down, err := e.m.ServerDown(store.ServerKey{ServerID: "10.0.0.1"})
	e.must(err)
	if !down {
		t.Fatalf("unexpected ServerDown; got false; want true")
	}
	if all := e.m.AllServerOperations(region); len(all) != 1 || all[0].ServerKey.ServerID != "10.0.0.1" {
		t.Fatalf("unexpected all-server-operations; got %+v", all)
	}
	req.OperationComplete = true
	e.must(e.m.OperateServer(e.ctx, req))
	e.wantVisible("s1", "a", "b")
	e.wantVisible("s2", "c")
	ops, err := e.m.ServerOperations(store.ServerKey{RegionID: region, ServerID: "10.0.0.1"})
	if err != nil || ops != nil {
		t.Fatalf("unexpected server operations after pull-in; got %v, %v; want nil", ops, err)
	}
	wantBadRequest(t, e.m.OperateServer(e.ctx, &OperateServerRequest{ServerKey: store.ServerKey{RegionID: "r"}, Operation: "o", OperatorID: "x"}),
		"serverId is null or empty")
}

func TestZoneOperations(t *testing.T) {
	e := newEnv(t)
	e.register(inst("svc", "a", "10.0.0.1", "z1", ""), inst("svc", "b", "10.0.0.2", "z2", ""))
	e.wantVisible("svc", "a", "b")
	key := store.ZoneKey{RegionID: region, ServiceID: "SVC", ZoneID: "Z1"}
	req := &OperateZonesRequest{ZoneOperationsList: []ZoneOperations{{ZoneKey: key, Operations: []string{"pullout", " "}}},
		Audit: Audit{OperatorID: "ops", Reason: "incident"}}
	e.must(e.m.OperateZoneOperations(e.ctx, req))
	e.wantVisible("svc", "b")
	down, err := e.m.IsZoneDown(store.ZoneKey{RegionID: region, ServiceID: "svc", ZoneID: "z1"})
	e.must(err)
	if !down {
		t.Fatalf("unexpected IsZoneDown; got false; want true")
	}
	if ops, _ := e.m.ZoneOperations(key); !slices.Equal(ops, []string{"pullout"}) {
		t.Fatalf("unexpected zone operations; got %v; want [pullout]", ops)
	}
	if l := e.m.ZoneOperationsList(store.ZoneKey{ServiceID: "svc"}); len(l) != 1 {
		t.Fatalf("unexpected zone operations list; got %+v", l)
	}
	if l := e.m.ZoneOperationsList(store.ZoneKey{ZoneID: "z2"}); len(l) != 0 {
		t.Fatalf("unexpected zone operations list for z2; got %+v", l)
	}
	if all := e.m.AllZoneOperations(); len(all) != 1 {
		t.Fatalf("unexpected all-zone-operations; got %+v", all)
	}
	req.OperationComplete = true
	e.must(e.m.OperateZoneOperations(e.ctx, req))
	e.wantVisible("svc", "a", "b")
	if logs := e.logs(store.KindZoneOperation, map[string]string{"zoneId": "z1"}); len(logs) != 2 {
		t.Fatalf("unexpected zone log rows; got %d; want 2 (blank operation skipped)", len(logs))
	}
	_, err = e.m.IsZoneDown(store.ZoneKey{RegionID: region})
	wantBadRequest(t, err, "serviceId is null or empty")
}

func TestGroupOperations(t *testing.T) {
	e := newEnv(t)
	e.register(inst("svc", "a", "10.0.0.1", "z1", "blue"), inst("svc", "b", "10.0.0.2", "z1", ""), inst("svc", "c", "10.0.0.3", "z2", "blue"))
	e.wantVisible("svc", "a", "b", "c")
	req := &OperateGroupRequest{ServiceID: "svc", RegionID: region, ZoneID: "z1", Name: "Blue", AppID: "app", Audit: Audit{Operation: "pullout", OperatorID: "ops"}}
	e.must(e.m.OperateGroupOperation(e.ctx, req))
	e.wantVisible("svc", "b", "c")
	groups := e.m.GetGroups(store.Group{Name: "blue"})
	if len(groups) != 1 || groups[0].GroupKey != "svc/r1/z1/blue" || groups[0].Status != store.StatusActive {
		t.Fatalf("unexpected created group; got %+v", groups)
	}
	gid := groups[0].GroupID
	gops, err := e.m.GroupOperations(gid)
	e.must(err)
	if gops == nil || !slices.Equal(gops.Operations, []string{"pullout"}) {
		t.Fatalf("unexpected group operations; got %+v", gops)
	}
	// The default group: instances with a blank groupId.
	e.must(e.m.OperateGroupOperation(e.ctx, &OperateGroupRequest{ServiceID: "svc", RegionID: region, ZoneID: "z1", Name: "default",
		Audit: Audit{Operation: "pullout"}}))
	e.wantVisible("svc", "c")
	if all := e.m.AllGroupOperations(); len(all) != 2 {
		t.Fatalf("unexpected all-group-operations; got %+v", all)
	}
	e.must(e.m.OperateGroupOperations(e.ctx, &OperateGroupsRequest{OperationComplete: true,
		GroupOperationsList: []GroupOperations{{GroupID: gid, Operations: []string{"pullout"}}}}))
	e.wantVisible("svc", "a", "c")
	// Deleting a group stops its operations from acting.
	def := e.m.GetGroups(store.Group{Name: "default"})
	e.must(e.m.DeleteGroups(e.ctx, []int64{def[0].GroupID}, &Audit{}))
	e.wantVisible("svc", "a", "b", "c")
	if logs := e.logs(store.KindGroupOperation, map[string]string{"groupId": fmt.Sprint(gid)}); len(logs) != 2 {
		t.Fatalf("unexpected group operation log rows; got %d; want 2", len(logs))
	}
	wantBadRequest(t, e.m.OperateGroupOperation(e.ctx, &OperateGroupRequest{ServiceID: "svc", RegionID: region, ZoneID: "z1"}), "name is null or empty")
	wantBadRequest(t, e.m.OperateGroupOperations(e.ctx, &OperateGroupsRequest{GroupOperationsList: []GroupOperations{{}}}), "groupId is null or empty")
}

func TestGroupsUpsertAndDelete(t *testing.T) {
	e := newEnv(t)
	g := store.Group{ServiceID: "svc", RegionID: region, ZoneID: "z1", Name: "g1", AppID: "app", Status: store.StatusActive}
	e.must(e.m.InsertGroups(e.ctx, []store.Group{g}, &Audit{OperatorID: "me"}))
	first := e.m.AllGroups()[0].GroupID
	g2 := g
	g2.ServiceID, g2.Name, g2.AppID, g2.Description, g2.Status = "SVC", "G1", "app2", "changed", store.StatusInactive
	e.must(e.m.UpdateGroups(e.ctx, []store.Group{g2}, &Audit{}))
	all := e.m.AllGroups()
	if len(all) != 1 || all[0].GroupID != first || all[0].AppID != "app2" || all[0].Description != "changed" || all[0].Name != "g1" {
		t.Fatalf("unexpected groups after upsert; got %+v", all)
	}
	if got := e.m.GetGroups(store.Group{AppID: "APP2", Status: "inactive"}); len(got) != 1 {
		t.Fatalf("unexpected filtered groups; got %+v", got)
	}
	if got := e.m.GetGroups(store.Group{ZoneID: "z9"}); len(got) != 0 {
		t.Fatalf("unexpected groups in z9; got %+v", got)
	}
	e.must(e.m.DeleteGroups(e.ctx, []int64{first, 999}, &Audit{}))
	if got := e.m.AllGroups(); len(got) != 0 {
		t.Fatalf("unexpected groups after delete; got %+v", got)
	}
	e.must(e.m.InsertGroups(e.ctx, []store.Group{g}, &Audit{}))
	if again := e.m.AllGroups()[0].GroupID; again <= first {
		t.Fatalf("unexpected reused id; got %d; want > %d", again, first)
	}
	logs := e.logs(store.KindGroup, nil)
	ops := []string{}
	for _, l := range logs {
		ops = append(ops, l["operation"].(string))
	}
	if want := []string{"insert-groups", "update-groups", "delete-groups", "insert-groups"}; !slices.Equal(ops, want) {
		t.Fatalf("unexpected group log operations; got %v; want %v", ops, want)
	}
	bad := g
	bad.AppID = ""
	wantBadRequest(t, e.m.InsertGroups(e.ctx, []store.Group{bad}, &Audit{}), "appId is null or empty")
	bad = g
	bad.Status = " "
	wantBadRequest(t, e.m.InsertGroups(e.ctx, []store.Group{bad}, &Audit{}), "status is null or empty")
}

func TestGroupTags(t *testing.T) {
	e := newEnv(t)
	e.must(e.m.InsertGroupTags(e.ctx, []GroupTags{{GroupID: 7, Tags: map[string]string{"env": "prod", "dc": "a"}}, {GroupID: 8, Tags: map[string]string{"env": "test"}}}, &Audit{}))
	e.must(e.m.UpdateGroupTags(e.ctx, []GroupTags{{GroupID: 7, Tags: map[string]string{"ENV": "staging"}}}, &Audit{}))
	gt, err := e.m.GroupTags(7)
	e.must(err)
	if diff := cmp.Diff(&GroupTags{GroupID: 7, Tags: map[string]string{"env": "staging", "dc": "a"}}, gt); diff != "" {
		t.Fatalf("unexpected tags (-want +got):\n%s", diff)
	}
	if gt, _ := e.m.GroupTags(9); gt != nil {
		t.Fatalf("unexpected tags of an untagged group; got %+v; want nil", gt)
	}
	e.must(e.m.DeleteGroupTags(e.ctx, store.GroupTag{Tag: "env"}, &Audit{}))
	if all := e.m.AllGroupTags(); len(all) != 1 || all[0].GroupID != 7 || len(all[0].Tags) != 1 {
		t.Fatalf("unexpected tags after delete; got %+v", all)
	}
	wantBadRequest(t, e.m.DeleteGroupTags(e.ctx, store.GroupTag{}, &Audit{}), "groupId, tag and value are null or empty")
	wantBadRequest(t, e.m.InsertGroupTags(e.ctx, []GroupTags{{GroupID: 7, Tags: map[string]string{"k": ""}}}, &Audit{}), "value is null or empty")
	wantBadRequest(t, e.m.InsertGroupTags(e.ctx, []GroupTags{{Tags: map[string]string{"k": "v"}}}, &Audit{}), "groupId is null or empty")
	if logs := e.logs(store.KindGroupTag, map[string]string{"tag": "env"}); len(logs) != 5 {
		t.Fatalf("unexpected tag log rows; got %d; want 5 (2 inserts, 1 update, 2 deletes)", len(logs))
	}
}

func TestGroupAndServiceInstances(t *testing.T) {
	e := newEnv(t)
	e.must(e.m.InsertGroupInstances(e.ctx, []store.GroupInstance{{GroupID: 1, InstanceID: "a"}, {GroupID: 1, InstanceID: "b"}}, &Audit{}))
	e.must(e.m.InsertGroupInstances(e.ctx, []store.GroupInstance{{GroupID: 1, InstanceID: "A"}}, &Audit{})) // present: kept
	members := e.m.GetGroupInstances(store.GroupInstance{GroupID: 1})
	if len(members) != 2 || members[0].InstanceID != "a" {
		t.Fatalf("unexpected members; got %+v", members)
	}
	e.must(e.m.DeleteGroupInstances(e.ctx, []int64{members[0].ID}, &Audit{}))
	if got := e.m.GetGroupInstances(store.GroupInstance{}); len(got) != 1 || got[0].InstanceID != "b" {
		t.Fatalf("unexpected members after delete; got %+v", got)
	}
	wantBadRequest(t, e.m.InsertGroupInstances(e.ctx, []store.GroupInstance{{GroupID: 1}}, &Audit{}), "instanceId is null or empty")

	e.register(inst("svc", "r", "10.0.0.1", "z1", ""))
	si := store.ServiceInstance{ServiceID: "svc", InstanceID: "logic-1", IP: "10.1.1.1", RegionID: region, ZoneID: "z1", URL: "http://logic",
		Port: 81, Metadata: map[string]string{"k": "v"}}
	e.must(e.m.InsertServiceInstances(e.ctx, []store.ServiceInstance{si}, &Audit{}))
	snap := e.reg.Service("svc")
	if len(snap.LogicInstances) != 1 || snap.LogicInstances[0].Status() != core.StatusUp || snap.LogicInstances[0].Port() != 81 {
		t.Fatalf("unexpected logical instances; got %+v", snap.LogicInstances)
	}
	e.must(e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: region, ServiceID: "svc", InstanceID: "logic-1"},
		Operation: "pullout", OperatorID: "x"}))
	if snap := e.reg.Service("svc"); len(snap.LogicInstances) != 0 {
		t.Fatalf("unexpected pulled-out logical instance; got %d; want 0", len(snap.LogicInstances))
	}
	got := e.m.GetServiceInstances(store.ServiceInstance{ServiceID: "SVC"})
	if len(got) != 1 || got[0].URL != "http://logic" {
		t.Fatalf("unexpected service instances; got %+v", got)
	}
	e.must(e.m.DeleteServiceInstances(e.ctx, []int64{got[0].ID}, &Audit{}))
	if got := e.m.GetServiceInstances(store.ServiceInstance{}); len(got) != 0 {
		t.Fatalf("unexpected service instances after delete; got %+v", got)
	}
	wantBadRequest(t, e.m.InsertServiceInstances(e.ctx, []store.ServiceInstance{{ServiceID: "s", InstanceID: "i"}}, &Audit{}), "url is null or empty")
}

func intp(v int) *int { return &v }

func TestRouteRulesStagedWeights(t *testing.T) {
	e := newEnv(t)
	e.register(inst("svc", "a", "10.0.0.1", "z1", "g1"))
	e.must(e.m.InsertRouteRules(e.ctx, []store.RouteRule{{ServiceID: "svc", Name: "rule", Status: "active", Strategy: "weighted-round-robin"}}, &Audit{}))
	e.must(e.m.InsertGroups(e.ctx, []store.Group{
		{ServiceID: "svc", RegionID: region, ZoneID: "z1", Name: "g1", AppID: "a", Status: "active"},
		{ServiceID: "svc", RegionID: region, ZoneID: "z1", Name: "g2", AppID: "a", Status: "active"},
		{ServiceID: "svc", RegionID: region, ZoneID: "z1", Name: "g3", AppID: "a", Status: "inactive"},
	}, &Audit{}))
	rule := e.m.AllRouteRules()[0]
	gs := e.m.AllGroups()
	e.must(e.m.InsertRouteRuleGroups(e.ctx, []store.RouteRuleGroup{
		{RouteRuleID: rule.RouteRuleID, GroupID: gs[0].GroupID, UnreleasedWeight: intp(50)},
		{RouteRuleID: rule.RouteRuleID, GroupID: gs[1].GroupID, Weight: intp(20000)},
		{RouteRuleID: rule.RouteRuleID, GroupID: gs[2].GroupID, UnreleasedWeight: intp(7)},
	}, &Audit{}))
	weights := func() []int {
		var out []int
		for _, rr := range e.reg.Service("svc").RouteRules {
			for _, g := range rr.Groups {
				out = append(out, g.Weight)
			}
		}
		return out
	}
	if got := weights(); !slices.Equal(got, []int{5, 5}) { // unreleased: null shows 5; inactive group left out
		t.Fatalf("unexpected weights before release; got %v; want [5 5]", got)
	}
	e.must(e.m.ReleaseRouteRuleGroups(e.ctx, []store.RouteRuleGroup{{RouteRuleID: rule.RouteRuleID, GroupID: gs[0].GroupID},
		{RouteRuleID: rule.RouteRuleID, GroupID: gs[1].GroupID}, {RouteRuleID: 999, GroupID: 999}}, &Audit{}))
	if got := weights(); !slices.Equal(got, []int{50, 10000}) {
		t.Fatalf("unexpected weights after release; got %v; want [50 10000]", got)
	}
	e.must(e.m.UpdateRouteRuleGroups(e.ctx, []store.RouteRuleGroup{{RouteRuleID: rule.RouteRuleID, GroupID: gs[0].GroupID, UnreleasedWeight: intp(-3)}}, &Audit{}))
	if got := weights(); !slices.Equal(got, []int{50, 10000}) {
		t.Fatalf("unexpected weights after staging; got %v; want [50 10000]", got)
	}
	e.must(e.m.ReleaseRouteRuleGroups(e.ctx, []store.RouteRuleGroup{{RouteRuleID: rule.RouteRuleID, GroupID: gs[0].GroupID}}, &Audit{}))
	if got := weights(); !slices.Equal(got, []int{5, 10000}) {
		t.Fatalf("unexpected weights after releasing -3; got %v; want [5 10000]", got)
	}
	b := e.m.GetRouteRuleGroups(store.RouteRuleGroup{GroupID: gs[0].GroupID})
	if len(b) != 1 || *b[0].Weight != -3 || *b[0].UnreleasedWeight != -3 {
		t.Fatalf("unexpected stored binding; got %+v", b)
	}
	// An inactive rule is not published; a deleted one neither.
	e.must(e.m.UpdateRouteRules(e.ctx, []store.RouteRule{{ServiceID: "SVC", Name: "RULE", Status: "inactive", Strategy: "weighted-round-robin"}}, &Audit{}))
	if rr := e.reg.Service("svc").RouteRules; rr == nil || len(rr) != 0 {
		t.Fatalf("unexpected route rules of an inactive rule; got %+v; want []", rr)
	}
	e.must(e.m.DeleteRouteRuleGroups(e.ctx, []int64{b[0].RouteRuleGroupID}, &Audit{}))
	e.must(e.m.DeleteRouteRules(e.ctx, []int64{rule.RouteRuleID}, &Audit{}))
	if got := e.m.AllRouteRules(); len(got) != 0 {
		t.Fatalf("unexpected rules after delete; got %+v", got)
	}
	if got := len(e.m.AllRouteRuleGroups()); got != 2 {
		t.Fatalf("unexpected bindings after delete; got %d; want 2", got)
	}
	if logs := e.logs(store.KindRouteRuleGroup, map[string]string{"operation": "release-route-rule-groups"}); len(logs) != 3 {
		t.Fatalf("unexpected release log rows; got %d; want 3", len(logs))
	}
	wantBadRequest(t, e.m.InsertRouteRules(e.ctx, []store.RouteRule{{ServiceID: "s", Name: "n", Status: "active"}}, &Audit{}), "strategy is null or empty")
	wantBadRequest(t, e.m.InsertRouteRuleGroups(e.ctx, []store.RouteRuleGroup{{GroupID: 1}}, &Audit{}), "routeRuleId is null or empty")
}

func TestStoreUnavailable(t *testing.T) {
	st := store.NewMemory(store.Config{})
	defer st.Close()
	e := newEnvOn(t, st)
	e.register(inst("svc", "a", "10.0.0.1", "z1", ""), inst("svc", "b", "10.0.0.2", "z1", ""))
	key := store.InstanceKey{RegionID: region, ServiceID: "svc", InstanceID: "a"}
	e.must(e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: key, Operation: "pullout", OperatorID: "x"}))
	st.SetAvailable(false)
	err := e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: key, Operation: "pullout", OperatorID: "x", OperationComplete: true})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unexpected error; got %v; want %v", err, ErrUnavailable)
	}
	// Reads and discovery keep the last state.
	e.reg.Invalidate("svc")
	e.wantVisible("svc", "b")
	if ops, err := e.m.InstanceOperations(key); err != nil || len(ops) != 1 {
		t.Fatalf("unexpected read while the store is away; got %v, %v", ops, err)
	}
	if _, err := e.m.Logs(e.ctx, store.KindInstanceOperation, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unexpected log error; got %v; want %v", err, ErrUnavailable)
	}
	st.SetAvailable(true)
	e.must(e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: key, Operation: "pullout", OperatorID: "x", OperationComplete: true}))
	e.wantVisible("svc", "a", "b")
}

func TestAdminTokenIsNotStored(t *testing.T) {
	e := newEnv(t)
	e.must(e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: region, ServiceID: "s", InstanceID: "i"},
		Operation: "pullout", OperatorID: "x", Token: "secret"}))
	e.must(e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: region, ServiceID: "s", InstanceID: "j"},
		Operation: "pullout", OperatorID: "x", Token: "other"}))
	logs := e.logs(store.KindInstanceOperation, nil)
	if logs[0]["token"] != "" || logs[1]["token"] != "other" {
		t.Fatalf("unexpected logged tokens; got %q and %q; want \"\" and \"other\"", logs[0]["token"], logs[1]["token"])
	}
	for _, op := range e.m.state.Load().instanceOps {
		if op.Token == "secret" {
			t.Fatalf("the admin token was stored")
		}
	}
}

// TestTwoManagersShareStore: a change made through one node's manager
// reaches the other node's discovery through the store's notification.
func TestTwoManagersShareStore(t *testing.T) {
	st := store.NewMemory(store.Config{})
	defer st.Close()
	a, b := newEnvOn(t, st), newEnvOn(t, st)
	b.register(inst("svc", "x", "10.0.0.1", "z1", ""), inst("svc", "y", "10.0.0.2", "z1", ""))
	b.wantVisible("svc", "x", "y")
	a.must(a.m.OperateInstance(a.ctx, &OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: region, ServiceID: "svc", InstanceID: "x"},
		Operation: "pullout", OperatorID: "o"}))
	waitVisible(t, b, "svc", "y")
}

// waitVisible waits (generously: it checks that the change arrives, not
// how fast) until discovery on e shows exactly want.
func waitVisible(t *testing.T, e *env, service string, want ...string) {
	t.Helper()
	for range 3000 {
		if slices.Equal(e.visible(service), want) {
			return
		}
		sleepTick()
	}
	t.Fatalf("unexpected visible instances of %s; got %v; want %v", service, e.visible(service), want)
}

func sleepTick() { time.Sleep(10 * time.Millisecond) }

func goldenJSON(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("invalid JSON %s: %v", got, err)
	}
	pretty := append(buf.Bytes(), '\n') // field order kept: the golden file checks it too
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(path, pretty, 0o644); err != nil {
			t.Fatalf("cannot write %s: %v", path, err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cannot read golden file (run go test -update): %v", err)
	}
	if diff := cmp.Diff(string(want), string(pretty)); diff != "" {
		t.Fatalf("unexpected %s (-want +got):\n%s", name, diff)
	}
}

func TestCreateRouteRuleGolden(t *testing.T) {
	e := newEnv(t)
	e.register(inst("svc", "a", "10.0.0.1", "z1", "blue"), inst("svc", "b", "10.0.0.2", "z1", "green"))
	// An existing group is kept as it is (its appId stays "old").
	e.must(e.m.InsertGroups(e.ctx, []store.Group{{ServiceID: "svc", RegionID: region, ZoneID: "z1", Name: "blue", AppID: "old", Status: "active"}}, &Audit{}))
	req := &CreateRouteRuleRequest{
		RouteRule: store.RouteRule{ServiceID: "svc", Name: "blue-green", Status: "active", Strategy: "weighted-round-robin"},
		Groups: []GroupWeight{
			{Group: store.Group{ServiceID: "SVC", RegionID: region, ZoneID: "z1", Name: "blue", AppID: "new", Status: "active"}, Weight: intp(80)},
			{Group: store.Group{ServiceID: "svc", RegionID: region, ZoneID: "z1", Name: "green", AppID: "new", Status: "active"}, Weight: intp(20)},
		},
		Audit: Audit{OperatorID: "me", Reason: "rollout"},
	}
	e.must(e.m.CreateRouteRule(e.ctx, req))
	if g := e.m.GetGroups(store.Group{Name: "blue"}); g[0].AppID != "old" {
		t.Fatalf("unexpected appId of an existing group; got %s; want old", g[0].AppID)
	}
	rr := e.m.AllRouteRuleGroups()
	ids := make([]int64, 0, len(rr))
	for _, b := range rr {
		ids = append(ids, b.GroupID)
		if b.Weight != nil {
			t.Fatalf("unexpected released weight before release; got %d", *b.Weight)
		}
	}
	var rel []store.RouteRuleGroup
	for _, b := range rr {
		rel = append(rel, store.RouteRuleGroup{RouteRuleID: b.RouteRuleID, GroupID: b.GroupID})
	}
	e.must(e.m.ReleaseRouteRuleGroups(e.ctx, rel, &Audit{}))
	e.must(e.m.InsertGroupTags(e.ctx, []GroupTags{{GroupID: ids[0], Tags: map[string]string{"color": "blue", "canary": "false"}}}, &Audit{}))
	e.must(e.m.InsertGroupInstances(e.ctx, []store.GroupInstance{{GroupID: ids[1], InstanceID: "b"}}, &Audit{}))
	goldenJSON(t, "route-rule-service.json", e.reg.Service("svc").AppendJSON(nil))

	// A rule attaches even to a service with no registered instance.
	goldenJSON(t, "service-groups.json", mustJSON(t, e.m.ServiceGroups("svc")))
	wantBadRequest(t, e.m.CreateRouteRule(e.ctx, &CreateRouteRuleRequest{RouteRule: req.RouteRule,
		Groups: []GroupWeight{{Group: store.Group{ServiceID: "other", RegionID: region, ZoneID: "z1", Name: "x", AppID: "a", Status: "active"}}}}),
		"group z1/x has serviceId other; want the rule's svc")
}

func TestCanaryGolden(t *testing.T) {
	e := newEnv(t)
	e.register(
		inst("svc", "by-ip", "10.0.0.1", "z1", ""),
		inst("svc", "by-id", "10.0.0.2", "z1", ""),
		inst("svc", "by-group", "10.0.0.3", "canary", "myapp"),
		inst("svc", "other", "10.0.0.4", "z1", ""),
		inst("svc", "pulled", "10.0.0.5", "z1", ""),
	)
	e.must(e.m.InsertServiceInstances(e.ctx, []store.ServiceInstance{{ServiceID: "svc", InstanceID: "logic", IP: "10.0.0.9", RegionID: region,
		ZoneID: "z1", URL: "http://logic", Port: 8080}}, &Audit{}))
	e.must(e.m.UpdateCanaryIPs(e.ctx, &CanaryRequest{ServiceID: "svc", AppID: "myapp", CanaryIPs: []string{"10.0.0.1", "by-id", "10.0.0.5", "10.0.0.9", "10.0.0.1"},
		Audit: Audit{OperatorID: "me"}}))
	e.must(e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: region, ServiceID: "svc", InstanceID: "pulled"},
		Operation: "pullout", OperatorID: "me"}))
	goldenJSON(t, "canary-service.json", e.reg.Service("svc").AppendJSON(nil))

	// Again with fewer IPs: members become exactly the list; nothing else is duplicated.
	e.must(e.m.UpdateCanaryIPs(e.ctx, &CanaryRequest{ServiceID: "SVC", AppID: "MyApp", CanaryIPs: []string{"10.0.0.1"}}))
	if n := len(e.m.AllRouteRules()); n != 1 {
		t.Fatalf("unexpected rules; got %d; want 1", n)
	}
	if n := len(e.m.AllGroups()); n != 1 {
		t.Fatalf("unexpected groups; got %d; want 1", n)
	}
	members := e.m.GetGroupInstances(store.GroupInstance{})
	if len(members) != 1 || members[0].InstanceID != "10.0.0.1" {
		t.Fatalf("unexpected canary members; got %+v", members)
	}
	v := e.m.ServiceView("unregistered", nil)
	if string(v.AppendJSON(nil)) != `{"serviceId":"unregistered","instances":[],"logicInstances":[],"routeRules":[]}` {
		t.Fatalf("unexpected view of an unregistered service: %s", v.AppendJSON(nil))
	}
	wantBadRequest(t, e.m.UpdateCanaryIPs(e.ctx, &CanaryRequest{ServiceID: "svc"}), "appId is null or empty")
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("cannot encode: %v", err)
	}
	return b
}

func TestLogQueryByOperationAndKeys(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"a", "b"} {
		e.must(e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: region, ServiceID: "svc", InstanceID: id},
			Operation: "pullout", OperatorID: "op-" + id}))
	}
	e.must(e.m.InsertGroups(e.ctx, []store.Group{{ServiceID: "svc", RegionID: region, ZoneID: "z", Name: "n", AppID: "a", Status: "active"}},
		&Audit{Operation: "custom-op", Reason: "why", Extensions: json.RawMessage(`{"ticket":"T-1"}`)}))
	if got := e.logs(store.KindInstanceOperation, map[string]string{"instanceId": "B"}); len(got) != 1 || got[0]["operatorId"] != "op-b" {
		t.Fatalf("unexpected filtered rows; got %+v", got)
	}
	if got := e.logs(store.KindInstanceOperation, map[string]string{"operatorId": "op-a", "serviceId": "SVC"}); len(got) != 1 {
		t.Fatalf("unexpected filtered rows; got %+v", got)
	}
	got := e.logs(store.KindGroup, nil)
	if len(got) != 1 || got[0]["operation"] != "custom-op" || got[0]["reason"] != "why" || got[0]["extensions"] != `{"ticket":"T-1"}` {
		t.Fatalf("unexpected group log row; got %+v", got)
	}
	if k, ok := LogKind("group-tag-logs"); !ok || k != store.KindGroupTag {
		t.Fatalf("unexpected LogKind; got %v, %v", k, ok)
	}
	if _, ok := LogKind("nope"); ok {
		t.Fatalf("unexpected LogKind for an unknown endpoint")
	}
}
