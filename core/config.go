package core

import (
	"fmt"
	"math/bits"
	"time"
)

// Defaults taken by zero Config fields.
const (
	defaultRegion          = "default"
	defaultZone            = "default"
	defaultLeaseTTL        = 20 * time.Second
	defaultShards          = 128
	defaultEvictionTick    = 250 * time.Millisecond
	defaultChangeLogSize   = 1 << 17
	defaultChangeLogBytes  = 64 << 20
	defaultChangeLogAge    = 10 * time.Minute
	defaultSPWindow        = 10 * time.Second
	defaultSPMinPeak       = 50
	defaultSPThreshold     = 0.85
	defaultSPPeakDecay     = 10 * time.Minute
	maxShards              = 1 << 16
	minEvictionTick        = 10 * time.Millisecond
	requeueProtectedLeases = time.Second
)

// Config configures a Registry. Zero fields take the named defaults.
type Config struct {
	// Region and Zone of this node. Instances of other regions are refused.
	Region string
	Zone   string
	// LeaseTTL is how long an instance lives without a heartbeat (20 s).
	LeaseTTL time.Duration
	// Shards is the number of lock stripes, rounded up to a power of two (128).
	Shards int
	// EvictionTick is the granularity of the expiry queues (250 ms): an
	// expired lease is evicted at most two ticks after its deadline.
	EvictionTick time.Duration
	// ChangeLogSize, ChangeLogBytes and ChangeLogAge bound the change log
	// that answers deltas and feeds change streams (131072 changes, 64 MiB,
	// 10 minutes); the oldest changes are dropped first. A reader whose
	// version has fallen off the log, by any bound, gets
	// ErrVersionUnavailable and reloads everything.
	//
	// ChangeLogBytes counts the bytes the log keeps: each change's copy of
	// its record (header, metadata spans, JSON, unescaped values) with the
	// change's envelope and service id (the encoded change is the record's
	// JSON in its envelope, stored once), its ring slot (48 bytes), and the
	// unused end of every chunk of the log (see changeLog). Besides what it
	// counts, the log keeps at most 2 MiB (two partly used chunks). A
	// typical change costs about 650 bytes; one at every size limit, all
	// escaped, about 115 KB, so 64 MiB keeps at least about 580 changes.
	// A delta answer is at most the log's count. A single change larger
	// than the whole bound is kept alone.
	ChangeLogSize  int
	ChangeLogBytes int
	ChangeLogAge   time.Duration
	// SelfPreservation configures the guard against mass eviction.
	SelfPreservation SelfPreservationConfig
	// Now is the clock (time.Now). Tests inject their own or use synctest.
	Now func() time.Time
	// ClockResolution, when positive (1 ms up to EvictionTick), makes the
	// registry read Now once per ClockResolution, from a goroutine, and
	// its operations read that value: a heartbeat then costs no clock read
	// (about 50 ns on a virtual machine). Registrations, renewals and
	// change times are then stamped up to ClockResolution early, so a
	// lease may expire that much before a full LeaseTTL after its last
	// heartbeat. Eviction reads Now itself. Zero (the default) reads Now
	// on every operation.
	ClockResolution time.Duration
}

// SelfPreservationConfig configures self-preservation (contract section 6).
type SelfPreservationConfig struct {
	// Disabled turns self-preservation off: expired leases are always evicted.
	Disabled bool
	// Window is the sliding window renewals are counted over (10 s).
	Window time.Duration
	// MinPeak is the peak renewal count below which no protection applies (50).
	MinPeak int64
	// Threshold is the fraction of the peak under which eviction stops (0.85).
	Threshold float64
	// PeakDecay is how long a peak holds before it decays to the current
	// count (10 min). It decays only while eviction is allowed, so the peak
	// follows a fleet that shrinks slowly while protection lasts as long as
	// an outage does; the exception is protection with nothing to protect
	// (no more than 1-Threshold of the leases expired and renewals steady
	// for a lease TTL: instances left on purpose), which may decay too.
	PeakDecay time.Duration
}

// CheckConfig returns c with defaults applied, or an error naming the first
// invalid field, as New would.
func CheckConfig(c Config) (Config, error) { return c.withDefaults() }

// withDefaults returns c with zero fields set to their defaults, or an error
// naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Region == "" {
		c.Region = defaultRegion
	}
	if c.Zone == "" {
		c.Zone = defaultZone
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = defaultLeaseTTL
	}
	if c.LeaseTTL < time.Second {
		return c, fmt.Errorf("cannot use LeaseTTL %v: must be at least 1s", c.LeaseTTL)
	}
	if c.Shards == 0 {
		c.Shards = defaultShards
	}
	if c.Shards < 1 || c.Shards > maxShards {
		return c, fmt.Errorf("cannot use Shards %d: must be in 1..%d", c.Shards, maxShards)
	}
	c.Shards = 1 << bits.Len(uint(c.Shards-1))
	if c.EvictionTick == 0 {
		c.EvictionTick = defaultEvictionTick
	}
	if c.EvictionTick < minEvictionTick || c.EvictionTick > c.LeaseTTL {
		return c, fmt.Errorf("cannot use EvictionTick %v: must be in %v..LeaseTTL", c.EvictionTick, minEvictionTick)
	}
	if c.ClockResolution != 0 && (c.ClockResolution < time.Millisecond || c.ClockResolution > c.EvictionTick) {
		return c, fmt.Errorf("cannot use ClockResolution %v: must be 0 or in 1ms..EvictionTick", c.ClockResolution)
	}
	if c.ChangeLogSize == 0 {
		c.ChangeLogSize = defaultChangeLogSize
	}
	if c.ChangeLogSize < 1 {
		return c, fmt.Errorf("cannot use ChangeLogSize %d: must be positive", c.ChangeLogSize)
	}
	if c.ChangeLogBytes == 0 {
		c.ChangeLogBytes = defaultChangeLogBytes
	}
	if c.ChangeLogBytes < 1 {
		return c, fmt.Errorf("cannot use ChangeLogBytes %d: must be positive", c.ChangeLogBytes)
	}
	if c.ChangeLogAge == 0 {
		c.ChangeLogAge = defaultChangeLogAge
	}
	if c.ChangeLogAge < 0 {
		return c, fmt.Errorf("cannot use ChangeLogAge %v: must be positive", c.ChangeLogAge)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	sp := &c.SelfPreservation
	if sp.Window == 0 {
		sp.Window = defaultSPWindow
	}
	if sp.Window < c.EvictionTick {
		return c, fmt.Errorf("cannot use SelfPreservation.Window %v: must be at least EvictionTick", sp.Window)
	}
	if sp.MinPeak == 0 {
		sp.MinPeak = defaultSPMinPeak
	}
	if sp.Threshold == 0 {
		sp.Threshold = defaultSPThreshold
	}
	if sp.Threshold < 0 || sp.Threshold > 1 {
		return c, fmt.Errorf("cannot use SelfPreservation.Threshold %v: must be in 0..1", sp.Threshold)
	}
	if sp.PeakDecay == 0 {
		sp.PeakDecay = defaultSPPeakDecay
	}
	return c, nil
}
