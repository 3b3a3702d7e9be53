package core

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Instance is one registered endpoint of a service, as it travels on the wire.
//
// Instances passed to the Registry are read, never kept: the registry copies
// what it stores into a compact Record.
type Instance struct {
	RegionID       string            `json:"regionId"`
	ZoneID         string            `json:"zoneId"`
	GroupID        string            `json:"groupId"`
	ServiceID      string            `json:"serviceId"`
	InstanceID     string            `json:"instanceId"`
	MachineName    string            `json:"machineName"`
	IP             string            `json:"ip"`
	Port           int               `json:"port"`
	Protocol       string            `json:"protocol"`
	URL            string            `json:"url"`
	HealthCheckURL string            `json:"healthCheckUrl"`
	Status         string            `json:"status"`
	Metadata       map[string]string `json:"metadata"`
}

// Instance statuses defined by the contract. The registry stores whatever
// status a client sends; these are the values clients are expected to use.
const (
	StatusStarting  = "starting"
	StatusUp        = "up"
	StatusDown      = "down"
	StatusUnhealthy = "unhealthy"
	StatusUnknown   = "unknown"
)

// Limits applied by Validate. They bound an instance's data to about 19 KB.
// Its stored record is usually a few hundred bytes, but JSON escapes a
// control character in six bytes and the record keeps escaped values also
// unescaped, so a record at every limit, all escaped, is about 115 KB (and
// as much as a change log entry, see Config.ChangeLogBytes). The
// number of instances is not bounded here.
const (
	MaxFieldLen      = 1024 // bytes in any string field
	MaxMetadataLen   = 64   // metadata entries per instance
	MaxMetadataBytes = 8192 // bytes of metadata keys and values per instance
)

// Validate reports why inst cannot be registered in region, or nil. Every
// string must be valid UTF-8: ids are keys that answers carry as JSON
// object keys and strings, which strict clients parse as UTF-8.
// The error wraps ErrInvalidInstance or ErrNoPermission.
func (inst *Instance) Validate(region string) error {
	if !asciiEqualFold(inst.RegionID, region) {
		return fmt.Errorf("%w: regionId %q differs from the node's region %q", ErrNoPermission, inst.RegionID, region)
	}
	if strings.TrimSpace(inst.ServiceID) == "" {
		return fmt.Errorf("%w: serviceId is blank", ErrInvalidInstance)
	}
	if strings.TrimSpace(inst.InstanceID) == "" {
		return fmt.Errorf("%w: instanceId is blank", ErrInvalidInstance)
	}
	if strings.TrimSpace(inst.URL) == "" {
		return fmt.Errorf("%w: url is blank", ErrInvalidInstance)
	}
	if inst.Port < 0 || inst.Port > 65535 {
		return fmt.Errorf("%w: port %d is outside 0..65535", ErrInvalidInstance, inst.Port)
	}
	for _, f := range [...]string{inst.RegionID, inst.ZoneID, inst.GroupID, inst.ServiceID, inst.InstanceID,
		inst.MachineName, inst.IP, inst.Protocol, inst.URL, inst.HealthCheckURL, inst.Status} {
		if len(f) > MaxFieldLen {
			return fmt.Errorf("%w: a field is longer than %d bytes", ErrInvalidInstance, MaxFieldLen)
		}
		if !utf8.ValidString(f) {
			return fmt.Errorf("%w: a field is not valid UTF-8", ErrInvalidInstance)
		}
	}
	if len(inst.Metadata) > MaxMetadataLen {
		return fmt.Errorf("%w: %d metadata entries; at most %d", ErrInvalidInstance, len(inst.Metadata), MaxMetadataLen)
	}
	n := 0
	for k, v := range inst.Metadata {
		n += len(k) + len(v)
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("%w: metadata is not valid UTF-8", ErrInvalidInstance)
		}
	}
	if n > MaxMetadataBytes {
		return fmt.Errorf("%w: %d bytes of metadata; at most %d", ErrInvalidInstance, n, MaxMetadataBytes)
	}
	return nil
}
