package core

// ServiceView is what a discovery filter sees and edits: the instances of one
// service about to be published, its logical instances and the route rules
// attached to it. Filters may trim or reorder Records (never modify a
// Record) and set LogicInstances and RouteRules.
//
// A nil LogicInstances or RouteRules is left out of the service's JSON; a
// non-nil empty one is published as [] (management publishes both always).
type ServiceView struct {
	ServiceID      string
	Records        []*Record
	LogicInstances []*Record
	RouteRules     []RouteRule
}

// Filter shapes what discovery shows of a service: management pull-outs hide
// instances, group routing attaches route rules.
//
// Filters run when a service snapshot is rebuilt, under that service's lock,
// never per read: a filter must be fast and must not call back into the
// Registry. When the state a filter depends on changes, its owner calls
// Registry.Invalidate or Registry.InvalidateAll so snapshots are rebuilt.
type Filter interface {
	FilterService(v *ServiceView)
}

// FilterFunc adapts a function to Filter.
type FilterFunc func(v *ServiceView)

// FilterService calls f(v).
func (f FilterFunc) FilterService(v *ServiceView) { f(v) }

// RouteRule routes a service's traffic over groups of its instances.
type RouteRule struct {
	RouteID  string
	Strategy string // "weighted-round-robin" or "close-by-visit"
	Groups   []ServiceGroup
}

// ServiceGroup is one group of a route rule. Instances, when not nil, are
// the group's resolved instances (the canary rule carries them); Metadata is
// published with its keys sorted.
type ServiceGroup struct {
	GroupKey    string
	Weight      int
	InstanceIDs []string
	Instances   []*Record
	Metadata    map[string]string
}

// NewRecord encodes inst as a Record for a filter that publishes instances
// the registry does not hold (management's logical instances). The record
// is immutable and may be shared by any number of snapshots.
func NewRecord(inst *Instance) *Record {
	rec := new(Record)
	fillRecord(rec, inst)
	return rec
}

// SetFilters replaces the discovery filter chain and rebuilds every snapshot
// on its next read.
func (r *Registry) SetFilters(fs ...Filter) {
	fs = append([]Filter(nil), fs...)
	r.filters.Store(&fs)
	r.InvalidateAll()
}

// Invalidate makes the next read of the service rebuild its snapshot.
func (r *Registry) Invalidate(serviceID string) {
	if s := r.svcs.find(r.hash.service(serviceID), serviceID); s != nil {
		s.invalidate()
	}
}

// InvalidateAll makes the next read of every service rebuild its snapshot.
func (r *Registry) InvalidateAll() {
	for _, s := range r.svcs.all() {
		s.invalidate()
	}
}
