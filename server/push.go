package server

import (
	"errors"
	"hash/maphash"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/artemis-go/artemis/core"
)

// Push (contract section 7). One goroutine, the hub, follows the core's
// change stream; it encodes nothing (each change's JSON is encoded once, by
// the core, and framed once here) and hands the same bytes to every
// subscriber's bounded queue. A session has a writer goroutine only while
// its queue is not empty. A subscriber whose queue is full is not waited
// for: its queue is dropped and it is sent a reload for each service it
// follows; one that keeps overflowing without its writer writing anything
// is disconnected (session.overflow). A second
// goroutine pings every session and ends those past their lifetime.

// Defaults of PushConfig.
const (
	defaultSendQueue            = 256
	defaultPingInterval         = 30 * time.Second
	defaultPongWait             = 75 * time.Second
	defaultWriteWait            = 10 * time.Second
	defaultSessionLifetime      = 30 * time.Minute
	defaultMaxSubscriptionBytes = 64 << 20
	defaultSubscriptionShare    = 0.25
	maxOverflows                = 3 // strikes in a row (see session.overflow)
	defaultStrikeGap            = time.Second
)

// PushConfig configures WebSocket sessions. Zero fields take defaults.
type PushConfig struct {
	// Library is the WebSocket implementation: "gobwas" (default; frames
	// on Hertz's netpoll connection) or "gorilla" (through the net/http
	// adaptor). See WSLibraries.
	Library string
	// SendQueue bounds each connection's queue of frames (256).
	SendQueue int
	// PingInterval is how often the server pings (30 s); a connection that
	// answers nothing (pong or message) for PongWait (75 s) is closed.
	PingInterval time.Duration
	PongWait     time.Duration
	// WriteWait bounds one frame's write (10 s).
	WriteWait time.Duration
	// SessionLifetime closes a session after this long (30 min), so clients
	// reconnect and spread over the nodes again.
	SessionLifetime time.Duration
	// MaxSubscriptionBytes bounds the bytes of subscribed service ids (and
	// their bookkeeping) over every session of the node (64 MiB); a
	// subscription over it closes its session with 1008.
	MaxSubscriptionBytes int
	// ClientShare is the share of MaxSubscriptionBytes the sessions of one
	// client (remote IP, hashed into perClientCells cells) may hold
	// together (0.25; 1 turns it off), so that one client cannot spend
	// every client's budget.
	ClientShare float64
}

func (c PushConfig) withDefaults() PushConfig {
	if c.Library != LibraryGorilla {
		c.Library = LibraryGobwas
	}
	if c.SendQueue <= 0 {
		c.SendQueue = defaultSendQueue
	}
	if c.PingInterval <= 0 {
		c.PingInterval = defaultPingInterval
	}
	if c.PongWait <= 0 {
		c.PongWait = defaultPongWait
	}
	if c.WriteWait <= 0 {
		c.WriteWait = defaultWriteWait
	}
	if c.SessionLifetime <= 0 {
		c.SessionLifetime = defaultSessionLifetime
	}
	if c.MaxSubscriptionBytes <= 0 {
		c.MaxSubscriptionBytes = defaultMaxSubscriptionBytes
	}
	if c.ClientShare <= 0 || c.ClientShare > 1 {
		c.ClientShare = defaultSubscriptionShare
	}
	return c
}

// Kinds of WebSocket endpoints, for counts.
const (
	wsHeartbeat = iota
	wsInstanceChange
	wsAllInstanceChange
	numWSKinds
)

var wsKindNames = [numWSKinds]string{"heartbeat", "instance-change", "all-instance-change"}

// hub routes changes to subscribed sessions.
type hub struct {
	reg *core.Registry
	cfg PushConfig

	mu        sync.RWMutex
	byService map[string]map[*session]struct{} // lower-cased service id; guarded by mu
	all       map[*session]struct{}            // guarded by mu
	sessions  map[*session]struct{}            // every open session; guarded by mu

	conns      [numWSKinds]atomic.Int64
	pushed     atomic.Int64          // frames queued to subscribers
	dropped    atomic.Int64          // subscribers that fell behind (sent a reload)
	kicked     atomic.Int64          // subscribers disconnected for falling behind again
	reloads    atomic.Int64          // times the hub itself fell behind the change log
	subCount   atomic.Int64          // subscriptions of every session; written under mu
	subBytes   atomic.Int64          // what they hold (ids and overhead); written under mu
	subRefused atomic.Int64          // subscriptions refused
	at         atomic.Int64          // the version the hub has published up to
	cellBytes  [perClientCells]int64 // subscription bytes per client cell; guarded by mu
	cellSeed   maphash.Seed
	strikeGap  time.Duration // see session.overflow
	latency    func(seconds float64)
	prepare    func(payload []byte) []byte // what a transport writes for a text message
	okFrame    []byte                      // successBody prepared once (see frame)
	limitFrame []byte                      // rateLimitedBody prepared once
	done       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

func newHub(reg *core.Registry, cfg PushConfig, latency func(float64)) *hub {
	h := &hub{reg: reg, cfg: cfg.withDefaults(), byService: map[string]map[*session]struct{}{},
		all: map[*session]struct{}{}, sessions: map[*session]struct{}{}, latency: latency, done: make(chan struct{}),
		strikeGap: defaultStrikeGap}
	h.cellSeed = maphash.MakeSeed()
	h.prepare = TextFrame
	if h.cfg.Library == LibraryGorilla {
		h.prepare = func(b []byte) []byte { return b } // gorilla frames each write itself
	}
	h.okFrame, h.limitFrame = h.prepare(successBody), h.prepare(rateLimitedBody)
	h.wg.Add(2)
	go h.run(reg.Version()) // taken now: a change made before the goroutine runs is not missed
	go h.maintain()
	return h
}

// frame returns what a transport writes for the answer msg: the frame
// prepared once for a constant answer (successBody, rateLimitedBody; it is
// never modified), else msg prepared.
func (h *hub) frame(msg []byte) []byte {
	switch {
	case sameBytes(msg, successBody):
		return h.okFrame
	case sameBytes(msg, rateLimitedBody):
		return h.limitFrame
	}
	return h.prepare(msg)
}

// sameBytes reports whether a and b are the same slice (not merely equal).
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// version returns the version the hub has published up to.
func (h *hub) version() int64 { return h.at.Load() }

// close stops the hub and closes every session.
func (h *hub) close() {
	h.stopOnce.Do(func() { close(h.done) })
	h.wg.Wait()
	h.mu.RLock()
	ss := make([]*session, 0, len(h.sessions))
	for s := range h.sessions {
		ss = append(ss, s)
	}
	h.mu.RUnlock()
	for _, s := range ss {
		s.close(closeGoingAway, "server shutting down")
	}
}

// run follows the change stream from version.
func (h *hub) run(version int64) {
	defer h.wg.Done()
	var buf []*core.Change
	for {
		wake := h.reg.Wait() // taken before reading, so no change slips between
		changes, v, err := h.reg.ChangesSince(version, buf[:0])
		switch {
		case errors.Is(err, core.ErrVersionUnavailable):
			// The hub fell behind the retained log: every subscriber reloads.
			h.reloads.Add(1)
			h.reloadAll()
			version = h.reg.Version()
		case err == nil:
			for _, c := range changes {
				h.publish(c)
			}
			version = v
		}
		h.at.Store(version)
		buf = changes
		clear(buf)
		select {
		case <-wake:
		case <-h.done:
			return
		}
	}
}

// publish queues one change's bytes to its service's subscribers and to
// the all-changes subscribers. A change nobody follows is not encoded (the
// core encodes on first use; services-delta.json may never ask).
func (h *hub) publish(c *core.Change) {
	var buf [256]byte
	h.mu.RLock()
	defer h.mu.RUnlock()
	subs := h.byService[string(core.AppendFoldKey(buf[:0], c.ServiceID))]
	if len(subs) == 0 && len(h.all) == 0 {
		return
	}
	b := h.prepare(c.JSON())
	for s := range subs {
		h.deliver(s, b)
	}
	for s := range h.all {
		h.deliver(s, b)
	}
	if h.latency != nil {
		h.latency(time.Since(time.UnixMilli(c.Time)).Seconds())
	}
}

func (h *hub) deliver(s *session, b []byte) {
	select {
	case <-s.closed: // closed, not yet removed by its reader
		return
	default:
	}
	if s.enqueue(b) {
		h.pushed.Add(1)
		return
	}
	h.dropped.Add(1)
	s.overflow()
}

// maintain pings every session each PingInterval and closes the sessions
// whose lifetime has passed. It looks at every session a few times per
// PingInterval (at most once a second).
func (h *hub) maintain() {
	defer h.wg.Done()
	tick := min(h.cfg.PingInterval, h.cfg.SessionLifetime) / 4
	tick = max(min(tick, time.Second), 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	var ss []*session
	for {
		select {
		case <-h.done:
			return
		case now := <-t.C:
			h.mu.RLock()
			for s := range h.sessions {
				ss = append(ss, s)
			}
			h.mu.RUnlock()
			for _, s := range ss {
				switch {
				case !now.Before(s.expires):
					s.close(closeGoingAway, "session lifetime reached; reconnect")
				case now.Sub(s.lastPing) >= h.cfg.PingInterval:
					s.lastPing = now
					s.signal(false)
				}
			}
			clear(ss)
			ss = ss[:0]
		}
	}
}

func (h *hub) reloadAll() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.sessions {
		if s.kind != wsHeartbeat {
			s.overflow()
		}
	}
}

func (h *hub) add(s *session) {
	h.mu.Lock()
	h.sessions[s] = struct{}{}
	if s.kind == wsAllInstanceChange {
		h.all[s] = struct{}{}
	}
	h.mu.Unlock()
	h.conns[s.kind].Add(1)
}

func (h *hub) remove(s *session) {
	h.mu.Lock()
	delete(h.sessions, s)
	delete(h.all, s)
	for key, id := range s.services {
		h.subBytes.Add(-subscriptionCost(key, id))
		h.cellBytes[s.cell] -= subscriptionCost(key, id)
		h.subCount.Add(-1)
		if subs := h.byService[key]; subs != nil {
			delete(subs, s)
			if len(subs) == 0 {
				delete(h.byService, key)
			}
		}
	}
	h.mu.Unlock()
	h.conns[s.kind].Add(-1)
}

// maxSubscriptions bounds the services one session may follow.
const maxSubscriptions = 10_000

// subscriptionOverhead is what one subscription costs beyond its id's
// bytes, for MaxSubscriptionBytes: its entries in the session's map and in
// the service's map of sessions, and its share of that map (measured: about
// 300 bytes of heap per subscription of a short id).
const subscriptionOverhead = 320

// Why subscribe refuses a subscription; the session is closed with 1008.
const (
	refuseTooMany   = "too many subscriptions on one session"
	refuseTooLong   = "serviceId longer than 1024 bytes"
	refuseNodeQuota = "the node's subscription budget is spent"
	refuseNotUTF8   = "serviceId is not valid UTF-8"
	refuseClient    = "this client's share of the node's subscription budget is spent"
)

// subscribe adds a service to s's subscriptions. It returns why it refused,
// or "" when s follows the service. serviceID may alias a reused buffer:
// what the hub keeps is copied.
func (h *hub) subscribe(s *session, serviceID string) string {
	why := h.trySubscribe(s, serviceID)
	if why != "" {
		h.subRefused.Add(1)
	}
	return why
}

func (h *hub) trySubscribe(s *session, serviceID string) string {
	if len(serviceID) > core.MaxFieldLen {
		return refuseTooLong
	}
	if !utf8.ValidString(serviceID) {
		return refuseNotUTF8
	}
	var buf [256]byte
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := s.services[string(core.AppendFoldKey(buf[:0], serviceID))]; ok {
		return ""
	}
	if len(s.services) >= maxSubscriptions {
		return refuseTooMany
	}
	key := core.FoldKey(serviceID) // owns its bytes
	id := key
	if id != serviceID {
		id = strings.Clone(serviceID)
	}
	cost := subscriptionCost(key, id)
	if h.subBytes.Load()+cost > int64(h.cfg.MaxSubscriptionBytes) {
		return refuseNodeQuota
	}
	if h.cellBytes[s.cell]+cost > int64(float64(h.cfg.MaxSubscriptionBytes)*h.cfg.ClientShare) {
		return refuseClient
	}
	h.cellBytes[s.cell] += cost
	h.subBytes.Add(cost)
	h.subCount.Add(1)
	s.services[key] = id
	subs := h.byService[key]
	if subs == nil {
		subs = map[*session]struct{}{}
		h.byService[key] = subs
	}
	subs[s] = struct{}{}
	return ""
}

// subscriptionCost is what subscribe charged for key -> id.
func subscriptionCost(key, id string) int64 {
	cost := int64(len(key) + subscriptionOverhead)
	if id != key {
		cost += int64(len(id))
	}
	return cost
}

// clientCell is the cell of the client at addr for ClientShare.
func (h *hub) clientCell(addr net.Addr) uint8 {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return uint8(maphash.Bytes(h.cellSeed, tcp.IP) % perClientCells)
	}
	if addr == nil {
		return 0
	}
	return uint8(maphash.String(h.cellSeed, addr.String()) % perClientCells)
}

// reloadFrame encodes the reload change of a service (contract: a
// placeholder instance whose instanceId is "reload").
func reloadFrame(serviceID string, now time.Time) []byte {
	b := []byte(`{"changeType":"reload","changeTime":`)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	b = append(b, `,"instance":{"serviceId":`...)
	b = append(b, mustMarshal(serviceID)...)
	return append(b, `,"instanceId":"reload"}}`...)
}

// PushStats reports WebSocket sessions and push counters.
type PushStats struct {
	Connections map[string]int64 `json:"connections"`
	Pushed      int64            `json:"pushed"`
	Dropped     int64            `json:"slowSubscribersReloaded"`
	Kicked      int64            `json:"slowSubscribersDisconnected"`
	HubReloads  int64            `json:"hubReloads"`
}

func (h *hub) stats() PushStats {
	st := PushStats{Connections: map[string]int64{}, Pushed: h.pushed.Load(), Dropped: h.dropped.Load(),
		Kicked: h.kicked.Load(), HubReloads: h.reloads.Load()}
	for k := range numWSKinds {
		st.Connections[wsKindNames[k]] = h.conns[k].Load()
	}
	return st
}
