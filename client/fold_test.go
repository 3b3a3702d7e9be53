package client

import (
	"context"
	"slices"
	"testing"
	"time"
)

// kelvinKafka is "Kafka" spelled with U+212A KELVIN SIGN, which Unicode
// folds to "kafka" but the registry does not: to it, a different service.
const kelvinKafka = "\u212Aafka"

func newTestDiscovery(t *testing.T, f *fakeNode) *Discovery {
	t.Helper()
	d, err := NewDiscovery(context.Background(), []string{f.URL}, WithStaticNodes(), fastRetries(), WithReconcileInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func TestChangeOfAnotherServiceIsNotCached(t *testing.T) {
	f := newFakeNode(t)
	f.services["kafka"] = []Instance{testInstance("kafka", "k-1")}
	d := newTestDiscovery(t, f)
	ctx := context.Background()
	var seen [][]string
	if err := d.Watch(ctx, "kafka", func(s Service) { seen = append(seen, idsOf(s)) }); err != nil {
		t.Fatal(err)
	}
	d.apply(ctx, instanceChange{ChangeType: "new", Instance: testInstance(kelvinKafka, "x-1")})
	svc, err := d.Service(ctx, "kafka")
	if err != nil {
		t.Fatal(err)
	}
	if got := joinIDs(idsOf(svc)); got != "k-1" {
		t.Fatalf("unexpected cached instances of kafka; got [%s]; want [k-1]", got)
	}
	if want := [][]string{{"k-1"}}; !slices.EqualFunc(seen, want, slices.Equal) {
		t.Fatalf("unexpected listener calls; got %v; want %v", seen, want)
	}
	// ASCII case still folds: KAFKA is kafka.
	d.apply(ctx, instanceChange{ChangeType: "new", Instance: testInstance("KAFKA", "k-2")})
	if svc, _ := d.Service(ctx, "Kafka"); joinIDs(idsOf(svc)) != "k-1,k-2" {
		t.Fatalf("unexpected cached instances of kafka; got %v; want [k-1,k-2]", idsOf(svc))
	}
}

func TestReloadOfAnotherServiceIsIgnored(t *testing.T) {
	f := newFakeNode(t)
	d := newTestDiscovery(t, f)
	ctx := context.Background()
	if _, err := d.Service(ctx, "kafka"); err != nil {
		t.Fatal(err)
	}
	before := f.count(lookupPath)
	d.apply(ctx, instanceChange{ChangeType: "reload", Instance: Instance{ServiceID: kelvinKafka, InstanceID: "reload"}})
	if got := f.count(lookupPath); got != before {
		t.Fatalf("a reload of %q re-read kafka; lookups got %d; want %d", kelvinKafka, got, before)
	}
}

func TestRegistryKeepsServicesApartByASCIIFolding(t *testing.T) {
	f := newFakeNode(t)
	r := newTestRegistry(t, []string{f.URL})
	ctx := context.Background()
	if err := r.Register(ctx, testInstance("kafka", "i-1"), testInstance(kelvinKafka, "i-1"), testInstance("KAFKA", "I-1")); err != nil {
		t.Fatal(err)
	}
	r.Heartbeat(ctx) // over HTTP: the fake serves no socket
	hb := f.sent(heartbeatPath)
	if len(hb) != 1 || len(hb[0]) != 2 {
		t.Fatalf("unexpected heartbeats; got %v; want one of 2 instances (kafka/I-1 and %s/i-1)", hb, kelvinKafka)
	}
	var services []string
	for _, i := range hb[0] {
		services = append(services, i.ServiceID)
	}
	slices.Sort(services)
	if want := []string{"KAFKA", kelvinKafka}; !slices.Equal(services, want) {
		t.Fatalf("unexpected services renewed; got %q; want %q", services, want)
	}
}

func TestInstanceIDsFoldASCII(t *testing.T) {
	f := newFakeNode(t)
	f.services["orders"] = []Instance{testInstance("orders", "o-1"), testInstance("orders", "o-2")}
	d := newTestDiscovery(t, f)
	ctx := context.Background()
	if _, err := d.Service(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	// The registry's InstanceKey folds ASCII case: O-1 is o-1, re-registered
	// or removed with another spelling.
	d.apply(ctx, instanceChange{ChangeType: "delete", Instance: testInstance("orders", "O-1")})
	d.apply(ctx, instanceChange{ChangeType: "new", Instance: testInstance("orders", "O-2")})
	d.apply(ctx, instanceChange{ChangeType: "new", Instance: testInstance("orders", "\u212A-3")})
	d.apply(ctx, instanceChange{ChangeType: "new", Instance: testInstance("orders", "k-3")})
	svc, _ := d.Service(ctx, "orders")
	if got, want := joinIDs(idsOf(svc)), "O-2,k-3,\u212A-3"; got != want {
		t.Fatalf("unexpected cached instances; got [%s]; want [%s]", got, want)
	}
}
