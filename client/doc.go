// Package client is the Go SDK of Artemis.
//
// A Registry registers instances and keeps them alive (WebSocket heartbeats
// every 5 s, HTTP when the socket is down, re-registration when a node lost
// them). A Discovery reads services, follows their changes over a WebSocket
// into a local cache, calls listeners, and protects callers from a push that
// would empty a service. Both are bootstrapped from one or more node URLs,
// learn the cluster's nodes from up-registry-nodes.json /
// up-discovery-nodes.json, and fail over between nodes with retries and
// backoff. Every method takes a context; both types are safe for concurrent
// use and must be closed.
package client
