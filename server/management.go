package server

import (
	"context"
	"crypto/subtle"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/route"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/management"
	"github.com/artemis-go/artemis/store"
)

// Management endpoints (contract section 9): this file only maps HTTP to
// package management. Mutations need the admin token (Authorization:
// Bearer T, or the body's token) or, with none configured, a loopback
// client; refused: HTTP 403 no-permission, nothing changed. While the node
// is not up they answer service-unavailable. Reads are open to all.

var (
	forbiddenBody   = []byte(`{"responseStatus":{"status":"fail","errorCode":"no-permission","message":"management mutations need the admin token: Authorization: Bearer <token>"}}`)
	loopbackOnlyMsg = []byte(`{"responseStatus":{"status":"fail","errorCode":"no-permission","message":"no admin token is configured: management mutations are accepted from loopback clients only"}}`)
)

// mgmtError answers a management error in-band.
func mgmtError(c *app.RequestContext, err error) {
	switch {
	case errors.Is(err, management.ErrBadRequest):
		writeJSON(c, 200, statusOnly{failStatus(codeBadRequest, strings.TrimPrefix(err.Error(), "management: bad request: "))})
	case errors.Is(err, management.ErrUnavailable):
		writeJSON(c, 200, statusOnly{failStatus(codeServiceUnavailable, "the management store is unavailable; nothing was changed")})
	default:
		writeJSON(c, 200, statusOnly{failStatus(codeInternalError, err.Error())})
	}
}

// maxManagementBody caps a management request body, raw and inflated:
// management entities are small, and what a mutation stores (ids,
// extensions, reasons) is kept in the store and the operation log.
const maxManagementBody = 1 << 20

// mgmtBody decodes a management body (gzip or not; empty allowed) into v.
// Management keeps strings (store rows, cache), so they are copied: the
// body is decoded with sonic's copying Unmarshal.
func (s *Server) mgmtBody(c *app.RequestContext, v any) bool {
	if c.IsGet() {
		return true
	}
	b, release, aerr := s.body(c)
	if aerr != nil {
		writeError(c, aerr)
		return false
	}
	defer release()
	if len(b) > maxManagementBody {
		writeError(c, &apiError{code: 413, msg: fmt.Sprintf("a management body of %d bytes; at most %d", len(b), maxManagementBody)})
		return false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return true
	}
	if err := json.Unmarshal(b, v); err != nil {
		writeError(c, &apiError{code: 400, msg: "cannot decode request: " + shortError(err)})
		return false
	}
	return true
}

// allowMutation checks the admin token, or a loopback client when none is
// configured; bodyToken is the body's token field.
func (s *Server) allowMutation(c *app.RequestContext, bodyToken string) bool {
	if s.cfg.AdminToken == "" {
		if ip := remoteIP(c); ip != nil && ip.IsLoopback() {
			return true
		}
		writeBytes(c, 403, loopbackOnlyMsg)
		return false
	}
	want := []byte(s.cfg.AdminToken)
	if h := c.Request.Header.Peek("Authorization"); len(h) > 7 && strings.EqualFold(string(h[:7]), "bearer ") &&
		subtle.ConstantTimeCompare(h[7:], want) == 1 {
		return true
	}
	if bodyToken != "" && subtle.ConstantTimeCompare([]byte(bodyToken), want) == 1 {
		return true
	}
	writeBytes(c, 403, forbiddenBody)
	return false
}

func remoteIP(c *app.RequestContext) net.IP {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP
	}
	return nil
}

// tokenOf is the token field any management body may carry.
type tokenOf struct {
	Token string `json:"token"`
}

// headerAuthorized reports whether the request carries the admin token
// (or, with none configured, comes from loopback) without its body: the
// body is then not read before the request is refused or let through.
func (s *Server) headerAuthorized(c *app.RequestContext) bool {
	if s.cfg.AdminToken == "" {
		ip := remoteIP(c)
		return ip != nil && ip.IsLoopback()
	}
	h := c.Request.Header.Peek("Authorization")
	return len(h) > 7 && strings.EqualFold(string(h[:7]), "bearer ") &&
		subtle.ConstantTimeCompare(h[7:], []byte(s.cfg.AdminToken)) == 1
}

// authorize checks a mutation: by its header when it has one, else by the
// body's token (decoded for that alone).
func (s *Server) authorize(c *app.RequestContext) bool {
	if s.headerAuthorized(c) {
		return true
	}
	var tok tokenOf
	if s.cfg.AdminToken != "" && len(c.Request.Header.Peek("Authorization")) == 0 && !c.IsGet() {
		if b, release, aerr := s.body(c); aerr == nil { // a body that cannot be read carries no token
			json.Unmarshal(b, &tok)
			release()
		}
	}
	return s.allowMutation(c, tok.Token)
}

// mutation is a management mutation decoding its body into a *Req.
func mutation[Req any](s *Server, apply func(ctx context.Context, req *Req) error) app.HandlerFunc {
	return func(ctx context.Context, c *app.RequestContext) {
		if !s.authorize(c) || s.refuseUnlessServing(c) {
			return
		}
		var req Req
		if !s.mgmtBody(c, &req) {
			return
		}
		if err := apply(ctx, &req); err != nil {
			mgmtError(c, err)
			return
		}
		writeJSON(c, 200, statusOnly{okStatus})
	}
}

// mutationWithAudit is a mutation whose body also carries the log fields
// (operatorId, token, operation, reason, extensions) beside its own.
func mutationWithAudit[Req any](s *Server, apply func(ctx context.Context, req *Req, a *management.Audit) error) app.HandlerFunc {
	return func(ctx context.Context, c *app.RequestContext) {
		if !s.authorize(c) || s.refuseUnlessServing(c) {
			return
		}
		var req Req
		var audit management.Audit
		if !s.mgmtBody(c, &req) || !s.mgmtBody(c, &audit) {
			return
		}
		if err := apply(ctx, &req, &audit); err != nil {
			mgmtError(c, err)
			return
		}
		writeJSON(c, 200, statusOnly{okStatus})
	}
}

// read is a management read: it decodes its body (GET: none) into a *Req
// and answers the fields fill returns beside responseStatus.
func read[Req any](s *Server, fill func(c *app.RequestContext, req *Req) (map[string]any, error)) app.HandlerFunc {
	return func(_ context.Context, c *app.RequestContext) {
		var req Req
		if !s.mgmtBody(c, &req) {
			return
		}
		out, err := fill(c, &req)
		if err != nil {
			mgmtError(c, err)
			return
		}
		out["responseStatus"] = okStatus
		writeJSON(c, 200, out)
	}
}

// initManagement takes the configured management plane, or makes one over
// a memory store, and puts its filter in discovery.
func (s *Server) initManagement() {
	m := s.cfg.Management
	if m == nil {
		st, err := store.Open(context.Background(), "memory", store.Config{})
		if err == nil {
			m, err = management.New(context.Background(), management.Config{Store: st, Registry: s.reg, Region: s.reg.Region(),
				AdminToken: s.cfg.AdminToken})
		}
		if err != nil {
			panic("BUG: cannot make a memory management plane: " + err.Error())
		}
		s.ownMgmt = func() { m.Close(); st.Close() }
	}
	s.mgmt = m
	s.reg.SetFilters(m.Filter())
}

func (s *Server) managementRoutes(e *route.Engine) {
	m := s.mgmt
	if m == nil {
		return
	}
	type route struct {
		path string
		h    app.HandlerFunc
	}
	type regionReq struct {
		RegionID string `json:"regionId"`
	}
	regionOf := func(c *app.RequestContext, r *regionReq) string {
		if c.IsGet() {
			return string(queryValue(c, "regionId"))
		}
		return r.RegionID
	}
	type idsReq struct {
		GroupIDs           []int64 `json:"groupIds"`
		RouteRuleIDs       []int64 `json:"routeRuleIds"`
		RouteRuleGroupIDs  []int64 `json:"routeRuleGroupIds"`
		GroupInstanceIDs   []int64 `json:"groupInstanceIds"`
		ServiceInstanceIDs []int64 `json:"serviceInstanceIds"`
		management.Audit
	}
	del := func(ids func(r *idsReq) []int64, apply func(ctx context.Context, ids []int64, a *management.Audit) error) app.HandlerFunc {
		return mutation(s, func(ctx context.Context, r *idsReq) error { return apply(ctx, ids(r), &r.Audit) })
	}
	routes := []route{
		// 9.1 instances and servers
		{"operate-instance", mutation(s, m.OperateInstance)},
		{"operate-server", mutation(s, m.OperateServer)},
		{"instance-operations", read(s, func(_ *app.RequestContext, r *struct {
			InstanceKey store.InstanceKey `json:"instanceKey"`
		}) (map[string]any, error) {
			ops, err := m.InstanceOperations(r.InstanceKey)
			return map[string]any{"operations": ops}, err
		})},
		{"server-operations", read(s, func(_ *app.RequestContext, r *struct {
			ServerKey store.ServerKey `json:"serverKey"`
		}) (map[string]any, error) {
			ops, err := m.ServerOperations(r.ServerKey)
			return map[string]any{"operations": ops}, err
		})},
		{"all-instance-operations", read(s, func(c *app.RequestContext, r *regionReq) (map[string]any, error) {
			return map[string]any{"allInstanceOperations": m.AllInstanceOperations(regionOf(c, r))}, nil
		})},
		{"all-server-operations", read(s, func(c *app.RequestContext, r *regionReq) (map[string]any, error) {
			return map[string]any{"allServerOperations": m.AllServerOperations(regionOf(c, r))}, nil
		})},
		{"instance-down", read(s, func(_ *app.RequestContext, r *struct {
			Instance *core.Instance `json:"instance"`
		}) (map[string]any, error) {
			if r.Instance == nil {
				return nil, &management.BadRequestError{Message: "instance is null or empty"}
			}
			return map[string]any{"down": m.InstanceDown(r.Instance)}, nil
		})},
		{"server-down", read(s, func(_ *app.RequestContext, r *struct {
			ServerKey store.ServerKey `json:"serverKey"`
		}) (map[string]any, error) {
			down, err := m.ServerDown(r.ServerKey)
			return map[string]any{"down": down}, err
		})},
		{"services", read(s, func(c *app.RequestContext, _ *regionReq) (map[string]any, error) {
			return map[string]any{"services": s.managedServices(""), "version": time.Now().UnixMilli()}, nil
		})},
		{"service", read(s, func(c *app.RequestContext, r *struct {
			ServiceID string `json:"serviceId"`
		}) (map[string]any, error) {
			if c.IsGet() {
				r.ServiceID = string(queryValue(c, "serviceId"))
			}
			if strings.TrimSpace(r.ServiceID) == "" {
				return nil, &management.BadRequestError{Message: "serviceId is null or empty"}
			}
			svcs := s.managedServices(r.ServiceID)
			return map[string]any{"service": svcs[0], "groups": m.ServiceGroups(r.ServiceID)}, nil
		})},

		// 9.2 zones
		{"zone/operate-zone-operations", mutation(s, m.OperateZoneOperations)},
		{"zone/get-all-zone-operations", read(s, func(*app.RequestContext, *regionReq) (map[string]any, error) {
			return map[string]any{"allZoneOperations": m.AllZoneOperations()}, nil
		})},
		{"zone/get-zone-operations", read(s, func(_ *app.RequestContext, r *struct {
			ZoneKey store.ZoneKey `json:"zoneKey"`
		}) (map[string]any, error) {
			ops, err := m.ZoneOperations(r.ZoneKey)
			return map[string]any{"operations": ops}, err
		})},
		{"zone/is-zone-down", read(s, func(_ *app.RequestContext, r *struct {
			ZoneKey store.ZoneKey `json:"zoneKey"`
		}) (map[string]any, error) {
			down, err := m.IsZoneDown(r.ZoneKey)
			return map[string]any{"down": down}, err
		})},
		{"zone/get-zone-operations-list", read(s, func(_ *app.RequestContext, r *store.ZoneKey) (map[string]any, error) {
			return map[string]any{"zoneOperationsList": m.ZoneOperationsList(*r)}, nil
		})},

		// 9.3 groups and route rules
		{"group/insert-groups", mutationWithAudit(s, func(ctx context.Context, r *struct {
			Groups []store.Group `json:"groups"`
		}, a *management.Audit) error {
			return m.InsertGroups(ctx, r.Groups, a)
		})},
		{"group/update-groups", mutationWithAudit(s, func(ctx context.Context, r *struct {
			Groups []store.Group `json:"groups"`
		}, a *management.Audit) error {
			return m.UpdateGroups(ctx, r.Groups, a)
		})},
		{"group/delete-groups", del(func(r *idsReq) []int64 { return r.GroupIDs }, m.DeleteGroups)},
		{"group/get-groups", read(s, func(_ *app.RequestContext, r *store.Group) (map[string]any, error) {
			return map[string]any{"groups": m.GetGroups(*r)}, nil
		})},
		{"group/get-all-groups", read(s, func(*app.RequestContext, *regionReq) (map[string]any, error) {
			return map[string]any{"groups": m.AllGroups()}, nil
		})},
		{"group/insert-group-tags", mutationWithAudit(s, func(ctx context.Context, r *struct {
			List []management.GroupTags `json:"groupTagsList"`
		}, a *management.Audit) error {
			return m.InsertGroupTags(ctx, r.List, a)
		})},
		{"group/update-group-tags", mutationWithAudit(s, func(ctx context.Context, r *struct {
			List []management.GroupTags `json:"groupTagsList"`
		}, a *management.Audit) error {
			return m.UpdateGroupTags(ctx, r.List, a)
		})},
		{"group/delete-group-tags", mutationWithAudit(s, func(ctx context.Context, r *store.GroupTag, a *management.Audit) error {
			return m.DeleteGroupTags(ctx, *r, a)
		})},
		{"group/get-group-tags", read(s, func(_ *app.RequestContext, r *struct {
			GroupID int64 `json:"groupId"`
		}) (map[string]any, error) {
			tags, err := m.GroupTags(r.GroupID)
			return map[string]any{"groupTags": tags}, err
		})},
		{"group/get-all-group-tags", read(s, func(*app.RequestContext, *regionReq) (map[string]any, error) {
			return map[string]any{"allGroupTags": m.AllGroupTags()}, nil
		})},
		{"group/insert-route-rules", mutationWithAudit(s, func(ctx context.Context, r *struct {
			Rules []store.RouteRule `json:"routeRules"`
		}, a *management.Audit) error {
			return m.InsertRouteRules(ctx, r.Rules, a)
		})},
		{"group/update-route-rules", mutationWithAudit(s, func(ctx context.Context, r *struct {
			Rules []store.RouteRule `json:"routeRules"`
		}, a *management.Audit) error {
			return m.UpdateRouteRules(ctx, r.Rules, a)
		})},
		{"group/delete-route-rules", del(func(r *idsReq) []int64 { return r.RouteRuleIDs }, m.DeleteRouteRules)},
		{"group/get-route-rules", read(s, func(_ *app.RequestContext, r *store.RouteRule) (map[string]any, error) {
			return map[string]any{"routeRules": m.GetRouteRules(*r)}, nil
		})},
		{"group/get-all-route-rules", read(s, func(*app.RequestContext, *regionReq) (map[string]any, error) {
			return map[string]any{"routeRules": m.AllRouteRules()}, nil
		})},
		{"group/insert-route-rule-groups", mutationWithAudit(s, func(ctx context.Context, r *struct {
			List []store.RouteRuleGroup `json:"routeRuleGroups"`
		}, a *management.Audit) error {
			return m.InsertRouteRuleGroups(ctx, r.List, a)
		})},
		{"group/update-route-rule-groups", mutationWithAudit(s, func(ctx context.Context, r *struct {
			List []store.RouteRuleGroup `json:"routeRuleGroups"`
		}, a *management.Audit) error {
			return m.UpdateRouteRuleGroups(ctx, r.List, a)
		})},
		{"group/release-route-rule-groups", mutationWithAudit(s, func(ctx context.Context, r *struct {
			List []store.RouteRuleGroup `json:"routeRuleGroups"`
		}, a *management.Audit) error {
			return m.ReleaseRouteRuleGroups(ctx, r.List, a)
		})},
		{"group/delete-route-rule-groups", del(func(r *idsReq) []int64 { return r.RouteRuleGroupIDs }, m.DeleteRouteRuleGroups)},
		{"group/get-route-rule-groups", read(s, func(_ *app.RequestContext, r *store.RouteRuleGroup) (map[string]any, error) {
			return map[string]any{"routeRuleGroups": m.GetRouteRuleGroups(*r)}, nil
		})},
		{"group/get-all-route-rule-groups", read(s, func(*app.RequestContext, *regionReq) (map[string]any, error) {
			return map[string]any{"routeRuleGroups": m.AllRouteRuleGroups()}, nil
		})},
		{"group/insert-group-instances", mutationWithAudit(s, func(ctx context.Context, r *struct {
			List []store.GroupInstance `json:"groupInstances"`
		}, a *management.Audit) error {
			return m.InsertGroupInstances(ctx, r.List, a)
		})},
		{"group/delete-group-instances", del(func(r *idsReq) []int64 { return r.GroupInstanceIDs }, m.DeleteGroupInstances)},
		{"group/get-group-instances", read(s, func(_ *app.RequestContext, r *store.GroupInstance) (map[string]any, error) {
			return map[string]any{"groupInstances": m.GetGroupInstances(*r)}, nil
		})},
		{"group/insert-service-instances", mutationWithAudit(s, func(ctx context.Context, r *struct {
			List []store.ServiceInstance `json:"serviceInstances"`
		}, a *management.Audit) error {
			return m.InsertServiceInstances(ctx, r.List, a)
		})},
		{"group/delete-service-instances", del(func(r *idsReq) []int64 { return r.ServiceInstanceIDs }, m.DeleteServiceInstances)},
		{"group/get-service-instances", read(s, func(_ *app.RequestContext, r *store.ServiceInstance) (map[string]any, error) {
			return map[string]any{"serviceInstances": m.GetServiceInstances(*r)}, nil
		})},
		{"group/operate-group-operations", mutation(s, m.OperateGroupOperations)},
		{"group/operate-group-operation", mutation(s, m.OperateGroupOperation)},
		{"group/get-group-operations", read(s, func(_ *app.RequestContext, r *struct {
			GroupID int64 `json:"groupId"`
		}) (map[string]any, error) {
			ops, err := m.GroupOperations(r.GroupID)
			return map[string]any{"groupOperations": ops}, err
		})},
		{"group/get-all-group-operations", read(s, func(*app.RequestContext, *regionReq) (map[string]any, error) {
			return map[string]any{"allGroupOperations": m.AllGroupOperations()}, nil
		})},
		{"group/create-route-rule", mutation(s, m.CreateRouteRule)},

		// 9.4 canary
		{"canary/update-canary-ips", mutation(s, m.UpdateCanaryIPs)},
	}
	// 9.5 operation logs
	for _, kind := range []string{"instance-operation-logs", "server-operation-logs", "zone-operation-logs",
		"group-operation-logs", "group-logs", "route-rule-logs", "route-rule-group-logs", "group-instance-logs",
		"service-instance-logs", "group-tag-logs"} {
		k, ok := management.LogKind(kind)
		if !ok {
			panic("BUG: no log kind " + kind)
		}
		routes = append(routes, route{"log/" + kind, read(s, func(c *app.RequestContext, r *map[string]stdjson.RawMessage) (map[string]any, error) {
			filters := map[string]string{}
			for key, raw := range *r {
				var str string
				switch {
				case stdjson.Unmarshal(raw, &str) == nil:
					filters[key] = str
				case string(raw) != "null":
					filters[key] = string(raw) // a number or a boolean, as written
				}
			}
			if c.IsGet() {
				c.QueryArgs().VisitAll(func(key, v []byte) { filters[string(key)] = string(v) })
			}
			logs, err := m.Logs(context.Background(), k, filters)
			return map[string]any{"logs": logs}, err
		})})
	}
	for _, r := range routes {
		path := "/api/management/" + r.path + ".json"
		h := s.metrics.instrument(path, s.gate(opManagement), r.h)
		e.POST(path, h)
		if !strings.Contains(r.path, "operate") && !strings.HasPrefix(r.path, "group/insert") &&
			!strings.HasPrefix(r.path, "group/update") && !strings.HasPrefix(r.path, "group/delete") &&
			!strings.HasPrefix(r.path, "group/release") && !strings.HasPrefix(r.path, "canary/") && r.path != "group/create-route-rule" {
			e.GET(path, h)
		}
	}
}

// managedServices answers management's services.json (only empty) and
// service.json: every registered instance, pulled-out ones too, its status
// up or down by management and its lease times in its metadata, with the
// service's logical instances and route rules.
func (s *Server) managedServices(only string) []any {
	var out []any
	add := func(id string, leases []core.LeaseInfo) {
		recs := make([]*core.Record, 0, len(leases))
		for _, l := range leases {
			inst := l.Record.Instance()
			inst.Status = core.StatusUp
			if s.mgmt.IsDown(l.Record) {
				inst.Status = "down"
			}
			meta := make(map[string]string, len(inst.Metadata)+3)
			for k, v := range inst.Metadata {
				meta[k] = v
			}
			meta["creationTime"] = strconv.FormatInt(l.Created, 10)
			meta["renewalTime"] = strconv.FormatInt(l.Renewed, 10)
			meta["ttl"] = strconv.FormatInt(l.TTL.Milliseconds(), 10)
			inst.Metadata = meta
			recs = append(recs, core.NewRecord(&inst))
		}
		view := s.mgmt.ServiceView(id, nil) // logical instances and route rules only
		view.Records = recs
		out = append(out, rawJSON(view.AppendJSON(nil)))
	}
	var ids []string
	if only != "" {
		ids = []string{only}
	}
	found := false
	s.reg.Leases(ids, func(id string, leases []core.LeaseInfo) {
		found = true
		add(id, leases)
	})
	if only != "" && !found {
		add(only, nil)
	}
	return out
}

// rawJSON is pre-encoded JSON embedded in an answer.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }
