package server

import (
	"errors"

	"github.com/artemis-go/artemis/core"
)

// Wire shapes of contract sections 2-5. Requests decode case-insensitively
// (sonic's default); responses use the contract's camelCase names.

// Response statuses and error codes (contract section 2).
const (
	statusSuccess     = "success"
	statusFail        = "fail"
	statusPartialFail = "partial_fail"

	codeSuccess            = "success"
	codePartialFail        = "partial_fail"
	codeBadRequest         = "bad-request"
	codeRateLimited        = "rate-limited"
	codeNoPermission       = "no-permission"
	codeDataNotFound       = "data-not-found"
	codeInternalError      = "internal-service-error"
	codeServiceUnavailable = "service-unavailable"
)

type responseStatus struct {
	Status    string `json:"status"`
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

var okStatus = responseStatus{Status: statusSuccess, ErrorCode: codeSuccess}

func failStatus(code, msg string) responseStatus {
	return responseStatus{Status: statusFail, ErrorCode: code, Message: msg}
}

// errorCode maps a core error to its wire error code. It is the one place
// where core errors meet the wire.
func errorCode(err error) string {
	switch {
	case errors.Is(err, core.ErrNoPermission):
		return codeNoPermission
	case errors.Is(err, core.ErrInvalidInstance):
		return codeBadRequest
	case errors.Is(err, core.ErrNotFound):
		return codeDataNotFound
	case errors.Is(err, core.ErrVersionUnavailable):
		return codeDataNotFound
	}
	return codeInternalError
}

// instancesRequest is the body of register, heartbeat and unregister.
type instancesRequest struct {
	Instances []*core.Instance `json:"instances"`
}

type failedInstance struct {
	Instance     *core.Instance `json:"instance"`
	ErrorCode    string         `json:"errorCode"`
	ErrorMessage string         `json:"errorMessage"`
}

type registryResponse struct {
	ResponseStatus  responseStatus   `json:"responseStatus"`
	FailedInstances []failedInstance `json:"failedInstances,omitempty"`
}

type discoveryConfig struct {
	ServiceID     string            `json:"serviceId"`
	RegionID      string            `json:"regionId"`
	ZoneID        string            `json:"zoneId"`
	DiscoveryData map[string]string `json:"discoveryData"`
}

type lookupRequest struct {
	DiscoveryConfigs []*discoveryConfig `json:"discoveryConfigs"`
	RegionID         string             `json:"regionId"`
	ZoneID           string             `json:"zoneId"`
}

type serviceRequest struct {
	DiscoveryConfig *discoveryConfig `json:"discoveryConfig"`
	RegionID        string           `json:"regionId"`
	ZoneID          string           `json:"zoneId"`
}

type servicesRequest struct {
	RegionID string `json:"regionId"`
	ZoneID   string `json:"zoneId"`
}

type deltaRequest struct {
	RegionID string `json:"regionId"`
	ZoneID   string `json:"zoneId"`
	Version  int64  `json:"version"`
}

type leasesRequest struct {
	ServiceIDs []string `json:"serviceIds"`
}

type zone struct {
	RegionID string            `json:"regionId"`
	ZoneID   string            `json:"zoneId"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

type serviceNode struct {
	URL  string `json:"url"`
	Zone zone   `json:"zone"`
}

type nodeStatus struct {
	Node                        serviceNode `json:"node"`
	Status                      string      `json:"status"`
	CanServiceRegistry          bool        `json:"canServiceRegistry"`
	CanServiceDiscovery         bool        `json:"canServiceDiscovery"`
	AllowRegistryFromOtherZone  bool        `json:"allowRegistryFromOtherZone"`
	AllowDiscoveryFromOtherZone bool        `json:"allowDiscoveryFromOtherZone"`
}

type nodeStatusResponse struct {
	NodeStatus     nodeStatus     `json:"nodeStatus"`
	ResponseStatus responseStatus `json:"responseStatus"`
}

type clusterStatusResponse struct {
	NodeCount      int            `json:"nodeCount"`
	NodesStatus    []nodeStatus   `json:"nodesStatus"`
	ResponseStatus responseStatus `json:"responseStatus"`
}

type leaseView struct {
	Instance     core.Instance `json:"instance"`
	CreationTime int64         `json:"creationTime"`
	RenewalTime  int64         `json:"renewalTime"`
	EvitionTime  int64         `json:"evitionTime"` // sic: the wire spelling
	TTL          int64         `json:"ttl"`
}

type leasesResponse struct {
	Leases                            map[string][]leaseView `json:"leases"`
	LeaseCount                        int64                  `json:"leaseCount"`
	IsSafe                            bool                   `json:"isSafe"`
	IsSafeCheckEnabled                bool                   `json:"isSafeCheckEnabled"`
	LeaseUpdateCountLastTimeWindow    int64                  `json:"leaseUpdateCountLastTimeWindow"`
	LeaseUpdateMaxCount               int64                  `json:"leaseUpdateMaxCount"`
	LeaseUpdateMaxCountLastUpdateTime int64                  `json:"leaseUpdateMaxCountLastUpdateTime"`
	ResponseStatus                    responseStatus         `json:"responseStatus"`
}

type configResponse struct {
	Properties     map[string]string `json:"properties"`
	Sources        map[string]string `json:"sources"`
	ResponseStatus responseStatus    `json:"responseStatus"`
}

type deploymentResponse struct {
	RegionID       string         `json:"regionId"`
	ZoneID         string         `json:"zoneId"`
	AppID          string         `json:"appId"`
	MachineName    string         `json:"machineName"`
	IP             string         `json:"ip"`
	Port           int            `json:"port"`
	Protocol       string         `json:"protocol"`
	Path           string         `json:"path"`
	ResponseStatus responseStatus `json:"responseStatus"`
}

type nodesRequest struct {
	RegionID string `json:"regionId"`
	ZoneID   string `json:"zoneId"`
}

type nodesResponse struct {
	Nodes          []serviceNode  `json:"nodes"`
	ResponseStatus responseStatus `json:"responseStatus"`
}

// statusOnly is the body of a response that carries only its status.
type statusOnly struct {
	ResponseStatus responseStatus `json:"responseStatus"`
}
