// Package management is the Artemis management plane (contract sections 9
// and 11): operations that take instances, servers, zones and groups out of
// discovery (pull-out) and bring them back, groups with tags and members,
// logical service instances, route rules with staged weights, canary IPs,
// and the operation log. It holds no HTTP: the server decodes requests into
// the types of model.go, calls a Manager method per endpoint and maps the
// errors (ErrBadRequest, ErrUnavailable) to the wire.
//
// # State and consistency
//
// The state lives in a store.Store. A Manager keeps an immutable copy of it
// in memory (an atomic pointer swapped on change), so reads and the
// discovery filter never touch the store or take a lock. A mutation
// validates its input, runs one store transaction that writes the change
// and its log rows, and then loads the change into the copy before it
// returns: it is durable and visible on its node when answered. Changes
// made by other nodes arrive through store.Watch (PostgreSQL NOTIFY, or a
// version poll within 200 ms) and are loaded incrementally (Changes since
// the cached version). If the store is away, reads keep answering from the
// copy, mutations fail with ErrUnavailable, and loading resumes when it is
// back.
//
// # Discovery
//
// Filter returns the core.RecordFilter of section 11. It runs on snapshot
// rebuilds under the service's lock: per instance a few lookups in maps
// keyed by folded keys, prepared when the state changes; it never calls the
// Registry and allocates only for logical instances and the canary rule.
// Its Hidden answers the same question for one record, which the core asks
// on registrations, so push never announces a down instance.
//
// A change, made on this node or loaded from another's notification, is
// applied by swapping the state and then re-filtering
// (core.Registry.Refilter) only the services it touches: the service of
// the instance, zone, group, rule or logical instance, and for a server
// operation the services with an instance or logical instance on that IP.
// The core logs a delete for each registered instance the change takes
// down and a new for each it brings back (section 11's push). Of those
// services, the ones whose published logical instances or route rules
// differ between the old and the new state (the canary rule's resolved
// instances aside) get one reload (core.Registry.Reload), whether or not an
// instance of them is registered. Discovery reads of cached snapshots stay
// lock- and allocation-free.
//
// # Ownership
//
// Slices and structs returned by reads are the caller's, but maps inside
// them (tags, metadata) may be shared with the cache: do not modify them.
// Requests passed in are read during the call and not kept.
package management
