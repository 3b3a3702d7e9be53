package management

import (
	"errors"
	"fmt"

	"github.com/artemis-go/artemis/store"
)

// Sentinel errors. The server maps them to wire error codes in one place:
// ErrBadRequest -> bad-request, ErrUnavailable -> service-unavailable.
var (
	// ErrBadRequest: a required field is blank or a value is invalid. The
	// error's message is the wire message ("serviceId is null or empty").
	ErrBadRequest = errors.New("management: bad request")
	// ErrUnavailable: the store cannot be reached; nothing was changed.
	// Reads keep answering from the last state loaded.
	ErrUnavailable = store.ErrUnavailable
	// ErrClosed: the manager was closed.
	ErrClosed = errors.New("management: closed")
)

// BadRequestError is a validation failure. It matches ErrBadRequest with
// errors.Is; Error returns the message the wire shows.
type BadRequestError struct{ Message string }

func (e *BadRequestError) Error() string        { return e.Message }
func (e *BadRequestError) Is(target error) bool { return target == ErrBadRequest }

func badRequest(format string, args ...any) error {
	return &BadRequestError{Message: fmt.Sprintf(format, args...)}
}

// required returns a bad-request error naming the first blank field, or nil.
// fields alternate name and value.
func required(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if blank(fields[i+1]) {
			return badRequest("%s is null or empty", fields[i])
		}
	}
	return nil
}
