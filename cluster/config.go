package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults taken by zero Config fields.
const (
	defaultSyncTimeout     = 10 * time.Second
	defaultPollInterval    = time.Second
	defaultResolveInterval = 30 * time.Second
	defaultFlushDelay      = 2 * time.Millisecond
	defaultHeartbeatDelay  = 250 * time.Millisecond
	defaultMaxBatch        = 2000
	defaultQueueBatches    = 512
	defaultMaxPending      = 1_000_000
	defaultRetryFor        = 5 * time.Second
	defaultRequestTimeout  = 5 * time.Second
)

// Config configures a Cluster. Zero fields take the named defaults.
type Config struct {
	// Self is this node's URL as its peers reach it (the server's NodeURL).
	Self string
	// Zone is this node's zone: startup sync prefers peers of the same zone.
	Zone string
	// Peers lists the URLs of every node of the cluster; the entry equal
	// to Self is skipped. A host that resolves to several addresses stands
	// for one node per address.
	Peers []string
	// Token, when set, is sent as "Authorization: Bearer Token" with every
	// replication and sync request (the server checks it on its side).
	Token string
	// SyncTimeout bounds the startup sync (10 s): with no peer up by then,
	// the node comes up alone.
	SyncTimeout time.Duration
	// PollInterval is how often each peer's node status is read (1 s).
	PollInterval time.Duration
	// ResolveInterval is how often peer host names are resolved again (30 s).
	ResolveInterval time.Duration
	// FlushDelay is how long a register or unregister waits for others to
	// batch with (2 ms); HeartbeatDelay, the same for heartbeats (250 ms).
	FlushDelay     time.Duration
	HeartbeatDelay time.Duration
	// MaxBatch caps the instances of one replication request (2,000).
	MaxBatch int
	// QueueBatches bounds each peer's queue of batches (512); a batch for
	// a peer whose queue is full is dropped and counted.
	QueueBatches int
	// MaxPending bounds the operations waiting in the outbox (1,000,000);
	// over it, operations are dropped and counted.
	MaxPending int
	// RetryFor is how long a batch is retried after a transient failure
	// (5 s), counted from when it was built.
	RetryFor time.Duration
	// RequestTimeout bounds one request to a peer (5 s).
	RequestTimeout time.Duration
	// Client sends the requests; by default one with keep-alive
	// connections to every peer.
	Client *http.Client
	// Logger receives membership changes and failures (slog.Default()).
	Logger *slog.Logger
	// Resolve looks host names up (net.DefaultResolver.LookupHost); tests
	// replace it.
	Resolve func(host string) ([]string, error)
}

func (c Config) withDefaults() (Config, error) {
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = defaultSyncTimeout
	}
	if c.PollInterval <= 0 {
		c.PollInterval = defaultPollInterval
	}
	if c.ResolveInterval <= 0 {
		c.ResolveInterval = defaultResolveInterval
	}
	if c.FlushDelay <= 0 {
		c.FlushDelay = defaultFlushDelay
	}
	if c.HeartbeatDelay <= 0 {
		c.HeartbeatDelay = defaultHeartbeatDelay
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = defaultMaxBatch
	}
	if c.QueueBatches <= 0 {
		c.QueueBatches = defaultQueueBatches
	}
	if c.MaxPending <= 0 {
		c.MaxPending = defaultMaxPending
	}
	if c.RetryFor <= 0 {
		c.RetryFor = defaultRetryFor
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Client == nil {
		c.Client = &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true, // bodies are gzipped by hand, answers are small
		}}
	}
	if c.Resolve == nil {
		c.Resolve = lookupHost
	}
	self, err := normalizeURL(c.Self)
	if err != nil {
		return c, fmt.Errorf("cannot use Self %q: %w", c.Self, err)
	}
	c.Self = self
	peers := make([]string, 0, len(c.Peers))
	for _, p := range c.Peers {
		if strings.TrimSpace(p) == "" {
			continue
		}
		u, err := normalizeURL(p)
		if err != nil {
			return c, fmt.Errorf("cannot use peer %q: %w", p, err)
		}
		if u != c.Self && !contains(peers, u) {
			peers = append(peers, u)
		}
	}
	c.Peers = peers
	return c, nil
}

var errNotHTTP = errors.New("not an http:// or https:// URL with a host")

// normalizeURL lower-cases scheme and host and drops a trailing slash, so
// that the same node written twice compares equal.
func normalizeURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errNotHTTP
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + strings.TrimRight(u.Path, "/"), nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
