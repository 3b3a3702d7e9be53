package management

import (
	"bytes"
	"maps"
	"slices"

	"github.com/artemis-go/artemis/core"
)

// filter is the core.RecordFilter of contract section 11. It reads the
// manager's current state (an atomic load) and never calls the Registry.
type filter struct{ m *Manager }

// Shared empty slices: management always publishes logicInstances and
// routeRules, as [] when there are none.
var (
	noRecords = []*core.Record{}
	noRules   = []core.RouteRule{}
)

// keyBufLen is the stack buffer for lookup keys; longer keys spill to the
// heap, which only abnormal input reaches.
const keyBufLen = 512

// FilterService hides down instances, publishes logical instances and route
// rules, and resolves the canary rule's instances. It runs on snapshot
// rebuilds only, under the service's lock: a few map lookups per instance,
// no allocation for a service without logical instances or canary rule.
func (f filter) FilterService(v *core.ServiceView) {
	st := f.m.state.Load()
	var kb [keyBufLen]byte
	p := st.plans[string(core.AppendFoldKey(kb[:0], v.ServiceID))]
	if p == nil {
		if len(st.serverDown) > 0 {
			v.Records = st.visible(nil, v.Records, v.Records[:0])
		}
		v.LogicInstances, v.RouteRules = noRecords, noRules
		return
	}
	v.Records = st.visible(p, v.Records, v.Records[:0])
	v.LogicInstances = noRecords
	if len(p.logic) > 0 {
		v.LogicInstances = st.visible(p, p.logic, make([]*core.Record, 0, len(p.logic)))
	}
	v.RouteRules = noRules
	if len(p.rules) > 0 {
		v.RouteRules = p.rules
		if p.canaryRule >= 0 {
			v.RouteRules = p.resolveCanary(v.Records, v.LogicInstances)
		}
	}
}

// Hidden reports whether rec is down (section 11): exactly the registered
// records FilterService removes. The core asks it on registrations and
// Refilter so that push announces only visible instances.
func (f filter) Hidden(rec *core.Record) bool { return f.m.IsDown(rec) }

// viewChanged reports whether what discovery attaches to the service of
// folded id key differs between old and n: its visible logical instances
// (compared by their JSON) or its route rules (the canary rule's resolved
// instances aside: they follow the instances' own deletes and news).
func viewChanged(old, n *state, key string) bool {
	po, pn := old.plans[key], n.plans[key]
	return !slices.EqualFunc(old.visibleLogic(po), n.visibleLogic(pn), func(a, b *core.Record) bool { return bytes.Equal(a.JSON(), b.JSON()) }) ||
		!slices.EqualFunc(po.routeRules(), pn.routeRules(), sameRule)
}

// visibleLogic returns the logical instances of p that are not down.
func (st *state) visibleLogic(p *plan) []*core.Record {
	if p == nil || len(p.logic) == 0 {
		return nil
	}
	return st.visible(p, p.logic, make([]*core.Record, 0, len(p.logic)))
}

// routeRules returns the published rules of p (nil p: none).
func (p *plan) routeRules() []core.RouteRule {
	if p == nil {
		return nil
	}
	return p.rules
}

func sameRule(a, b core.RouteRule) bool {
	return a.RouteID == b.RouteID && a.Strategy == b.Strategy && slices.EqualFunc(a.Groups, b.Groups, func(x, y core.ServiceGroup) bool {
		return x.GroupKey == y.GroupKey && x.Weight == y.Weight && slices.Equal(x.InstanceIDs, y.InstanceIDs) && maps.Equal(x.Metadata, y.Metadata)
	})
}

// visible appends to dst the records of recs that are not down and returns
// it; dst may alias recs (trimming in place).
func (st *state) visible(p *plan, recs, dst []*core.Record) []*core.Record {
	for _, rec := range recs {
		if !st.down(p, rec) {
			dst = append(dst, rec)
		}
	}
	return dst
}

// down reports whether rec is down by any cause of section 11: an operation
// on its instance, its server (region, IP), its zone or its group.
func (st *state) down(p *plan, rec *core.Record) bool {
	var kb [keyBufLen]byte
	region := rec.RegionID()
	if len(st.serverDown) > 0 {
		if _, ok := st.serverDown[string(appendKey(kb[:0], region, rec.IP()))]; ok {
			return true
		}
	}
	if p == nil {
		return false
	}
	if p.instanceDown != nil {
		if _, ok := p.instanceDown[string(appendKey(kb[:0], region, rec.InstanceID()))]; ok {
			return true
		}
	}
	if p.zoneDown != nil {
		if _, ok := p.zoneDown[string(appendKey(kb[:0], region, rec.ZoneID()))]; ok {
			return true
		}
	}
	if p.groupDown != nil {
		if _, ok := p.groupDown[string(appendKey(kb[:0], region, rec.ZoneID(), groupName(rec.GroupID())))]; ok {
			return true
		}
	}
	return false
}

// resolveCanary returns a copy of p.rules whose canary groups carry the
// visible instances and logical instances that belong to them: members by
// instance id or IP, or instances of the group itself.
func (p *plan) resolveCanary(recs, logic []*core.Record) []core.RouteRule {
	rules := make([]core.RouteRule, len(p.rules))
	copy(rules, p.rules)
	rr := &rules[p.canaryRule]
	groups := make([]core.ServiceGroup, len(rr.Groups))
	copy(groups, rr.Groups)
	rr.Groups = groups
	for i := range groups {
		cg := &p.canary[i]
		out := make([]*core.Record, 0, len(cg.members))
		out = cg.match(recs, out)
		groups[i].Instances = cg.match(logic, out)
	}
	return rules
}

func (cg *canaryGroup) match(recs, dst []*core.Record) []*core.Record {
	var kb [keyBufLen]byte
	for _, rec := range recs {
		if _, ok := cg.members[string(core.AppendFoldKey(kb[:0], rec.InstanceID()))]; ok {
			dst = append(dst, rec)
			continue
		}
		if ip := rec.IP(); ip != "" {
			if _, ok := cg.members[string(core.AppendFoldKey(kb[:0], ip))]; ok {
				dst = append(dst, rec)
				continue
			}
		}
		if string(appendKey(kb[:0], rec.RegionID(), rec.ZoneID(), groupName(rec.GroupID()))) == cg.prefix {
			dst = append(dst, rec)
		}
	}
	return dst
}
