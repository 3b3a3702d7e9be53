package core

import (
	"encoding/json"
	"testing"
)

// TestViewJSON: logical instances and a canary group's resolved instances
// are published; nil parts are left out and empty ones are [];
// group metadata keys are sorted.
func TestViewJSON(t *testing.T) {
	f := func(v *ServiceView, want string) {
		t.Helper()
		got := string(v.AppendJSON(nil))
		if got != want {
			t.Fatalf("unexpected JSON\ngot  %s\nwant %s", got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Fatalf("invalid JSON %s", got)
		}
	}
	f(&ServiceView{ServiceID: "s"}, `{"serviceId":"s","instances":[]}`)
	f(&ServiceView{ServiceID: "s", LogicInstances: []*Record{}, RouteRules: []RouteRule{}},
		`{"serviceId":"s","instances":[],"logicInstances":[],"routeRules":[]}`)

	logic := NewRecord(&Instance{RegionID: "r", ServiceID: "s", InstanceID: "l1", URL: "http://l1", Status: StatusUp})
	reg := NewRecord(&Instance{RegionID: "r", ServiceID: "s", InstanceID: "i1", IP: "1.2.3.4", URL: "http://i1"})
	v := &ServiceView{
		ServiceID:      "s",
		Records:        []*Record{reg},
		LogicInstances: []*Record{logic},
		RouteRules: []RouteRule{{RouteID: "canary-route-rule", Strategy: "weighted-round-robin", Groups: []ServiceGroup{{
			GroupKey: "s/r/canary/app", Weight: 5, InstanceIDs: []string{"1.2.3.4"}, Instances: []*Record{reg},
			Metadata: map[string]string{"z": "1", "a": "2", "m": "3"},
		}}}},
	}
	f(v, `{"serviceId":"s","instances":[`+string(reg.JSON())+`],"logicInstances":[`+string(logic.JSON())+`],`+
		`"routeRules":[{"routeId":"canary-route-rule","strategy":"weighted-round-robin","groups":[{"groupKey":"s/r/canary/app","weight":5,`+
		`"instanceIds":["1.2.3.4"],"instances":[`+string(reg.JSON())+`],"metadata":{"a":"2","m":"3","z":"1"}}]}]}`)
}

// TestFilterLogicInstancesInSnapshot: what a filter sets reaches the
// snapshot, and its JSON.
func TestFilterLogicInstancesInSnapshot(t *testing.T) {
	r := newTestRegistry(t, Config{})
	r.Register([]*Instance{testInstance("svc", "1")}, nil)
	logic := NewRecord(&Instance{RegionID: "default", ServiceID: "svc", InstanceID: "logic", URL: "http://logic", Status: StatusUp})
	r.SetFilters(FilterFunc(func(v *ServiceView) {
		v.LogicInstances = []*Record{logic}
		v.RouteRules = []RouteRule{}
	}))
	snap := r.Service("svc")
	if len(snap.LogicInstances) != 1 || snap.LogicInstances[0] != logic {
		t.Fatalf("unexpected logic instances; got %v; want [logic]", snap.LogicInstances)
	}
	var got struct {
		LogicInstances []Instance `json:"logicInstances"`
		RouteRules     []any      `json:"routeRules"`
	}
	if err := json.Unmarshal(snap.AppendJSON(nil), &got); err != nil {
		t.Fatalf("cannot decode %s: %v", snap.AppendJSON(nil), err)
	}
	if len(got.LogicInstances) != 1 || got.LogicInstances[0].InstanceID != "logic" || got.RouteRules == nil {
		t.Fatalf("unexpected service JSON %s", snap.AppendJSON(nil))
	}
	if snap.Size() != len(snap.AppendJSON(nil)) {
		t.Fatalf("unexpected size; got %d; want %d", snap.Size(), len(snap.AppendJSON(nil)))
	}
}
