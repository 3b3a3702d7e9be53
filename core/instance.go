package core

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
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

// Limits applied by Validate. They bound an instance's data to about 19 KB.
// Its stored record is usually a few hundred bytes, but JSON escapes a
// control character in six bytes and the record keeps escaped values also
// unescaped, so a record at every limit, all escaped, is about 130 KB (and
// about 250 KB as a change log entry, see Config.ChangeLogBytes). The
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

// Record is the registry's stored, immutable copy of an Instance.
//
// A record is encoded to JSON once, when registered, and keeps nothing else
// but offsets into that encoding: its accessors return substrings of it.
// So a record is three pointers for the garbage collector to follow (its
// JSON, its metadata offsets and, rarely, a side buffer for values that
// needed escaping) instead of a dozen strings, which keeps GC marking of a
// million-instance registry short. Records are shared by leases, snapshots
// and the change log: callers must not modify one, nor the bytes of JSON.
type Record struct {
	json  []byte      // the encoded Instance object
	extra string      // unescaped values whose JSON form has escapes
	meta  []fieldSpan // metadata keys and values, alternating, sorted by key
	spans [numFields]fieldSpan
	port  int32
	// metaBuf holds meta when there are at most four entries, so the usual
	// record needs no allocation of its own for it. A Record must therefore
	// never be copied once filled.
	metaBuf [8]fieldSpan
}

// Field indexes of Record.spans.
const (
	fRegion = iota
	fZone
	fGroup
	fService
	fInstance
	fMachine
	fIP
	fProtocol
	fURL
	fHealth
	fStatus
	numFields
)

// fieldSpan locates a value: in json, or in extra when off has inExtra set.
type fieldSpan struct{ off, n uint32 }

const inExtra = 1 << 31

func (r *Record) get(sp fieldSpan) string {
	if sp.n == 0 {
		return ""
	}
	if sp.off&inExtra != 0 {
		off := sp.off &^ inExtra
		return r.extra[off : off+sp.n]
	}
	return unsafe.String(&r.json[sp.off], int(sp.n))
}

// Accessors. The strings share the record's memory; they stay valid as
// long as the caller keeps them (the GC keeps the record's JSON alive).
func (r *Record) RegionID() string       { return r.get(r.spans[fRegion]) }
func (r *Record) ZoneID() string         { return r.get(r.spans[fZone]) }
func (r *Record) GroupID() string        { return r.get(r.spans[fGroup]) }
func (r *Record) ServiceID() string      { return r.get(r.spans[fService]) }
func (r *Record) InstanceID() string     { return r.get(r.spans[fInstance]) }
func (r *Record) MachineName() string    { return r.get(r.spans[fMachine]) }
func (r *Record) IP() string             { return r.get(r.spans[fIP]) }
func (r *Record) Protocol() string       { return r.get(r.spans[fProtocol]) }
func (r *Record) URL() string            { return r.get(r.spans[fURL]) }
func (r *Record) HealthCheckURL() string { return r.get(r.spans[fHealth]) }
func (r *Record) Status() string         { return r.get(r.spans[fStatus]) }
func (r *Record) Port() int              { return int(r.port) }

// MetadataLen returns the number of metadata entries.
func (r *Record) MetadataLen() int { return len(r.meta) / 2 }

// Metadata returns metadata entry i (in key order).
func (r *Record) Metadata(i int) (key, value string) {
	return r.get(r.meta[2*i]), r.get(r.meta[2*i+1])
}

// JSON returns the record encoded as an Instance object. The bytes are
// shared: callers must not modify them.
func (r *Record) JSON() []byte { return r.json }

// Instance materialises r as a new Instance the caller owns.
func (r *Record) Instance() Instance {
	inst := Instance{
		RegionID: r.RegionID(), ZoneID: r.ZoneID(), GroupID: r.GroupID(), ServiceID: r.ServiceID(),
		InstanceID: r.InstanceID(), MachineName: r.MachineName(), IP: r.IP(), Port: r.Port(),
		Protocol: r.Protocol(), URL: r.URL(), HealthCheckURL: r.HealthCheckURL(), Status: r.Status(),
	}
	if n := r.MetadataLen(); n > 0 {
		inst.Metadata = make(map[string]string, n)
		for i := range n {
			k, v := r.Metadata(i)
			inst.Metadata[k] = v
		}
	}
	return inst
}

// sameAs reports whether r holds exactly the data of inst.
func (r *Record) sameAs(inst *Instance) bool {
	if r.RegionID() != inst.RegionID || r.ZoneID() != inst.ZoneID || r.GroupID() != inst.GroupID ||
		r.ServiceID() != inst.ServiceID || r.InstanceID() != inst.InstanceID || r.MachineName() != inst.MachineName ||
		r.IP() != inst.IP || r.Port() != inst.Port || r.Protocol() != inst.Protocol || r.URL() != inst.URL ||
		r.HealthCheckURL() != inst.HealthCheckURL || r.Status() != inst.Status || r.MetadataLen() != len(inst.Metadata) {
		return false
	}
	for i := range r.MetadataLen() {
		k, v := r.Metadata(i)
		if w, ok := inst.Metadata[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// fillRecord encodes inst into rec, a zero Record that must not move.
func fillRecord(rec *Record, inst *Instance) {
	var keyBuf [8]string
	keys := keyBuf[:0]
	for k := range inst.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	rec.port = int32(inst.Port)
	if n := 2 * len(keys); n > len(rec.metaBuf) {
		rec.meta = make([]fieldSpan, n)
	} else {
		rec.meta = rec.metaBuf[:n]
	}
	buf := acquireBuf()
	e := recordEncoder{b: append((*buf)[:0], '{')}
	e.field("regionId", inst.RegionID, &rec.spans[fRegion])
	e.field("zoneId", inst.ZoneID, &rec.spans[fZone])
	e.field("groupId", inst.GroupID, &rec.spans[fGroup])
	e.field("serviceId", inst.ServiceID, &rec.spans[fService])
	e.field("instanceId", inst.InstanceID, &rec.spans[fInstance])
	e.field("machineName", inst.MachineName, &rec.spans[fMachine])
	e.field("ip", inst.IP, &rec.spans[fIP])
	if len(e.b) > 1 {
		e.b = append(e.b, ',')
	}
	e.b = append(e.b, `"port":`...)
	e.b = strconv.AppendInt(e.b, int64(rec.port), 10)
	e.field("protocol", inst.Protocol, &rec.spans[fProtocol])
	e.field("url", inst.URL, &rec.spans[fURL])
	e.field("healthCheckUrl", inst.HealthCheckURL, &rec.spans[fHealth])
	e.field("status", inst.Status, &rec.spans[fStatus])
	if len(keys) > 0 {
		e.b = append(e.b, `,"metadata":{`...)
		for i, k := range keys {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.str(k, &rec.meta[2*i])
			e.b = append(e.b, ':')
			e.str(inst.Metadata[k], &rec.meta[2*i+1])
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, '}')
	rec.json = slices.Clone(e.b)
	if len(e.extra) > 0 {
		rec.extra = string(e.extra)
	}
	*buf = e.b
	releaseBuf(buf)
}

// recordEncoder writes a record's JSON and where each value landed.
type recordEncoder struct {
	b     []byte
	extra []byte
}

// field appends "name":value unless value is empty.
func (e *recordEncoder) field(name, value string, sp *fieldSpan) {
	if value == "" {
		return
	}
	if len(e.b) > 1 {
		e.b = append(e.b, ',')
	}
	e.b = append(e.b, '"')
	e.b = append(e.b, name...)
	e.b = append(e.b, '"', ':')
	e.str(value, sp)
}

// str appends value as a JSON string and records its span: in the JSON when
// it needed no escaping, else in the extra buffer.
func (e *recordEncoder) str(value string, sp *fieldSpan) {
	start := len(e.b) + 1
	e.b = appendString(e.b, value)
	sp.n = uint32(len(value))
	if len(e.b)-start-1 == len(value) {
		sp.off = uint32(start)
		return
	}
	sp.off = uint32(len(e.extra)) | inExtra
	e.extra = append(e.extra, value...)
}
