package core

import (
	"slices"
	"strconv"
	"unsafe"
)

// Record is the registry's stored, immutable copy of an Instance.
//
// A record is one contiguous, pointer-free blob of bytes: this header, then
// the spans of its metadata, then the instance encoded as JSON once (when
// registered), then the unescaped form of any value whose JSON needed
// escapes. Its accessors return substrings of the blob. The registry keeps
// blobs in byte arenas (see recordArena), so a million records are a few
// hundred large allocations the garbage collector never scans, not a
// million small objects it must mark.
//
// A *Record points into the arena chunk that holds it and keeps that chunk
// alive: records are shared by leases, snapshots and the caller of
// Applied, and stay valid for as long as anyone holds them. Callers must not
// modify a record, nor the bytes of JSON, and must not copy a Record value
// (the header alone is not the record).
type Record struct {
	size    uint32 // bytes of the blob, header included, a multiple of 8
	jsonOff uint32 // offsets from the start of the blob
	jsonN   uint32
	nmeta   uint32 // metadata entries; their spans follow the header
	port    int32
	_       uint32
	spans   [numFields]fieldSpan
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

// fieldSpan locates a value in the blob: off bytes from its start, n long.
type fieldSpan struct{ off, n uint32 }

const (
	recordHeader = int(unsafe.Sizeof(Record{}))
	spanSize     = int(unsafe.Sizeof(fieldSpan{}))
)

func (r *Record) get(sp fieldSpan) string {
	if sp.n == 0 {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(r), sp.off)), int(sp.n))
}

// metaSpan returns span i of the metadata spans (keys and values alternate).
func (r *Record) metaSpan(i int) fieldSpan {
	return *(*fieldSpan)(unsafe.Add(unsafe.Pointer(r), recordHeader+i*spanSize))
}

// Accessors. The strings share the record's memory; they stay valid as
// long as the caller keeps them (they keep the record's chunk alive).
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
func (r *Record) MetadataLen() int { return int(r.nmeta) }

// Metadata returns metadata entry i (in key order).
func (r *Record) Metadata(i int) (key, value string) {
	return r.get(r.metaSpan(2 * i)), r.get(r.metaSpan(2*i + 1))
}

// JSON returns the record encoded as an Instance object. The bytes are
// shared: callers must not modify them.
func (r *Record) JSON() []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(r), r.jsonOff)), r.jsonN)
}

// blob returns the record's whole blob.
func (r *Record) blob() []byte { return unsafe.Slice((*byte)(unsafe.Pointer(r)), r.size) }

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

// recordAt returns the record whose blob starts at b[0]. b must be 8-byte
// aligned and hold the whole blob; the record keeps b's allocation alive.
func recordAt(b []byte) *Record { return (*Record)(unsafe.Pointer(unsafe.SliceData(b))) }

// alignedBytes returns n zero bytes, n rounded up to a multiple of 8, that
// start on an 8-byte boundary, in an allocation the collector does not scan.
func alignedBytes(n int) []byte {
	words := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), len(words)*8)
}

// ownRecord returns a copy of rec in an allocation of its own, so that what
// keeps it (the change log) never keeps an arena chunk alive.
func ownRecord(rec *Record) *Record {
	b := alignedBytes(int(rec.size))
	copy(b, rec.blob())
	return recordAt(b)
}

// NewRecord encodes inst as a Record of its own, for a filter that
// publishes instances the registry does not hold (management's logical
// instances). The record is immutable and may be shared by any number of
// snapshots.
func NewRecord(inst *Instance) *Record {
	buf := acquireBuf()
	*buf = encodeRecord((*buf)[:0], inst)
	b := alignedBytes(len(*buf))
	copy(b, *buf)
	releaseBuf(buf)
	return recordAt(b)
}

// encodeRecord appends the blob of inst to dst and returns it. The blob's
// length is a multiple of 8, so blobs appended one after another stay
// aligned.
func encodeRecord(dst []byte, inst *Instance) []byte {
	var keyBuf [8]string
	keys := keyBuf[:0]
	for k := range inst.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	var h Record
	var metaBuf [8]fieldSpan
	meta := metaBuf[:0]
	if n := 2 * len(keys); n > len(metaBuf) {
		meta = make([]fieldSpan, n)
	} else {
		meta = metaBuf[:n]
	}
	start := len(dst)
	h.port = int32(inst.Port)
	h.nmeta = uint32(len(keys))
	h.jsonOff = uint32(recordHeader + len(meta)*spanSize)
	dst = slices.Grow(dst, int(h.jsonOff)+512)[:start+int(h.jsonOff)]
	e := recordEncoder{b: append(dst, '{'), start: start, open: len(dst)}
	e.field("regionId", inst.RegionID, &h.spans[fRegion])
	e.field("zoneId", inst.ZoneID, &h.spans[fZone])
	e.field("groupId", inst.GroupID, &h.spans[fGroup])
	e.field("serviceId", inst.ServiceID, &h.spans[fService])
	e.field("instanceId", inst.InstanceID, &h.spans[fInstance])
	e.field("machineName", inst.MachineName, &h.spans[fMachine])
	e.field("ip", inst.IP, &h.spans[fIP])
	e.comma()
	e.b = append(e.b, `"port":`...)
	e.b = strconv.AppendInt(e.b, int64(h.port), 10)
	e.field("protocol", inst.Protocol, &h.spans[fProtocol])
	e.field("url", inst.URL, &h.spans[fURL])
	e.field("healthCheckUrl", inst.HealthCheckURL, &h.spans[fHealth])
	e.field("status", inst.Status, &h.spans[fStatus])
	if len(keys) > 0 {
		e.b = append(e.b, `,"metadata":{`...)
		for i, k := range keys {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.str(k, &meta[2*i])
			e.b = append(e.b, ':')
			e.str(inst.Metadata[k], &meta[2*i+1])
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, '}')
	return e.finish(&h, meta)
}

// recordEncoder writes a record's JSON and where each value landed.
// Values whose JSON form has escapes are kept unescaped after the JSON, in
// extra; finish moves them into the blob and fixes their spans.
type recordEncoder struct {
	b     []byte // the blob so far; finish writes the header
	start int    // where the blob starts in b
	open  int    // index in b of the object's '{'
	extra []byte
	fix   [numFields + 2*MaxMetadataLen]*fieldSpan // spans that point into extra
	nfix  int
}

// comma separates a member from the previous one.
func (e *recordEncoder) comma() {
	if len(e.b) > e.open+1 {
		e.b = append(e.b, ',')
	}
}

// field appends "name":value unless value is empty.
func (e *recordEncoder) field(name, value string, sp *fieldSpan) {
	if value == "" {
		return
	}
	e.comma()
	e.b = append(e.b, '"')
	e.b = append(e.b, name...)
	e.b = append(e.b, '"', ':')
	e.str(value, sp)
}

// str appends value as a JSON string and records its span: in the JSON when
// it needed no escaping, else in extra.
func (e *recordEncoder) str(value string, sp *fieldSpan) {
	at := len(e.b) + 1
	e.b = appendString(e.b, value)
	sp.n = uint32(len(value))
	if len(e.b)-at-1 == len(value) {
		sp.off = uint32(at - e.start)
		return
	}
	sp.off = uint32(len(e.extra))
	e.extra = append(e.extra, value...)
	e.fix[e.nfix] = sp
	e.nfix++
}

// finish appends the unescaped values, pads the blob to a multiple of 8,
// writes the header h and the metadata spans at its start, and returns b.
func (e *recordEncoder) finish(h *Record, meta []fieldSpan) []byte {
	h.jsonN = uint32(len(e.b) - e.open)
	extraOff := uint32(len(e.b) - e.start)
	e.b = append(e.b, e.extra...)
	for _, sp := range e.fix[:e.nfix] {
		sp.off += extraOff
	}
	for len(e.b)%8 != 0 {
		e.b = append(e.b, 0)
	}
	h.size = uint32(len(e.b) - e.start)
	copy(e.b[e.start:], unsafe.Slice((*byte)(unsafe.Pointer(h)), recordHeader))
	if len(meta) > 0 {
		copy(e.b[e.start+recordHeader:], unsafe.Slice((*byte)(unsafe.Pointer(&meta[0])), len(meta)*spanSize))
	}
	return e.b
}
