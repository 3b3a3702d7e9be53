package server

import (
	"hash/maphash"
	"net"
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
	opCluster
	opManagement
	numOps
	opUnlimited = -1 // node.json: peers poll it, it is never refused
)

var opNames = [numOps]string{"register", "heartbeat", "unregister", "discovery", "status", "cluster", "management"}

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
	// Status limits leases, config, deployment and websocket.json;
	// node.json is never limited (peers poll it).
	Status Limit
	// Cluster limits cluster.json and up-registry/discovery-nodes.json,
	// apart from the status reads.
	Cluster Limit
	// Management limits the management endpoints, reads and mutations.
	Management Limit
	// ClientShare is the share of the Status and Cluster limits one client
	// (remote IP) may use, so that one client polling cannot spend every
	// client's budget; 0 or 1 turns the per-client share off. Clients are
	// told apart by a hash of their IP into perClientCells cells: two
	// clients may share a cell.
	ClientShare float64
}

// DefaultRateLimits protect a node from a runaway client without biting a
// healthy fleet: a million instances heartbeating every 5 s in batches are
// far below them.
var DefaultRateLimits = RateLimits{
	Register:    Limit{Rate: 20_000, Burst: 40_000},
	Heartbeat:   Limit{Rate: 200_000, Burst: 400_000},
	Unregister:  Limit{Rate: 20_000, Burst: 40_000},
	Discovery:   Limit{Rate: 100_000, Burst: 200_000},
	Status:      Limit{Rate: 1_000, Burst: 2_000},
	Cluster:     Limit{Rate: 1_000, Burst: 2_000},
	Management:  Limit{Rate: 1_000, Burst: 2_000},
	ClientShare: 0.25,
}

func (l RateLimits) byOp() [numOps]Limit {
	return [numOps]Limit{l.Register, l.Heartbeat, l.Unregister, l.Discovery, l.Status, l.Cluster, l.Management}
}

// shared reports whether op's limit is shared out between clients.
func (l RateLimits) shared(op int) bool {
	return (op == opStatus || op == opCluster) && l.ClientShare > 0 && l.ClientShare < 1
}

// limiter is a GCRA (generic cell rate algorithm) limiter: one atomic
// "theoretical arrival time" and a CAS per request, no lock. A request is
// allowed while the TAT stays within burst intervals of now.
type limiter struct {
	tat      atomic.Int64 // ns on monoNow's clock
	interval int64        // ns per request
	tau      int64        // burst tolerance, ns
	limited  atomic.Int64 // requests refused
}

// clockBase is the origin of monoNow.
var clockBase = time.Now()

// monoNow returns the monotonic clock in ns since the process started: one
// clock read (time.Now reads two, the wall clock and this one). A request
// reads it once for its rate limit and its latency.
func monoNow() int64 { return int64(time.Since(clockBase)) }

func newLimiter(l Limit) *limiter {
	if l.Rate <= 0 {
		return nil
	}
	interval := int64(float64(time.Second) / l.Rate)
	lm := &limiter{interval: max(interval, 1), tau: int64(max(l.Burst, 1)) * max(interval, 1)}
	lm.tat.Store(monoNow() - lm.tau) // the whole burst is available at once
	return lm
}

// allow reports whether one more request fits. A nil limiter allows all.
func (lm *limiter) allow() bool { return lm.allowAt(monoNow()) }

// allowAt is allow at now, a reading of monoNow.
func (lm *limiter) allowAt(now int64) bool {
	if lm == nil {
		return true
	}
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

// count returns how many requests of the limiter's op were refused.
func (lm *limiter) count() int64 {
	if lm == nil {
		return 0
	}
	return lm.limited.Load()
}

// perClientCells is how many per-client limiters an operation has; a
// client's cell is a seeded hash of its IP.
const perClientCells = 256

// clientLimiter gives each client (by a hash of its IP) its own share of
// an operation's limit.
type clientLimiter struct {
	seed  maphash.Seed
	cells [perClientCells]*limiter
}

func newClientLimiter(l Limit, share float64) *clientLimiter {
	if l.Rate <= 0 {
		return nil
	}
	cl := &clientLimiter{seed: maphash.MakeSeed()}
	cell := Limit{Rate: l.Rate * share, Burst: max(1, int(float64(l.Burst)*share))}
	for i := range cl.cells {
		cl.cells[i] = newLimiter(cell)
	}
	return cl
}

// allowAt reports whether the client at addr may make one more request at
// now, a reading of monoNow. A nil clientLimiter allows all.
func (cl *clientLimiter) allowAt(addr net.Addr, now int64) bool {
	if cl == nil {
		return true
	}
	var h uint64
	if tcp, ok := addr.(*net.TCPAddr); ok {
		h = maphash.Bytes(cl.seed, tcp.IP)
	} else if addr != nil {
		h = maphash.String(cl.seed, addr.String())
	}
	return cl.cells[h%perClientCells].allowAt(now)
}
