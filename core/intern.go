package core

import (
	"sync"
	"sync/atomic"
)

// Interning limits: only short strings are interned, and the table stops
// growing at maxInterned entries so hostile input cannot grow it without bound.
const (
	maxInternLen = 48
	maxInterned  = 1 << 16
)

// interner shares one copy of strings that repeat across many instances
// (region, zone, service id, status, metadata keys and common values).
// Lookups are lock-free (sync.Map); the table only grows.
type interner struct {
	m sync.Map // string -> string
	n atomic.Int64
	// front is a direct-mapped cache in front of m: most registrations repeat
	// the same few region, zone, status and metadata strings, and a string
	// compare is cheaper than a map lookup.
	front [256]atomic.Pointer[string]
}

func frontSlot(s string) int {
	return (len(s)*31 + int(s[0])*7 + int(s[len(s)-1])*3 + int(s[len(s)/2])) & 255
}

func newInterner() *interner { return &interner{} }

// wants reports whether s is a candidate for interning.
func (in *interner) wants(s string) bool {
	return len(s) <= maxInternLen
}

// intern returns the shared copy of s, adding it while the table has room.
// Strings that are not interned are copied, so the result never aliases the
// caller's (possibly pooled) memory.
func (in *interner) intern(s string) string {
	if s == "" {
		return ""
	}
	if !in.wants(s) {
		return string([]byte(s))
	}
	slot := &in.front[frontSlot(s)]
	if p := slot.Load(); p != nil && *p == s {
		return *p
	}
	if v, ok := in.m.Load(s); ok {
		str := v.(string)
		slot.Store(&str)
		return str
	}
	v := string([]byte(s))
	if in.n.Load() >= maxInterned {
		return v
	}
	actual, loaded := in.m.LoadOrStore(v, v)
	if !loaded {
		in.n.Add(1)
	}
	return actual.(string)
}
