package management

import (
	"context"

	"github.com/artemis-go/artemis/store"
)

// The operation log (contract section 9.5): every mutation writes a row
// per entity changed in the transaction of the change.

// logPaths maps the log endpoints (without .json) to the rows they read.
var logPaths = map[string]store.Kind{
	"instance-operation-logs": store.KindInstanceOperation,
	"server-operation-logs":   store.KindServerOperation,
	"zone-operation-logs":     store.KindZoneOperation,
	"group-operation-logs":    store.KindGroupOperation,
	"group-logs":              store.KindGroup,
	"route-rule-logs":         store.KindRouteRule,
	"route-rule-group-logs":   store.KindRouteRuleGroup,
	"group-instance-logs":     store.KindGroupInstance,
	"service-instance-logs":   store.KindServiceInstance,
	"group-tag-logs":          store.KindGroupTag,
}

// LogKind returns the kind of rows a log endpoint (e.g.
// "instance-operation-logs", without .json) reads.
func LogKind(endpoint string) (store.Kind, bool) {
	k, ok := logPaths[endpoint]
	return k, ok
}

// Logs returns the log rows of kind matching filters (field name -> value,
// both case-insensitive; blank values ignored), oldest first, at most
// store.DefaultLogLimit of the newest. Each row encodes (MarshalJSON) as
// its wire object. It reads the store: ErrUnavailable when it is away.
func (m *Manager) Logs(ctx context.Context, kind store.Kind, filters map[string]string) ([]store.LogEntry, error) {
	return m.cfg.Store.Logs(ctx, store.LogQuery{Kind: kind, Filters: filters})
}

// log writes one row. operation is the op name for op rows; for others
// it is the endpoint name, which a non-blank Audit.Operation replaces.
func (m *Manager) log(tx *store.Tx, kind store.Kind, operation string, a *Audit, complete bool, service string, fields map[string]any) error {
	return tx.Log(&store.LogEntry{Kind: kind, Operation: operation, OperatorID: trim(a.OperatorID), Token: m.token(a.Token),
		Complete: complete, ServiceID: service, Fields: fields})
}

// opName is the operation an entity row logs.
func opName(a *Audit, endpoint string) string {
	if !blank(a.Operation) {
		return trim(a.Operation)
	}
	return endpoint
}

func (m *Manager) logGroup(tx *store.Tx, g *store.Group, endpoint string, a *Audit, complete bool) error {
	return m.log(tx, store.KindGroup, opName(a, endpoint), a, complete, g.ServiceID, map[string]any{
		"groupId": g.GroupID, "serviceId": g.ServiceID, "regionId": g.RegionID, "zoneId": g.ZoneID, "name": g.Name,
		"appId": g.AppID, "status": g.Status, "extensions": a.extensions(), "reason": a.Reason,
	})
}

func (m *Manager) logTag(tx *store.Tx, t *store.GroupTag, endpoint string, a *Audit, complete bool) error {
	service := ""
	if g, _ := store.Get[store.Group](tx, t.GroupID); g != nil {
		service = g.ServiceID
	}
	return m.log(tx, store.KindGroupTag, opName(a, endpoint), a, complete, service, map[string]any{
		"groupId": t.GroupID, "tag": t.Tag, "value": t.Value, "extensions": a.extensions(),
	})
}

func (m *Manager) logMember(tx *store.Tx, e *store.GroupInstance, endpoint string, a *Audit) error {
	service := ""
	if g, _ := store.Get[store.Group](tx, e.GroupID); g != nil {
		service = g.ServiceID
	}
	return m.log(tx, store.KindGroupInstance, opName(a, endpoint), a, false, service, map[string]any{
		"groupInstanceId": e.ID, "groupId": e.GroupID, "instanceId": e.InstanceID, "reason": a.Reason,
	})
}

func (m *Manager) logLogic(tx *store.Tx, e *store.ServiceInstance, endpoint string, a *Audit, complete bool) error {
	return m.log(tx, store.KindServiceInstance, opName(a, endpoint), a, complete, e.ServiceID, map[string]any{
		"serviceInstanceId": e.ID, "serviceId": e.ServiceID, "instanceId": e.InstanceID, "groupId": e.GroupID, "ip": e.IP,
		"machineName": e.MachineName, "metadata": e.Metadata, "port": e.Port, "protocol": e.Protocol, "regionId": e.RegionID,
		"zoneId": e.ZoneID, "healthCheckUrl": e.HealthCheckURL, "url": e.URL, "description": e.Description,
	})
}

func (m *Manager) logRule(tx *store.Tx, r *store.RouteRule, endpoint string, a *Audit, complete bool) error {
	return m.log(tx, store.KindRouteRule, opName(a, endpoint), a, complete, r.ServiceID, map[string]any{
		"routeRuleId": r.RouteRuleID, "serviceId": r.ServiceID, "name": r.Name, "status": r.Status, "strategy": r.Strategy,
		"complete": complete, "extensions": a.extensions(), "reason": a.Reason,
	})
}

func (m *Manager) logBinding(tx *store.Tx, b *store.RouteRuleGroup, endpoint string, a *Audit, weight *int) error {
	service := ""
	if r, _ := store.Get[store.RouteRule](tx, b.RouteRuleID); r != nil {
		service = r.ServiceID
	}
	return m.log(tx, store.KindRouteRuleGroup, opName(a, endpoint), a, false, service, map[string]any{
		"routeRuleGroupId": b.RouteRuleGroupID, "routeRuleId": b.RouteRuleID, "groupId": b.GroupID, "weight": weight,
		"extensions": a.extensions(), "reason": a.Reason,
	})
}
