// Package memreturn hands the Go heap's idle memory back to the operating
// system on a schedule.
//
// The Go runtime keeps heap pages it has used and freed (idle pages) until
// the process's memory passes about 1.1 times the collector's heap goal;
// its background scavenger releases only what is over that. Under steady
// churn a registry's live heap is flat, yet each collection cycle's peak
// lands on somewhat different pages, so resident memory creeps up towards
// that retention bound over tens of minutes (results/churn: RSS +1.9
// MiB/min over 30 minutes with the live heap flat), which a container's
// memory accounting sees as a slow leak.
//
// Every Interval the returner looks at the heap. When at least MinBytes and
// an eighth of the heap in use are idle, or the heap in use has grown by as
// much since the last return (under steady load, garbage a collection
// frees), it calls debug.FreeOSMemory: a collection, then every idle page
// released. Resident memory then stays near the live heap plus one
// interval's garbage (results/churn, make churn) instead of climbing to its
// high-water mark, as long as an interval's allocation stays under the
// collector's own headroom; a heap that reaches its goal sooner is
// collected by the runtime first, and only the retention creep is trimmed.
//
// The growth trigger collects ahead of the GC percent: with a high GOGC it
// caps the heap's growth between collections at about an interval's
// garbage, which is the point, and costs one collection per interval at
// most (marking a million instances takes about 30 ms of CPU, results/gc).
// With the GC percent off (collect only near the memory limit) only idle
// memory is returned. Releasing runs madvise on the returner's goroutine
// (about 19 ms for 256 MiB on the 2-core machine,
// results/memreturn/20261202-freeosmemory-256mib.md), and released pages fault back
// in as the heap grows again. The JVM's periodic collection (JEP 346) exists
// for the same reason, though G1's is off by default and waits for a quiet
// system; set the interval to 0 for the runtime's behaviour alone.
package memreturn
