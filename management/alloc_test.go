//go:build !race

package management

import (
	"fmt"
	"testing"

	"github.com/artemis-go/artemis/store"
)

// TestLookupWithPullOutsDoesNotAllocate: with instance, server and zone
// pull-outs, logical instances and a canary rule active, serving a cached
// snapshot allocates nothing.
func TestLookupWithPullOutsDoesNotAllocate(t *testing.T) {
	e := newEnv(t)
	for i := range 100 {
		e.register(inst("svc", fmt.Sprint("i", i), fmt.Sprint("10.0.0.", i), fmt.Sprint("z", i%3), ""))
	}
	for i := range 10 {
		e.must(e.m.OperateInstance(e.ctx, &OperateInstanceRequest{InstanceKey: store.InstanceKey{RegionID: region, ServiceID: "svc", InstanceID: fmt.Sprint("i", i)},
			Operation: "pullout", OperatorID: "x"}))
	}
	e.must(e.m.OperateServer(e.ctx, &OperateServerRequest{ServerKey: store.ServerKey{RegionID: region, ServerID: "10.0.0.50"}, Operation: "pullout", OperatorID: "x"}))
	e.must(e.m.OperateZoneOperations(e.ctx, &OperateZonesRequest{ZoneOperationsList: []ZoneOperations{{ZoneKey: store.ZoneKey{RegionID: region, ServiceID: "svc", ZoneID: "z2"}, Operations: []string{"pullout"}}}}))
	e.must(e.m.InsertServiceInstances(e.ctx, []store.ServiceInstance{{ServiceID: "svc", InstanceID: "logic", URL: "http://l", RegionID: region}}, &Audit{}))
	e.must(e.m.UpdateCanaryIPs(e.ctx, &CanaryRequest{ServiceID: "svc", AppID: "app", CanaryIPs: []string{"10.0.0.11", "10.0.0.12"}}))

	buf := e.reg.Service("svc").AppendJSON(nil)
	// Zone z2 holds 33 instances (i%3 == 2), among them i2, i5, i8 and i50
	// (the pulled-out server); i0..i9 add 7 more: 40 hidden.
	if n := len(e.visible("svc")); n != 60 {
		t.Fatalf("unexpected visible instances; got %d; want 60", n)
	}
	var n int
	if a := testing.AllocsPerRun(1000, func() { n = len(e.reg.Service("SVC").AppendJSON(buf[:0])) }); a != 0 {
		t.Fatalf("unexpected allocations per lookup; got %v; want 0", a)
	}
	if n != len(buf) {
		t.Fatalf("unexpected JSON length; got %d; want %d", n, len(buf))
	}
}
