//go:build !race

package core

import (
	"fmt"
	"testing"
)

// TestLookupWithFiltersDoesNotAllocate: a cached snapshot carrying logical
// instances and route rules with resolved instances is served without
// allocating.
func TestLookupWithFiltersDoesNotAllocate(t *testing.T) {
	r := newTestRegistry(t, Config{})
	for i := range 100 {
		r.Register([]*Instance{testInstance("svc", fmt.Sprint(i))}, nil)
	}
	logic := NewRecord(&Instance{RegionID: "default", ServiceID: "svc", InstanceID: "logic", URL: "http://logic"})
	r.SetFilters(FilterFunc(func(v *ServiceView) {
		v.Records = v.Records[1:]
		v.LogicInstances = []*Record{logic}
		v.RouteRules = []RouteRule{{RouteID: "canary-route-rule", Strategy: "weighted-round-robin",
			Groups: []ServiceGroup{{GroupKey: "g", Weight: 5, Instances: v.Records[:2], Metadata: map[string]string{"k": "v"}}}}}
	}))
	buf := r.Service("svc").AppendJSON(nil)
	var n int
	if a := testing.AllocsPerRun(1000, func() { n = len(r.Service("SVC").AppendJSON(buf[:0])) }); a != 0 {
		t.Fatalf("unexpected allocations per lookup; got %v; want 0", a)
	}
	if n != len(buf) {
		t.Fatalf("unexpected JSON length; got %d; want %d", n, len(buf))
	}
}
