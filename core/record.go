package core

import (
	"slices"
	"strconv"
	"unsafe"
)

// Record is the registry's stored, immutable copy of an Instance.
//
// A record is one contiguous, pointer-free blob of bytes: this header, then
// the spans of its fields and metadata, then the instance encoded as JSON
// once (when registered), then the unescaped form of any value whose JSON
// needed escapes. Its accessors return substrings of the blob. Spans are
// two uint16 (offset, length) when the blob is small enough, as nearly all
// are, else two uint32. The registry keeps blobs in byte arenas (see
// recordArena), so a million records are a few hundred thousand large
// allocations the garbage collector never scans, not a million small
// objects it must mark.
//
// A *Record points into the allocation that holds it and keeps it alive:
// records are shared by leases, snapshots and the caller of Applied, and
// stay valid for as long as anyone holds them. Callers must not modify a
// record, nor the bytes of JSON, and must not copy a Record value (the
// header alone is not the record).
type Record struct {
	size    uint32 // bytes of the blob, header included, a multiple of 8
	jsonOff uint32 // offsets from the start of the blob
	jsonN   uint32
	port    int32
	nmeta   uint16 // metadata entries
	wide    uint16 // 1 when spans are fieldSpan, 0 when narrowSpan
}

// Field indexes of a record's spans; metadata spans follow, keys and values
// alternating.
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

// narrowSpan is a fieldSpan of a blob under narrowMax bytes.
type narrowSpan struct{ off, n uint16 }

const (
	recordHeader = int(unsafe.Sizeof(Record{}))
	// narrowMax is the largest blob with narrow spans. It leaves room for
	// a change log entry's envelope, spliced in before the JSON (see
	// writeEntry), to keep every offset under 1<<16.
	narrowMax = 1<<16 - 1 - 2*changeEnvelopeMax
)

// spanAt returns span i (a field index, or numFields+j for metadata span j).
func (r *Record) spanAt(i int) fieldSpan {
	if r.wide != 0 {
		return *(*fieldSpan)(unsafe.Add(unsafe.Pointer(r), recordHeader+i*8))
	}
	sp := *(*narrowSpan)(unsafe.Add(unsafe.Pointer(r), recordHeader+i*4))
	return fieldSpan{uint32(sp.off), uint32(sp.n)}
}

// setSpan sets span i; only for a record being written.
func (r *Record) setSpan(i int, sp fieldSpan) {
	if r.wide != 0 {
		*(*fieldSpan)(unsafe.Add(unsafe.Pointer(r), recordHeader+i*8)) = sp
		return
	}
	*(*narrowSpan)(unsafe.Add(unsafe.Pointer(r), recordHeader+i*4)) = narrowSpan{uint16(sp.off), uint16(sp.n)}
}

// numSpans returns the number of the record's spans.
func (r *Record) numSpans() int { return numFields + 2*int(r.nmeta) }

func (r *Record) get(i int) string {
	sp := r.spanAt(i)
	if sp.n == 0 {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(r), sp.off)), int(sp.n))
}

// Accessors. The strings share the record's memory; they stay valid as
// long as the caller keeps them (they keep the record's chunk alive).
func (r *Record) RegionID() string       { return r.get(fRegion) }
func (r *Record) ZoneID() string         { return r.get(fZone) }
func (r *Record) GroupID() string        { return r.get(fGroup) }
func (r *Record) ServiceID() string      { return r.get(fService) }
func (r *Record) InstanceID() string     { return r.get(fInstance) }
func (r *Record) MachineName() string    { return r.get(fMachine) }
func (r *Record) IP() string             { return r.get(fIP) }
func (r *Record) Protocol() string       { return r.get(fProtocol) }
func (r *Record) URL() string            { return r.get(fURL) }
func (r *Record) HealthCheckURL() string { return r.get(fHealth) }
func (r *Record) Status() string         { return r.get(fStatus) }
func (r *Record) Port() int              { return int(r.port) }

// MetadataLen returns the number of metadata entries.
func (r *Record) MetadataLen() int { return int(r.nmeta) }

// Metadata returns metadata entry i (in key order).
func (r *Record) Metadata(i int) (key, value string) {
	return r.get(numFields + 2*i), r.get(numFields + 2*i + 1)
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

	var e recordEncoder
	e.init(dst, len(keys))
	e.port = int32(inst.Port)
	e.field("regionId", inst.RegionID, fRegion)
	e.field("zoneId", inst.ZoneID, fZone)
	e.field("groupId", inst.GroupID, fGroup)
	e.field("serviceId", inst.ServiceID, fService)
	e.field("instanceId", inst.InstanceID, fInstance)
	e.field("machineName", inst.MachineName, fMachine)
	e.field("ip", inst.IP, fIP)
	e.comma()
	e.b = append(e.b, `"port":`...)
	e.b = strconv.AppendInt(e.b, int64(e.port), 10)
	e.field("protocol", inst.Protocol, fProtocol)
	e.field("url", inst.URL, fURL)
	e.field("healthCheckUrl", inst.HealthCheckURL, fHealth)
	e.field("status", inst.Status, fStatus)
	if len(keys) > 0 {
		e.b = append(e.b, `,"metadata":{`...)
		for i, k := range keys {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.str(k, numFields+2*i)
			e.b = append(e.b, ':')
			e.str(inst.Metadata[k], numFields+2*i+1)
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, '}')
	return e.finish()
}

// recordEncoder writes a record's blob: the JSON first, after room for the
// header and narrow spans, noting where each value landed; finish adds the
// unescaped values, writes the header and spans, and widens the spans if
// the blob is too large for narrow ones.
type recordEncoder struct {
	b     []byte // the blob so far
	start int    // where the blob starts in b
	open  int    // index in b of the object's '{'
	port  int32
	nmeta int
	spans [numFields + 2*MaxMetadataLen]fieldSpan
	extra []byte                             // values whose JSON form has escapes, unescaped
	inX   [numFields + 2*MaxMetadataLen]bool // spans[i] is in extra
}

// init starts a blob of a record with nmeta metadata entries at the end of
// dst, and its JSON object.
func (e *recordEncoder) init(dst []byte, nmeta int) {
	start := len(dst)
	jsonOff := recordHeader + (numFields+2*nmeta)*4
	dst = slices.Grow(dst, jsonOff+512)[:start+jsonOff]
	e.b, e.start, e.open, e.nmeta = append(dst, '{'), start, start+jsonOff, nmeta
}

// comma separates a member from the previous one.
func (e *recordEncoder) comma() {
	if len(e.b) > e.open+1 {
		e.b = append(e.b, ',')
	}
}

// field appends "name":value unless value is empty.
func (e *recordEncoder) field(name, value string, span int) {
	if value == "" {
		return
	}
	e.comma()
	e.b = append(e.b, '"')
	e.b = append(e.b, name...)
	e.b = append(e.b, '"', ':')
	e.str(value, span)
}

// str appends value as a JSON string and records its span: in the JSON when
// it needed no escaping, else in extra.
func (e *recordEncoder) str(value string, span int) {
	at := len(e.b) + 1
	e.b = appendString(e.b, value)
	sp := &e.spans[span]
	sp.n = uint32(len(value))
	if len(e.b)-at-1 == len(value) {
		sp.off = uint32(at - e.start)
		return
	}
	sp.off = uint32(len(e.extra))
	e.extra = append(e.extra, value...)
	e.inX[span] = true
}

// finish completes the blob and returns dst with it.
func (e *recordEncoder) finish() []byte {
	n := numFields + 2*e.nmeta
	jsonOff := e.open - e.start
	size := align8(len(e.b) - e.start + len(e.extra))
	wide := size > narrowMax
	if wide {
		// Make room for spans twice as wide: move the JSON.
		grow := n * 4
		e.b = append(e.b, make([]byte, grow)...)
		copy(e.b[e.open+grow:], e.b[e.open:len(e.b)-grow])
		for i := range n {
			if !e.inX[i] && e.spans[i].n > 0 {
				e.spans[i].off += uint32(grow)
			}
		}
		jsonOff += grow
	}
	h := Record{jsonOff: uint32(jsonOff), jsonN: uint32(len(e.b) - e.start - jsonOff), port: e.port, nmeta: uint16(e.nmeta)}
	extraOff := uint32(len(e.b) - e.start)
	e.b = append(e.b, e.extra...)
	for len(e.b)%8 != 0 {
		e.b = append(e.b, 0)
	}
	h.size = uint32(len(e.b) - e.start)
	if wide {
		h.wide = 1
	}
	rec := (*Record)(unsafe.Pointer(&e.b[e.start]))
	*rec = h
	for i := range n {
		sp := e.spans[i]
		if e.inX[i] {
			sp.off += extraOff
		}
		rec.setSpan(i, sp)
	}
	return e.b
}
