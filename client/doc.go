// Package client is the Go SDK of Artemis.
//
// A Registry registers instances and keeps them alive (WebSocket heartbeats
// every 5 s, HTTP when the socket is down, re-registration when a node lost
// them). A Discovery reads services, follows their changes over a WebSocket
// into a local cache, calls listeners, and protects callers from a push that
// would empty a service. Both are bootstrapped from one or more node URLs and
// learn the cluster's nodes from up-registry-nodes.json /
// up-discovery-nodes.json. Every method takes a context; both types are safe
// for concurrent use and must be closed.
//
// Failover. Every call (register, heartbeat, unregister, lookup, the node
// list) tries another node when a node answers service-unavailable (in-band,
// as a starting or draining node does, or HTTP 503), rate-limited (in-band or
// HTTP 429), HTTP 408 or 5xx, something that is not JSON, or not at all. It
// makes at most 4 attempts (WithRetries), each bounded by 5 s
// (WithAttemptTimeout) and by the caller's context; it moves to an untried
// node at once and, when every node has failed it, waits a jittered backoff
// (between half and all of 100 ms, doubling up to 2 s) before going round
// again. A node that failed is tried after the others for 10 s (1 s when it
// was rate-limited). Permanent errors (bad-request, no-permission,
// data-not-found, other HTTP 4xx) are the same on every node and are never
// retried. When every attempt failed, the error wraps ErrNoNode and the last
// failure (ErrServiceUnavailable, ErrRateLimited, ...). WebSockets follow the
// same rule: a refused handshake, a heartbeat answered service-unavailable or
// rate-limited, or a change socket that drops moves the client to another
// node.
//
// Keys. Service ids and instance keys fold as the registry folds them
// (core.FoldKey: ASCII letters only), so "\u212Aafka" (KELVIN SIGN) is not
// "kafka" here either.
package client
