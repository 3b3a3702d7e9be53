package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/artemis-go/artemis/core"
)

// Node statuses (contract section 10).
const (
	StatusStarting = "starting"
	StatusUp       = "up"
	StatusDown     = "down"
	StatusUnknown  = "unknown"
)

// Cluster is this node's view of its peers and its replication to them.
type Cluster struct {
	reg *core.Registry
	cfg Config
	log *slog.Logger
	out *outbox

	mu    sync.RWMutex
	peers []*peer // in the order of Config.Peers; guarded by mu

	startOnce sync.Once
	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// New returns the cluster of reg's node; Start starts its goroutines.
func New(reg *core.Registry, cfg Config) (*Cluster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Cluster{reg: reg, cfg: cfg, log: cfg.Logger, done: make(chan struct{})}
	c.out = newOutbox(cfg.MaxPending)
	c.setPeers(c.expand())
	return c, nil
}

// Self returns this node's URL.
func (c *Cluster) Self() string { return c.cfg.Self }

// Configured reports whether the cluster has peers at all (a nil Cluster
// has none).
func (c *Cluster) Configured() bool { return c != nil && len(c.cfg.Peers) > 0 }

// NodeCount is the number of nodes: this one and its distinct peers.
func (c *Cluster) NodeCount() int {
	if c == nil {
		return 1
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return 1 + len(c.peers)
}

// Start polls the peers, resolves their names and runs the replication
// dispatcher and senders until Close.
func (c *Cluster) Start() {
	c.startOnce.Do(func() {
		c.out.started.Store(true)
		c.wg.Add(3)
		go c.pollLoop()
		go c.resolveLoop()
		go c.dispatch()
		c.mu.RLock()
		for _, p := range c.peers {
			p.start()
		}
		c.mu.RUnlock()
	})
}

// Close stops every goroutine of the cluster; batches not sent are dropped.
func (c *Cluster) Close() {
	if c == nil {
		return
	}
	c.closeOnce.Do(func() {
		close(c.done)
		c.mu.RLock()
		for _, p := range c.peers {
			p.stop()
		}
		c.mu.RUnlock()
	})
	c.wg.Wait()
	c.cfg.Client.CloseIdleConnections()
}

// PeerStatus is a peer as last seen.
type PeerStatus struct {
	URL      string
	RegionID string
	ZoneID   string
	Status   string
	LastSeen time.Time // zero: never reached
	Error    string    // why the last poll failed
}

// Peers returns every peer as last seen, in configured order.
func (c *Cluster) Peers() []PeerStatus {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]PeerStatus, len(c.peers))
	for i, p := range c.peers {
		out[i] = p.status()
	}
	return out
}

// peerList returns the current peers.
func (c *Cluster) peerList() []*peer {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]*peer(nil), c.peers...)
}

// expand resolves the configured peers into one URL per node. Two names of
// one node (localhost and 127.0.0.1, say) are one peer: entries are told
// apart by the address they resolve to, and the first name is kept.
func (c *Cluster) expand() []string {
	var urls []string
	seen := map[string]bool{c.cfg.Self: true}
	if self, err := url.Parse(c.cfg.Self); err == nil && net.ParseIP(self.Hostname()) == nil {
		if addrs, err := c.cfg.Resolve(self.Hostname()); err == nil && len(addrs) == 1 {
			seen[withHost(self, addrs[0])] = true
		}
	}
	add := func(u, canonical string) {
		if !seen[u] && !seen[canonical] {
			seen[u], seen[canonical] = true, true
			urls = append(urls, u)
		}
	}
	for _, raw := range c.cfg.Peers {
		u, _ := url.Parse(raw)
		host := u.Hostname()
		if net.ParseIP(host) != nil {
			add(raw, raw)
			continue
		}
		addrs, err := c.cfg.Resolve(host)
		if err != nil || len(addrs) == 0 {
			add(raw, raw) // not resolvable now: kept by name, polled as unknown
			continue
		}
		sort.Strings(addrs)
		if len(addrs) == 1 {
			add(raw, withHost(u, addrs[0])) // one node: keep its name (TLS, readability)
			continue
		}
		for _, a := range addrs {
			au := withHost(u, a)
			add(au, au)
		}
	}
	return urls
}

// withHost is u with its host replaced by the address a (port kept),
// normalized.
func withHost(u *url.URL, a string) string {
	v := *u
	if port := u.Port(); port != "" {
		v.Host = net.JoinHostPort(a, port)
	} else if net.ParseIP(a).To4() == nil {
		v.Host = "[" + a + "]"
	} else {
		v.Host = a
	}
	s, _ := normalizeURL(v.String())
	return s
}

// setPeers makes urls the peers, keeping the state of those that stay.
func (c *Cluster) setPeers(urls []string) {
	c.mu.Lock()
	old := map[string]*peer{}
	for _, p := range c.peers {
		old[p.url] = p
	}
	next := make([]*peer, 0, len(urls))
	started := false
	select {
	case <-c.done:
	default:
		started = c.startedLocked()
	}
	for _, u := range urls {
		if p := old[u]; p != nil {
			next = append(next, p)
			delete(old, u)
			continue
		}
		p := newPeer(c, u)
		next = append(next, p)
		if started {
			p.start()
		}
		c.log.Info("cluster: peer added", "peer", u)
	}
	c.peers = next
	c.mu.Unlock()
	for u, p := range old {
		p.stop()
		c.log.Info("cluster: peer removed", "peer", u)
	}
}

// startedLocked reports whether Start ran (the dispatcher exists).
func (c *Cluster) startedLocked() bool { return c.out.started.Load() }

func (c *Cluster) resolveLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.ResolveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.setPeers(c.expand())
		}
	}
}

func (c *Cluster) pollLoop() {
	defer c.wg.Done()
	c.pollAll()
	t := time.NewTicker(c.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.pollAll()
		}
	}
}

// pollAll reads every peer's node status at once.
func (c *Cluster) pollAll() {
	var wg sync.WaitGroup
	for _, p := range c.peerList() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.poll()
		}()
	}
	wg.Wait()
}

// nodeStatusAnswer is the part of /api/status/node.json a node reads of its peers.
type nodeStatusAnswer struct {
	NodeStatus struct {
		Node struct {
			URL  string `json:"url"`
			Zone struct {
				RegionID string `json:"regionId"`
				ZoneID   string `json:"zoneId"`
			} `json:"zone"`
		} `json:"node"`
		Status string `json:"status"`
	} `json:"nodeStatus"`
	ResponseStatus struct {
		ErrorCode string `json:"errorCode"`
	} `json:"responseStatus"`
}

// post sends body to path of the node at base and returns the answer (at
// most limit bytes), with the cluster's token.
func (c *Cluster) post(ctx context.Context, base, path string, body []byte, gz bool, limit int64) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	c.authorize(req)
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	return resp.StatusCode, b, err
}

func (c *Cluster) authorize(req *http.Request) {
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
}

// pollStatus reads the node status of the node at base.
func (c *Cluster) pollStatus(base string) (nodeStatusAnswer, error) {
	var a nodeStatusAnswer
	ctx, cancel := context.WithTimeout(context.Background(), min(c.cfg.RequestTimeout, max(c.cfg.PollInterval, 500*time.Millisecond)))
	defer cancel()
	code, b, err := c.post(ctx, base, "/api/status/node.json", []byte("{}"), false, 64<<10)
	if err != nil {
		return a, err
	}
	if code != 200 {
		return a, fmt.Errorf("HTTP %d", code)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("cannot decode node status: %w", err)
	}
	if a.NodeStatus.Status == "" {
		return a, fmt.Errorf("no node status in the answer (%s)", a.ResponseStatus.ErrorCode)
	}
	return a, nil
}
