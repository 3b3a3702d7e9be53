package client

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/artemis-go/artemis/core"
	"github.com/gorilla/websocket"
)

// Discovery finds services and follows their changes: it reads them with
// lookup.json, subscribes to their changes over one WebSocket, keeps a local
// cache, and calls listeners on every change. It re-reads every service
// periodically (reconcile) and after reconnecting, so missed pushes heal.
//
// Empty-push protection: an update that would leave a service with no
// instance is only applied when lookup.json confirms the service is really
// empty; otherwise the last good list is kept (a registry briefly pushing an
// empty list must not take every provider away). It is safe for concurrent use.
type Discovery struct {
	o      *options
	nodes  *nodes
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	services  map[string]*serviceState   // by core.FoldKey(id); guarded by mu
	listeners map[string][]func(Service) // by core.FoldKey(id); guarded by mu
	ws        *websocket.Conn            // guarded by mu
	wsMu      sync.Mutex                 // serialises writes to ws
}

type serviceState struct {
	id        string
	instances map[string]Instance // by core.FoldKey(instance id)
	// logic and rules are the last read's logicInstances and routeRules;
	// pushes do not carry them (a change to them pushes a reload).
	logic []Instance
	rules []RouteRule
}

func (s *serviceState) snapshot() Service {
	out := Service{ServiceID: s.id, Instances: make([]Instance, 0, len(s.instances)),
		LogicInstances: s.logic, RouteRules: s.rules}
	for _, i := range s.instances {
		out.Instances = append(out.Instances, i)
	}
	slices.SortFunc(out.Instances, func(a, b Instance) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return out
}

// NewDiscovery returns a discovery client bootstrapped from urls.
func NewDiscovery(ctx context.Context, urls []string, opts ...Option) (*Discovery, error) {
	o, n, loopCtx, cancel, err := start(ctx, "discovery", urls, opts)
	if err != nil {
		return nil, err
	}
	d := &Discovery{o: o, nodes: n, cancel: cancel, done: make(chan struct{}),
		services: map[string]*serviceState{}, listeners: map[string][]func(Service){}}
	go d.run(loopCtx)
	return d, nil
}

// Close stops the client.
func (d *Discovery) Close() {
	d.cancel()
	d.mu.Lock()
	if d.ws != nil {
		d.ws.Close()
	}
	d.mu.Unlock()
	<-d.done
}

// Service returns the service from the cache, reading it first if it is not
// followed yet (and following it from then on).
func (d *Discovery) Service(ctx context.Context, id string) (Service, error) {
	key := core.FoldKey(id)
	d.mu.Lock()
	if st, ok := d.services[key]; ok {
		defer d.mu.Unlock()
		return st.snapshot(), nil
	}
	d.mu.Unlock()
	if err := d.follow(ctx, id); err != nil {
		return Service{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.services[key].snapshot(), nil
}

// Watch follows service id and calls fn with its new state after every
// change (and once now). fn runs on the client's goroutine: keep it short.
func (d *Discovery) Watch(ctx context.Context, id string, fn func(Service)) error {
	key := core.FoldKey(id)
	d.mu.Lock()
	d.listeners[key] = append(d.listeners[key], fn)
	st, followed := d.services[key]
	d.mu.Unlock()
	if !followed {
		return d.follow(ctx, id)
	}
	d.mu.Lock()
	snap := st.snapshot()
	d.mu.Unlock()
	fn(snap)
	return nil
}

// follow reads the service and subscribes to it.
func (d *Discovery) follow(ctx context.Context, id string) error {
	svcs, err := d.lookup(ctx, []string{id})
	if err != nil {
		return err
	}
	d.replace(svcs[0])
	d.subscribe(id)
	return nil
}

// lookupResponse is the answer of lookup.json.
type lookupResponse struct {
	envelope
	Services []Service `json:"services"`
}

func (d *Discovery) lookup(ctx context.Context, ids []string) ([]Service, error) {
	configs := make([]map[string]string, len(ids))
	for i, id := range ids {
		configs[i] = map[string]string{"serviceId": id, "regionId": d.o.region, "zoneId": d.o.zone}
	}
	var resp lookupResponse
	req := map[string]any{"discoveryConfigs": configs, "regionId": d.o.region, "zoneId": d.o.zone}
	if err := d.nodes.call(ctx, "/api/discovery/lookup.json", req, &resp); err != nil {
		return nil, err
	}
	if resp.ResponseStatus.Status != "success" || len(resp.Services) != len(ids) {
		return nil, fmt.Errorf("client: lookup refused: %s %s", resp.ResponseStatus.ErrorCode, resp.ResponseStatus.Message)
	}
	for i := range resp.Services {
		resp.Services[i].ServiceID = ids[i]
	}
	return resp.Services, nil
}

// replace installs an authoritative read of a service and notifies.
func (d *Discovery) replace(svc Service) {
	key := core.FoldKey(svc.ServiceID)
	next := make(map[string]Instance, len(svc.Instances))
	for _, i := range svc.Instances {
		next[core.FoldKey(i.InstanceID)] = i
	}
	d.mu.Lock()
	st := d.services[key]
	if st == nil {
		st = &serviceState{id: svc.ServiceID}
		d.services[key] = st
	} else if sameInstances(st.instances, next) && reflect.DeepEqual(st.logic, svc.LogicInstances) && reflect.DeepEqual(st.rules, svc.RouteRules) {
		d.mu.Unlock()
		return // nothing changed: listeners are not called
	}
	st.instances, st.logic, st.rules = next, svc.LogicInstances, svc.RouteRules
	snap, fns := st.snapshot(), slices.Clone(d.listeners[key])
	d.mu.Unlock()
	for _, fn := range fns {
		fn(snap)
	}
}

func sameInstances(a, b map[string]Instance) bool {
	if len(a) != len(b) {
		return false
	}
	for id, x := range a {
		y, ok := b[id]
		if !ok || !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

type instanceChange struct {
	ChangeType string   `json:"changeType"`
	Instance   Instance `json:"instance"`
}

// apply applies one pushed change, with empty-push protection.
func (d *Discovery) apply(ctx context.Context, c instanceChange) {
	if c.ChangeType == "reload" {
		d.reconcile(ctx, c.Instance.ServiceID)
		return
	}
	key := core.FoldKey(c.Instance.ServiceID)
	d.mu.Lock()
	st := d.services[key]
	if st == nil {
		d.mu.Unlock()
		return
	}
	id := core.FoldKey(c.Instance.InstanceID)
	if c.ChangeType == "delete" {
		if _, ok := st.instances[id]; ok && len(st.instances) == 1 {
			// This delete would empty the service: confirm first.
			d.mu.Unlock()
			d.confirmEmpty(ctx, st.id)
			return
		}
		delete(st.instances, id)
	} else {
		st.instances[id] = c.Instance
	}
	snap, fns := st.snapshot(), slices.Clone(d.listeners[key])
	d.mu.Unlock()
	for _, fn := range fns {
		fn(snap)
	}
}

// confirmEmpty applies an emptying update only when lookup.json agrees.
func (d *Discovery) confirmEmpty(ctx context.Context, id string) {
	svcs, err := d.lookup(ctx, []string{id})
	if err != nil {
		d.o.log.Warn("cannot confirm that a service emptied; keeping its last instances", "service", id, "err", err)
		return
	}
	d.replace(svcs[0])
}

// reconcile re-reads one service (or all when id is empty).
func (d *Discovery) reconcile(ctx context.Context, id string) {
	var ids []string
	d.mu.Lock()
	for _, st := range d.services {
		if id == "" || sameKey(st.id, id) {
			ids = append(ids, st.id)
		}
	}
	d.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	svcs, err := d.lookup(ctx, ids)
	if err != nil {
		d.o.log.Warn("cannot reconcile services", "err", err)
		return
	}
	for _, s := range svcs {
		d.replace(s)
	}
}

func (d *Discovery) subscribe(id string) {
	d.mu.Lock()
	ws := d.ws
	d.mu.Unlock()
	if ws != nil {
		d.send(ws, id)
	}
}

func (d *Discovery) send(ws *websocket.Conn, id string) {
	msg, _ := json.Marshal(map[string]string{"serviceId": id, "regionId": d.o.region, "zoneId": d.o.zone})
	d.wsMu.Lock()
	defer d.wsMu.Unlock()
	ws.SetWriteDeadline(time.Now().Add(2 * time.Second))
	ws.WriteMessage(websocket.TextMessage, msg)
}

// run keeps the change socket open (reconnecting with backoff and
// resubscribing) and reconciles periodically. When a socket drops, its node
// is avoided for a while, so the next one goes to another node (a draining
// node closes its sockets), and the client waits a jittered backoff first,
// which grows while sockets keep dropping early.
func (d *Discovery) run(ctx context.Context) {
	defer close(d.done)
	reconcile := time.NewTicker(d.o.reconcile)
	defer reconcile.Stop()
	wait := d.o.backoff
	for ctx.Err() == nil {
		ws, node := d.dial(ctx)
		if ws != nil {
			began := d.o.now()
			d.session(ctx, ws, reconcile.C)
			if ctx.Err() != nil {
				return
			}
			d.nodes.avoidAfter(node, verdictUnavailable)
			if d.o.now().Sub(began) >= stableSocket {
				wait = d.o.backoff
			}
		}
		if sleep(ctx, jitter(wait)) != nil {
			return
		}
		wait = min(wait*2, d.o.maxWait)
	}
}

// session resubscribes on a new socket, reconciles and applies its changes
// until it fails.
func (d *Discovery) session(ctx context.Context, ws *websocket.Conn, reconcile <-chan time.Time) {
	d.mu.Lock()
	d.ws = ws
	ids := make([]string, 0, len(d.services))
	for _, st := range d.services {
		ids = append(ids, st.id)
	}
	d.mu.Unlock()
	for _, id := range ids {
		d.send(ws, id)
	}
	d.reconcile(ctx, "") // changes may have been missed while disconnected
	d.readChanges(ctx, ws, reconcile)
	d.mu.Lock()
	d.ws = nil
	d.mu.Unlock()
	ws.Close()
}

// dial opens the change socket to the first node, in order, that accepts
// it (each node once), and returns it with its node.
func (d *Discovery) dial(ctx context.Context) (*websocket.Conn, string) {
	for _, u := range d.nodes.order() {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ws, r, err := websocket.DefaultDialer.DialContext(dctx, wsURL(u, "/ws/discovery/instance-change"), nil)
		cancel()
		if err == nil {
			return ws, u
		}
		if ctx.Err() != nil {
			return nil, ""
		}
		d.nodes.avoidAfter(u, dialVerdict(r))
	}
	return nil, ""
}

// readChanges applies pushed changes until the socket fails.
func (d *Discovery) readChanges(ctx context.Context, ws *websocket.Conn, reconcile <-chan time.Time) {
	frames := make(chan []byte, 64)
	go func() {
		defer close(frames)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			frames <- msg
		}
	}()
	for {
		select {
		case msg, ok := <-frames:
			if !ok {
				return
			}
			var c instanceChange
			if err := json.Unmarshal(msg, &c); err == nil {
				d.apply(ctx, c)
			}
		case <-reconcile:
			d.reconcile(ctx, "")
		case <-ctx.Done():
			ws.Close()
			for range frames {
			}
			return
		}
	}
}
