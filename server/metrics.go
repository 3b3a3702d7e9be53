package server

import (
	"bytes"
	"context"
	"runtime/debug"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/artemis-go/artemis/cluster"
	"github.com/artemis-go/artemis/memreturn"
)

// Metrics are served at /metrics in the Prometheus text format, named
// artemis_*. Request counters and histograms are resolved per endpoint when
// routes are registered, so the hot path only increments and observes (no
// label lookups, no allocation). Registry gauges are read from core.Stats
// when Prometheus scrapes, never counted on the hot path.

// Request results, from the HTTP status and the responseStatus in-band.
const (
	resultSuccess = iota
	resultFail
	resultPartialFail
	resultClientError
	resultServerError
	numResults
)

var resultNames = [numResults]string{"success", "fail", "partial_fail", "client_error", "server_error"}

var latencyBuckets = []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1}

type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	pushLatency prometheus.Histogram
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artemis_http_requests_total", Help: "HTTP requests by endpoint and result (success, fail, partial_fail from the responseStatus; client_error, server_error from the HTTP status).",
		}, []string{"endpoint", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "artemis_http_request_duration_seconds", Help: "Time spent in the handler, by endpoint.", Buckets: latencyBuckets,
		}, []string{"endpoint"}),
	}
	m.pushLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "artemis_push_latency_seconds", Help: "From a change's time (ms resolution) to its frames being queued to subscribers.", Buckets: latencyBuckets,
	})
	m.reg.MustRegister(m.requests, m.latency, m.pushLatency, &statsCollector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// instrument wraps a handler with the metrics of its endpoint and, unless
// gate is nil, its rate limit (Server.gate): h runs when gate lets the
// request through. The request's start is one clock reading, shared by
// the rate limit and the latency.
func (m *metrics) instrument(endpoint string, gate func(*app.RequestContext, int64) bool, h app.HandlerFunc) app.HandlerFunc {
	var counters [numResults]prometheus.Counter
	for i, r := range resultNames {
		counters[i] = m.requests.WithLabelValues(endpoint, r)
	}
	observer := m.latency.WithLabelValues(endpoint)
	return func(ctx context.Context, c *app.RequestContext) {
		start := monoNow()
		if gate == nil || gate(c, start) {
			h(ctx, c)
		}
		observer.Observe(float64(monoNow()-start) / float64(time.Second))
		counters[classify(c)].Inc()
	}
}

var (
	statusPrefix = []byte(`{"responseStatus":{"status":"`)
	statusKey    = statusPrefix[1:]
	wordSuccess  = []byte(`success"`)
	wordPartial  = []byte(`partial_fail"`)
)

// statusTail is how much of the end of an answer classify searches for a
// responseStatus that does not lead it.
const statusTail = 1024

// classify derives a request's result without the handler's help.
func classify(c *app.RequestContext) int {
	code := c.Response.StatusCode()
	switch {
	case code >= 500:
		return resultServerError
	case code >= 400:
		return resultClientError
	}
	body := c.Response.Body()
	var rest []byte
	if bytes.HasPrefix(body, statusPrefix) {
		rest = body[len(statusPrefix):]
	} else {
		// Status answers lead with their payload (keys sorted): their
		// responseStatus is near the end. Only the tail is searched, so a
		// large answer costs nothing more.
		tail := body[max(0, len(body)-statusTail):]
		i := bytes.LastIndex(tail, statusKey)
		if i < 0 {
			return resultSuccess
		}
		rest = tail[i+len(statusKey):]
	}
	switch {
	case bytes.HasPrefix(rest, wordSuccess):
		return resultSuccess
	case bytes.HasPrefix(rest, wordPartial):
		return resultPartialFail
	}
	return resultFail
}

func (m *metrics) handler() app.HandlerFunc {
	return adaptor.HertzHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
}

// statsCollector exports core.Stats and server counters at scrape time.
type statsCollector struct{ s *Server }

var (
	descInstances   = prometheus.NewDesc("artemis_instances", "Registered instances (leases).", nil, nil)
	descServices    = prometheus.NewDesc("artemis_services", "Services with at least one registered instance.", nil, nil)
	descVersion     = prometheus.NewDesc("artemis_registry_version", "Current registry version.", nil, nil)
	descRegister    = prometheus.NewDesc("artemis_registrations_total", "Successful registrations, per instance.", nil, nil)
	descRenewals    = prometheus.NewDesc("artemis_renewals_total", "Successful heartbeats, per instance.", nil, nil)
	descUnregister  = prometheus.NewDesc("artemis_unregistrations_total", "Instances unregistered.", nil, nil)
	descEvictions   = prometheus.NewDesc("artemis_evictions_total", "Expired leases evicted.", nil, nil)
	descExpired     = prometheus.NewDesc("artemis_expired_leases", "Expired leases kept by self-preservation.", nil, nil)
	descSPActive    = prometheus.NewDesc("artemis_self_preservation_active", "1 while self-preservation suspends eviction.", nil, nil)
	descSPEnabled   = prometheus.NewDesc("artemis_self_preservation_enabled", "1 when self-preservation is configured on.", nil, nil)
	descSPWindow    = prometheus.NewDesc("artemis_self_preservation_renewals_in_window", "Renewals counted over the sliding window.", nil, nil)
	descSPPeak      = prometheus.NewDesc("artemis_self_preservation_renewals_peak", "Tracked peak of renewals in the window.", nil, nil)
	descChangeLog   = prometheus.NewDesc("artemis_changelog_entries", "Changes retained for deltas and streams.", nil, nil)
	descRecordBytes = prometheus.NewDesc("artemis_record_bytes", "Bytes of the services' record arenas: live records, dead ones not yet compacted, unused chunk ends.", nil, nil)
	descCompactions = prometheus.NewDesc("artemis_record_compactions_total", "Record arena compactions (space of replaced and removed records reclaimed).", nil, nil)
	descPanics      = prometheus.NewDesc("artemis_panics_recovered_total", "Handler panics recovered (each one is a bug).", nil, nil)
	descRateLimited = prometheus.NewDesc("artemis_rate_limited_total", "Requests refused with rate-limited, by operation.", []string{"operation"}, nil)
	descWSConns     = prometheus.NewDesc("artemis_websocket_connections", "Open WebSocket sessions, by endpoint.", []string{"endpoint"}, nil)
	descPushed      = prometheus.NewDesc("artemis_push_frames_total", "Change frames queued to WebSocket subscribers.", nil, nil)
	descDropped     = prometheus.NewDesc("artemis_push_slow_subscribers_total", "Times a subscriber fell behind and was sent a reload.", nil, nil)
	descKicked      = prometheus.NewDesc("artemis_push_disconnected_subscribers_total", "Subscribers disconnected for falling behind repeatedly.", nil, nil)
)

func (sc *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInstances, descServices, descVersion, descRegister, descRenewals, descUnregister,
		descEvictions, descExpired, descSPActive, descSPEnabled, descSPWindow, descSPPeak, descChangeLog, descRecordBytes, descCompactions,
		descPanics, descRateLimited, descWSConns, descPushed, descDropped, descKicked} {
		ch <- d
	}
	for _, m := range limitMetrics {
		ch <- m.desc
	}
	for _, d := range peerDescs {
		ch <- d.desc
	}
}

func (sc *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := sc.s.reg.Stats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(descInstances, float64(st.Instances))
	gauge(descServices, float64(st.Services))
	gauge(descVersion, float64(st.Version))
	counter(descRegister, float64(st.Registrations))
	counter(descRenewals, float64(st.Renewals))
	counter(descUnregister, float64(st.Unregistrations))
	counter(descEvictions, float64(st.Evictions))
	gauge(descExpired, float64(st.Expired))
	gauge(descSPActive, boolFloat(st.SelfPreservation.Active))
	gauge(descSPEnabled, boolFloat(st.SelfPreservation.Enabled))
	gauge(descSPWindow, float64(st.SelfPreservation.RenewalsInWindow))
	gauge(descSPPeak, float64(st.SelfPreservation.Peak))
	gauge(descChangeLog, float64(st.ChangeLogLen))
	gauge(descRecordBytes, float64(st.RecordBytes))
	counter(descCompactions, float64(st.Compactions))
	counter(descPanics, float64(sc.s.panics.Load()))
	ps := sc.s.hub.stats()
	for kind, n := range ps.Connections {
		ch <- prometheus.MustNewConstMetric(descWSConns, prometheus.GaugeValue, float64(n), kind)
	}
	counter(descPushed, float64(ps.Pushed))
	counter(descDropped, float64(ps.Dropped))
	counter(descKicked, float64(ps.Kicked))
	for op, lm := range sc.s.limiters {
		ch <- prometheus.MustNewConstMetric(descRateLimited, prometheus.CounterValue, float64(lm.count()), opNames[op])
	}
	for _, m := range limitMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(sc.s))
	}
	for _, p := range sc.s.cluster.Stats() {
		for _, d := range peerDescs {
			ch <- prometheus.MustNewConstMetric(d.desc, d.kind, d.value(p), p.URL)
		}
	}
}

// peerDesc exports one figure of each peer's replication, labelled peer.
type peerDesc struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(p cluster.PeerStats) float64
}

func newPeerDesc(name, help string, kind prometheus.ValueType, value func(p cluster.PeerStats) float64) peerDesc {
	return peerDesc{prometheus.NewDesc(name, help, []string{"peer"}, nil), kind, value}
}

var peerDescs = []peerDesc{
	newPeerDesc("artemis_cluster_peer_up", "1 while the peer answers its node status as up.", prometheus.GaugeValue,
		func(p cluster.PeerStats) float64 { return boolFloat(p.Status == cluster.StatusUp) }),
	newPeerDesc("artemis_replication_queue_batches", "Batches waiting to be sent to the peer (bounded).", prometheus.GaugeValue,
		func(p cluster.PeerStats) float64 { return float64(p.Queue) }),
	newPeerDesc("artemis_replication_batches_total", "Batches the peer accepted.", prometheus.CounterValue,
		func(p cluster.PeerStats) float64 { return float64(p.Batches) }),
	newPeerDesc("artemis_replication_instances_total", "Instances the peer accepted.", prometheus.CounterValue,
		func(p cluster.PeerStats) float64 { return float64(p.Instances) }),
	newPeerDesc("artemis_replication_failures_total", "Batches dropped: refused, retried too long, or over the peer's queue.", prometheus.CounterValue,
		func(p cluster.PeerStats) float64 { return float64(p.Failures) }),
	newPeerDesc("artemis_replication_retries_total", "Attempts that failed transiently and were retried.", prometheus.CounterValue,
		func(p cluster.PeerStats) float64 { return float64(p.Retries) }),
	newPeerDesc("artemis_replication_skipped_total", "Operations not sent while the peer was neither up nor starting.", prometheus.CounterValue,
		func(p cluster.PeerStats) float64 { return float64(p.Skipped) }),
	newPeerDesc("artemis_replication_lag_seconds", "Queue-to-acceptance time of the peer's last batch.", prometheus.GaugeValue,
		func(p cluster.PeerStats) float64 { return p.Lag.Seconds() }),
}

// limitMetric exports what a client can make the node hold, against its
// limit, and what the limit refused.
type limitMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(s *Server) float64
}

func newLimitMetric(name, help string, kind prometheus.ValueType, value func(s *Server) float64) limitMetric {
	return limitMetric{prometheus.NewDesc(name, help, nil, nil), kind, value}
}

var limitMetrics = []limitMetric{
	newLimitMetric("artemis_node_up", "1 while this node is up (0 while starting or shutting down).", prometheus.GaugeValue,
		func(s *Server) float64 { return boolFloat(s.serving()) }),
	newLimitMetric("artemis_replication_outbox_dropped_total", "Operations not replicated because the outbox was full (cluster MaxPending).", prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.cluster.Dropped()) }),
	newLimitMetric("artemis_replicated_in_instances_total", "Instances received from peers.", prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.replicatedIn.Load()) }),
	newLimitMetric("artemis_changelog_bytes", "Bytes the change log counts (its copies of records with their encoded changes, ring slots, unused chunk ends); bounded by registry.changelogBytes (the log keeps at most 2 MiB of partly used chunks besides).", prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.reg.Stats().ChangeLog.Bytes) }),
	newLimitMetric("artemis_connections_open", "Open connections (WebSocket sessions included); bounded by server.maxConnections.", prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.conns.open.Load()) }),
	newLimitMetric("artemis_connections_refused_total", "Connections closed at accept because server.maxConnections were open.", prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.conns.refused.Load()) }),
	newLimitMetric("artemis_connections_timed_out_total", "Connections closed because a request took longer than server.requestReadTimeout to arrive.", prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.conns.timedOut.Load()) }),
	newLimitMetric("artemis_rate_limited_client_share_total", "Status and cluster requests refused because their client spent its share (rateLimit.clientShare); also counted in artemis_rate_limited_total.",
		prometheus.CounterValue, func(s *Server) float64 { return float64(s.clientLimited.Load()) }),
	newLimitMetric("artemis_inflating_bytes", "Bytes reserved for gzip bodies being inflated; bounded by server.maxInflatingBytes.", prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.inflating.inUse.Load()) }),
	newLimitMetric("artemis_inflate_refused_total", "Gzip bodies answered 503 for want of room in server.maxInflatingBytes.", prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.inflating.refused.Load()) }),
	newLimitMetric("artemis_ws_subscriptions", "Services followed, over every WebSocket session.", prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.hub.subCount.Load()) }),
	newLimitMetric("artemis_ws_subscription_bytes", "Bytes held for subscriptions (ids and bookkeeping); bounded by push.maxSubscriptionBytes.",
		prometheus.GaugeValue, func(s *Server) float64 { return float64(s.hub.subBytes.Load()) }),
	newLimitMetric("artemis_response_cache_limit_bytes", "Bound of the answer cache (server.responseCacheBytes; 0: off).", prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.answers.stats().Limit) }),
	newLimitMetric("artemis_response_cache_bytes", "Bytes the answer cache holds (encoded service.json and one-service lookup.json answers, plus bookkeeping).", prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.answers.stats().Bytes) }),
	newLimitMetric("artemis_response_cache_entries", "Answers the answer cache holds.", prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.answers.stats().Entries) }),
	newLimitMetric("artemis_response_cache_hits_total", "Answers served from the answer cache, without copying.", prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.answers.stats().Hits) }),
	newLimitMetric("artemis_response_cache_misses_total", "Answers not in the answer cache for their service's current snapshot (then built and cached, or refused).", prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.answers.stats().Misses) }),
	newLimitMetric("artemis_response_cache_refused_total", "Misses answered by copying: an answer over an eighth of the limit, or no room left to take this second.", prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.answers.stats().Refused) }),
	newLimitMetric("artemis_response_cache_evicted_total", "Cached answers evicted to make room for another service's.", prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.answers.stats().Evicted) }),
	newLimitMetric("artemis_response_cache_stale_total", "Cached answers dropped because their service changed.", prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.answers.stats().Stale) }),
	newLimitMetric("artemis_memory_returns_total", "Times idle heap memory was handed back to the operating system (runtime.memoryReturnInterval).", prometheus.CounterValue,
		func(*Server) float64 { return float64(memreturn.Returned().Returns) }),
	newLimitMetric("artemis_memory_returned_bytes_total", "Bytes handed back to the operating system by them, estimated: idle heap and the garbage their forced collection freed.", prometheus.CounterValue,
		func(*Server) float64 { return float64(memreturn.Returned().Bytes) }),
	newLimitMetric("artemis_memory_limit_bytes", "The Go runtime's soft memory limit (GOMEMLIMIT or runtime.memoryLimit; 9.22e18: none).", prometheus.GaugeValue,
		func(*Server) float64 { return float64(debug.SetMemoryLimit(-1)) }),
	newLimitMetric("artemis_ws_subscriptions_refused_total", "Subscriptions refused (session closed with 1008): too many, id too long, or the node's budget spent.",
		prometheus.CounterValue, func(s *Server) float64 { return float64(s.hub.subRefused.Load()) }),
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
