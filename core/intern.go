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
	if v, ok := in.m.Load(s); ok {
		return v.(string)
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
