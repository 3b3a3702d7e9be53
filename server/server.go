package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/hlog"
	"github.com/cloudwego/hertz/pkg/common/tracer/stats"
	"github.com/cloudwego/hertz/pkg/route"

	"github.com/artemis-go/artemis/cluster"
	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/management"
)

// Defaults taken by zero Config fields.
const (
	defaultAddr                   = "127.0.0.1:8080"
	defaultMaxBodyBytes           = 8 << 20
	defaultMaxInflatedBytes       = 32 << 20
	defaultMaxInflatingBytes      = 128 << 20
	defaultMaxHeaderBytes         = 16 << 10
	defaultMaxInstancesPerRequest = 10_000
	defaultMaxLookupServices      = 1_000
	defaultMaxConnections         = 50_000
	defaultRequestReadTimeout     = 30 * time.Second
	defaultReadTimeout            = 30 * time.Second
	defaultWriteTimeout           = 30 * time.Second
	defaultIdleTimeout            = 2 * time.Minute
	defaultExitWait               = 4 * time.Second
	// bodySlack is how far over MaxBodyBytes a body is still read, to be
	// answered 413 in JSON rather than refused by the HTTP layer.
	bodySlack = 64 << 10
)

// Config configures a Server. Zero fields take the named defaults.
type Config struct {
	// Addr is the listen address (127.0.0.1:8080).
	Addr string
	// Listener, when set, is used instead of listening on Addr.
	Listener net.Listener
	// NodeURL is the URL this node advertises in status and cluster
	// answers; by default http:// plus the listen address.
	NodeURL string
	// MaxBodyBytes caps a request body as received (8 MiB); larger bodies
	// get 413. Bodies over the cap plus 64 KiB are refused by the HTTP
	// layer before they are read, also with 413 (in plain text): a
	// connection holds at most that much of a body.
	MaxBodyBytes int
	// MaxInflatedBytes caps a gzip request body after inflation (32 MiB).
	MaxInflatedBytes int
	// MaxInflatingBytes bounds the bytes of gzip bodies being inflated at
	// once over the node (128 MiB; raised to twice MaxInflatedBytes+1 if
	// lower, so one body can always grow); a body that cannot get room
	// within a second is answered 503 service-unavailable.
	MaxInflatingBytes int
	// MaxHeaderBytes caps the request header (16 KiB).
	MaxHeaderBytes int
	// MaxInstancesPerRequest caps the instances of one registry request
	// (10,000); a larger batch gets 413 bad-request.
	MaxInstancesPerRequest int
	// MaxLookupServices caps the discoveryConfigs of one lookup.json
	// (1,000); a larger request gets 413 bad-request. A service named
	// several times is answered once.
	MaxLookupServices int
	// MaxConnections bounds the open connections, WebSocket sessions
	// included (50,000); one accepted over it is closed at once.
	MaxConnections int
	// RequestReadTimeout bounds the time from the first byte of a request
	// to its last (header and body; 30 s): a client that drips its request
	// is disconnected (checked every second). ReadTimeout bounds each read.
	RequestReadTimeout time.Duration
	// ReadTimeout, WriteTimeout and IdleTimeout bound each connection (30 s, 30 s, 2 min).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// Logger receives errors and panics (slog.Default()).
	Logger *slog.Logger
	// Pprof serves net/http/pprof under /debug/pprof/ (and turns on mutex
	// and block profiling); loopback clients only unless PprofRemote is set.
	Pprof       bool
	PprofRemote bool
	// RateLimits per operation; nil takes DefaultRateLimits, and a Limit
	// whose Rate is 0 is unlimited.
	RateLimits *RateLimits
	// Push configures WebSocket sessions.
	Push PushConfig
	// Cluster configures membership and replication (package cluster):
	// Cluster.Peers lists every node (the entry equal to NodeURL is this
	// node; empty: a single node), Cluster.Token is required as
	// "Authorization: Bearer T" on every /api/replication/ request and sent
	// to the peers, Cluster.SyncTimeout bounds the startup sync. Self and
	// Zone are filled in from NodeURL and the registry.
	Cluster cluster.Config
	// Management is the management plane (pull-outs, groups, route rules,
	// canary, operation log; package management) whose endpoints the
	// server maps and whose filter shapes discovery; nil: one over a
	// memory store, kept only while the process lives. The caller closes
	// the one it passes.
	Management *management.Manager
	// AdminToken, when set, is required by every management mutation
	// (Authorization: Bearer T, or the body's token); when empty, only
	// loopback clients may mutate.
	AdminToken string
	// ResponseCacheBytes bounds the answer cache (answers.go): the encoded
	// service.json answer of a service (and the lookup.json answer naming
	// it alone), built once per snapshot and then served without copying.
	// Zero takes 64 MiB, or a sixteenth of the Go memory limit
	// (debug.SetMemoryLimit) when that is less; negative turns it off.
	ResponseCacheBytes int
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = defaultAddr
	}
	if c.Listener != nil {
		c.Addr = c.Listener.Addr().String()
	}
	if c.NodeURL == "" {
		c.NodeURL = "http://" + c.Addr
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = defaultMaxBodyBytes
	}
	if c.MaxInflatedBytes <= 0 {
		c.MaxInflatedBytes = defaultMaxInflatedBytes
	}
	if c.MaxInflatingBytes <= 0 {
		c.MaxInflatingBytes = defaultMaxInflatingBytes
	}
	c.MaxInflatingBytes = max(c.MaxInflatingBytes, 2*(c.MaxInflatedBytes+1))
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if c.MaxInstancesPerRequest <= 0 {
		c.MaxInstancesPerRequest = defaultMaxInstancesPerRequest
	}
	if c.MaxLookupServices <= 0 {
		c.MaxLookupServices = defaultMaxLookupServices
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = defaultMaxConnections
	}
	if c.RequestReadTimeout <= 0 {
		c.RequestReadTimeout = defaultRequestReadTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = defaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RateLimits == nil {
		rl := DefaultRateLimits
		c.RateLimits = &rl
	}
	if c.ResponseCacheBytes == 0 {
		c.ResponseCacheBytes = DefaultResponseCacheBytes()
	}
	return c
}

// DefaultResponseCacheBytes is the answer cache's limit when
// Config.ResponseCacheBytes is zero: 64 MiB, or a sixteenth of the Go
// memory limit in force now when that is less.
func DefaultResponseCacheBytes() int {
	return int(min(defaultResponseCacheBytes, debug.SetMemoryLimit(-1)/16))
}

// quietHertz sets Hertz's global log level once: setting it while another
// server logs would be a data race.
var quietHertz sync.Once

// Server serves the Artemis HTTP API for one registry.
type Server struct {
	reg  *core.Registry
	cfg  Config
	h    *server.Hertz
	log  *slog.Logger
	node nodeStatus

	state         atomic.Int32 // nodeStarting, nodeUp, nodeDown
	cluster       *cluster.Cluster
	mgmt          *management.Manager
	ownMgmt       func() // closes a management plane New made itself
	closeMgmt     sync.Once
	replicatedIn  atomic.Int64                // instances received from peers
	tombstones    *cluster.Tombstones         // recent unregisters; nil on a single node
	clusterErr    error                       // a cluster that could not be built; Run returns it
	replicate     [numReplicated]core.Applied // hands client operations to the cluster; nil entries on one node
	panics        atomic.Int64
	limiters      [numOps]*limiter
	clients       [numOps]*clientLimiter // per-client shares, where the limit is shared
	clientLimited atomic.Int64           // requests refused by a client's share
	metrics       *metrics
	errLog        *rateLimitedLog
	hub           *hub
	inflating     *inflateBudget
	conns         *connTracker
	answers       *answerCache // nil when off
}

// New returns a server for reg; Run starts it.
func New(reg *core.Registry, cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{reg: reg, cfg: cfg, log: cfg.Logger, inflating: newInflateBudget(cfg.MaxInflatingBytes)}
	for op, l := range cfg.RateLimits.byOp() {
		s.limiters[op] = newLimiter(l)
		if cfg.RateLimits.shared(op) {
			s.clients[op] = newClientLimiter(l, cfg.RateLimits.ClientShare)
		}
	}
	s.conns = newConnTracker(cfg.MaxConnections, cfg.RequestReadTimeout, min(connSweep, cfg.RequestReadTimeout/4))
	s.errLog = newRateLimitedLog(cfg.Logger)
	s.answers = newAnswerCache(int64(cfg.ResponseCacheBytes), time.Now)
	s.metrics = newMetrics(s)
	s.hub = newHub(reg, cfg.Push, s.metrics.pushLatency.Observe)
	s.node = nodeStatus{
		Node:                        serviceNode{URL: cfg.NodeURL, Zone: zone{RegionID: reg.Region(), ZoneID: reg.Zone()}},
		Status:                      statusUp,
		CanServiceRegistry:          true,
		CanServiceDiscovery:         true,
		AllowRegistryFromOtherZone:  true,
		AllowDiscoveryFromOtherZone: true,
	}
	s.initCluster()
	s.initManagement()
	opts := append(TransportOptions(cfg),
		server.WithOnAccept(s.conns.onAccept),
		server.WithTracer(requestTracer{}), // marks each request's start for RequestReadTimeout
		server.WithTraceLevel(stats.LevelDisabled),
	)
	if cfg.Listener != nil {
		opts = append(opts, server.WithListener(cfg.Listener))
	}
	quietHertz.Do(func() { // start-up chatter off; errors still show, throttled
		hlog.SetLevel(hlog.LevelWarn)
		hlog.SetOutput(newThrottledWriter(os.Stderr))
	})
	s.h = server.New(opts...)
	s.h.Use(s.frame)
	s.routes(s.h.Engine)
	if cfg.Pprof {
		servePprof(s.h.Engine, cfg.PprofRemote)
	}
	if s.cluster.Configured() {
		s.state.Store(nodeStarting) // up once Run has copied the registry from a peer
	} else {
		s.state.Store(nodeUp)
	}
	return s
}

// Engine returns the Hertz engine, for in-process tests and benchmarks.
func (s *Server) Engine() *route.Engine { return s.h.Engine }

// Run serves until Shutdown; it returns the error that stopped serving. A
// node with peers serves as starting while it copies the registry from a
// peer (see startup), then up.
func (s *Server) Run() error {
	if s.clusterErr != nil {
		return s.clusterErr
	}
	if s.cluster.Configured() {
		go s.startup()
	}
	return s.h.Run()
}

// Shutdown stops accepting requests, marks the node down and waits for
// requests in flight until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.state.Store(nodeDown)
	s.hub.close()     // WebSocket sessions hold their connections until closed
	s.cluster.Close() // and so do the peers' idle connections
	err := s.h.Shutdown(ctx)
	s.closeBackground()
	if err != nil {
		return fmt.Errorf("cannot shut down the HTTP server: %w", err)
	}
	return nil
}

// closeBackground stops the server's goroutines (push, cluster,
// connection watchdog, its own management plane) without the HTTP server:
// what Shutdown does after it, and what a server never Run needs.
func (s *Server) closeBackground() {
	s.hub.close()
	s.cluster.Close()
	s.conns.close()
	s.closeMgmt.Do(func() {
		if s.ownMgmt != nil {
			s.ownMgmt()
		}
	})
}

// Panics returns the number of handler panics recovered.
func (s *Server) Panics() int64 { return s.panics.Load() }

func (s *Server) routes(e *route.Engine) {
	s.mountConsole(e)
	s.managementRoutes(e)
	e.GET("/health", func(_ context.Context, c *app.RequestContext) {
		c.Response.Header.SetContentType("text/plain; charset=utf-8")
		c.Response.SetBodyString("OK")
	})
	e.GET("/metrics", s.metrics.handler())

	both := []string{"GET", "POST"}
	post := []string{"POST"}
	for _, r := range []struct {
		methods []string
		path    string
		op      int
		h       app.HandlerFunc
	}{
		{post, "/api/registry/register.json", opRegister, s.register},
		{post, "/api/registry/heartbeat.json", opHeartbeat, s.heartbeat},
		{post, "/api/registry/unregister.json", opUnregister, s.unregister},
		{post, "/api/discovery/lookup.json", opDiscovery, s.lookup},
		{both, "/api/discovery/service.json", opDiscovery, s.service},
		{both, "/api/discovery/services.json", opDiscovery, s.services},
		{both, "/api/discovery/services-delta.json", opDiscovery, s.servicesDelta},
		{both, "/api/status/node.json", opUnlimited, s.nodeStatus},
		{both, "/api/status/cluster.json", opCluster, s.clusterStatus},
		{both, "/api/status/leases.json", opStatus, s.leases},
		{both, "/api/status/config.json", opStatus, s.config},
		{both, "/api/status/deployment.json", opStatus, s.deployment},
		{both, "/api/cluster/up-registry-nodes.json", opCluster, s.upNodes},
		{both, "/api/cluster/up-discovery-nodes.json", opCluster, s.upNodes},
		{both, "/api/status/websocket.json", opStatus, s.wsStats},
	} {
		h := s.metrics.instrument(r.path, s.gate(r.op), r.h)
		for _, m := range r.methods {
			e.Handle(m, r.path, h)
		}
	}

	// Replication (contract section 8): peers only, with the cluster token
	// when one is set; no rate limit, no node-status check.
	for _, r := range []struct {
		path string
		h    app.HandlerFunc
	}{
		{"/api/replication/registry/register.json", s.replicatedRegister},
		{"/api/replication/registry/heartbeat.json", s.replicatedHeartbeat},
		{"/api/replication/registry/unregister.json", s.replicatedUnregister},
	} {
		e.POST(r.path, s.metrics.instrument(r.path, nil, s.replicationAuth(r.h)))
	}
	services := s.metrics.instrument("/api/replication/registry/services.json", nil, s.replicationAuth(s.replicationServices))
	e.GET("/api/replication/registry/services.json", services)
	e.POST("/api/replication/registry/services.json", services)

	e.GET("/ws/registry/heartbeat", s.wsHandler(wsHeartbeat))
	e.GET("/ws/discovery/instance-change", s.wsHandler(wsInstanceChange))
	e.GET("/ws/discovery/all-instance-change", s.wsHandler(wsAllInstanceChange))

	// OPTIONS has no routes: preflights land here, answered 200 (cors set the headers).
	e.NoRoute(func(_ context.Context, c *app.RequestContext) {
		if string(c.Method()) == "OPTIONS" {
			c.SetStatusCode(200)
			return
		}
		writeJSON(c, 404, statusOnly{failStatus(codeBadRequest, "no such path: "+string(c.Request.URI().Path()))})
	})
	e.NoMethod(func(_ context.Context, c *app.RequestContext) {
		if string(c.Method()) == "OPTIONS" {
			c.SetStatusCode(200)
			return
		}
		writeJSON(c, 405, statusOnly{failStatus(codeBadRequest, "method "+string(c.Method())+" is not allowed here")})
	})
}

var allowOriginKey, allowOriginAny = []byte("Access-Control-Allow-Origin"), []byte("*")

// cors lets browsers call every path (contract section 1).
func cors(c *app.RequestContext) {
	h := &c.Response.Header
	h.SetCanonical(allowOriginKey, allowOriginAny) // Set would copy and normalise the name first
	if string(c.Method()) == "OPTIONS" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, Accept-Encoding, Authorization")
		h.Set("Access-Control-Max-Age", "86400")
	}
}

// frame is the one middleware of every request: while the handlers run it
// marks the connection serving (connTracker.serving), it turns a handler
// panic into a 500, and it sets the CORS headers. One step of the chain
// for the three, on every request.
func (s *Server) frame(ctx context.Context, c *app.RequestContext) {
	tc := s.conns.serving(ctx)
	defer func() {
		if v := recover(); v != nil {
			s.recovered(c, v)
		}
		s.conns.served(tc, c)
	}()
	cors(c)
	c.Next(ctx)
}

// recovered turns a handler panic into a 500 (a bug, never a client's
// mistake), counted and logged with its stack (errors are rate-limited).
func (s *Server) recovered(c *app.RequestContext, v any) {
	n := s.panics.Add(1)
	s.errLog.Error("BUG: handler panic recovered", "path", string(c.Request.URI().Path()),
		"panic", fmt.Sprint(v), "count", n, "stack", stack())
	c.Response.Reset()
	c.Response.Header.SetCanonical(allowOriginKey, allowOriginAny)
	writeJSON(c, 500, statusOnly{failStatus(codeInternalError, "internal error")})
	c.Abort()
}

// rateLimitedBody answers a request over its operation's rate limit.
var rateLimitedBody = []byte(`{"responseStatus":{"status":"fail","errorCode":"rate-limited","message":"too many requests; retry later"}}`)

// gate checks the client's share of op's rate limit (when op has one),
// then op's limit, before the handler runs (the first check, as the
// contract orders them), at now (a reading of monoNow), and answers
// rate-limited in-band when either is spent; false then. It is nil for an
// unlimited op.
func (s *Server) gate(op int) func(c *app.RequestContext, now int64) bool {
	if op == opUnlimited || s.limiters[op] == nil {
		return nil
	}
	lm, cl := s.limiters[op], s.clients[op]
	return func(c *app.RequestContext, now int64) bool {
		if !cl.allowAt(c.RemoteAddr(), now) {
			s.clientLimited.Add(1)
			lm.limited.Add(1)
			writeBytes(c, 200, rateLimitedBody)
			return false
		}
		if !lm.allowAt(now) {
			writeBytes(c, 200, rateLimitedBody)
			return false
		}
		return true
	}
}

// nodeAddr returns the host and port of the advertised node URL for
// deployment.json (the listen address may be ":8080", which names no
// host); the port defaults to the scheme's.
func nodeAddr(nodeURL string) (string, int) {
	u, err := url.Parse(nodeURL)
	if err != nil || u.Host == "" {
		return nodeURL, 0
	}
	p, _ := strconv.Atoi(u.Port())
	if p == 0 {
		p = map[string]int{"http": 80, "https": 443}[u.Scheme]
	}
	return u.Hostname(), p
}
