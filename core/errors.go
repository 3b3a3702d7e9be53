package core

import "errors"

// Sentinel errors. Per-instance failures wrap one of the first three; the
// server maps each to its wire error code in one place.
var (
	// ErrNoPermission: the instance belongs to another region than this node's.
	ErrNoPermission = errors.New("core: no permission")
	// ErrInvalidInstance: a required field is blank or a value is out of range.
	ErrInvalidInstance = errors.New("core: invalid instance")
	// ErrNotFound: a heartbeat named an unknown, expired or evicted instance.
	ErrNotFound = errors.New("core: instance does not exist; re-register")
	// ErrVersionUnavailable: a delta was asked from a version outside the
	// retained change log (too old, zero, or never issued).
	ErrVersionUnavailable = errors.New("core: version is outside the change log")
	// ErrClosed: the registry was closed.
	ErrClosed = errors.New("core: registry is closed")
)
