package server

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/artemis-go/artemis/core"
)

// Status and cluster endpoints (contract section 5). This node is a cluster
// of one until replication exists.

// decodeOptional decodes a POST body that may be empty; GET requests have
// none. Strings decoded into v alias the body, which lives until release:
// call it once v is no longer used.
func (s *Server) decodeOptional(c *app.RequestContext, v any) (release func(), ok bool) {
	if c.IsGet() {
		return noRelease, true
	}
	return s.decode(c, v, true)
}

// decodeNothing checks a POST body that carries nothing the handler uses.
func (s *Server) decodeNothing(c *app.RequestContext) bool {
	var req struct{}
	release, ok := s.decodeOptional(c, &req)
	if ok {
		release()
	}
	return ok
}

func (s *Server) currentNode() nodeStatus {
	n := s.node
	if !s.serving() {
		n.Status, n.CanServiceRegistry, n.CanServiceDiscovery = s.status(), false, false
	}
	return n
}

func (s *Server) nodeStatus(_ context.Context, c *app.RequestContext) {
	if s.decodeNothing(c) {
		writeJSON(c, 200, nodeStatusResponse{NodeStatus: s.currentNode(), ResponseStatus: okStatus})
	}
}

func (s *Server) clusterStatus(_ context.Context, c *app.RequestContext) {
	if s.decodeNothing(c) {
		writeJSON(c, 200, clusterStatusResponse{NodeCount: s.cluster.NodeCount(), NodesStatus: s.clusterNodes(), ResponseStatus: okStatus})
	}
}

func (s *Server) leases(_ context.Context, c *app.RequestContext) {
	var req leasesRequest
	if c.IsGet() {
		req.ServiceIDs = append(queryValues(c, "appIds"), queryValues(c, "serviceIds")...)
	} else {
		release, ok := s.decodeOptional(c, &req)
		if !ok {
			return
		}
		defer release() // req.ServiceIDs alias the body
	}
	if n := len(req.ServiceIDs); n > s.cfg.MaxLookupServices {
		writeError(c, &apiError{code: 413, msg: fmt.Sprintf("%d serviceIds in one request; at most %d", n, s.cfg.MaxLookupServices)})
		return
	}
	req.ServiceIDs = uniqueKeys(req.ServiceIDs)
	st := s.reg.Stats()
	resp := leasesResponse{
		Leases:                            map[string][]leaseView{},
		LeaseCount:                        st.Instances,
		IsSafe:                            !st.SelfPreservation.Active,
		IsSafeCheckEnabled:                st.SelfPreservation.Enabled,
		LeaseUpdateCountLastTimeWindow:    st.SelfPreservation.RenewalsInWindow,
		LeaseUpdateMaxCount:               st.SelfPreservation.Peak,
		LeaseUpdateMaxCountLastUpdateTime: st.SelfPreservation.PeakUpdatedAt,
		ResponseStatus:                    okStatus,
	}
	s.reg.Leases(req.ServiceIDs, func(id string, ls []core.LeaseInfo) {
		views := make([]leaseView, len(ls))
		for i, l := range ls {
			views[i] = leaseView{Instance: l.Record.Instance(), CreationTime: l.Created, RenewalTime: l.Renewed,
				EvitionTime: l.Eviction, TTL: l.TTL.Milliseconds()}
		}
		resp.Leases[id] = views
	})
	writeJSON(c, 200, resp)
}

func (s *Server) config(_ context.Context, c *app.RequestContext) {
	if !s.decodeNothing(c) {
		return
	}
	rc := s.reg.Config()
	sp := rc.SelfPreservation
	props := map[string]string{
		"artemis.region":                       rc.Region,
		"artemis.zone":                         rc.Zone,
		"artemis.node.url":                     s.cfg.NodeURL,
		"artemis.lease.ttl":                    rc.LeaseTTL.String(),
		"artemis.registry.shards":              strconv.Itoa(rc.Shards),
		"artemis.lease.eviction-tick":          rc.EvictionTick.String(),
		"artemis.changelog.size":               strconv.Itoa(rc.ChangeLogSize),
		"artemis.changelog.age":                rc.ChangeLogAge.String(),
		"artemis.changelog.bytes":              strconv.Itoa(rc.ChangeLogBytes),
		"artemis.self-preservation.enabled":    strconv.FormatBool(!sp.Disabled),
		"artemis.self-preservation.window":     sp.Window.String(),
		"artemis.self-preservation.min-peak":   strconv.FormatInt(sp.MinPeak, 10),
		"artemis.self-preservation.threshold":  strconv.FormatFloat(sp.Threshold, 'f', -1, 64),
		"artemis.self-preservation.peak-decay": sp.PeakDecay.String(),
		"artemis.http.max-body-bytes":          strconv.Itoa(s.cfg.MaxBodyBytes),
		"artemis.http.max-inflated-bytes":      strconv.Itoa(s.cfg.MaxInflatedBytes),
		"artemis.http.max-inflating-bytes":     strconv.Itoa(s.cfg.MaxInflatingBytes),
		"artemis.http.max-header-bytes":        strconv.Itoa(s.cfg.MaxHeaderBytes),
		"artemis.http.max-lookup-services":     strconv.Itoa(s.cfg.MaxLookupServices),
		"artemis.http.max-connections":         strconv.Itoa(s.cfg.MaxConnections),
		"artemis.http.request-read-timeout":    s.cfg.RequestReadTimeout.String(),
		"artemis.ws.max-subscription-bytes":    strconv.Itoa(s.hub.cfg.MaxSubscriptionBytes),
		"artemis.http.read-timeout":            s.cfg.ReadTimeout.String(),
		"artemis.http.write-timeout":           s.cfg.WriteTimeout.String(),
		"artemis.http.idle-timeout":            s.cfg.IdleTimeout.String(),
	}
	writeJSON(c, 200, configResponse{Properties: props, Sources: map[string]string{}, ResponseStatus: okStatus})
}

func (s *Server) deployment(_ context.Context, c *app.RequestContext) {
	if !s.decodeNothing(c) {
		return
	}
	host, _ := os.Hostname()
	ip, port := nodeAddr(s.cfg.NodeURL)
	protocol, path := "http", "/"
	if u := s.cfg.NodeURL; strings.HasPrefix(u, "https://") {
		protocol = "https"
	}
	writeJSON(c, 200, deploymentResponse{RegionID: s.reg.Region(), ZoneID: s.reg.Zone(), AppID: "artemis",
		MachineName: host, IP: ip, Port: port, Protocol: protocol, Path: path, ResponseStatus: okStatus})
}

func (s *Server) upNodes(_ context.Context, c *app.RequestContext) {
	var req nodesRequest
	if c.IsGet() {
		req.RegionID = string(queryValue(c, "regionId"))
		req.ZoneID = string(queryValue(c, "zoneId"))
	} else {
		release, ok := s.decodeOptional(c, &req)
		if !ok {
			return
		}
		defer release() // req.RegionID aliases the body
	}
	var nodes []serviceNode
	if req.RegionID == "" || core.EqualFoldKey(req.RegionID, s.reg.Region()) { // all nodes serve one region
		for _, n := range s.clusterNodes() {
			if n.Status == statusUp && (req.ZoneID == "" || core.EqualFoldKey(req.ZoneID, n.Node.Zone.ZoneID)) {
				nodes = append(nodes, n.Node)
			}
		}
	}
	if len(nodes) == 0 {
		writeJSON(c, 200, nodesResponse{Nodes: []serviceNode{}, ResponseStatus: failStatus(codeDataNotFound, "no node is up in region "+req.RegionID)})
		return
	}
	writeJSON(c, 200, nodesResponse{Nodes: nodes, ResponseStatus: okStatus})
}
