package core

import (
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Self-preservation over long outages, legitimate shrinks and clock steps.
// The fleets below heartbeat once a second with the default 20 s TTL and
// 10 s window: 100 instances make about 1,000 renewals per window.

// spFleet returns n instances spread over 10 services.
func spFleet(n int) []*Instance {
	insts := make([]*Instance, n)
	for i := range insts {
		insts[i] = testInstance(fmt.Sprintf("svc-%d", i%10), fmt.Sprint(i))
	}
	return insts
}

// beat runs the clients of insts for d: each heartbeats once a second, a
// quarter of them every 250 ms as real clients spread out (so the window
// count does not alias with the eviction ticks). A client whose heartbeat
// is refused re-registers, as the SDK does.
func beat(r *Registry, insts []*Instance, d time.Duration) {
	for i := range int(d / (250 * time.Millisecond)) {
		time.Sleep(250 * time.Millisecond)
		for j := i % 4; j < len(insts); j += 4 {
			if f := r.Heartbeat(insts[j:j+1], nil); len(f) > 0 {
				r.Register(insts[j:j+1], nil)
			}
		}
	}
}

// TestSelfPreservationLastsAsLongAsTheOutage is the regression test of
// defect 9: the peak used to decay while protection was active, so a
// partition ended its own protection after PeakDecay (10 min) and every
// instance it had kept was evicted at once.
func TestSelfPreservationLastsAsLongAsTheOutage(t *testing.T) {
	for _, tc := range []struct {
		name string
		kept int // of 100 instances, those whose heartbeats still arrive
	}{
		{"90% lost", 10},
		{"20% lost", 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newTestRegistry(t, Config{Shards: 8})
				defer r.Close()
				insts := spFleet(100)
				r.Register(insts, nil)
				beat(r, insts, time.Minute)
				if sp := r.Stats().SelfPreservation; sp.Active || sp.Peak < 900 {
					t.Fatalf("unexpected state in steady traffic: %+v", sp)
				}
				for m := 1; m <= 40; m++ {
					beat(r, insts[:tc.kept], time.Minute)
					st := r.Stats()
					if !st.SelfPreservation.Active || st.Evictions != 0 || st.Instances != 100 {
						t.Fatalf("unexpected state %d min into the outage: active=%v evictions=%d instances=%d; want active, 0, 100 for as long as the outage lasts",
							m, st.SelfPreservation.Active, st.Evictions, st.Instances)
					}
				}
				if st := r.Stats(); st.Expired != int64(100-tc.kept) {
					t.Fatalf("unexpected expired count after 40 min; got %d; want %d", st.Expired, 100-tc.kept)
				}
				// The partition heals: the refused clients re-register.
				beat(r, insts, 15*time.Second)
				st := r.Stats()
				if st.SelfPreservation.Active || st.Evictions != 0 || st.Instances != 100 || st.Expired != 0 {
					t.Fatalf("unexpected state after recovery: %+v", st)
				}
				// Normal eviction is back: 5 % stop and are evicted.
				beat(r, insts[:95], 30*time.Second)
				if st := r.Stats(); st.SelfPreservation.Active || st.Instances != 95 || st.Evictions != 5 {
					t.Fatalf("unexpected state after a small loss: %+v", st)
				}
			})
		})
	}
}

// TestPeakFollowsAShrinkingFleet: while it is safe, the peak decays, so a
// fleet that shrinks slowly (here one instance stops every 2 minutes, 25 in
// all) is evicted as usual and never mistaken for an outage. Without the
// decay the peak would stay at 1,000 and protection would start at 16
// stopped.
func TestPeakFollowsAShrinkingFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{Shards: 8})
		defer r.Close()
		insts := spFleet(100)
		r.Register(insts, nil)
		beat(r, insts, time.Minute)
		for n := 99; n >= 75; n-- {
			beat(r, insts[:n], 2*time.Minute)
			if sp := r.Stats().SelfPreservation; sp.Active {
				t.Fatalf("unexpected protection with %d instances left of 100: %+v", n, sp)
			}
		}
		st := r.Stats()
		if st.Evictions != 25 || st.Instances != 75 || st.SelfPreservation.Active {
			t.Fatalf("unexpected state after a slow shrink: evictions=%d instances=%d; want 25, 75: %+v", st.Evictions, st.Instances, st)
		}
		if p := st.SelfPreservation.Peak; p > 850 {
			t.Fatalf("unexpected peak %d after the fleet shrank to 75; want it to follow down (at most 850)", p)
		}
	})
}

// TestProtectionEndsAfterAShrinkOnPurpose: half the fleet unregisters at
// once. Renewals halve, so protection starts, but nothing has gone silent:
// once no lease has expired for a whole TTL the peak may decay (after
// PeakDecay), protection ends and a later crash is evicted as usual, rather
// than every later crash being kept for ever.
func TestProtectionEndsAfterAShrinkOnPurpose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{Shards: 8})
		defer r.Close()
		insts := spFleet(100)
		r.Register(insts, nil)
		beat(r, insts, time.Minute)
		r.Unregister(insts[50:], nil)
		beat(r, insts[:50], time.Minute)
		if sp := r.Stats().SelfPreservation; !sp.Active {
			t.Fatalf("unexpected state after half the fleet unregistered: %+v; want active until the peak decays", sp)
		}
		beat(r, insts[:50], 10*time.Minute)
		if sp := r.Stats().SelfPreservation; sp.Active || sp.Peak > 550 {
			t.Fatalf("unexpected state 11 min after half the fleet unregistered: %+v; want the peak decayed to about 500", sp)
		}
		beat(r, insts[:49], 30*time.Second)
		if st := r.Stats(); st.Evictions != 1 || st.Instances != 49 || st.SelfPreservation.Active {
			t.Fatalf("unexpected state after a crash: evictions=%d instances=%d; want 1, 49: %+v", st.Evictions, st.Instances, st)
		}
	})
}

// TestClockStepDoesNotEvictEveryone: the wall clock steps an hour forward
// (NTP, a VM resumed). Every lease looks expired at once while the renewal
// window still counted the renewals before the step, so protection stayed
// off and the whole registry was evicted. The window covers wall time, so
// it starts empty after the step: protection holds the leases while the
// clients, refused, re-register.
func TestClockStepDoesNotEvictEveryone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var offset atomic.Int64
		now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		r := newTestRegistry(t, Config{Shards: 8, Now: now})
		defer r.Close()
		insts := spFleet(100)
		r.Register(insts, nil)
		beat(r, insts, time.Minute)
		offset.Store(int64(time.Hour))
		beat(r, insts, 30*time.Second)
		st := r.Stats()
		if st.Evictions != 0 || st.Instances != 100 || st.Expired != 0 || st.SelfPreservation.Active {
			t.Fatalf("unexpected state after the clock stepped an hour: evictions=%d instances=%d expired=%d; want 0, 100, 0: %+v",
				st.Evictions, st.Instances, st.Expired, st)
		}
	})
}

// spSim drives a selfPreservation directly, one update per call, as the
// eviction goroutine does with the default configuration (10 s window,
// 250 ms ticks, 20 s TTL, 10 min PeakDecay). Each instance renews once a
// tick; instances that go silent are held (or evicted, when update allowed
// it) two ticks after their TTL, as the wheel does.
type spSim struct {
	sp                 selfPreservation
	now, total         int64
	instances, silent  int64
	held, evicted      int64
	silentAt           int64
	evict              bool
	tickMs, ttlMs, due int64
}

func newSPSim(t *testing.T, instances int64) *spSim {
	cfg, err := CheckConfig(Config{})
	if err != nil {
		t.Fatalf("cannot check the default config: %v", err)
	}
	s := &spSim{now: 946684800000, instances: instances, tickMs: cfg.EvictionTick.Milliseconds(), ttlMs: cfg.LeaseTTL.Milliseconds()}
	s.sp.init(cfg.SelfPreservation, cfg.LeaseTTL, cfg.EvictionTick, s.now)
	return s
}

// run advances d one tick at a time and fails t when update allows
// evicting while a held lease exists (which would evict it).
func (s *spSim) run(t *testing.T, d time.Duration) {
	t.Helper()
	for range d.Milliseconds() / s.tickMs {
		s.step(t, 1)
	}
}

// step advances n ticks in one update, as after a stalled round.
func (s *spSim) step(t *testing.T, n int64) {
	t.Helper()
	s.now += n * s.tickMs
	s.total += n * (s.instances - s.held - s.silent)
	if s.silent > 0 && s.now >= s.silentAt+s.ttlMs+2*s.tickMs {
		if s.evict {
			s.evicted += s.silent
			s.instances -= s.silent
		} else {
			s.held += s.silent
		}
		s.silent = 0
	}
	s.evict = s.sp.update(s.total, s.instances, s.held, s.now)
	if s.evict && s.held > 0 {
		t.Fatalf("eviction allowed at %v with %d of %d leases held: %+v", time.Duration(s.now-946684800000)*time.Millisecond, s.held, s.instances, s)
	}
}

// silence makes n more instances stop renewing now.
func (s *spSim) silence(n int64) { s.silent, s.silentAt = s.silent+n, s.now }

// TestStalledRoundDoesNotEndProtection: the ticker drops ticks when a round
// runs long. The window used to advance one slot per round, so after a 5 s
// stall it counted 15 s of renewals: with 40 % of the fleet lost, the
// overstated count passed the threshold for the round that evicts.
func TestStalledRoundDoesNotEndProtection(t *testing.T) {
	s := newSPSim(t, 100)
	s.run(t, time.Minute)
	s.silence(40)
	s.run(t, time.Minute)
	if s.held != 40 || s.evict {
		t.Fatalf("unexpected state a minute into a 40%% loss: held=%d evict=%v; want 40, false", s.held, s.evict)
	}
	s.step(t, 20) // a 5 s stall
	s.run(t, time.Minute)
	if want := int64(60 * 40); s.sp.current.Load() != want {
		t.Fatalf("unexpected renewals in the window after a stall; got %d; want %d", s.sp.current.Load(), want)
	}
}

// TestLossJustBeforeDecayIsProtected: after a shrink on purpose, protection
// is active with nothing to protect and the peak may decay. A mass loss
// that starts just before the decay is due (its leases not yet expired)
// must not lower the peak to the lost level: protection holds it.
// (Without the rule that renewals must have held steady, the peak decayed
// to the lost level and the 45 were evicted on expiry.)
func TestLossJustBeforeDecayIsProtected(t *testing.T) {
	s := newSPSim(t, 100)
	s.run(t, time.Minute)
	peakAt := s.sp.peakAt.Load()
	s.instances = 50 // half the fleet unregisters
	for s.now < peakAt+s.sp.decayMs-15000 {
		s.step(t, 1)
	}
	if s.evict {
		t.Fatalf("unexpected state before the loss: protection ended before the peak could decay")
	}
	// 90 % of the rest go silent 15 s before the decay is due: when it is
	// due, the window shows the loss in full but no lease has expired yet.
	s.silence(45)
	s.run(t, 30*time.Minute)
	if s.held != 45 || s.evicted != 0 || s.evict {
		t.Fatalf("unexpected state 30 min into the loss: held=%d evicted=%d evict=%v; want 45, 0, false", s.held, s.evicted, s.evict)
	}
}
