package server

import (
	"sync/atomic"
	"time"
)

// Operations that are rate-limited separately (contract section 3: the rate
// limit is the first check of a registry call).
const (
	opRegister = iota
	opHeartbeat
	opUnregister
	opDiscovery
	opStatus
	numOps
)

var opNames = [numOps]string{"register", "heartbeat", "unregister", "discovery", "status"}

// Limit is a request rate with a burst. A zero Rate means unlimited.
type Limit struct {
	Rate  float64 // requests per second
	Burst int     // requests allowed at once above the rate (at least 1)
}

// RateLimits holds one Limit per operation.
type RateLimits struct {
	Register   Limit
	Heartbeat  Limit
	Unregister Limit
	Discovery  Limit
	Status     Limit
}

// DefaultRateLimits protect a node from a runaway client without biting a
// healthy fleet: a million instances heartbeating every 5 s in batches are
// far below them.
var DefaultRateLimits = RateLimits{
	Register:   Limit{Rate: 20_000, Burst: 40_000},
	Heartbeat:  Limit{Rate: 200_000, Burst: 400_000},
	Unregister: Limit{Rate: 20_000, Burst: 40_000},
	Discovery:  Limit{Rate: 100_000, Burst: 200_000},
	Status:     Limit{Rate: 1_000, Burst: 2_000},
}

func (l RateLimits) byOp() [numOps]Limit {
	return [numOps]Limit{l.Register, l.Heartbeat, l.Unregister, l.Discovery, l.Status}
}

// limiter is a GCRA (generic cell rate algorithm) limiter: one atomic
// "theoretical arrival time" and a CAS per request, no lock. A request is
// allowed while the TAT stays within burst intervals of now.
type limiter struct {
	tat      atomic.Int64 // ns since start
	interval int64        // ns per request
	tau      int64        // burst tolerance, ns
	start    time.Time
	limited  atomic.Int64 // requests refused
}

func newLimiter(l Limit) *limiter {
	if l.Rate <= 0 {
		return nil
	}
	interval := int64(float64(time.Second) / l.Rate)
	return &limiter{interval: max(interval, 1), tau: int64(max(l.Burst, 1)) * max(interval, 1), start: time.Now()}
}

// allow reports whether one more request fits. A nil limiter allows all.
func (lm *limiter) allow() bool {
	if lm == nil {
		return true
	}
	now := int64(time.Since(lm.start))
	for {
		tat := lm.tat.Load()
		next := max(tat, now) + lm.interval
		if next-now > lm.tau {
			lm.limited.Add(1)
			return false
		}
		if lm.tat.CompareAndSwap(tat, next) {
			return true
		}
	}
}

// Limited returns how many requests of op were refused.
func (lm *limiter) count() int64 {
	if lm == nil {
		return 0
	}
	return lm.limited.Load()
}
