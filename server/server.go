package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/config"
	"github.com/cloudwego/hertz/pkg/common/hlog"
	"github.com/cloudwego/hertz/pkg/route"

	"github.com/artemis-go/artemis/core"
)

// Defaults taken by zero Config fields.
const (
	defaultAddr             = "127.0.0.1:8080"
	defaultMaxBodyBytes     = 8 << 20
	defaultMaxInflatedBytes = 32 << 20
	defaultMaxHeaderBytes   = 16 << 10
	defaultReadTimeout      = 30 * time.Second
	defaultWriteTimeout     = 30 * time.Second
	defaultIdleTimeout      = 2 * time.Minute
	defaultExitWait         = 4 * time.Second
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
	// get 413. Bodies over four times the cap are refused by the HTTP layer
	// before they are read, also with 413.
	MaxBodyBytes int
	// MaxInflatedBytes caps a gzip request body after inflation (32 MiB).
	MaxInflatedBytes int
	// MaxHeaderBytes caps the request header (16 KiB).
	MaxHeaderBytes int
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
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = defaultMaxHeaderBytes
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
	return c
}

// Server serves the Artemis HTTP API for one registry.
type Server struct {
	reg  *core.Registry
	cfg  Config
	h    *server.Hertz
	log  *slog.Logger
	node nodeStatus

	up     atomic.Bool // serving; false while starting and shutting down
	panics atomic.Int64
}

// New returns a server for reg; Run starts it.
func New(reg *core.Registry, cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{reg: reg, cfg: cfg, log: cfg.Logger}
	s.node = nodeStatus{
		Node:                        serviceNode{URL: cfg.NodeURL, Zone: zone{RegionID: reg.Region(), ZoneID: reg.Zone()}},
		Status:                      "up",
		CanServiceRegistry:          true,
		CanServiceDiscovery:         true,
		AllowRegistryFromOtherZone:  true,
		AllowDiscoveryFromOtherZone: true,
	}
	opts := []config.Option{
		server.WithHostPorts(cfg.Addr),
		server.WithMaxRequestBodySize(4 * cfg.MaxBodyBytes),
		server.WithMaxHeaderBytes(cfg.MaxHeaderBytes),
		server.WithReadTimeout(cfg.ReadTimeout),
		server.WithWriteTimeout(cfg.WriteTimeout),
		server.WithIdleTimeout(cfg.IdleTimeout),
		server.WithKeepAliveTimeout(cfg.IdleTimeout),
		server.WithExitWaitTime(defaultExitWait),
		server.WithDisablePrintRoute(true),
		server.WithHandleMethodNotAllowed(true),
		server.WithRedirectTrailingSlash(false),
		server.WithRedirectFixedPath(false),
	}
	if cfg.Listener != nil {
		opts = append(opts, server.WithListener(cfg.Listener))
	}
	hlog.SetLevel(hlog.LevelWarn) // Hertz's start-up chatter; errors still show
	s.h = server.New(opts...)
	s.h.Use(s.recoverPanics, cors)
	s.routes(s.h.Engine)
	if cfg.Pprof {
		servePprof(s.h.Engine, cfg.PprofRemote)
	}
	s.up.Store(true)
	return s
}

// Engine returns the Hertz engine, for in-process tests and benchmarks.
func (s *Server) Engine() *route.Engine { return s.h.Engine }

// Run serves until Shutdown; it returns the error that stopped serving.
func (s *Server) Run() error { return s.h.Run() }

// Shutdown stops accepting requests, marks the node down and waits for
// requests in flight until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.up.Store(false)
	if err := s.h.Shutdown(ctx); err != nil {
		return fmt.Errorf("cannot shut down the HTTP server: %w", err)
	}
	return nil
}

// Panics returns the number of handler panics recovered.
func (s *Server) Panics() int64 { return s.panics.Load() }

func (s *Server) routes(e *route.Engine) {
	e.GET("/health", func(_ context.Context, c *app.RequestContext) {
		c.Response.Header.SetContentType("text/plain; charset=utf-8")
		c.Response.SetBodyString("OK")
	})

	reg := e.Group("/api/registry")
	reg.POST("/register.json", s.register)
	reg.POST("/heartbeat.json", s.heartbeat)
	reg.POST("/unregister.json", s.unregister)

	disc := e.Group("/api/discovery")
	disc.POST("/lookup.json", s.lookup)
	disc.POST("/service.json", s.service)
	disc.GET("/service.json", s.service)
	disc.POST("/services.json", s.services)
	disc.GET("/services.json", s.services)
	disc.POST("/services-delta.json", s.servicesDelta)
	disc.GET("/services-delta.json", s.servicesDelta)

	st := e.Group("/api/status")
	for path, h := range map[string]app.HandlerFunc{
		"/node.json":       s.nodeStatus,
		"/cluster.json":    s.clusterStatus,
		"/leases.json":     s.leases,
		"/config.json":     s.config,
		"/deployment.json": s.deployment,
	} {
		st.POST(path, h)
		st.GET(path, h)
	}
	cl := e.Group("/api/cluster")
	for _, path := range []string{"/up-registry-nodes.json", "/up-discovery-nodes.json"} {
		cl.POST(path, s.upNodes)
		cl.GET(path, s.upNodes)
	}

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

// cors lets browsers call every path (contract section 1).
func cors(ctx context.Context, c *app.RequestContext) {
	h := &c.Response.Header
	h.Set("Access-Control-Allow-Origin", "*")
	if string(c.Method()) == "OPTIONS" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, Accept-Encoding, Authorization")
		h.Set("Access-Control-Max-Age", "86400")
	}
	c.Next(ctx)
}

// recoverPanics turns a handler panic into a 500 (a bug, never a client's
// mistake). The first panic is logged with its stack, then one in 1000.
func (s *Server) recoverPanics(ctx context.Context, c *app.RequestContext) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		n := s.panics.Add(1)
		if n == 1 || n%1000 == 0 {
			s.log.Error("BUG: handler panic recovered", "path", string(c.Request.URI().Path()),
				"panic", fmt.Sprint(v), "count", n, "stack", stack())
		}
		c.Response.Reset()
		c.Response.Header.Set("Access-Control-Allow-Origin", "*")
		writeJSON(c, 500, statusOnly{failStatus(codeInternalError, "internal error")})
		c.Abort()
	}()
	c.Next(ctx)
}

// nodeAddr splits the advertised node URL's host and port for deployment.json.
func nodeAddr(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}
