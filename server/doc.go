// Package server serves the Artemis wire protocol (contract sections 1-5 of
// shared/artemis-api.md) over Hertz with the netpoll transport and sonic.
//
// Handlers decode requests with sonic (field names match case-insensitively;
// gzip bodies are inflated under a cap), call the core registry, and map core
// errors to wire error codes in one place (errorCode). Discovery answers are
// written straight from the core's pre-encoded snapshots into Hertz's pooled
// response buffer, so serving a service copies bytes and encodes nothing.
//
// A client's mistake never yields a 5xx: a body that is not JSON gets 400, an
// oversized one 413, both with a bad-request responseStatus. A handler panic
// is a bug: it is recovered, counted, logged (the first, then one in 1000)
// and answered with 500 internal-service-error.
//
// Hertz pools its RequestContext and request buffers: nothing here keeps a
// context, or a string decoded from a body, after the handler returns.
package server
