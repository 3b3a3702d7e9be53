package console

import (
	"context"
	"strings"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/route"

	"github.com/artemis-go/artemis/core"
)

// Defaults taken by zero Options fields.
const (
	defaultSummaryMaxAge = 500 * time.Millisecond
)

// Prefix is the path the console is served under.
const Prefix = "/console/"

// Options configures the console. Zero fields take the named defaults.
type Options struct {
	// Registry is the node's registry, read by the summary answer. Nil
	// serves the summary as an empty registry (handler tests).
	Registry *core.Registry
	// SummaryMaxAge is how long one computed summary is served before it
	// is computed again (500 ms).
	SummaryMaxAge time.Duration
	// NoRootRedirect leaves GET / alone (by default it redirects to the console).
	NoRootRedirect bool
	// Replication, when set, reports this node's replication to its peers
	// for /console/api/replication.json (the cluster page); nil answers no
	// peers. It is called once per request and must be cheap.
	Replication func() Replication
}

func (o Options) withDefaults() Options {
	if o.SummaryMaxAge <= 0 {
		o.SummaryMaxAge = defaultSummaryMaxAge
	}
	return o
}

// Register mounts the console on e: GET and HEAD of /console/ and
// everything under it, /console, and / unless opts.NoRootRedirect.
func Register(e *route.Engine, opts Options) {
	h := newHandler(opts.withDefaults())
	for _, m := range []string{"GET", "HEAD"} {
		if !opts.NoRootRedirect {
			e.Handle(m, "/", redirect)
		}
		e.Handle(m, "/console", redirect)
		e.Handle(m, Prefix+"*path", h.serve)
	}
}

// handler serves the assets and the summary.
type handler struct {
	assets      map[string]*asset // by path under Prefix, "" for index.html
	summary     *summaryCache
	replication func() Replication
}

func newHandler(opts Options) *handler {
	return &handler{assets: mustLoadAssets(), summary: newSummaryCache(opts.Registry, opts.SummaryMaxAge),
		replication: opts.Replication}
}

func redirect(_ context.Context, c *app.RequestContext) {
	setSecurityHeaders(c)
	c.Response.Header.Set("Cache-Control", "no-cache")
	c.Redirect(302, []byte(Prefix))
}

func (h *handler) serve(_ context.Context, c *app.RequestContext) {
	setSecurityHeaders(c)
	name := strings.TrimPrefix(c.Param("path"), "/")
	switch name {
	case "api/summary.json":
		h.serveSummary(c)
		return
	case "api/replication.json":
		h.serveReplication(c)
		return
	}
	a := h.assets[name]
	if a == nil {
		c.Response.Header.Set("Cache-Control", "no-store")
		c.Response.Header.SetContentType("text/plain; charset=utf-8")
		c.SetStatusCode(404)
		c.Response.SetBodyString("no such console page: " + Prefix + name + "\n")
		return
	}
	a.serve(c)
}

func (h *handler) serveSummary(c *app.RequestContext) {
	body := h.summary.get()
	c.Response.Header.Set("Cache-Control", "no-store")
	c.Response.Header.SetContentType("application/json; charset=utf-8")
	c.Response.SetBody(body)
}

// csp is the Content-Security-Policy of every answer, before connect-src.
// No inline script or style anywhere: the page sets sizes through the CSSOM.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
	"connect-src 'self'"

// setSecurityHeaders sets the headers every console answer carries.
// connect-src names ws:// and wss:// of the request's host as well as
// 'self', for browsers that do not yet count WebSocket schemes as 'self';
// a Host that is not a plain host[:port] gets 'self' alone.
func setSecurityHeaders(c *app.RequestContext) {
	h := &c.Response.Header
	host := c.Request.Header.Host()
	if plainHost(host) {
		var b strings.Builder
		b.Grow(len(csp) + 2*len(host) + 16)
		b.WriteString(csp)
		b.WriteString(" ws://")
		b.Write(host)
		b.WriteString(" wss://")
		b.Write(host)
		h.Set("Content-Security-Policy", b.String())
	} else {
		h.Set("Content-Security-Policy", csp)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// plainHost reports whether host is a non-empty host[:port] of letters,
// digits, '.', '-', ':', '[' and ']' (an IPv6 literal), at most 255 bytes:
// nothing that could end a CSP directive or source.
func plainHost(host []byte) bool {
	if len(host) == 0 || len(host) > 255 {
		return false
	}
	for _, ch := range host {
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case strings.IndexByte(".-:[]", ch) >= 0:
		default:
			return false
		}
	}
	return true
}
