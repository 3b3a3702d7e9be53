// Package loadtest is Artemis's load generator, built on vegeta's library.
//
// A run seeds a registry with N instances over S services (registered in
// batches, with a progress bar), optionally keeps them alive with batched
// heartbeats, then attacks it at a constant rate (open model) with one
// scenario: heartbeat, service, lookup, delta, churn or mixed (80 %
// heartbeat, 15 % service, 5 % churn). The same attack is then run against a
// no-op Hertz server started the same way (its "noop" twin), so every report
// states the registry's latency as a ratio to the framework's own ceiling on
// the same machine. FindMax steps the rate up to the highest rate whose P99
// stays under a bound, running each rate on both servers in turn, then
// bisects between each server's last passing rate and its first failing one
// (Config.Refine), so the ratio of the two maxima is not quantised to powers
// of the step factor. A run's HTML plot goes to Config.PlotDir, outside the
// committed results.
//
// vegeta stamps a request before sending it, so time the generator itself
// cannot run (its collector, a starved core) counts as server latency.
// Every attack therefore reports the generator's own scheduling latency and
// GC pauses (runtime/metrics) beside the server's GC cycles.
//
// All targets and bodies are built before the attack; the targeter only
// picks one. Quantiles are exact, computed from every recorded latency.
// Registry answers carry errors in-band, so a 200 whose responseStatus is not
// success counts as an error.
//
// Servers the generator starts (bin/artemis server and bin/artemis noop) run
// as child processes on loopback, pinned with taskset when asked, so their
// RSS and CPU are read from /proc. Only loopback targets are accepted, and
// every attack is bounded in time.
package loadtest
