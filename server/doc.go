// Package server serves the Artemis wire protocol (docs/api.md, the Java
// contract's sections 1-7) over Hertz with the netpoll transport and sonic.
//
// Handlers decode requests with sonic (field names match case-insensitively;
// gzip bodies are inflated under a per-body cap and a node-wide budget),
// call the core registry, and map core
// errors to wire error codes in one place (errorCode). Discovery answers are
// written straight from the core's pre-encoded snapshots into Hertz's pooled
// response buffer, so serving a service copies bytes and encodes nothing;
// service.json (and lookup.json of one service) does not even copy: the
// answer cache (answers.go) keeps each service's encoded answer for its
// current snapshot, bounded in bytes (Config.ResponseCacheBytes), and hands
// it to Hertz as the body itself (Response.SetBodyRaw), which netpoll links
// into its write buffer.
//
// Every limit a client can run into (connections, request time, body and
// inflated bytes, ids per request, subscriptions, rate limits) is a Config
// or PushConfig field with a metric; docs/api.md lists them. Strings decoded
// from a body alias it (sonic decodes without copying): they are used
// before the body is released, and whatever outlives the request (a
// subscription) is copied.
//
// A client's mistake never yields a 5xx (but 503 when the inflating budget
// is spent, which is the node's state, not the client's mistake): a body that is not JSON gets 400, an
// oversized one 413, both with a bad-request responseStatus. A handler panic
// is a bug: it is recovered, counted, logged (the first, then one in 1000)
// and answered with 500 internal-service-error.
//
// Hertz pools its RequestContext and request buffers: nothing here keeps a
// context, or a string decoded from a body, after the handler returns.
package server
