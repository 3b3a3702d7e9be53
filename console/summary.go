package console

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/artemis-go/artemis/core"
)

// Summary is the answer of /console/api/summary.json: the node and one
// line per registered service.
type Summary struct {
	Region  string `json:"region"`
	Zone    string `json:"zone"`
	Version int64  `json:"version"` // the registry version (services.json's)
	Now     int64  `json:"now"`     // the node's clock, epoch ms
	// Instances counts every registered instance; Expired those whose lease
	// expired and that self-preservation keeps.
	Instances        int64          `json:"instances"`
	Expired          int64          `json:"expired"`
	SelfPreservation bool           `json:"selfPreservationActive"`
	ChangeLogEntries int            `json:"changeLogEntries"`
	Services         []ServiceCount `json:"services"`
}

// ServiceCount counts the instances of one service. Up and Down split the
// instances discovery shows by their registered status ("up" or any
// other); PulledOut counts the registered instances discovery hides (a
// management pull-out of the instance, its server, zone or group).
// Expired counts the leases past their expiry that self-preservation keeps.
type ServiceCount struct {
	ServiceID string `json:"serviceId"`
	Up        int    `json:"up"`
	Down      int    `json:"down"`
	PulledOut int    `json:"pulledOut"`
	Expired   int    `json:"expired"`
}

// summaryCache computes the summary at most once per maxAge.
type summaryCache struct {
	reg    *core.Registry
	maxAge time.Duration

	mu   sync.Mutex // guards at and body; held while computing, so callers wait rather than compute too
	at   time.Time
	body []byte
}

func newSummaryCache(reg *core.Registry, maxAge time.Duration) *summaryCache {
	return &summaryCache{reg: reg, maxAge: maxAge}
}

// get returns the encoded summary. The caller must not modify it.
func (sc *summaryCache) get() []byte {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	now := time.Now()
	if sc.body != nil && now.Sub(sc.at) < sc.maxAge {
		return sc.body
	}
	body, err := json.Marshal(Summarize(sc.reg))
	if err != nil {
		panic("BUG: cannot encode the console summary: " + err.Error())
	}
	sc.at, sc.body = now, body
	return body
}

// Summarize counts the instances of every service of reg, sorted by
// service id, at the registry's clock. A nil reg summarises an empty
// registry.
func Summarize(reg *core.Registry) *Summary {
	if reg == nil {
		return &Summary{Services: []ServiceCount{}}
	}
	return summarize(reg, reg.Config().Now().UnixMilli())
}

// summarize is Summarize at now (epoch ms): leases expired by then count as
// expired.
func summarize(reg *core.Registry, now int64) *Summary {
	s := &Summary{Services: []ServiceCount{}}
	st := reg.Stats()
	s.Region, s.Zone, s.Version = reg.Region(), reg.Zone(), st.Version
	s.Instances, s.Expired = st.Instances, st.Expired
	s.SelfPreservation, s.ChangeLogEntries = st.SelfPreservation.Active, st.ChangeLog.Entries
	s.Now = now
	var visible map[string]struct{} // folded instance ids shown, when discovery hides some
	reg.Leases(nil, func(id string, leases []core.LeaseInfo) {
		sc := ServiceCount{ServiceID: id}
		var shown core.RecordList
		if snap := reg.Service(id); snap != nil {
			shown = snap.Records
		}
		// Discovery shows every lease unless a filter hides some: only then
		// is a set of the shown records worth building.
		all := shown.Len() == len(leases)
		if !all {
			clear(visible)
			if visible == nil {
				visible = make(map[string]struct{}, shown.Len())
			}
			for _, r := range shown.All() {
				visible[core.FoldKey(r.InstanceID())] = struct{}{}
			}
		}
		for _, l := range leases {
			if l.Eviction < now {
				sc.Expired++
			}
			hidden := false
			if !all {
				_, shown := visible[core.FoldKey(l.Record.InstanceID())]
				hidden = !shown
			}
			if hidden {
				sc.PulledOut++
			} else if strings.EqualFold(l.Record.Status(), "up") {
				sc.Up++
			} else {
				sc.Down++
			}
		}
		s.Services = append(s.Services, sc)
	})
	slices.SortFunc(s.Services, func(a, b ServiceCount) int { return strings.Compare(a.ServiceID, b.ServiceID) })
	return s
}
