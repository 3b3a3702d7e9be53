package memreturn

import (
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// DefaultMinBytes is the least idle memory, or heap growth, worth a
// collection to return.
const DefaultMinBytes = 16 << 20

// Config sets the returner's schedule.
type Config struct {
	// Interval is how often the heap is looked at; 0 turns the returner
	// off.
	Interval time.Duration
	// MinBytes is the least idle memory, or heap growth since the last
	// return, that triggers one (DefaultMinBytes when 0); an eighth of the
	// heap in use is the least too.
	MinBytes int64
}

// Totals is what the returners of the process have done.
type Totals struct {
	Returns int64 // calls of debug.FreeOSMemory
	// Bytes estimates the bytes released by them: the heap's idle and
	// in-use bytes before each, less both after. It counts the garbage the
	// forced collection freed as well as the memory idle before it.
	Bytes int64
}

var (
	totalsMu sync.Mutex
	totals   Totals
)

// Returned returns the process's totals.
func Returned() Totals {
	totalsMu.Lock()
	defer totalsMu.Unlock()
	return totals
}

// Start runs a returner until stop is called; with a zero Interval it does
// nothing.
func Start(cfg Config, log *slog.Logger) (stop func()) {
	if cfg.Interval <= 0 {
		return func() {}
	}
	t := time.NewTicker(cfg.Interval)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer t.Stop()
		loop(done, t.C, cfg.MinBytes, log, nil)
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// loop looks at the heap at every tick until done is closed; it sends on
// handled (when not nil) once a tick is handled.
func loop(done <-chan struct{}, ticks <-chan time.Time, minBytes int64, log *slog.Logger, handled chan<- struct{}) {
	if minBytes <= 0 {
		minBytes = DefaultMinBytes
	}
	_, base := heapBytes()
	for {
		select {
		case <-done:
			return
		case <-ticks:
			_, inUse := heapBytes()
			base = min(base, inUse) // the heap shrank: grow from there
			if n, after, ok := returnIdle(minBytes, base); ok {
				base = after
				if log != nil {
					log.Debug("idle memory returned", "bytes", n, "heapInUse", after)
				}
			}
			if handled != nil {
				handled <- struct{}{}
			}
		}
	}
}

// returnIdle returns the idle heap when worth it (base is the heap in use
// after the last return) and reports the bytes it estimates released, the
// heap in use after, and whether it tried.
func returnIdle(minBytes, base int64) (released, inUseAfter int64, tried bool) {
	idle, inUse, gogc := read()
	if !worthReturning(idle, inUse, base, minBytes, gogc >= 0) {
		return 0, inUse, false
	}
	debug.FreeOSMemory()
	idleAfter, inUseAfter := heapBytes()
	released = max(0, idle+inUse-inUseAfter-idleAfter)
	totalsMu.Lock()
	totals.Returns++
	totals.Bytes += released
	totalsMu.Unlock()
	return released, inUseAfter, true
}

// worthReturning: at least minBytes, and an eighth of the heap in use, are
// idle, or (gcOn: the GC percent is not off) the heap in use grew by as
// much since the last return (base): growth that, under steady load, is
// garbage a collection frees. So a small heap is not collected for a few
// pages, and a heap whose live part is flat is collected and returned once
// per interval at most. With the GC percent off (collect only near the
// memory limit) only idle memory is returned: the operator chose not to
// collect for growth.
func worthReturning(idle, inUse, base, minBytes int64, gcOn bool) bool {
	least := max(minBytes, inUse/8)
	return idle >= least || gcOn && inUse-base >= least
}

var samples = []metrics.Sample{
	{Name: "/memory/classes/heap/free:bytes"},    // idle, not released
	{Name: "/memory/classes/heap/objects:bytes"}, // in use by objects, live or not yet swept
	{Name: "/memory/classes/heap/unused:bytes"},  // in-use spans' free slots
	{Name: "/gc/gogc:percent"},
}

var samplesMu sync.Mutex

// read returns the heap's idle bytes (free, not released to the operating
// system), its in-use bytes and the GC percent (-1: off).
func read() (idle, inUse, gogc int64) {
	samplesMu.Lock()
	defer samplesMu.Unlock()
	metrics.Read(samples)
	v := func(i int) int64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(samples[i].Value.Uint64()) // GOGC off reads as -1
	}
	return v(0), v(1) + v(2), v(3)
}

// heapBytes returns the heap's idle and in-use bytes.
func heapBytes() (idle, inUse int64) {
	idle, inUse, _ = read()
	return idle, inUse
}
