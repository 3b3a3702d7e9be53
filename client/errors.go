package client

import "errors"

// ErrNoNode: no node gave an answer within the attempts of a call. The error
// also wraps the last attempt's failure (ErrServiceUnavailable,
// ErrRateLimited, an HTTP status or a transport error).
var ErrNoNode = errors.New("client: no Artemis node answered")

// ErrServiceUnavailable: a node answered service-unavailable (in-band or
// HTTP 503), as a starting or draining node does; the client tries another.
var ErrServiceUnavailable = errors.New("client: node unavailable")

// ErrRateLimited: a node answered rate-limited (in-band or HTTP 429); the
// client tries another, then backs off.
var ErrRateLimited = errors.New("client: rate-limited")

// ErrNoInstance: a service has no instance to pick (none that is up).
var ErrNoInstance = errors.New("client: no instance to pick")
