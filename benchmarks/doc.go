// Package benchmarks holds cross-package benchmarks: HTTP round trips over
// loopback through a real Hertz listener into the registry, measured with a
// keep-alive net/http client. They include the client's cost, so compare
// them with each other (or across commits with make bench-compare), not
// with the in-process handler benchmarks in server/.
package benchmarks
