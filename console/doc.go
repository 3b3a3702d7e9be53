// Package console serves Artemis's built-in web console: one HTML page, one
// JavaScript module and one style sheet, embedded in the binary, that show
// the registry's services and instances, the cluster and the management
// operations, and pull instances and servers out and in through the
// management API.
//
// Register mounts it on a Hertz engine:
//
//	GET /                         302 to /console/
//	GET /console                  302 to /console/
//	GET /console/                 index.html (Cache-Control: no-cache, ETag)
//	GET /console/app.<hash>.js    the module, immutable for a year (the name changes with the content)
//	GET /console/app.<hash>.css   the style sheet, likewise
//	GET /console/api/summary.json one line per service: instances up, down,
//	                              pulled out and expired (this package's own
//	                              answer, not part of the Artemis contract)
//	GET /console/api/replication.json this node's replication to each peer
//	                              (Options.Replication; also the console's own)
//
// Every answer under /console/ carries a strict Content-Security-Policy (no
// inline script or style; connections to this origin only, WebSocket
// included) and X-Content-Type-Options: nosniff. Assets are gzipped once at
// start and served compressed to clients that accept gzip.
//
// The page itself reads the node's public API from the browser
// (discovery/service.json, status/leases.json, status/cluster.json,
// /ws/discovery/instance-change and the management read endpoints) and
// calls the management mutations with the admin token the operator types,
// kept in the tab's sessionStorage and sent as Authorization: Bearer. There
// is no build step: the assets are edited as they are served.
//
// Summary: a service's instances are counted from its leases (every
// registered instance) against its discovery snapshot (what clients see):
// a registered instance that discovery hides is pulled out, whatever
// management rule hides it. The answer is computed at most once per
// Options.SummaryMaxAge (500 ms) however many browsers ask, so its cost,
// linear in the instances, is bounded.
//
// Concurrency: the handlers are safe for concurrent use; the embedded
// assets are read-only after Register returns.
package console
