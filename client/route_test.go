package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// script is a Rand that answers from a list and records the n it was
// asked for, so a test knows exactly which draws Pick made.
type script struct {
	t     *testing.T
	out   []int
	asked []int
}

func (s *script) IntN(n int) int {
	s.asked = append(s.asked, n)
	if len(s.out) == 0 {
		s.t.Fatalf("unexpected draw IntN(%d) after %v: the script is exhausted", n, s.asked)
	}
	v := s.out[0]
	s.out = s.out[1:]
	return v
}

func inst(id, zone, group, ip string) Instance {
	return Instance{RegionID: "r1", ServiceID: "svc", ZoneID: zone, GroupID: group, InstanceID: id, IP: ip, Status: "up"}
}

func ids(insts []Instance) []string {
	out := make([]string, len(insts))
	for i, x := range insts {
		out[i] = x.InstanceID
	}
	return out
}

// weightedService has a rule over group blue (weight 1: a1 by groupId, a2
// by member id) and green (weight 3: b1), plus c1 in no group.
func weightedService() Service {
	return Service{ServiceID: "svc",
		Instances: []Instance{inst("a1", "z1", "blue", "10.0.0.1"), inst("a2", "z1", "", "10.0.0.2"),
			inst("b1", "z2", "", "10.0.0.3"), inst("c1", "z1", "", "10.0.0.4")},
		RouteRules: []RouteRule{{RouteID: "blue-green", Strategy: StrategyWeightedRoundRobin, Groups: []ServiceGroup{
			{GroupKey: "svc/r1/z1/blue", Weight: 1, InstanceIDs: []string{"A2"}},
			{GroupKey: "svc/r2/z2/green", Weight: 3, InstanceIDs: []string{"b1"}},
		}}}}
}

func TestPickDraws(t *testing.T) {
	f := func(name string, p Picker, svc Service, draws []int, wantID string, wantAsked []int) {
		t.Helper()
		s := &script{t: t, out: draws}
		p.Rand = s
		got, err := p.Pick(svc)
		if err != nil {
			t.Fatalf("%s: unexpected error %v", name, err)
		}
		if got.InstanceID != wantID {
			t.Fatalf("%s: unexpected instance; got %q; want %q", name, got.InstanceID, wantID)
		}
		if diff := cmp.Diff(wantAsked, s.asked); diff != "" {
			t.Fatalf("%s: unexpected draws (-want +got):\n%s", name, diff)
		}
		if len(s.out) != 0 {
			t.Fatalf("%s: %d scripted draws left unused", name, len(s.out))
		}
	}
	// Weighted: total weight 4; [0,1) is blue (a1 by group key, a2 by id:
	// folded), [1,4) green.
	f("weight draw 0 -> blue, 2nd", Picker{}, weightedService(), []int{0, 1}, "a2", []int{4, 2})
	f("weight draw 0 -> blue, 1st", Picker{}, weightedService(), []int{0, 0}, "a1", []int{4, 2})
	f("weight draw 1 -> green", Picker{}, weightedService(), []int{1}, "b1", []int{4})
	f("weight draw 3 -> green", Picker{}, weightedService(), []int{3}, "b1", []int{4})

	// No rule: any instance.
	plain := weightedService()
	plain.RouteRules = nil
	f("no rule", Picker{}, plain, []int{3}, "c1", []int{4})

	// A group without an instance takes no share: green's b1 is down.
	noGreen := weightedService()
	noGreen.Instances[2].Status = "down"
	f("empty group skipped", Picker{}, noGreen, []int{0}, "a1", []int{2}) // one group left: no weight draw

	// Weight 0 gets nothing; when every group weighs 0, the fallback.
	zero := weightedService()
	zero.RouteRules[0].Groups[1].Weight = 0
	f("weight 0", Picker{}, zero, []int{1}, "a2", []int{2})
	zero.RouteRules[0].Groups[0].Weight = 0
	f("all weights 0", Picker{}, zero, []int{2}, "b1", []int{4})

	// close-by-visit: a caller in z2 goes to green whatever the weights;
	// in a zone with no group, by weight over all.
	near := weightedService()
	near.RouteRules[0].Strategy = StrategyCloseByVisit
	f("close-by-visit own zone", Picker{Zone: "Z2"}, near, nil, "b1", nil)
	f("close-by-visit other zone", Picker{Zone: "z9"}, near, []int{0, 0}, "a1", []int{4, 2})

	// RouteID picks a rule by name; an unknown one means the fallback.
	two := weightedService()
	two.RouteRules = append([]RouteRule{{RouteID: "only-c", Groups: []ServiceGroup{{GroupKey: "x/x/x/x", Weight: 5, InstanceIDs: []string{"c1"}}}}}, two.RouteRules...)
	f("first non-canary rule", Picker{}, two, nil, "c1", nil)
	f("rule by name", Picker{RouteID: "BLUE-green"}, two, []int{2}, "b1", []int{4})
	f("unknown rule", Picker{RouteID: "nope"}, two, []int{0}, "a1", []int{4})
}

func canaryService() Service {
	svc := weightedService()
	svc.LogicInstances = []Instance{inst("logic", "z1", "", "10.0.0.9")}
	svc.RouteRules = append([]RouteRule{{RouteID: CanaryRouteID, Strategy: StrategyWeightedRoundRobin, Groups: []ServiceGroup{
		{GroupKey: "svc/r1/canary/app", Weight: 5, InstanceIDs: []string{"10.0.0.3", "10.0.0.9", "10.0.0.50"},
			Instances: []Instance{inst("b1", "z2", "", "10.0.0.3"), inst("logic", "z1", "", "10.0.0.9")}},
	}}}, svc.RouteRules...)
	return svc
}

func TestPickCanary(t *testing.T) {
	f := func(name string, ip string, svc Service, draws []int, wantID string) {
		t.Helper()
		s := &script{t: t, out: draws}
		p := Picker{IP: ip, Rand: s}
		got, err := p.Pick(svc)
		if err != nil || got.InstanceID != wantID {
			t.Fatalf("%s: unexpected pick; got %q, %v; want %q", name, got.InstanceID, err, wantID)
		}
		if len(s.out) != 0 {
			t.Fatalf("%s: %d scripted draws left unused", name, len(s.out))
		}
	}
	// A caller at a canary IP picks among the canary group's instances
	// (one group: no weight draw, just the instance).
	f("canary caller, 1st", "10.0.0.50", canaryService(), []int{0}, "b1")
	f("canary caller, logical", "10.0.0.50", canaryService(), []int{1}, "logic")
	// Anyone else follows the other rule (the canary rule is not the
	// default rule).
	f("other caller", "10.0.0.77", canaryService(), []int{1}, "b1")
	f("no IP", "", canaryService(), []int{0, 0}, "a1")
	// A resolved canary instance that has since left the service is not
	// picked.
	gone := canaryService()
	gone.Instances = gone.Instances[:2]
	gone.LogicInstances = nil
	f("canary instances gone", "10.0.0.50", gone, []int{1}, "a2")
	// Following the canary rule by name uses the resolved instances too.
	s := &script{t: t, out: []int{1}}
	p := Picker{RouteID: CanaryRouteID, Rand: s}
	if got, err := p.Pick(canaryService()); err != nil || got.InstanceID != "logic" {
		t.Fatalf("canary rule by name: unexpected pick; got %q, %v; want logic", got.InstanceID, err)
	}
}

func TestPickNoInstance(t *testing.T) {
	svc := weightedService()
	for i := range svc.Instances {
		svc.Instances[i].Status = "starting"
	}
	var p Picker
	if _, err := p.Pick(svc); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("unexpected error; got %v; want ErrNoInstance", err)
	}
	if _, err := Pick(Service{ServiceID: "empty"}, "10.0.0.1"); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("unexpected error for an empty service; got %v; want ErrNoInstance", err)
	}
}

// TestPickShares: over many picks with a seeded source, the groups get
// their weights' shares, and the instances of a group share its part.
func TestPickShares(t *testing.T) {
	p := Picker{Rand: rand.New(rand.NewPCG(1, 2))}
	svc := weightedService()
	const n = 40000
	got := map[string]int{}
	for range n {
		i, err := p.Pick(svc)
		if err != nil {
			t.Fatal(err)
		}
		got[i.InstanceID]++
	}
	want := map[string]float64{"a1": 0.125, "a2": 0.125, "b1": 0.75}
	for id, share := range want {
		if g := float64(got[id]) / n; g < share-0.01 || g > share+0.01 {
			t.Fatalf("unexpected share of %s; got %.3f; want %.3f ± 0.01 (%v)", id, g, share, got)
		}
	}
	if got["c1"] != 0 {
		t.Fatalf("c1 is in no group of the rule but was picked %d times", got["c1"])
	}
}

// TestServiceDecodesManagement decodes the management package's golden
// service answers (what the server attaches per contract section 11) and
// picks from them.
func TestServiceDecodesManagement(t *testing.T) {
	read := func(name string) Service {
		t.Helper()
		b, err := os.ReadFile("../management/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var svc Service
		if err := json.Unmarshal(b, &svc); err != nil {
			t.Fatalf("cannot decode %s: %v", name, err)
		}
		return svc
	}
	canary := read("canary-service.json")
	if len(canary.LogicInstances) != 1 || len(canary.RouteRules) != 1 || len(canary.RouteRules[0].Groups[0].Instances) != 4 {
		t.Fatalf("unexpected decoding of canary-service.json: %+v", canary)
	}
	s := &script{t: t, out: []int{3}}
	p := Picker{IP: "10.0.0.5", Rand: s}
	if got, err := p.Pick(canary); err != nil || got.InstanceID != "logic" {
		t.Fatalf("canary caller: unexpected pick; got %q, %v; want logic", got.InstanceID, err)
	}
	// A caller outside the canary group: no other rule, so any of the
	// four instances and the logical one.
	s = &script{t: t, out: []int{4}}
	p = Picker{IP: "10.0.0.7", Rand: s}
	if got, err := p.Pick(canary); err != nil || got.InstanceID != "logic" || !cmp.Equal(s.asked, []int{5}) {
		t.Fatalf("other caller: unexpected pick; got %q, %v, draws %v; want logic after IntN(5)", got.InstanceID, err, s.asked)
	}

	blueGreen := read("route-rule-service.json")
	if g := blueGreen.RouteRules[0].Groups; len(g) != 2 || g[0].Weight != 80 || g[0].Metadata["color"] != "blue" {
		t.Fatalf("unexpected decoding of route-rule-service.json: %+v", blueGreen.RouteRules)
	}
	// blue (80) holds a by its groupId, green (20) holds b by member id.
	for _, c := range []struct {
		draw int
		want string
	}{{0, "a"}, {79, "a"}, {80, "b"}, {99, "b"}} {
		s := &script{t: t, out: []int{c.draw}}
		p := Picker{Rand: s}
		if got, err := p.Pick(blueGreen); err != nil || got.InstanceID != c.want {
			t.Fatalf("draw %d: unexpected pick; got %q, %v; want %q", c.draw, got.InstanceID, err, c.want)
		}
	}
}

// TestDiscoveryKeepsRouteRules: the discovery cache keeps what lookup.json
// attaches (logicInstances, routeRules), and a re-read that changes only
// them still reaches the listeners.
func TestDiscoveryKeepsRouteRules(t *testing.T) {
	f := newFakeNode(t)
	answer := func(weight int) string {
		return `{"responseStatus":` + successStatus + `,"services":[{"serviceId":"svc",` +
			`"instances":[{"regionId":"r1","serviceId":"svc","instanceId":"a","zoneId":"z1","groupId":"blue","status":"up"}],` +
			`"logicInstances":[{"serviceId":"svc","instanceId":"l","status":"up"}],` +
			`"routeRules":[{"routeId":"r","strategy":"weighted-round-robin","groups":[{"groupKey":"svc/r1/z1/blue","weight":` +
			strconv.Itoa(weight) + `,"instanceIds":[]}]}]}]}`
	}
	f.answer = func(path string, hit int) (int, string) {
		if path != lookupPath {
			return 0, ""
		}
		return 200, answer(min(hit, 2)) // 1 first, 2 from the second read on
	}
	ctx := context.Background()
	d, err := NewDiscovery(ctx, []string{f.URL}, WithStaticNodes(), fastRetries(), WithReconcileInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	seen := make(chan Service, 4)
	if err := d.Watch(ctx, "svc", func(s Service) { seen <- s }); err != nil {
		t.Fatal(err)
	}
	first := <-seen
	if len(first.LogicInstances) != 1 || len(first.RouteRules) != 1 || first.RouteRules[0].Groups[0].Weight != 1 {
		t.Fatalf("unexpected first state: %+v", first)
	}
	d.reconcile(ctx, "svc")
	var second Service
	select {
	case second = <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("a re-read that changed only the route rules did not reach the listener")
	}
	if w := second.RouteRules[0].Groups[0].Weight; w != 2 {
		t.Fatalf("unexpected weight after the re-read; got %d; want 2", w)
	}
	got, err := d.Service(ctx, "svc")
	if err != nil || len(got.RouteRules) != 1 || got.RouteRules[0].Groups[0].Weight != 2 {
		t.Fatalf("unexpected cached service: %+v, %v", got, err)
	}
}

// A caller picks the instance a call goes to from a service as discovery
// shows it: here a caller on a canary IP gets the canary instance, and
// others are spread over the groups of the blue-green rule by weight.
func ExamplePicker() {
	svc := Service{ServiceID: "order",
		Instances: []Instance{
			{RegionID: "r1", ZoneID: "z1", GroupID: "blue", ServiceID: "order", InstanceID: "order-1", IP: "10.0.0.1", Status: "up"},
			{RegionID: "r1", ZoneID: "z1", GroupID: "green", ServiceID: "order", InstanceID: "order-2", IP: "10.0.0.2", Status: "up"},
		},
		RouteRules: []RouteRule{
			{RouteID: CanaryRouteID, Strategy: StrategyWeightedRoundRobin, Groups: []ServiceGroup{{
				GroupKey: "order/r1/canary/web", Weight: 5, InstanceIDs: []string{"10.0.0.2", "10.1.0.7"},
				Instances: []Instance{{ServiceID: "order", InstanceID: "order-2", IP: "10.0.0.2", Status: "up"}},
			}}},
			{RouteID: "blue-green", Strategy: StrategyWeightedRoundRobin, Groups: []ServiceGroup{
				{GroupKey: "order/r1/z1/blue", Weight: 90},
				{GroupKey: "order/r1/z1/green", Weight: 10},
			}},
		}}
	canary := Picker{IP: "10.1.0.7"} // this caller's IP is a canary IP
	inst, err := canary.Pick(svc)
	fmt.Println(inst.InstanceID, err)

	var other Picker // about 90% order-1 (blue), 10% order-2 (green)
	if _, err := other.Pick(svc); err != nil {
		fmt.Println(err)
	}
	// Output: order-2 <nil>
}
