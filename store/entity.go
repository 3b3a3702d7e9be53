package store

import (
	"strconv"
	"strings"

	"github.com/artemis-go/artemis/core"
)

// Kind names an entity type. It is stored as text, so a database reads
// plainly ("group", "route-rule-group").
type Kind string

// Entity kinds, one per management table of contract section 9.
const (
	KindInstanceOperation Kind = "instance-operation"
	KindServerOperation   Kind = "server-operation"
	KindZoneOperation     Kind = "zone-operation"
	KindGroupOperation    Kind = "group-operation"
	KindGroup             Kind = "group"
	KindGroupTag          Kind = "group-tag"
	KindGroupInstance     Kind = "group-instance"
	KindServiceInstance   Kind = "service-instance"
	KindRouteRule         Kind = "route-rule"
	KindRouteRuleGroup    Kind = "route-rule-group"
)

// Kinds lists every entity kind.
var Kinds = []Kind{
	KindInstanceOperation, KindServerOperation, KindZoneOperation, KindGroupOperation, KindGroup,
	KindGroupTag, KindGroupInstance, KindServiceInstance, KindRouteRule, KindRouteRuleGroup,
}

// Entity is a stored management row: a value with a server-given id and a
// natural key. Upserts match on the natural key (folded with core.FoldKey,
// so keys compare ASCII-case-insensitively); ids are never reused.
type Entity interface {
	// Kind returns the entity's kind.
	Kind() Kind
	// NaturalKey returns the folded natural key, unique per kind.
	NaturalKey() string
	// EntityID returns the id (0 before the first insert).
	EntityID() int64
	// SetEntityID sets the id; the store calls it on insert and load.
	SetEntityID(id int64)
}

// InstanceKey identifies an instance: (regionId, serviceId, instanceId).
type InstanceKey struct {
	RegionID   string `json:"regionId"`
	ServiceID  string `json:"serviceId"`
	InstanceID string `json:"instanceId"`
}

// ServerKey identifies a server (a machine, by IP) of a region.
type ServerKey struct {
	RegionID string `json:"regionId"`
	ServerID string `json:"serverId"`
}

// ZoneKey identifies the part of a service in one zone.
type ZoneKey struct {
	RegionID  string `json:"regionId"`
	ServiceID string `json:"serviceId"`
	ZoneID    string `json:"zoneId"`
}

// InstanceOperation is an operation (usually "pullout") on an instance.
type InstanceOperation struct {
	ID          int64       `json:"-"`
	InstanceKey InstanceKey `json:"instanceKey"`
	Operation   string      `json:"operation"`
	OperatorID  string      `json:"operatorId"`
	Token       string      `json:"token"`
}

// ServerOperation is an operation on every instance of a server.
type ServerOperation struct {
	ID         int64     `json:"-"`
	ServerKey  ServerKey `json:"serverKey"`
	Operation  string    `json:"operation"`
	OperatorID string    `json:"operatorId"`
	Token      string    `json:"token"`
}

// ZoneOperation is an operation on the instances of a service in a zone.
type ZoneOperation struct {
	ID         int64   `json:"-"`
	ZoneKey    ZoneKey `json:"zoneKey"`
	Operation  string  `json:"operation"`
	OperatorID string  `json:"operatorId"`
	Token      string  `json:"token"`
}

// GroupOperation is an operation on the instances of a group.
type GroupOperation struct {
	ID         int64  `json:"-"`
	GroupID    int64  `json:"groupId"`
	Operation  string `json:"operation"`
	OperatorID string `json:"operatorId"`
	Token      string `json:"token"`
}

// Group is a named subset of a service's instances in one zone: those whose
// groupId equals Name, plus its GroupInstance members.
type Group struct {
	GroupID     int64  `json:"groupId"`
	ServiceID   string `json:"serviceId"`
	RegionID    string `json:"regionId"`
	ZoneID      string `json:"zoneId"`
	Name        string `json:"name"`
	AppID       string `json:"appId"`
	Description string `json:"description"`
	Status      string `json:"status"`
}

// Group statuses.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// GroupKey returns the group's key: lower-case serviceId/regionId/zoneId/name.
func (g *Group) GroupKey() string {
	return core.FoldKey(g.ServiceID + "/" + g.RegionID + "/" + g.ZoneID + "/" + g.Name)
}

// GroupTag is one tag of a group; tags are published as the group's metadata.
type GroupTag struct {
	ID      int64  `json:"-"`
	GroupID int64  `json:"groupId"`
	Tag     string `json:"tag"`
	Value   string `json:"value"`
}

// GroupInstance makes an instance (by instanceId, or by IP for canary) a
// member of a group.
type GroupInstance struct {
	ID         int64  `json:"id"`
	GroupID    int64  `json:"groupId"`
	InstanceID string `json:"instanceId"`
}

// ServiceInstance is a logical instance: one that management publishes in a
// service's logicInstances without it registering.
type ServiceInstance struct {
	ID             int64             `json:"id"`
	ServiceID      string            `json:"serviceId"`
	InstanceID     string            `json:"instanceId"`
	GroupID        string            `json:"groupId"`
	IP             string            `json:"ip"`
	MachineName    string            `json:"machineName"`
	Metadata       map[string]string `json:"metadata"`
	Port           int               `json:"port"`
	Protocol       string            `json:"protocol"`
	RegionID       string            `json:"regionId"`
	ZoneID         string            `json:"zoneId"`
	HealthCheckURL string            `json:"healthCheckUrl"`
	URL            string            `json:"url"`
	Description    string            `json:"description"`
}

// RouteRule (ServiceRouteRule on the wire) routes a service's traffic over
// the groups bound to it.
type RouteRule struct {
	RouteRuleID int64  `json:"routeRuleId"`
	ServiceID   string `json:"serviceId"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Status      string `json:"status"`
	Strategy    string `json:"strategy"`
}

// RouteRuleGroup binds a group to a route rule with a weight. Writes stage
// UnreleasedWeight; a release copies it to Weight, which discovery shows.
type RouteRuleGroup struct {
	RouteRuleGroupID int64 `json:"routeRuleGroupId"`
	RouteRuleID      int64 `json:"routeRuleId"`
	GroupID          int64 `json:"groupId"`
	Weight           *int  `json:"weight"`
	UnreleasedWeight *int  `json:"unreleasedWeight"`
}

// joinKey folds, trims and quotes each key part and concatenates them. Each
// quoted part delimits itself, so distinct tuples give distinct keys, and
// the key is valid UTF-8 without NUL (PostgreSQL text accepts neither).
func joinKey(parts ...string) string {
	var b []byte
	for _, p := range parts {
		b = strconv.AppendQuote(b, string(core.AppendFoldKey(nil, strings.TrimSpace(p))))
	}
	return string(b)
}

func idPart(id int64) string { return strconv.FormatInt(id, 10) }

// Kind, NaturalKey, EntityID and SetEntityID implement Entity.

func (e *InstanceOperation) Kind() Kind { return KindInstanceOperation }
func (e *InstanceOperation) NaturalKey() string {
	k := &e.InstanceKey
	return joinKey(k.RegionID, k.ServiceID, k.InstanceID, e.Operation)
}
func (e *InstanceOperation) EntityID() int64      { return e.ID }
func (e *InstanceOperation) SetEntityID(id int64) { e.ID = id }

func (e *ServerOperation) Kind() Kind { return KindServerOperation }
func (e *ServerOperation) NaturalKey() string {
	return joinKey(e.ServerKey.RegionID, e.ServerKey.ServerID, e.Operation)
}
func (e *ServerOperation) EntityID() int64      { return e.ID }
func (e *ServerOperation) SetEntityID(id int64) { e.ID = id }

func (e *ZoneOperation) Kind() Kind { return KindZoneOperation }
func (e *ZoneOperation) NaturalKey() string {
	k := &e.ZoneKey
	return joinKey(k.RegionID, k.ServiceID, k.ZoneID, e.Operation)
}
func (e *ZoneOperation) EntityID() int64      { return e.ID }
func (e *ZoneOperation) SetEntityID(id int64) { e.ID = id }

func (e *GroupOperation) Kind() Kind           { return KindGroupOperation }
func (e *GroupOperation) NaturalKey() string   { return joinKey(idPart(e.GroupID), e.Operation) }
func (e *GroupOperation) EntityID() int64      { return e.ID }
func (e *GroupOperation) SetEntityID(id int64) { e.ID = id }

func (e *Group) Kind() Kind { return KindGroup }
func (e *Group) NaturalKey() string {
	return joinKey(e.ServiceID, e.RegionID, e.ZoneID, e.Name)
}
func (e *Group) EntityID() int64      { return e.GroupID }
func (e *Group) SetEntityID(id int64) { e.GroupID = id }

func (e *GroupTag) Kind() Kind           { return KindGroupTag }
func (e *GroupTag) NaturalKey() string   { return joinKey(idPart(e.GroupID), e.Tag) }
func (e *GroupTag) EntityID() int64      { return e.ID }
func (e *GroupTag) SetEntityID(id int64) { e.ID = id }

func (e *GroupInstance) Kind() Kind           { return KindGroupInstance }
func (e *GroupInstance) NaturalKey() string   { return joinKey(idPart(e.GroupID), e.InstanceID) }
func (e *GroupInstance) EntityID() int64      { return e.ID }
func (e *GroupInstance) SetEntityID(id int64) { e.ID = id }

func (e *ServiceInstance) Kind() Kind           { return KindServiceInstance }
func (e *ServiceInstance) NaturalKey() string   { return joinKey(e.ServiceID, e.InstanceID) }
func (e *ServiceInstance) EntityID() int64      { return e.ID }
func (e *ServiceInstance) SetEntityID(id int64) { e.ID = id }

func (e *RouteRule) Kind() Kind           { return KindRouteRule }
func (e *RouteRule) NaturalKey() string   { return joinKey(e.ServiceID, e.Name) }
func (e *RouteRule) EntityID() int64      { return e.RouteRuleID }
func (e *RouteRule) SetEntityID(id int64) { e.RouteRuleID = id }

func (e *RouteRuleGroup) Kind() Kind { return KindRouteRuleGroup }
func (e *RouteRuleGroup) NaturalKey() string {
	return joinKey(idPart(e.RouteRuleID), idPart(e.GroupID))
}
func (e *RouteRuleGroup) EntityID() int64      { return e.RouteRuleGroupID }
func (e *RouteRuleGroup) SetEntityID(id int64) { e.RouteRuleGroupID = id }
