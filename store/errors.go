package store

import (
	"errors"
	"fmt"
)

// Sentinel errors. The management service maps them to wire error codes.
var (
	// ErrUnavailable: the database cannot be reached or failed; nothing was
	// changed. The server answers service-unavailable.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrBadDSN: Open was given a DSN it does not understand.
	ErrBadDSN = errors.New("store: bad DSN")
)

// unavailable wraps a database error as ErrUnavailable; nil stays nil.
func unavailable(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: cannot %s: %w", ErrUnavailable, op, err)
}
