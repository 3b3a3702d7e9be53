package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/protocol/http1/resp"

	"github.com/artemis-go/artemis/cluster"
	"github.com/artemis-go/artemis/core"
)

// The cluster side of the server (contract sections 8 and 10): the node's
// status, the replication endpoints peers call, and the startup sync. The
// membership and replication logic is package cluster's.

// Node states; Server.state holds one.
const (
	nodeStarting int32 = iota
	nodeUp
	nodeDown
)

const statusUp = cluster.StatusUp

var stateNames = [...]string{nodeStarting: cluster.StatusStarting, nodeUp: cluster.StatusUp, nodeDown: cluster.StatusDown}

// numReplicated is the number of replicated operations (cluster.Op values).
const numReplicated = int(cluster.OpUnregister) + 1

// serving reports whether the node answers registry and discovery calls.
func (s *Server) serving() bool { return s.state.Load() == nodeUp }

// status is the node's status as the wire names it.
func (s *Server) status() string { return stateNames[s.state.Load()] }

var (
	startingBody = []byte(`{"responseStatus":{"status":"fail","errorCode":"service-unavailable","message":"node is starting: it is copying the registry from a peer"}}`)
	downBody     = []byte(`{"responseStatus":{"status":"fail","errorCode":"service-unavailable","message":"node is shutting down"}}`)
)

// notServingBody is the answer of a registry or discovery call while the
// node is not up.
func notServingBody(status string) []byte {
	if status == cluster.StatusStarting {
		return startingBody
	}
	return downBody
}

// refuseUnlessServing answers service-unavailable unless the node is up.
func (s *Server) refuseUnlessServing(c *app.RequestContext) bool {
	if s.serving() {
		return false
	}
	writeBytes(c, 200, notServingBody(s.status()))
	return true
}

// initCluster builds the node's cluster (one with no peers on a single node).
func (s *Server) initCluster() {
	cc := s.cfg.Cluster
	cc.Self, cc.Zone = s.cfg.NodeURL, s.reg.Zone()
	if cc.Logger == nil {
		cc.Logger = s.log
	}
	cl, err := cluster.New(s.reg, cc)
	if err != nil {
		s.clusterErr = err
		return
	}
	s.cluster = cl
	if !cl.Configured() {
		return
	}
	if s.cfg.Cluster.Token == "" {
		s.log.Warn("no cluster token (--cluster-token): any client can call the replication endpoints")
	}
	s.tombstones = cluster.NewTombstones(nil)
	for op := range numReplicated {
		s.replicate[op] = func(rec *core.Record) { cl.Replicate(cluster.Op(op), rec) }
	}
	s.replicate[cluster.OpUnregister] = func(rec *core.Record) {
		s.tombstones.Add(rec)
		cl.Replicate(cluster.OpUnregister, rec)
	}
}

// startup runs the cluster, copies the registry from a peer that is up (or
// gives up after SyncTimeout and serves alone), then marks the node up.
func (s *Server) startup() {
	s.cluster.Start()
	res, err := s.cluster.Sync(context.Background())
	if err != nil {
		s.log.Warn("cluster: serving alone: no registry copied", "error", err.Error(), "after", res.Took.String())
	} else {
		s.log.Info("cluster: registry copied", "from", res.From, "instances", res.Instances, "took", res.Took.String())
	}
	s.state.CompareAndSwap(nodeStarting, nodeUp)
}

var unauthorizedBody = []byte(`{"responseStatus":{"status":"fail","errorCode":"no-permission","message":"replication needs the cluster token: Authorization: Bearer <token>"}}`)

// replicationAuth refuses a replication call without the cluster token
// (HTTP 401, no-permission; nothing applied). The token is compared in
// constant time and never logged.
func (s *Server) replicationAuth(h app.HandlerFunc) app.HandlerFunc {
	if s.cfg.Cluster.Token == "" {
		return h
	}
	want := []byte(s.cfg.Cluster.Token)
	return func(ctx context.Context, c *app.RequestContext) {
		if h := c.Request.Header.Peek("Authorization"); len(h) < 7 || !strings.EqualFold(string(h[:7]), "bearer ") ||
			subtle.ConstantTimeCompare(h[7:], want) != 1 {
			writeBytes(c, 401, unauthorizedBody)
			return
		}
		h(ctx, c)
	}
}

// replicatedRegister applies a peer's registrations: no node-status check,
// no rate limit, never replicated again.
func (s *Server) replicatedRegister(_ context.Context, c *app.RequestContext) {
	s.serveReplicated(c, func(insts []*core.Instance, failed []core.FailedInstance) []core.FailedInstance {
		return s.reg.Register(insts, failed)
	})
}

// replicatedHeartbeat renews a peer's heartbeats; an instance this node
// lacks (or whose lease expired) is registered from the whole instance the
// peer sends, unless it was unregistered here within the tombstone window
// (a heartbeat the peer sent before that unregister must not undo it).
func (s *Server) replicatedHeartbeat(_ context.Context, c *app.RequestContext) {
	s.serveReplicated(c, func(insts []*core.Instance, failed []core.FailedInstance) []core.FailedInstance {
		failed = s.reg.Heartbeat(insts, failed)
		n := 0
		var missing []*core.Instance
		for _, f := range failed {
			if errors.Is(f.Err, core.ErrNotFound) && (s.tombstones == nil || !s.tombstones.Recent(f.Instance)) {
				missing = append(missing, f.Instance)
			} else {
				failed[n] = f
				n++
			}
		}
		failed = failed[:n]
		if len(missing) > 0 {
			failed = s.reg.Register(missing, failed)
		}
		return failed
	})
}

func (s *Server) replicatedUnregister(_ context.Context, c *app.RequestContext) {
	var tomb core.Applied
	if s.tombstones != nil {
		tomb = s.tombstones.Add
	}
	s.serveReplicated(c, func(insts []*core.Instance, failed []core.FailedInstance) []core.FailedInstance {
		return s.reg.UnregisterEach(insts, failed, tomb)
	})
}

// serveReplicated decodes a replication batch (whole instances) and applies op.
func (s *Server) serveReplicated(c *app.RequestContext, op func([]*core.Instance, []core.FailedInstance) []core.FailedInstance) {
	b := acquireBatch()
	defer releaseBatch(b)
	release, ok := s.decode(c, &b.req, false)
	if !ok {
		return
	}
	defer release()
	s.replicatedIn.Add(int64(len(b.req.Instances)))
	writeBytes(c, 200, s.applyBatch(b.req.Instances, b, func(insts []*core.Instance, failed []core.FailedInstance, _ core.Applied) []core.FailedInstance {
		return op(insts, failed)
	}, nil, true))
}

// replicationServices streams every lease to a peer that is starting
// (unfiltered; one instance per line, see cluster.WriteServices).
func (s *Server) replicationServices(_ context.Context, c *app.RequestContext) {
	var req nodesRequest
	if !c.IsGet() {
		release, ok := s.decodeOptional(c, &req)
		if !ok {
			return
		}
		release()
	}
	// Streamed in chunks, each flushed before the next is written: the
	// answer (hundreds of MB at a million instances) is never held whole,
	// and netpoll never keeps a reference to a buffer WriteServices reuses.
	c.Response.Header.SetContentType(contentTypeJSON)
	c.Response.Header.SetConnectionClose(true) // one copy per connection; a stalled reader's connection ends with it
	c.Response.HijackWriter(resp.NewChunkedBodyWriter(&c.Response, c.GetWriter()))
	if err := cluster.WriteServices(flushingWriter{c}, s.reg); err != nil {
		s.log.Warn("cluster: services stream to a peer ended early", "error", err.Error())
	}
}

// flushingWriter writes each Write as one chunk of the response and
// flushes it at once.
type flushingWriter struct{ c *app.RequestContext }

func (w flushingWriter) Write(p []byte) (int, error) {
	n, err := w.c.Write(p)
	if err != nil {
		return n, err
	}
	return n, w.c.Flush()
}

// clusterNodes is this node, then each peer as last seen.
func (s *Server) clusterNodes() []nodeStatus {
	nodes := []nodeStatus{s.currentNode()}
	for _, p := range s.cluster.Peers() {
		up := p.Status == cluster.StatusUp
		nodes = append(nodes, nodeStatus{
			Node:                        serviceNode{URL: p.URL, Zone: zone{RegionID: p.RegionID, ZoneID: p.ZoneID}},
			Status:                      p.Status,
			CanServiceRegistry:          up,
			CanServiceDiscovery:         up,
			AllowRegistryFromOtherZone:  true,
			AllowDiscoveryFromOtherZone: true,
		})
	}
	return nodes
}
