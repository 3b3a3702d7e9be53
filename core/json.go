package core

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// The core pre-encodes what discovery and push serve, so readers copy bytes
// instead of encoding. The encoders below write the wire shapes of contract
// section 2 by hand: no reflection, no allocation beyond growing dst.
// Empty optional strings are omitted (absent and null mean the same).

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendJSON appends the snapshot as a Service object. It copies the
// instances' pre-encoded JSON; nothing is encoded per call.
func (snap *Snapshot) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"serviceId":`...)
	dst = appendString(dst, snap.ServiceID)
	dst = append(dst, `,"instances":`...)
	dst = appendRecordList(dst, &snap.Records)
	return appendServiceTail(dst, snap.LogicInstances, snap.RouteRules)
}

// AppendJSON appends the view as a Service object, as a snapshot of it
// would: for a service that discovery must answer although no instance of
// it is registered (a filter's route rules and logical instances only).
func (v *ServiceView) AppendJSON(dst []byte) []byte {
	return appendService(dst, v.ServiceID, v.Records, v.LogicInstances, v.RouteRules)
}

// appendService appends a Service object. Nil logicInstances or routeRules
// are left out; empty ones are written as [].
func appendService(dst []byte, serviceID string, recs, logic []*Record, rules []RouteRule) []byte {
	dst = append(dst, `{"serviceId":`...)
	dst = appendString(dst, serviceID)
	dst = append(dst, `,"instances":`...)
	dst = appendRecords(dst, recs)
	return appendServiceTail(dst, logic, rules)
}

// appendServiceTail appends what follows a Service object's instances.
func appendServiceTail(dst []byte, logic []*Record, rules []RouteRule) []byte {
	if logic != nil {
		dst = append(dst, `,"logicInstances":`...)
		dst = appendRecords(dst, logic)
	}
	if rules != nil {
		dst = append(dst, `,"routeRules":[`...)
		for i := range rules {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendRouteRule(dst, &rules[i])
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendRecords appends recs' pre-encoded JSON as an array.
func appendRecords(dst []byte, recs []*Record) []byte {
	dst = append(dst, '[')
	for i, rec := range recs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, rec.JSON()...)
	}
	return append(dst, ']')
}

// appendRecordList appends the records of l as an array.
func appendRecordList(dst []byte, l *RecordList) []byte {
	dst = append(dst, '[')
	for i := range l.refs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, l.At(i).JSON()...)
	}
	return append(dst, ']')
}

// AppendEmptyService appends the Service object of a service with no
// instances, as discovery answers for an unknown service id.
func AppendEmptyService(dst []byte, serviceID string) []byte {
	dst = append(dst, `{"serviceId":`...)
	dst = appendString(dst, serviceID)
	return append(dst, `,"instances":[]}`...)
}

func appendRouteRule(dst []byte, rr *RouteRule) []byte {
	dst = append(dst, `{"routeId":`...)
	dst = appendString(dst, rr.RouteID)
	dst = append(dst, `,"strategy":`...)
	dst = appendString(dst, rr.Strategy)
	dst = append(dst, `,"groups":[`...)
	for i := range rr.Groups {
		g := &rr.Groups[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"groupKey":`...)
		dst = appendString(dst, g.GroupKey)
		dst = append(dst, `,"weight":`...)
		dst = strconv.AppendInt(dst, int64(g.Weight), 10)
		dst = append(dst, `,"instanceIds":[`...)
		for j, id := range g.InstanceIDs {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, id)
		}
		dst = append(dst, ']')
		if g.Instances != nil {
			dst = append(dst, `,"instances":`...)
			dst = appendRecords(dst, g.Instances)
		}
		if len(g.Metadata) > 0 {
			dst = append(dst, `,"metadata":`...)
			dst = appendSortedMap(dst, g.Metadata)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']', '}')
}

// appendSortedMap appends m as a JSON object with its keys sorted, so a
// snapshot's bytes do not depend on map iteration order. Up to 16 keys are
// sorted without allocating.
func appendSortedMap(dst []byte, m map[string]string) []byte {
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, m[k])
	}
	return append(dst, '}')
}

// appendChangeHead appends what an InstanceChange object of type t at time
// has before its instance's JSON; a '}' follows the instance.
func appendChangeHead(dst []byte, t ChangeType, time int64) []byte {
	dst = append(dst, `{"changeType":"`...)
	dst = append(dst, t.String()...)
	dst = append(dst, `","changeTime":`...)
	dst = strconv.AppendInt(dst, time, 10)
	return append(dst, `,"instance":`...)
}

// reloadInstanceID is the instanceId of a ChangeReload's placeholder.
const reloadInstanceID = "reload"

// reloadRecord returns the placeholder instance of a ChangeReload:
// {"serviceId":serviceID,"instanceId":"reload"}, what the server's push hub
// sends a subscriber that must re-fetch a service.
func reloadRecord(serviceID string) *Record {
	var e recordEncoder
	e.init(make([]byte, 0, 128+len(serviceID)), 0)
	e.field("serviceId", serviceID, fService)
	e.field("instanceId", reloadInstanceID, fInstance)
	e.b = append(e.b, '}')
	b := e.finish()
	out := alignedBytes(len(b))
	copy(out, b)
	return recordAt(out)
}
