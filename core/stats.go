package core

// Stats is a point-in-time summary of the registry for metrics and status.
type Stats struct {
	Instances       int64
	Services        int64
	Version         int64
	Registrations   int64 // successful register operations, per instance
	Renewals        int64 // successful heartbeats, per instance
	Unregistrations int64
	Evictions       int64
	// RecordBytes is the bytes of the services' record arenas (live
	// records, dead ones not yet compacted, unused chunk ends), and
	// Compactions the number of arena compactions so far (see doc.go).
	RecordBytes int64
	Compactions int64
	// Expired is the number of expired leases that self-preservation keeps
	// registered.
	Expired int64
	// ChangeLogLen is the number of changes retained for deltas, the same
	// as ChangeLog.Entries.
	ChangeLogLen int
	// ChangeLog reports the change log's retention against its bounds.
	ChangeLog ChangeLogStats

	SelfPreservation SelfPreservationState
}

// ChangeLogStats reports what the change log retains. A reader whose
// version is older than the retained changes must reload everything.
type ChangeLogStats struct {
	Entries    int   // changes retained
	Bytes      int64 // their cost against MaxBytes (see Config.ChangeLogBytes)
	MaxEntries int   // Config.ChangeLogSize
	MaxBytes   int64 // Config.ChangeLogBytes
}

// SelfPreservationState reports self-preservation as status/leases.json shows it.
type SelfPreservationState struct {
	Enabled bool
	// Active: eviction is suspended because renewals fell below the threshold.
	Active bool
	// RenewalsInWindow is the number of renewals over the last window.
	RenewalsInWindow int64
	// Peak and PeakUpdatedAt (epoch ms) are the tracked peak of RenewalsInWindow.
	Peak          int64
	PeakUpdatedAt int64
}

// Stats returns the current statistics. It takes no lock a request waits on.
func (r *Registry) Stats() Stats {
	s := Stats{
		Services:        r.svcs.count.Load(),
		Version:         r.log.current(),
		Registrations:   r.registrations.Load(),
		Unregistrations: r.unregistrations.Load(),
		Evictions:       r.evictions.Load(),
		RecordBytes:     r.arenaBytes.Load(),
		Compactions:     r.compactions.Load(),
		SelfPreservation: SelfPreservationState{
			Enabled:          !r.cfg.SelfPreservation.Disabled,
			Active:           r.sp.active.Load(),
			RenewalsInWindow: r.sp.current.Load(),
			Peak:             r.sp.peak.Load(),
			PeakUpdatedAt:    r.sp.peakAt.Load(),
		},
	}
	for i := range r.shards {
		s.Instances += r.shards[i].count.Load()
		s.Renewals += r.shards[i].renewals.Load()
		s.Expired += r.shards[i].held.Load()
	}
	s.ChangeLog = r.log.stats()
	s.ChangeLogLen = s.ChangeLog.Entries
	return s
}
