// Package cluster makes several Artemis nodes one registry: membership and
// node status, replication of client operations to the peers, and the
// startup sync of a node that joins (contract sections 8 and 10; Java
// Artemis's replication wire format).
//
// # Membership
//
// Config.Peers names every node (the entry equal to Config.Self is this
// node). A peer whose host is a DNS name resolving to several addresses (a
// Kubernetes headless Service) stands for one node per address, re-resolved
// every Config.ResolveInterval, so a StatefulSet scales without
// reconfiguring. Every Config.PollInterval each peer's /api/status/node.json
// is read; a peer that does not answer is "unknown".
//
// # Replication
//
// The server hands every instance a client-facing register, heartbeat or
// unregister applied (as the core's immutable *core.Record) to Replicate.
// Operations wait in one outbox, in order; a heartbeat of an instance
// already waiting is not queued twice. A dispatcher turns the outbox into
// batches (runs of one operation, at most Config.MaxBatch instances, the
// Java body {"instances":[...]}, gzipped above gzipThreshold) a few
// milliseconds after a register or unregister (Config.FlushDelay) and at
// least every Config.HeartbeatDelay for heartbeats, and queues the same
// bytes to every peer last seen up or starting. Each peer has a bounded
// queue (Config.QueueBatches) and one sender on persistent connections: a
// slow or dead peer fills its own queue (later batches for it are dropped
// and counted), never the client's answer or another peer. Transport
// errors, 5xx, rate-limited and service-unavailable are retried with
// backoff until the batch is Config.RetryFor old; other refusals are
// dropped and counted. A replicated heartbeat carries the whole instance,
// so a peer that missed a register is healed by the next heartbeat.
// Replicated operations are applied without being replicated again.
//
// # Startup sync
//
// Sync copies the registry from the first peer that is up (peers of this
// node's zone first) through its /api/replication/registry/services.json,
// streamed: WriteServices writes one instance per line and the reader
// registers them in batches as they arrive, so neither side builds the
// whole registry in memory. With no peer up within Config.SyncTimeout the
// node comes up alone.
//
// # Concurrency
//
// Replicate may be called from any goroutine; it takes one mutex and never
// blocks on the network. Everything else runs on the cluster's goroutines,
// stopped by Close.
package cluster
