package client

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
	"github.com/artemis-go/artemis/server/servertest"
)

type node struct{ *servertest.Node }

func startNode(t testing.TB) *node {
	return &node{servertest.Start(t, core.Config{}, server.Config{})}
}

func (n *node) stop() { n.Stop() }

func testInstance(service, id string) Instance {
	return Instance{ServiceID: service, InstanceID: id, IP: "127.0.0.1", Port: 8080, URL: "http://127.0.0.1:8080/" + id, Status: "up"}
}

// events collects what a watch listener saw.
type events chan []string

func (e events) listener(s Service) {
	ids := []string{}
	for _, i := range s.Instances {
		ids = append(ids, i.InstanceID)
	}
	e <- ids
}

// await waits (bounded, as a hang guard, not a speed check) for a state.
func (e events) await(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ids := <-e:
			if got := joinIDs(ids); got == want {
				return
			}
		case <-timeout:
			t.Fatalf("never saw instances [%s]", want)
		}
	}
}

func joinIDs(ids []string) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		s += id
	}
	return s
}

func TestRegisterIsPushedToAnotherClient(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	// Reconciling is off (an hour): what the watcher sees comes by push.
	d, err := NewDiscovery(ctx, []string{n.URL}, WithReconcileInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ev := make(events, 16)
	if err := d.Watch(ctx, "orders", ev.listener); err != nil {
		t.Fatal(err)
	}
	ev.await(t, "")
	waitSubscribed(t, n, 1)

	r, err := NewRegistry(ctx, []string{n.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctx, testInstance("orders", "o-1"), testInstance("orders", "o-2")); err != nil {
		t.Fatal(err)
	}
	ev.await(t, "o-1,o-2")
	if err := r.Unregister(ctx, testInstance("orders", "o-1")); err != nil {
		t.Fatal(err)
	}
	ev.await(t, "o-2")
	svc, err := d.Service(ctx, "ORDERS")
	if err != nil || joinIDs(idsOf(svc)) != "o-2" {
		t.Fatalf("unexpected cached service %+v, %v", svc, err)
	}
	// Close unregisters the rest. The last instance leaving empties the
	// service: the client confirms with lookup.json before applying it.
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ev.await(t, "")
	if got := n.Registry.Stats().Instances; got != 0 {
		t.Fatalf("Close left %d instances registered", got)
	}
}

func idsOf(s Service) []string {
	var ids []string
	for _, i := range s.Instances {
		ids = append(ids, i.InstanceID)
	}
	return ids
}

// waitSubscribed waits until the node has n instance-change sessions.
func waitSubscribed(t *testing.T, nd *node, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(nd.URL + "/api/status/websocket.json")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"instance-change":`+itoa(n)) {
				time.Sleep(50 * time.Millisecond) // the subscription message follows the upgrade
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the discovery client never connected")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

func TestEmptyPushProtection(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	d, err := NewDiscovery(ctx, []string{n.URL}, WithReconcileInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, _ := NewRegistry(ctx, []string{n.URL})
	defer r.Close(ctx)
	r.Register(ctx, testInstance("pay", "p-1"))
	ev := make(events, 16)
	d.Watch(ctx, "pay", ev.listener)
	ev.await(t, "p-1")
	// A delete that would empty the service while the registry still lists
	// the instance (a bogus or stale push) is not applied.
	d.apply(ctx, instanceChange{ChangeType: "delete", Instance: testInstance("pay", "p-1")})
	if svc, _ := d.Service(ctx, "pay"); joinIDs(idsOf(svc)) != "p-1" {
		t.Fatalf("an emptying push was applied without confirmation: %+v", svc)
	}
}

func TestFailoverToAnotherNode(t *testing.T) {
	a, b := startNode(t), startNode(t)
	ctx := context.Background()
	opts := []Option{WithStaticNodes(), WithHeartbeatInterval(100 * time.Millisecond), WithReconcileInterval(200 * time.Millisecond),
		WithRetries(3, 10*time.Millisecond, 50*time.Millisecond)}
	r, err := NewRegistry(ctx, []string{a.URL, b.URL}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	d, err := NewDiscovery(ctx, []string{a.URL, b.URL}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := r.Register(ctx, testInstance("stock", "s-1")); err != nil {
		t.Fatal(err)
	}
	ev := make(events, 64)
	d.Watch(ctx, "stock", ev.listener)
	ev.await(t, "s-1")
	if a.Registry.Stats().Instances != 1 || b.Registry.Stats().Instances != 0 {
		t.Fatalf("the first node is not the primary")
	}
	a.stop() // node A dies
	// The registry client's heartbeats fail over to B, which does not know
	// the instance (data-not-found) and gets it re-registered; the discovery
	// client reconnects to B, resubscribes and reconciles.
	deadline := time.Now().Add(10 * time.Second)
	for b.Registry.Stats().Instances != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the instance was never re-registered on the second node")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ev.await(t, "s-1")
	// Changes on B are pushed to the discovery client, now subscribed there.
	r.Register(ctx, testInstance("stock", "s-2"))
	ev.await(t, "s-1,s-2")
}
