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
// Registry.Refilter for the services the change touches (and Reload for
// those whose route rules or logical instances changed), or Invalidate
// when only snapshots need rebuilding.
//
// A filter that hides instances should implement RecordFilter: the change
// log, and so deltas and push, follow only what RecordFilters hide.
type Filter interface {
	FilterService(v *ServiceView)
}

// RecordFilter is a Filter that hides instances and can tell, one record at
// a time, which: Hidden reports whether FilterService removes rec from its
// service's Records, and must agree with it. The registry asks it, under
// the service's lock, on every register, re-register with new data and
// Refilter, so that the change log announces an instance (ChangeNew) only
// while no RecordFilter hides it and withdraws it (ChangeDelete) when one
// starts to or the instance leaves. Hidden must be fast, must not allocate
// and must not call the Registry.
type RecordFilter interface {
	Filter
	Hidden(rec *Record) bool
}

// filterChain is the installed filters and, among them, the RecordFilters.
type filterChain struct {
	filters []Filter
	hiders  []RecordFilter
}

// hidden reports whether a RecordFilter of the chain hides rec.
func (r *Registry) hidden(rec *Record) bool {
	c := r.filters.Load()
	if c == nil {
		return false
	}
	for _, h := range c.hiders {
		if h.Hidden(rec) {
			return true
		}
	}
	return false
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

// SetFilters replaces the discovery filter chain, re-filters every service
// as Refilter does (a ChangeDelete for each announced instance the new
// chain hides, a ChangeNew for each hidden one it shows) and rebuilds every
// snapshot on its next read. It logs no ChangeReload: a caller whose new
// chain changes the route rules or logical instances of services already
// followed calls Reload for them. O(instances).
func (r *Registry) SetFilters(fs ...Filter) {
	c := &filterChain{filters: append([]Filter(nil), fs...)}
	for _, f := range c.filters {
		if h, ok := f.(RecordFilter); ok {
			c.hiders = append(c.hiders, h)
		}
	}
	r.filters.Store(c)
	now := r.nowMs()
	for _, s := range r.svcs.all() {
		s.refilter(r, now) // a dropped service has no members left to refilter
	}
}

// Refilter re-applies the filters to each named service (case-insensitive;
// unknown ones are skipped), after the state a RecordFilter depends on
// changed. For each instance of the service it asks the RecordFilters
// whether the instance is hidden now, and appends to the change log, in
// instance id order, a ChangeDelete for each instance the log announced
// (a ChangeNew since its last ChangeDelete) that is hidden now, and a
// ChangeNew for each instance it did not announce that is visible now; it
// then marks the snapshot stale. O(instances of the service).
//
// It is safe to call concurrently with registrations: each decision to
// announce or withdraw an instance is taken under the service's lock from
// the instance's current record and the filters' current answer, so
// whatever the interleaving the log ends up matching the filters once the
// filter owner has changed its state and called Refilter.
func (r *Registry) Refilter(serviceIDs ...string) {
	now := r.nowMs()
	for _, id := range serviceIDs {
		for {
			s := r.svcs.find(r.hash.service(id), id)
			if s == nil || s.refilter(r, now) {
				break
			}
			// Dropped between find and lock: a live one may have replaced it.
		}
	}
}

// Reload appends one ChangeReload for each named service, whether or not an
// instance of it is registered: a subscriber re-fetches the whole service.
// A filter owner calls it when what the filters attach to a service (route
// rules, logical instances) changed. The change's Record is a placeholder
// (see Change) naming the service as discovery spells it when it is
// registered, else as given.
func (r *Registry) Reload(serviceIDs ...string) {
	now := r.nowMs()
	for _, id := range serviceIDs {
		r.reload(id, now)
	}
}

// reload logs the ChangeReload of one service. It holds the service's lock
// while it appends, so the reload is ordered after the changes of a
// concurrent Refilter or registration of the same service.
func (r *Registry) reload(id string, now int64) {
	for {
		s := r.svcs.find(r.hash.service(id), id)
		if s == nil {
			r.log.append(ChangeReload, id, reloadRecord(id), now)
			return
		}
		s.mu.Lock()
		if !s.dead {
			r.log.append(ChangeReload, s.id, reloadRecord(s.id), now)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock() // dropped meanwhile: look again
	}
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
