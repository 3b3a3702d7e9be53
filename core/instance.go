package core

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unsafe"
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

// Limits applied by Validate. They keep one instance from costing more than a
// few kilobytes of memory.
const (
	MaxFieldLen      = 1024 // bytes in any string field
	MaxMetadataLen   = 64   // metadata entries per instance
	MaxMetadataBytes = 8192 // bytes of metadata keys and values per instance
)

// Validate reports why inst cannot be registered in region, or nil.
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
	}
	if len(inst.Metadata) > MaxMetadataLen {
		return fmt.Errorf("%w: %d metadata entries; at most %d", ErrInvalidInstance, len(inst.Metadata), MaxMetadataLen)
	}
	n := 0
	for k, v := range inst.Metadata {
		n += len(k) + len(v)
	}
	if n > MaxMetadataBytes {
		return fmt.Errorf("%w: %d bytes of metadata; at most %d", ErrInvalidInstance, n, MaxMetadataBytes)
	}
	return nil
}

// Record is the registry's stored, immutable copy of an Instance.
//
// Records are shared by leases, snapshots and the change log: callers must
// never modify one. A record is encoded to JSON once, when registered; its
// per-instance strings are substrings of that encoding wherever they need no
// escaping, and common values (region, zone, status, metadata keys) are
// interned, which keeps a record with realistic fields well under 1 KB.
type Record struct {
	RegionID       string
	ZoneID         string
	GroupID        string
	ServiceID      string
	InstanceID     string
	MachineName    string
	IP             string
	Protocol       string
	URL            string
	HealthCheckURL string
	Status         string
	Port           int32
	// Meta holds metadata as alternating keys and values, sorted by key.
	Meta []string

	json []byte
}

// JSON returns the record encoded as an Instance object. The bytes are
// shared: callers must not modify them.
func (r *Record) JSON() []byte { return r.json }

// Instance materialises r as a new Instance the caller owns.
func (r *Record) Instance() Instance {
	inst := Instance{
		RegionID: r.RegionID, ZoneID: r.ZoneID, GroupID: r.GroupID, ServiceID: r.ServiceID,
		InstanceID: r.InstanceID, MachineName: r.MachineName, IP: r.IP, Port: int(r.Port),
		Protocol: r.Protocol, URL: r.URL, HealthCheckURL: r.HealthCheckURL, Status: r.Status,
	}
	if len(r.Meta) > 0 {
		inst.Metadata = make(map[string]string, len(r.Meta)/2)
		for i := 0; i < len(r.Meta); i += 2 {
			inst.Metadata[r.Meta[i]] = r.Meta[i+1]
		}
	}
	return inst
}

// sameAs reports whether r holds exactly the data of inst.
func (r *Record) sameAs(inst *Instance) bool {
	if r.RegionID != inst.RegionID || r.ZoneID != inst.ZoneID || r.GroupID != inst.GroupID ||
		r.ServiceID != inst.ServiceID || r.InstanceID != inst.InstanceID || r.MachineName != inst.MachineName ||
		r.IP != inst.IP || int(r.Port) != inst.Port || r.Protocol != inst.Protocol || r.URL != inst.URL ||
		r.HealthCheckURL != inst.HealthCheckURL || r.Status != inst.Status || len(r.Meta) != 2*len(inst.Metadata) {
		return false
	}
	for i := 0; i < len(r.Meta); i += 2 {
		v, ok := inst.Metadata[r.Meta[i]]
		if !ok || v != r.Meta[i+1] {
			return false
		}
	}
	return true
}

// newRecord copies inst into a compact record and encodes it.
func newRecord(inst *Instance, in *interner) *Record {
	var keyBuf [8]string
	keys := keyBuf[:0]
	for k := range inst.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	rec := &Record{
		RegionID:  in.intern(inst.RegionID),
		ZoneID:    in.intern(inst.ZoneID),
		GroupID:   in.intern(inst.GroupID),
		ServiceID: in.intern(inst.ServiceID),
		Protocol:  in.intern(inst.Protocol),
		Status:    in.intern(inst.Status),
		Port:      int32(inst.Port),
	}
	if len(keys) > 0 {
		rec.Meta = make([]string, 2*len(keys))
		for i, k := range keys {
			rec.Meta[2*i] = in.intern(k)
			if v := inst.Metadata[k]; in.wants(v) {
				rec.Meta[2*i+1] = in.intern(v)
			}
		}
	}

	buf := acquireBuf()
	e := recordEncoder{b: (*buf)[:0]}
	e.b = append(e.b, '{')
	e.field("regionId", rec.RegionID, nil)
	e.field("zoneId", rec.ZoneID, nil)
	e.field("groupId", rec.GroupID, nil)
	e.field("serviceId", rec.ServiceID, nil)
	e.field("instanceId", inst.InstanceID, &rec.InstanceID)
	e.field("machineName", inst.MachineName, &rec.MachineName)
	e.field("ip", inst.IP, &rec.IP)
	if len(e.b) > 1 {
		e.b = append(e.b, ',')
	}
	e.b = append(e.b, `"port":`...)
	e.b = strconv.AppendInt(e.b, int64(rec.Port), 10)
	e.field("protocol", rec.Protocol, nil)
	e.field("url", inst.URL, &rec.URL)
	e.field("healthCheckUrl", inst.HealthCheckURL, &rec.HealthCheckURL)
	e.field("status", rec.Status, nil)
	if len(keys) > 0 {
		e.b = append(e.b, `,"metadata":{`...)
		for i, k := range keys {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = appendString(e.b, rec.Meta[2*i])
			e.b = append(e.b, ':')
			if v := inst.Metadata[k]; in.wants(v) {
				e.b = appendString(e.b, rec.Meta[2*i+1])
			} else {
				e.str(v, &rec.Meta[2*i+1])
			}
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, '}')

	rec.json = slices.Clone(e.b)
	s := unsafe.String(unsafe.SliceData(rec.json), len(rec.json)) // rec.json is never written again
	for _, sp := range e.spans {
		*sp.dst = s[sp.off : sp.off+sp.n]
	}
	*buf = e.b
	releaseBuf(buf)
	return rec
}

// recordEncoder writes a record's JSON and remembers where each unescaped
// per-instance string landed, so the record can point into its encoding.
type recordEncoder struct {
	b     []byte
	spans []span
	buf   [12]span
}

type span struct {
	off, n int
	dst    *string
}

// field appends "name":value unless value is empty. A nil dst means the
// value is already stored (interned); otherwise dst receives it.
func (e *recordEncoder) field(name, value string, dst *string) {
	if value == "" {
		return
	}
	if len(e.b) > 1 {
		e.b = append(e.b, ',')
	}
	e.b = append(e.b, '"')
	e.b = append(e.b, name...)
	e.b = append(e.b, '"', ':')
	if dst == nil {
		e.b = appendString(e.b, value)
		return
	}
	e.str(value, dst)
}

// str appends value as a JSON string and arranges for dst to receive it.
func (e *recordEncoder) str(value string, dst *string) {
	start := len(e.b) + 1
	e.b = appendString(e.b, value)
	if len(e.b)-start-1 != len(value) { // escaped: keep a copy of its own
		*dst = strings.Clone(value)
		return
	}
	if e.spans == nil {
		e.spans = e.buf[:0]
	}
	e.spans = append(e.spans, span{off: start, n: len(value), dst: dst})
}
