package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/artemis-go/artemis/core"
)

// Instance is an Artemis instance (contract section 2).
type Instance = core.Instance

// Service is a service as discovery shows it.
type Service struct {
	ServiceID string     `json:"serviceId"`
	Instances []Instance `json:"instances"`
}

// ErrNoNode: no node answered.
var ErrNoNode = errors.New("client: no Artemis node answered")

// Option configures a client.
type Option func(*options)

type options struct {
	httpClient        *http.Client
	region, zone      string
	retries           int
	backoff, maxWait  time.Duration
	refresh           time.Duration
	heartbeat         time.Duration
	reconcile         time.Duration
	nodeDownFor       time.Duration
	log               *slog.Logger
	disableNodeLookup bool
}

func defaults() options {
	return options{
		httpClient: &http.Client{Timeout: 5 * time.Second},
		region:     "default", zone: "default",
		retries: 3, backoff: 100 * time.Millisecond, maxWait: 2 * time.Second,
		refresh: time.Minute, heartbeat: 5 * time.Second, reconcile: time.Minute,
		nodeDownFor: 10 * time.Second,
		log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// WithHTTPClient sets the HTTP client (default: 5 s timeout).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithRegion and WithZone set the caller's region and zone (default "default").
func WithRegion(r string) Option { return func(o *options) { o.region = r } }

// WithZone sets the caller's zone.
func WithZone(z string) Option { return func(o *options) { o.zone = z } }

// WithRetries sets how many nodes a call tries before it fails (3), with
// exponential backoff from base up to max between tries (100 ms, 2 s).
func WithRetries(n int, base, max time.Duration) Option {
	return func(o *options) { o.retries, o.backoff, o.maxWait = n, base, max }
}

// WithNodeRefresh sets how often the node list is fetched again (1 min).
func WithNodeRefresh(d time.Duration) Option { return func(o *options) { o.refresh = d } }

// WithHeartbeatInterval sets the heartbeat period (5 s).
func WithHeartbeatInterval(d time.Duration) Option { return func(o *options) { o.heartbeat = d } }

// WithReconcileInterval sets how often discovery re-reads its services (1 min).
func WithReconcileInterval(d time.Duration) Option { return func(o *options) { o.reconcile = d } }

// WithLogger sets where the client logs failures (default: nowhere).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithStaticNodes uses the bootstrap URLs only, never the cluster's list.
func WithStaticNodes() Option { return func(o *options) { o.disableNodeLookup = true } }

// nodes is the address manager: the known node URLs and a primary among
// them. Calls go to the primary and fail over to the next nodes; a node that
// failed is skipped for a while. Clients spread over the cluster because
// each picks its primary at random when it learns the node list (with static
// nodes the first one is the primary: the caller orders them).
type nodes struct {
	o         *options
	kind      string // "registry" or "discovery"
	bootstrap []string
	primary   atomic.Uint64

	mu   sync.Mutex
	urls []string             // guarded by mu
	down map[string]time.Time // guarded by mu: when a node failed
}

func newNodes(o *options, kind string, urls []string) (*nodes, error) {
	if len(urls) == 0 {
		return nil, errors.New("client: no bootstrap URL")
	}
	clean := make([]string, len(urls))
	for i, u := range urls {
		clean[i] = strings.TrimRight(u, "/")
	}
	return &nodes{o: o, kind: kind, bootstrap: clean, urls: clean, down: map[string]time.Time{}}, nil
}

// order returns the nodes to try, healthy ones first, starting round-robin.
func (n *nodes) order() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	start := int(n.primary.Load())
	var up, failed []string
	for i := range n.urls {
		u := n.urls[(start+i)%len(n.urls)]
		if t, ok := n.down[u]; ok && time.Since(t) < n.o.nodeDownFor {
			failed = append(failed, u)
		} else {
			up = append(up, u)
		}
	}
	return append(up, failed...)
}

func (n *nodes) markDown(u string) {
	n.mu.Lock()
	n.down[u] = time.Now()
	n.mu.Unlock()
}

// refresh replaces the node list with the cluster's up-<kind>-nodes.
func (n *nodes) refresh(ctx context.Context) error {
	if n.o.disableNodeLookup {
		return nil
	}
	var resp struct {
		Nodes []struct {
			URL string `json:"url"`
		} `json:"nodes"`
		ResponseStatus status `json:"responseStatus"`
	}
	req := map[string]string{"regionId": n.o.region, "zoneId": n.o.zone}
	if err := n.call(ctx, "/api/cluster/up-"+n.kind+"-nodes.json", req, &resp); err != nil {
		return err
	}
	if resp.ResponseStatus.Status != "success" || len(resp.Nodes) == 0 {
		return nil // keep what we have
	}
	urls := make([]string, 0, len(resp.Nodes))
	for _, nd := range resp.Nodes {
		urls = append(urls, strings.TrimRight(nd.URL, "/"))
	}
	// The bootstrap URLs stay as a last resort.
	for _, b := range n.bootstrap {
		if !slices.Contains(urls, b) {
			urls = append(urls, b)
		}
	}
	n.mu.Lock()
	n.urls = urls
	n.primary.Store(uint64(rand.IntN(len(urls))))
	n.mu.Unlock()
	return nil
}

type status struct {
	Status    string `json:"status"`
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

// call POSTs req as JSON to path on one node after another (up to the
// configured retries, with backoff) until one answers below HTTP 400. A
// transport error or an HTTP status of 400 or more marks the node down and
// moves on, as the Java client does.
func (n *nodes) call(ctx context.Context, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("client: cannot encode request: %w", err)
	}
	wait := n.o.backoff
	var last error
	for attempt, u := range n.attempts() {
		if attempt > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
			wait = min(wait*2, n.o.maxWait)
		}
		if last = n.post(ctx, u+path, body, resp); last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n.markDown(u)
		n.o.log.Warn("artemis node failed", "node", u, "path", path, "err", last)
	}
	return fmt.Errorf("%w: %s: %w", ErrNoNode, path, last)
}

// attempts lists the nodes one call tries: retries+1 tries over the order.
func (n *nodes) attempts() []string {
	order := n.order()
	out := make([]string, 0, n.o.retries+1)
	for i := 0; i <= n.o.retries; i++ {
		out = append(out, order[i%len(order)])
	}
	return out
}

func (n *nodes) post(ctx context.Context, url string, body []byte, resp any) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	r, err := n.o.httpClient.Do(req)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	if r.StatusCode >= 400 {
		io.Copy(io.Discard, r.Body)
		return fmt.Errorf("HTTP %d", r.StatusCode)
	}
	if err := json.NewDecoder(r.Body).Decode(resp); err != nil {
		return fmt.Errorf("cannot decode answer: %w", err)
	}
	return nil
}

// start builds the options and node list of a client of kind, fetches the
// cluster's node list once, and starts refreshing it on the returned
// context, which lives until cancel.
func start(ctx context.Context, kind string, urls []string, opts []Option) (*options, *nodes, context.Context, context.CancelFunc, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	n, err := newNodes(&o, kind, urls)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if err := n.refresh(ctx); err != nil {
		o.log.Warn("cannot fetch the "+kind+" nodes; using the bootstrap URLs", "err", err)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	go n.refreshLoop(loopCtx)
	return &o, n, loopCtx, cancel, nil
}

// refreshLoop refreshes the node list until ctx is done.
func (n *nodes) refreshLoop(ctx context.Context) {
	t := time.NewTicker(n.o.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.refresh(ctx); err != nil {
				n.o.log.Warn("cannot refresh the node list", "err", err)
			}
		}
	}
}

func wsURL(httpURL, path string) string {
	return "ws" + strings.TrimPrefix(httpURL, "http") + path
}
