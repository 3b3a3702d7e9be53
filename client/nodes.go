package client

import (
	"context"
	"errors"
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

// Service is a service as discovery shows it. LogicInstances and
// RouteRules come from the management plane (contract section 11); Picker
// applies them. A Service from Discovery shares LogicInstances and
// RouteRules with the client's cache: read them, do not modify them.
type Service struct {
	ServiceID      string      `json:"serviceId"`
	Instances      []Instance  `json:"instances"`
	LogicInstances []Instance  `json:"logicInstances,omitempty"`
	RouteRules     []RouteRule `json:"routeRules,omitempty"`
}

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
	attemptTimeout    time.Duration
	nodeDownFor       time.Duration // how long a failed node is tried last
	limitedFor        time.Duration // how long a rate-limited node is tried last
	now               func() time.Time
	log               *slog.Logger
	disableNodeLookup bool
}

// Defaults of the failover policy (see nodes.call).
const (
	defaultRetries        = 3
	defaultBackoff        = 100 * time.Millisecond
	defaultMaxWait        = 2 * time.Second
	defaultAttemptTimeout = 5 * time.Second
	defaultNodeDownFor    = 10 * time.Second
	defaultLimitedFor     = time.Second
	// stableSocket is how long a WebSocket must have lived for its
	// reconnection to start again from the base backoff.
	stableSocket = 30 * time.Second
)

func defaults() options {
	return options{
		httpClient:     &http.Client{Timeout: 5 * time.Second},
		region:         "default",
		zone:           "default",
		retries:        defaultRetries,
		backoff:        defaultBackoff,
		maxWait:        defaultMaxWait,
		attemptTimeout: defaultAttemptTimeout,
		refresh:        time.Minute,
		heartbeat:      5 * time.Second,
		reconcile:      time.Minute,
		nodeDownFor:    defaultNodeDownFor,
		limitedFor:     defaultLimitedFor,
		now:            time.Now,
		log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// WithHTTPClient sets the HTTP client (default: 5 s timeout).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithRegion and WithZone set the caller's region and zone (default "default").
func WithRegion(r string) Option { return func(o *options) { o.region = r } }

// WithZone sets the caller's zone.
func WithZone(z string) Option { return func(o *options) { o.zone = z } }

// WithRetries sets how many times a call is retried (3: at most 4
// attempts) and its backoff: a retry goes at once to a node the call has not
// tried yet; once every node has failed it, the call waits a jittered
// exponential backoff from base up to max (100 ms, 2 s) before going round
// the nodes again.
func WithRetries(n int, base, max time.Duration) Option {
	return func(o *options) { o.retries, o.backoff, o.maxWait = n, base, max }
}

// WithAttemptTimeout bounds one attempt of a call on one node (5 s; zero
// means the default), whatever the HTTP client's own timeout.
func WithAttemptTimeout(d time.Duration) Option { return func(o *options) { o.attemptTimeout = d } }

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
// them. Calls go to the primary and fail over to the next nodes. A node that
// failed is avoided (tried after the others) for a while: nodeDownFor (10 s)
// after a transport error, HTTP 5xx or service-unavailable, limitedFor (1 s)
// after rate-limited; any answer from it ends that. Clients spread over the
// cluster because each picks its primary at random when it learns the node
// list (with static nodes the first one is the primary: the caller orders
// them).
type nodes struct {
	o         *options
	kind      string // "registry" or "discovery"
	bootstrap []string
	primary   atomic.Uint64

	mu    sync.Mutex
	urls  []string             // guarded by mu
	avoid map[string]time.Time // guarded by mu: until when a node is tried last
}

func newNodes(o *options, kind string, urls []string) (*nodes, error) {
	if len(urls) == 0 {
		return nil, errors.New("client: no bootstrap URL")
	}
	clean := make([]string, len(urls))
	for i, u := range urls {
		clean[i] = strings.TrimRight(u, "/")
	}
	return &nodes{o: o, kind: kind, bootstrap: clean, urls: clean, avoid: map[string]time.Time{}}, nil
}

// order returns the nodes to try: from the primary round the list, avoided
// ones last (the one avoided for the shortest time first).
func (n *nodes) order() []string {
	now := n.o.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	start := int(n.primary.Load() % uint64(len(n.urls)))
	out := make([]string, 0, len(n.urls))
	var avoided []string
	for i := range n.urls {
		u := n.urls[(start+i)%len(n.urls)]
		if until, ok := n.avoid[u]; ok && now.Before(until) {
			avoided = append(avoided, u)
		} else {
			out = append(out, u)
		}
	}
	slices.SortStableFunc(avoided, func(a, b string) int { return n.avoid[a].Compare(n.avoid[b]) })
	return append(out, avoided...)
}

// next returns the first node of the order not in tried, or "" when every
// node is.
func (n *nodes) next(tried []string) string {
	for _, u := range n.order() {
		if !slices.Contains(tried, u) {
			return u
		}
	}
	return ""
}

// avoidAfter makes node u tried last for a while after a failure of kind v.
func (n *nodes) avoidAfter(u string, v verdict) {
	d := n.o.nodeDownFor
	if v == verdictRateLimited {
		d = n.o.limitedFor
	}
	now := n.o.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, until := range n.avoid {
		if !now.Before(until) {
			delete(n.avoid, k)
		}
	}
	n.avoid[u] = now.Add(d)
}

// answered records that node u answered: it is no longer avoided.
func (n *nodes) answered(u string) {
	n.mu.Lock()
	delete(n.avoid, u)
	n.mu.Unlock()
}

// nodesResponse is the answer of up-registry-nodes.json and up-discovery-nodes.json.
type nodesResponse struct {
	envelope
	Nodes []struct {
		URL string `json:"url"`
	} `json:"nodes"`
}

// refresh replaces the node list with the cluster's up-<kind>-nodes.
func (n *nodes) refresh(ctx context.Context) error {
	if n.o.disableNodeLookup {
		return nil
	}
	var resp nodesResponse
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
