package management

import (
	"cmp"
	"maps"
	"slices"
	"strconv"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/store"
)

// state is an immutable copy of the management data loaded from the store,
// with the indexes the filter and the reads need. A change builds a new
// state (entity maps copied, indexes rebuilt) and swaps it in atomically;
// readers never lock.
type state struct {
	version int64

	instanceOps map[int64]*store.InstanceOperation
	serverOps   map[int64]*store.ServerOperation
	zoneOps     map[int64]*store.ZoneOperation
	groupOps    map[int64]*store.GroupOperation
	groups      map[int64]*store.Group
	tags        map[int64]*store.GroupTag
	members     map[int64]*store.GroupInstance
	logic       map[int64]*store.ServiceInstance
	rules       map[int64]*store.RouteRule
	bindings    map[int64]*store.RouteRuleGroup

	// serverDown holds key(region, ip) of every server with an operation.
	serverDown map[string]struct{}
	// plans holds what the filter applies per service, by folded service id.
	plans map[string]*plan
}

// plan is what discovery filtering does to one service. Keys are built by
// appendKey from folded parts.
type plan struct {
	instanceDown map[string]struct{} // key(region, instanceId)
	zoneDown     map[string]struct{} // key(region, zone)
	groupDown    map[string]struct{} // key(region, zone, group name)
	logic        []*core.Record      // logical instances, by instance id
	rules        []core.RouteRule    // published rules; canary groups' Instances resolved per rebuild
	canary       []canaryGroup       // the groups of the canary rule, if active
	canaryRule   int                 // index of the canary rule in rules, or -1
}

// canaryGroup is how a canary group's instances are resolved: members by
// instance id or IP, or instances of the group itself (same region, zone,
// groupId = name).
type canaryGroup struct {
	members map[string]struct{} // folded instance ids and IPs
	prefix  string              // key(region, zone, name)
}

// canaryRuleName is the rule whose groups carry resolved instances.
const canaryRuleName = "canary-route-rule"

// defaultGroup is the group of an instance with a blank groupId.
const defaultGroup = "default"

func emptyState() *state {
	return &state{
		instanceOps: map[int64]*store.InstanceOperation{}, serverOps: map[int64]*store.ServerOperation{},
		zoneOps: map[int64]*store.ZoneOperation{}, groupOps: map[int64]*store.GroupOperation{},
		groups: map[int64]*store.Group{}, tags: map[int64]*store.GroupTag{}, members: map[int64]*store.GroupInstance{},
		logic: map[int64]*store.ServiceInstance{}, rules: map[int64]*store.RouteRule{}, bindings: map[int64]*store.RouteRuleGroup{},
		serverDown: map[string]struct{}{}, plans: map[string]*plan{},
	}
}

// touched collects what a delta changes, so that only those services are
// re-filtered.
type touched struct {
	services map[string]string   // folded service id -> the id as first named
	servers  map[string]struct{} // key(region, ip) of servers whose operations changed
}

func (t *touched) service(id string) {
	if id == "" {
		return
	}
	if k := core.FoldKey(id); t.services[k] == "" {
		t.services[k] = id
	}
}

// apply returns the state after d, and what d touched. It does not modify s.
func (s *state) apply(d *store.Delta) (*state, *touched, error) {
	n := &state{
		version:     max(s.version, d.Version),
		instanceOps: maps.Clone(s.instanceOps), serverOps: maps.Clone(s.serverOps), zoneOps: maps.Clone(s.zoneOps),
		groupOps: maps.Clone(s.groupOps), groups: maps.Clone(s.groups), tags: maps.Clone(s.tags),
		members: maps.Clone(s.members), logic: maps.Clone(s.logic), rules: maps.Clone(s.rules), bindings: maps.Clone(s.bindings),
	}
	t := &touched{services: map[string]string{}, servers: map[string]struct{}{}}
	// Groups first, so that rows naming a group find its service whatever
	// their order in the delta.
	for _, r := range d.Rows {
		if r.Kind == store.KindGroup {
			if err := n.applyRow(s, r, t); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, r := range d.Rows {
		if r.Kind != store.KindGroup {
			if err := n.applyRow(s, r, t); err != nil {
				return nil, nil, err
			}
		}
	}
	n.index()
	return n, t, nil
}

// put sets m[id] to the decoded row, or deletes it for a tombstone, and
// returns the old and new values.
func put[T any, P interface {
	*T
	store.Entity
}](m map[int64]P, r store.Row) (old, cur P, err error) {
	old = m[r.ID]
	if r.Deleted {
		delete(m, r.ID)
		return old, nil, nil
	}
	cur, err = store.Decode[T, P](r)
	if err != nil {
		return nil, nil, err
	}
	m[r.ID] = cur
	return old, cur, nil
}

// applyRow applies one row to n (old is the state before the delta) and
// records the services it touches.
func (n *state) applyRow(old *state, r store.Row, t *touched) error {
	groupService := func(id int64) {
		if g := n.groups[id]; g != nil {
			t.service(g.ServiceID)
		}
		if g := old.groups[id]; g != nil {
			t.service(g.ServiceID)
		}
	}
	ruleService := func(id int64) {
		if x := n.rules[id]; x != nil {
			t.service(x.ServiceID)
		}
		if x := old.rules[id]; x != nil {
			t.service(x.ServiceID)
		}
	}
	var err error
	switch r.Kind {
	case store.KindInstanceOperation:
		var a, b *store.InstanceOperation
		a, b, err = put(n.instanceOps, r)
		for _, e := range []*store.InstanceOperation{a, b} {
			if e != nil {
				t.service(e.InstanceKey.ServiceID)
			}
		}
	case store.KindServerOperation:
		var a, b *store.ServerOperation
		a, b, err = put(n.serverOps, r)
		for _, e := range []*store.ServerOperation{a, b} {
			if e != nil {
				t.servers[fkey(e.ServerKey.RegionID, e.ServerKey.ServerID)] = struct{}{}
			}
		}
	case store.KindZoneOperation:
		var a, b *store.ZoneOperation
		a, b, err = put(n.zoneOps, r)
		for _, e := range []*store.ZoneOperation{a, b} {
			if e != nil {
				t.service(e.ZoneKey.ServiceID)
			}
		}
	case store.KindGroupOperation:
		var a, b *store.GroupOperation
		a, b, err = put(n.groupOps, r)
		for _, e := range []*store.GroupOperation{a, b} {
			if e != nil {
				groupService(e.GroupID)
			}
		}
	case store.KindGroup:
		var a, b *store.Group
		a, b, err = put(n.groups, r)
		for _, e := range []*store.Group{a, b} {
			if e != nil {
				t.service(e.ServiceID)
			}
		}
	case store.KindGroupTag:
		var a, b *store.GroupTag
		a, b, err = put(n.tags, r)
		for _, e := range []*store.GroupTag{a, b} {
			if e != nil {
				groupService(e.GroupID)
			}
		}
	case store.KindGroupInstance:
		var a, b *store.GroupInstance
		a, b, err = put(n.members, r)
		for _, e := range []*store.GroupInstance{a, b} {
			if e != nil {
				groupService(e.GroupID)
			}
		}
	case store.KindServiceInstance:
		var a, b *store.ServiceInstance
		a, b, err = put(n.logic, r)
		for _, e := range []*store.ServiceInstance{a, b} {
			if e != nil {
				t.service(e.ServiceID)
			}
		}
	case store.KindRouteRule:
		var a, b *store.RouteRule
		a, b, err = put(n.rules, r)
		for _, e := range []*store.RouteRule{a, b} {
			if e != nil {
				t.service(e.ServiceID)
			}
		}
	case store.KindRouteRuleGroup:
		var a, b *store.RouteRuleGroup
		a, b, err = put(n.bindings, r)
		for _, e := range []*store.RouteRuleGroup{a, b} {
			if e != nil {
				ruleService(e.RouteRuleID)
				groupService(e.GroupID)
			}
		}
	}
	return err
}

// index rebuilds the derived indexes from the entity maps.
func (n *state) index() {
	n.serverDown = make(map[string]struct{}, len(n.serverOps))
	for _, op := range n.serverOps {
		n.serverDown[fkey(op.ServerKey.RegionID, op.ServerKey.ServerID)] = struct{}{}
	}
	n.plans = make(map[string]*plan)
	get := func(service string) *plan {
		k := core.FoldKey(service)
		p := n.plans[k]
		if p == nil {
			p = &plan{canaryRule: -1}
			n.plans[k] = p
		}
		return p
	}
	for _, op := range n.instanceOps {
		p := get(op.InstanceKey.ServiceID)
		setAdd(&p.instanceDown, fkey(op.InstanceKey.RegionID, op.InstanceKey.InstanceID))
	}
	for _, op := range n.zoneOps {
		p := get(op.ZoneKey.ServiceID)
		setAdd(&p.zoneDown, fkey(op.ZoneKey.RegionID, op.ZoneKey.ZoneID))
	}
	for _, op := range n.groupOps {
		if g := n.groups[op.GroupID]; g != nil {
			p := get(g.ServiceID)
			setAdd(&p.groupDown, fkey(g.RegionID, g.ZoneID, g.Name))
		}
	}
	for _, id := range sortedIDs(n.logic) {
		si := n.logic[id]
		p := get(si.ServiceID)
		p.logic = append(p.logic, logicRecord(si))
	}
	for _, p := range n.plans {
		slices.SortStableFunc(p.logic, func(a, b *core.Record) int { return cmp.Compare(a.InstanceID(), b.InstanceID()) })
	}
	n.indexRules(get)
}

// indexRules builds each service's published route rules.
func (n *state) indexRules(get func(string) *plan) {
	byRule := make(map[int64][]*store.RouteRuleGroup)
	for _, id := range sortedIDs(n.bindings) {
		b := n.bindings[id]
		byRule[b.RouteRuleID] = append(byRule[b.RouteRuleID], b)
	}
	membersOf := make(map[int64][]string)
	for _, id := range sortedIDs(n.members) {
		m := n.members[id]
		membersOf[m.GroupID] = append(membersOf[m.GroupID], m.InstanceID)
	}
	tagsOf := make(map[int64]map[string]string)
	for _, t := range n.tags {
		if tagsOf[t.GroupID] == nil {
			tagsOf[t.GroupID] = make(map[string]string)
		}
		tagsOf[t.GroupID][t.Tag] = t.Value
	}
	for _, id := range sortedIDs(n.rules) {
		rule := n.rules[id]
		if !core.EqualFoldKey(rule.Status, store.StatusActive) {
			continue
		}
		canary := core.EqualFoldKey(rule.Name, canaryRuleName)
		rr := core.RouteRule{RouteID: rule.Name, Strategy: rule.Strategy}
		var cgs []canaryGroup
		for _, b := range byRule[rule.RouteRuleID] {
			g := n.groups[b.GroupID]
			if g == nil || !core.EqualFoldKey(g.Status, store.StatusActive) {
				continue
			}
			ids := membersOf[g.GroupID]
			if ids == nil {
				ids = []string{}
			}
			rr.Groups = append(rr.Groups, core.ServiceGroup{GroupKey: g.GroupKey(), Weight: fixWeight(b.Weight), InstanceIDs: ids, Metadata: tagsOf[g.GroupID]})
			if canary {
				cg := canaryGroup{members: make(map[string]struct{}, len(ids)), prefix: fkey(g.RegionID, g.ZoneID, g.Name)}
				for _, id := range ids {
					cg.members[core.FoldKey(id)] = struct{}{}
				}
				cgs = append(cgs, cg)
			}
		}
		if len(rr.Groups) == 0 {
			continue
		}
		p := get(rule.ServiceID)
		if canary && p.canaryRule < 0 {
			p.canaryRule = len(p.rules)
			p.canary = cgs
		}
		p.rules = append(p.rules, rr)
	}
}

// Weight bounds of published route-rule groups.
const (
	defaultWeight = 5
	maxWeight     = 10000
)

// fixWeight returns the weight discovery shows for a released weight.
func fixWeight(w *int) int {
	switch {
	case w == nil || *w < 0:
		return defaultWeight
	case *w > maxWeight:
		return maxWeight
	}
	return *w
}

// logicRecord encodes a logical instance as discovery publishes it: up.
func logicRecord(si *store.ServiceInstance) *core.Record {
	return core.NewRecord(&core.Instance{
		RegionID: si.RegionID, ZoneID: si.ZoneID, GroupID: si.GroupID, ServiceID: si.ServiceID,
		InstanceID: si.InstanceID, MachineName: si.MachineName, IP: si.IP, Port: si.Port, Protocol: si.Protocol,
		URL: si.URL, HealthCheckURL: si.HealthCheckURL, Status: core.StatusUp, Metadata: si.Metadata,
	})
}

func setAdd(m *map[string]struct{}, k string) {
	if *m == nil {
		*m = make(map[string]struct{})
	}
	(*m)[k] = struct{}{}
}

func sortedIDs[V any](m map[int64]V) []int64 {
	ids := slices.Collect(maps.Keys(m))
	slices.Sort(ids)
	return ids
}

// fkey returns the key of folded, trimmed parts joined by NUL; appendKey
// builds the same bytes without allocating.
func fkey(parts ...string) string {
	var buf [256]byte
	return string(appendKey(buf[:0], parts...))
}

// appendKey appends the folded parts, NUL-separated, to dst.
func appendKey(dst []byte, parts ...string) []byte {
	for i, p := range parts {
		if i > 0 {
			dst = append(dst, 0)
		}
		dst = core.AppendFoldKey(dst, trimSpace(p))
	}
	return dst
}

// trimSpace trims ASCII spaces without allocating (strings.TrimSpace also
// trims Unicode spaces; keys are compared the same way on both sides).
func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// groupName returns an instance's group for group operations.
func groupName(groupID string) string {
	if trimSpace(groupID) == "" {
		return defaultGroup
	}
	return groupID
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
