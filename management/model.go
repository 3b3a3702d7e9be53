package management

import (
	"encoding/json"
	"strings"

	"github.com/artemis-go/artemis/store"
)

// The request and answer types below carry the JSON names of contract
// section 9, so the server can decode bodies into them and encode answers
// from them. Input names match case-insensitively on the wire: that is the
// server codec's job.

// Audit is what a mutation's operation-log rows record about who did it and
// why. None of it is required.
type Audit struct {
	OperatorID string `json:"operatorId"`
	Token      string `json:"token"`
	// Operation names the mutation in the log; blank means the endpoint's
	// name (insert-groups, …).
	Operation string `json:"operation"`
	Reason    string `json:"reason"`
	// Extensions is free JSON (a string or an object); "{}" when absent.
	Extensions json.RawMessage `json:"extensions"`
}

// extensions returns the audit's extensions as the text the log stores.
func (a *Audit) extensions() string {
	raw := strings.TrimSpace(string(a.Extensions))
	if raw == "" || raw == "null" {
		return "{}"
	}
	var s string
	if json.Unmarshal(a.Extensions, &s) == nil {
		if strings.TrimSpace(s) == "" {
			return "{}"
		}
		return s
	}
	return raw
}

// OperateInstanceRequest is operate-instance's body.
type OperateInstanceRequest struct {
	InstanceKey       store.InstanceKey `json:"instanceKey"`
	Operation         string            `json:"operation"`
	OperationComplete bool              `json:"operationComplete"`
	OperatorID        string            `json:"operatorId"`
	Token             string            `json:"token"`
	Extensions        json.RawMessage   `json:"extensions"`
}

// OperateServerRequest is operate-server's body.
type OperateServerRequest struct {
	ServerKey         store.ServerKey `json:"serverKey"`
	Operation         string          `json:"operation"`
	OperationComplete bool            `json:"operationComplete"`
	OperatorID        string          `json:"operatorId"`
	Token             string          `json:"token"`
	Extensions        json.RawMessage `json:"extensions"`
}

// InstanceOperations lists the operations on one instance.
type InstanceOperations struct {
	InstanceKey store.InstanceKey `json:"instanceKey"`
	Operations  []string          `json:"operations"`
}

// ServerOperations lists the operations on one server.
type ServerOperations struct {
	ServerKey  store.ServerKey `json:"serverKey"`
	Operations []string        `json:"operations"`
}

// ZoneOperations lists the operations on one zone of a service.
type ZoneOperations struct {
	ZoneKey    store.ZoneKey `json:"zoneKey"`
	Operations []string      `json:"operations"`
}

// GroupOperations lists the operations on one group.
type GroupOperations struct {
	GroupID    int64    `json:"groupId"`
	Operations []string `json:"operations"`
}

// OperateZonesRequest is operate-zone-operations' body.
type OperateZonesRequest struct {
	ZoneOperationsList []ZoneOperations `json:"zoneOperationsList"`
	OperationComplete  bool             `json:"operationComplete"`
	Audit
}

// OperateGroupsRequest is operate-group-operations' body.
type OperateGroupsRequest struct {
	GroupOperationsList []GroupOperations `json:"groupOperationsList"`
	OperationComplete   bool              `json:"operationComplete"`
	Audit
}

// OperateGroupRequest is operate-group-operation's body: the group by its
// natural key (created if absent) and one operation.
type OperateGroupRequest struct {
	ServiceID         string `json:"serviceId"`
	RegionID          string `json:"regionId"`
	ZoneID            string `json:"zoneId"`
	Name              string `json:"name"`
	AppID             string `json:"appId"`
	Status            string `json:"status"`
	OperationComplete bool   `json:"operationComplete"`
	Audit
}

// Group is a group as the wire shows it: the stored group, its key, and a
// null metadata.
type Group struct {
	store.Group
	GroupKey string            `json:"groupKey"`
	Metadata map[string]string `json:"metadata"`
}

// GroupWeight is a group with the weight create-route-rule binds it with.
type GroupWeight struct {
	store.Group
	Weight *int `json:"weight"`
}

// GroupTags are the tags of one group.
type GroupTags struct {
	GroupID int64             `json:"groupId"`
	Tags    map[string]string `json:"tags"`
}

// CreateRouteRuleRequest is create-route-rule's body.
type CreateRouteRuleRequest struct {
	RouteRule store.RouteRule `json:"routeRule"`
	Groups    []GroupWeight   `json:"groups"`
	Audit
}

// CanaryRequest is update-canary-ips' body.
type CanaryRequest struct {
	ServiceID string   `json:"serviceId"`
	AppID     string   `json:"appId"`
	CanaryIPs []string `json:"canaryIps"`
	Audit
}

// ServiceGroup is a group as service.json's groups list shows it.
type ServiceGroup struct {
	GroupKey    string            `json:"groupKey"`
	Weight      *int              `json:"weight,omitempty"`
	InstanceIDs []string          `json:"instanceIds"`
	Metadata    map[string]string `json:"metadata"`
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }
