package management

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/store"
)

// Groups, group tags, group members, logical instances, route rules and
// their bindings: contract section 9.3. Insert and update are the same
// upsert by natural key; deletes take id lists and skip unknown ids.

// InsertGroups upserts groups, changing appId, description and status of
// existing ones. UpdateGroups is the same under another log name.
func (m *Manager) InsertGroups(ctx context.Context, groups []store.Group, a *Audit) error {
	return m.upsertGroups(ctx, groups, a, "insert-groups")
}

// UpdateGroups: see InsertGroups.
func (m *Manager) UpdateGroups(ctx context.Context, groups []store.Group, a *Audit) error {
	return m.upsertGroups(ctx, groups, a, "update-groups")
}

func validGroup(g *store.Group) error {
	return required("serviceId", g.ServiceID, "regionId", g.RegionID, "zoneId", g.ZoneID, "name", g.Name,
		"appId", g.AppID, "status", g.Status)
}

func trimGroup(g store.Group) *store.Group {
	return &store.Group{ServiceID: trim(g.ServiceID), RegionID: trim(g.RegionID), ZoneID: trim(g.ZoneID), Name: trim(g.Name),
		AppID: trim(g.AppID), Description: g.Description, Status: trim(g.Status)}
}

func (m *Manager) upsertGroups(ctx context.Context, groups []store.Group, a *Audit, endpoint string) error {
	for i := range groups {
		if err := validGroup(&groups[i]); err != nil {
			return err
		}
	}
	return m.update(ctx, func(tx *store.Tx) error {
		for i := range groups {
			g := trimGroup(groups[i])
			if cur, err := store.Find(tx, g); err != nil {
				return err
			} else if cur != nil {
				cur.AppID, cur.Description, cur.Status = g.AppID, g.Description, g.Status
				g = cur
			}
			if _, err := store.Put(tx, g); err != nil {
				return err
			}
			if err := m.logGroup(tx, g, endpoint, a, false); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteGroups deletes groups by id; their tags, members, bindings and
// operations stop acting.
func (m *Manager) DeleteGroups(ctx context.Context, ids []int64, a *Audit) error {
	return deleteByID[store.Group](m, ctx, ids, func(tx *store.Tx, g *store.Group) error {
		return m.logGroup(tx, g, "delete-groups", a, true)
	})
}

// GetGroups returns the groups matching the filter's non-zero fields.
func (m *Manager) GetGroups(f store.Group) []Group {
	st := m.state.Load()
	var out []Group
	for _, id := range sortedIDs(st.groups) {
		g := st.groups[id]
		if (f.GroupID == 0 || f.GroupID == g.GroupID) && matches(f.ServiceID, g.ServiceID) && matches(f.RegionID, g.RegionID) &&
			matches(f.ZoneID, g.ZoneID) && matches(f.Name, g.Name) && matches(f.AppID, g.AppID) && matches(f.Status, g.Status) {
			out = append(out, Group{Group: *g, GroupKey: g.GroupKey()})
		}
	}
	return out
}

// AllGroups returns every group.
func (m *Manager) AllGroups() []Group { return m.GetGroups(store.Group{}) }

// InsertGroupTags upserts tags (by group and tag name). UpdateGroupTags is
// the same under another log name.
func (m *Manager) InsertGroupTags(ctx context.Context, list []GroupTags, a *Audit) error {
	return m.upsertTags(ctx, list, a, "insert-group-tags")
}

// UpdateGroupTags: see InsertGroupTags.
func (m *Manager) UpdateGroupTags(ctx context.Context, list []GroupTags, a *Audit) error {
	return m.upsertTags(ctx, list, a, "update-group-tags")
}

func (m *Manager) upsertTags(ctx context.Context, list []GroupTags, a *Audit, endpoint string) error {
	var tags []*store.GroupTag
	for _, gt := range list {
		if gt.GroupID == 0 {
			return badRequest("groupId is null or empty")
		}
		for _, k := range slices.Sorted(maps.Keys(gt.Tags)) {
			if err := required("tag", k, "value", gt.Tags[k]); err != nil {
				return err
			}
			tags = append(tags, &store.GroupTag{GroupID: gt.GroupID, Tag: trim(k), Value: gt.Tags[k]})
		}
	}
	return m.update(ctx, func(tx *store.Tx) error {
		for _, t := range tags {
			if cur, err := store.Find(tx, t); err != nil {
				return err
			} else if cur != nil {
				cur.Value = t.Value // the tag keeps the spelling it was created with
				t = cur
			}
			if _, err := store.Put(tx, t); err != nil {
				return err
			}
			if err := m.logTag(tx, t, endpoint, a, false); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteGroupTags deletes the tags matching the fields given; at least one
// of groupId, tag and value is required.
func (m *Manager) DeleteGroupTags(ctx context.Context, f store.GroupTag, a *Audit) error {
	if f.GroupID == 0 && blank(f.Tag) && blank(f.Value) {
		return badRequest("groupId, tag and value are null or empty")
	}
	return m.update(ctx, func(tx *store.Tx) error {
		tags, err := store.List[store.GroupTag](tx)
		if err != nil {
			return err
		}
		for _, t := range tags {
			if (f.GroupID != 0 && f.GroupID != t.GroupID) || !matches(f.Tag, t.Tag) || (!blank(f.Value) && f.Value != t.Value) {
				continue
			}
			if _, err := store.Delete(tx, store.KindGroupTag, t.ID); err != nil {
				return err
			}
			if err := m.logTag(tx, t, "delete-group-tags", a, true); err != nil {
				return err
			}
		}
		return nil
	})
}

// GroupTags returns the tags of a group, nil if it has none.
func (m *Manager) GroupTags(groupID int64) (*GroupTags, error) {
	if groupID == 0 {
		return nil, badRequest("groupId is null or empty")
	}
	all := m.AllGroupTags()
	i, ok := slices.BinarySearchFunc(all, groupID, func(gt GroupTags, id int64) int { return cmp.Compare(gt.GroupID, id) })
	if !ok {
		return nil, nil
	}
	return &all[i], nil
}

// AllGroupTags returns the tags of every group that has some, by group id.
func (m *Manager) AllGroupTags() []GroupTags {
	st := m.state.Load()
	by := map[int64]map[string]string{}
	for _, t := range st.tags {
		if by[t.GroupID] == nil {
			by[t.GroupID] = map[string]string{}
		}
		by[t.GroupID][t.Tag] = t.Value
	}
	out := make([]GroupTags, 0, len(by))
	for _, id := range slices.Sorted(maps.Keys(by)) {
		out = append(out, GroupTags{GroupID: id, Tags: by[id]})
	}
	return out
}

// InsertGroupInstances adds members to groups; a present member is kept.
func (m *Manager) InsertGroupInstances(ctx context.Context, list []store.GroupInstance, a *Audit) error {
	for _, gi := range list {
		if gi.GroupID == 0 {
			return badRequest("groupId is null or empty")
		}
		if err := required("instanceId", gi.InstanceID); err != nil {
			return err
		}
	}
	return m.update(ctx, func(tx *store.Tx) error {
		for _, gi := range list {
			e := &store.GroupInstance{GroupID: gi.GroupID, InstanceID: trim(gi.InstanceID)}
			if err := m.addMember(tx, e, a, "insert-group-instances"); err != nil {
				return err
			}
		}
		return nil
	})
}

// addMember inserts e unless the member exists, and logs it.
func (m *Manager) addMember(tx *store.Tx, e *store.GroupInstance, a *Audit, endpoint string) error {
	if cur, err := store.Find(tx, e); err != nil || cur != nil {
		return err
	}
	if _, err := store.Put(tx, e); err != nil {
		return err
	}
	return m.logMember(tx, e, endpoint, a)
}

// DeleteGroupInstances removes members by id.
func (m *Manager) DeleteGroupInstances(ctx context.Context, ids []int64, a *Audit) error {
	return deleteByID[store.GroupInstance](m, ctx, ids, func(tx *store.Tx, e *store.GroupInstance) error {
		return m.logMember(tx, e, "delete-group-instances", a)
	})
}

// GetGroupInstances returns the members matching the filter's non-zero
// fields.
func (m *Manager) GetGroupInstances(f store.GroupInstance) []store.GroupInstance {
	st := m.state.Load()
	var out []store.GroupInstance
	for _, id := range sortedIDs(st.members) {
		e := st.members[id]
		if (f.ID == 0 || f.ID == e.ID) && (f.GroupID == 0 || f.GroupID == e.GroupID) && matches(f.InstanceID, e.InstanceID) {
			out = append(out, *e)
		}
	}
	return out
}

// InsertServiceInstances upserts logical instances (by service and
// instance id), replacing all their fields.
func (m *Manager) InsertServiceInstances(ctx context.Context, list []store.ServiceInstance, a *Audit) error {
	for i := range list {
		if err := required("serviceId", list[i].ServiceID, "instanceId", list[i].InstanceID, "url", list[i].URL); err != nil {
			return err
		}
		if p := list[i].Port; p < 0 || p > 65535 {
			return badRequest("port %d is outside 0..65535", p)
		}
	}
	return m.update(ctx, func(tx *store.Tx) error {
		for i := range list {
			e := list[i]
			e.ID, e.ServiceID, e.InstanceID = 0, trim(e.ServiceID), trim(e.InstanceID)
			if _, err := store.Put(tx, &e); err != nil {
				return err
			}
			if err := m.logLogic(tx, &e, "insert-service-instances", a, false); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteServiceInstances deletes logical instances by id.
func (m *Manager) DeleteServiceInstances(ctx context.Context, ids []int64, a *Audit) error {
	return deleteByID[store.ServiceInstance](m, ctx, ids, func(tx *store.Tx, e *store.ServiceInstance) error {
		return m.logLogic(tx, e, "delete-service-instances", a, true)
	})
}

// GetServiceInstances returns the logical instances matching the filter's
// non-zero id, serviceId, instanceId, regionId, zoneId, groupId and ip.
func (m *Manager) GetServiceInstances(f store.ServiceInstance) []store.ServiceInstance {
	st := m.state.Load()
	var out []store.ServiceInstance
	for _, id := range sortedIDs(st.logic) {
		e := st.logic[id]
		if (f.ID == 0 || f.ID == e.ID) && matches(f.ServiceID, e.ServiceID) && matches(f.InstanceID, e.InstanceID) &&
			matches(f.RegionID, e.RegionID) && matches(f.ZoneID, e.ZoneID) && matches(f.GroupID, e.GroupID) && matches(f.IP, e.IP) {
			out = append(out, *e)
		}
	}
	return out
}

// InsertRouteRules upserts rules (by service and name), changing
// description, status and strategy. UpdateRouteRules is the same under
// another log name.
func (m *Manager) InsertRouteRules(ctx context.Context, rules []store.RouteRule, a *Audit) error {
	return m.upsertRules(ctx, rules, a, "insert-route-rules")
}

// UpdateRouteRules: see InsertRouteRules.
func (m *Manager) UpdateRouteRules(ctx context.Context, rules []store.RouteRule, a *Audit) error {
	return m.upsertRules(ctx, rules, a, "update-route-rules")
}

func validRule(r *store.RouteRule) error {
	return required("serviceId", r.ServiceID, "name", r.Name, "status", r.Status, "strategy", r.Strategy)
}

func (m *Manager) upsertRules(ctx context.Context, rules []store.RouteRule, a *Audit, endpoint string) error {
	for i := range rules {
		if err := validRule(&rules[i]); err != nil {
			return err
		}
	}
	return m.update(ctx, func(tx *store.Tx) error {
		for i := range rules {
			if _, err := m.putRule(tx, rules[i], a, endpoint, true); err != nil {
				return err
			}
		}
		return nil
	})
}

// putRule creates the rule, or updates it when overwrite is set, and logs
// what it wrote; it returns the stored rule.
func (m *Manager) putRule(tx *store.Tx, in store.RouteRule, a *Audit, endpoint string, overwrite bool) (*store.RouteRule, error) {
	r := &store.RouteRule{ServiceID: trim(in.ServiceID), Name: trim(in.Name), Description: in.Description,
		Status: trim(in.Status), Strategy: trim(in.Strategy)}
	cur, err := store.Find(tx, r)
	if err != nil {
		return nil, err
	}
	if cur != nil {
		if !overwrite {
			return cur, nil
		}
		cur.Description, cur.Status, cur.Strategy = r.Description, r.Status, r.Strategy
		r = cur
	}
	if _, err := store.Put(tx, r); err != nil {
		return nil, err
	}
	return r, m.logRule(tx, r, endpoint, a, false)
}

// DeleteRouteRules deletes rules by id; their bindings stop acting.
func (m *Manager) DeleteRouteRules(ctx context.Context, ids []int64, a *Audit) error {
	return deleteByID[store.RouteRule](m, ctx, ids, func(tx *store.Tx, r *store.RouteRule) error {
		return m.logRule(tx, r, "delete-route-rules", a, true)
	})
}

// GetRouteRules returns the rules matching the filter's non-zero fields.
func (m *Manager) GetRouteRules(f store.RouteRule) []store.RouteRule {
	st := m.state.Load()
	var out []store.RouteRule
	for _, id := range sortedIDs(st.rules) {
		r := st.rules[id]
		if (f.RouteRuleID == 0 || f.RouteRuleID == r.RouteRuleID) && matches(f.ServiceID, r.ServiceID) && matches(f.Name, r.Name) &&
			matches(f.Status, r.Status) && matches(f.Strategy, r.Strategy) {
			out = append(out, *r)
		}
	}
	return out
}

// AllRouteRules returns every rule.
func (m *Manager) AllRouteRules() []store.RouteRule { return m.GetRouteRules(store.RouteRule{}) }

// InsertRouteRuleGroups binds groups to rules, staging the weight
// (unreleasedWeight, or weight when that is absent) without publishing it.
// UpdateRouteRuleGroups is the same under another log name.
func (m *Manager) InsertRouteRuleGroups(ctx context.Context, list []store.RouteRuleGroup, a *Audit) error {
	return m.upsertBindings(ctx, list, a, "insert-route-rule-groups")
}

// UpdateRouteRuleGroups: see InsertRouteRuleGroups.
func (m *Manager) UpdateRouteRuleGroups(ctx context.Context, list []store.RouteRuleGroup, a *Audit) error {
	return m.upsertBindings(ctx, list, a, "update-route-rule-groups")
}

func validBinding(b *store.RouteRuleGroup) error {
	if b.RouteRuleID == 0 {
		return badRequest("routeRuleId is null or empty")
	}
	if b.GroupID == 0 {
		return badRequest("groupId is null or empty")
	}
	return nil
}

func (m *Manager) upsertBindings(ctx context.Context, list []store.RouteRuleGroup, a *Audit, endpoint string) error {
	for i := range list {
		if err := validBinding(&list[i]); err != nil {
			return err
		}
	}
	return m.update(ctx, func(tx *store.Tx) error {
		for _, in := range list {
			w := in.UnreleasedWeight
			if w == nil {
				w = in.Weight
			}
			if err := m.stageWeight(tx, in.RouteRuleID, in.GroupID, w, a, endpoint); err != nil {
				return err
			}
		}
		return nil
	})
}

// stageWeight creates or updates the binding with unreleasedWeight w.
func (m *Manager) stageWeight(tx *store.Tx, ruleID, groupID int64, w *int, a *Audit, endpoint string) error {
	b := &store.RouteRuleGroup{RouteRuleID: ruleID, GroupID: groupID}
	cur, err := store.Find(tx, b)
	if err != nil {
		return err
	}
	if cur != nil {
		b = cur
	}
	b.UnreleasedWeight = w
	if _, err := store.Put(tx, b); err != nil {
		return err
	}
	return m.logBinding(tx, b, endpoint, a, w)
}

// ReleaseRouteRuleGroups publishes the staged weight of each listed
// (routeRuleId, groupId) binding; unknown bindings are skipped.
func (m *Manager) ReleaseRouteRuleGroups(ctx context.Context, list []store.RouteRuleGroup, a *Audit) error {
	for i := range list {
		if err := validBinding(&list[i]); err != nil {
			return err
		}
	}
	return m.update(ctx, func(tx *store.Tx) error {
		for _, in := range list {
			cur, err := store.Find(tx, &store.RouteRuleGroup{RouteRuleID: in.RouteRuleID, GroupID: in.GroupID})
			if err != nil {
				return err
			}
			if cur == nil {
				continue
			}
			cur.Weight = cur.UnreleasedWeight
			if _, err := store.Put(tx, cur); err != nil {
				return err
			}
			if err := m.logBinding(tx, cur, "release-route-rule-groups", a, cur.Weight); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteRouteRuleGroups deletes bindings by id.
func (m *Manager) DeleteRouteRuleGroups(ctx context.Context, ids []int64, a *Audit) error {
	return deleteByID[store.RouteRuleGroup](m, ctx, ids, func(tx *store.Tx, b *store.RouteRuleGroup) error {
		return m.logBinding(tx, b, "delete-route-rule-groups", a, b.UnreleasedWeight)
	})
}

// GetRouteRuleGroups returns the bindings matching the filter's non-zero
// ids.
func (m *Manager) GetRouteRuleGroups(f store.RouteRuleGroup) []store.RouteRuleGroup {
	st := m.state.Load()
	var out []store.RouteRuleGroup
	for _, id := range sortedIDs(st.bindings) {
		b := st.bindings[id]
		if (f.RouteRuleGroupID == 0 || f.RouteRuleGroupID == b.RouteRuleGroupID) && (f.RouteRuleID == 0 || f.RouteRuleID == b.RouteRuleID) &&
			(f.GroupID == 0 || f.GroupID == b.GroupID) {
			out = append(out, *b)
		}
	}
	return out
}

// AllRouteRuleGroups returns every binding.
func (m *Manager) AllRouteRuleGroups() []store.RouteRuleGroup {
	return m.GetRouteRuleGroups(store.RouteRuleGroup{})
}

// CreateRouteRule creates the rule and the groups that are missing (existing
// ones are kept as they are) and binds each group with unreleasedWeight =
// its weight. Every group must belong to the rule's service.
func (m *Manager) CreateRouteRule(ctx context.Context, req *CreateRouteRuleRequest) error {
	if err := validRule(&req.RouteRule); err != nil {
		return err
	}
	for i := range req.Groups {
		g := &req.Groups[i].Group
		if err := validGroup(g); err != nil {
			return err
		}
		if !core.EqualFoldKey(trim(g.ServiceID), trim(req.RouteRule.ServiceID)) {
			return badRequest("group %s/%s has serviceId %s; want the rule's %s", g.ZoneID, g.Name, g.ServiceID, req.RouteRule.ServiceID)
		}
	}
	return m.update(ctx, func(tx *store.Tx) error {
		rule, err := m.putRule(tx, req.RouteRule, &req.Audit, "create-route-rule", false)
		if err != nil {
			return err
		}
		for _, gw := range req.Groups {
			g, err := m.ensureGroup(tx, trimGroup(gw.Group), &req.Audit, "create-route-rule")
			if err != nil {
				return err
			}
			if err := m.stageWeight(tx, rule.RouteRuleID, g.GroupID, gw.Weight, &req.Audit, "create-route-rule"); err != nil {
				return err
			}
		}
		return nil
	})
}

// ensureGroup returns the group with g's natural key, creating g if absent.
func (m *Manager) ensureGroup(tx *store.Tx, g *store.Group, a *Audit, endpoint string) (*store.Group, error) {
	cur, err := store.Find(tx, g)
	if err != nil || cur != nil {
		return cur, err
	}
	if _, err := store.Put(tx, g); err != nil {
		return nil, err
	}
	return g, m.logGroup(tx, g, endpoint, a, false)
}

// Canary defaults (contract section 9.4).
const (
	canaryZone     = "canary"
	canaryStrategy = "weighted-round-robin"
	canaryWeight   = 5
)

// UpdateCanaryIPs creates what is missing of the service's canary rule, the
// app's canary group and their binding, then makes the group's members
// exactly the canary IPs.
func (m *Manager) UpdateCanaryIPs(ctx context.Context, req *CanaryRequest) error {
	if err := required("serviceId", req.ServiceID, "appId", req.AppID); err != nil {
		return err
	}
	want := map[string]string{}
	for _, ip := range req.CanaryIPs {
		if !blank(ip) {
			want[core.FoldKey(trim(ip))] = trim(ip)
		}
	}
	const endpoint = "update-canary-ips"
	return m.update(ctx, func(tx *store.Tx) error {
		rule, err := m.putRule(tx, store.RouteRule{ServiceID: req.ServiceID, Name: canaryRuleName, Status: store.StatusActive,
			Strategy: canaryStrategy}, &req.Audit, endpoint, false)
		if err != nil {
			return err
		}
		g, err := m.ensureGroup(tx, &store.Group{ServiceID: trim(req.ServiceID), RegionID: m.cfg.Region, ZoneID: canaryZone,
			Name: trim(req.AppID), AppID: trim(req.AppID), Status: store.StatusActive}, &req.Audit, endpoint)
		if err != nil {
			return err
		}
		if b, err := store.Find(tx, &store.RouteRuleGroup{RouteRuleID: rule.RouteRuleID, GroupID: g.GroupID}); err != nil {
			return err
		} else if b == nil {
			w := canaryWeight
			if err := m.stageWeight(tx, rule.RouteRuleID, g.GroupID, &w, &req.Audit, endpoint); err != nil {
				return err
			}
		}
		return m.setMembers(tx, g.GroupID, want, &req.Audit, endpoint)
	})
}

// setMembers makes the group's members exactly want (folded -> as given).
func (m *Manager) setMembers(tx *store.Tx, groupID int64, want map[string]string, a *Audit, endpoint string) error {
	all, err := store.List[store.GroupInstance](tx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, e := range all {
		if e.GroupID != groupID {
			continue
		}
		k := core.FoldKey(e.InstanceID)
		if _, ok := want[k]; ok {
			have[k] = true
			continue
		}
		if _, err := store.Delete(tx, store.KindGroupInstance, e.ID); err != nil {
			return err
		}
		if err := m.logMember(tx, e, endpoint, a); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if !have[k] {
			if err := m.addMember(tx, &store.GroupInstance{GroupID: groupID, InstanceID: want[k]}, a, endpoint); err != nil {
				return err
			}
		}
	}
	return nil
}

// ServiceGroups returns the groups of a service as service.json lists
// them: key, members and tags (as metadata), by group id.
func (m *Manager) ServiceGroups(serviceID string) []ServiceGroup {
	st := m.state.Load()
	out := []ServiceGroup{}
	for _, id := range sortedIDs(st.groups) {
		g := st.groups[id]
		if !core.EqualFoldKey(trim(g.ServiceID), trim(serviceID)) {
			continue
		}
		sg := ServiceGroup{GroupKey: g.GroupKey(), InstanceIDs: []string{}}
		for _, mid := range sortedIDs(st.members) {
			if e := st.members[mid]; e.GroupID == g.GroupID {
				sg.InstanceIDs = append(sg.InstanceIDs, e.InstanceID)
			}
		}
		for _, t := range st.tags {
			if t.GroupID == g.GroupID {
				if sg.Metadata == nil {
					sg.Metadata = map[string]string{}
				}
				sg.Metadata[t.Tag] = t.Value
			}
		}
		out = append(out, sg)
	}
	return out
}

// deleteByID deletes the live entities of type P with the given ids,
// calling logf for each one deleted.
func deleteByID[T any, P interface {
	*T
	store.Entity
}](m *Manager, ctx context.Context, ids []int64, logf func(*store.Tx, P) error) error {
	return m.update(ctx, func(tx *store.Tx) error {
		for _, id := range ids {
			cur, err := store.Get[T, P](tx, id)
			if err != nil {
				return err
			}
			if cur == nil {
				continue
			}
			if _, err := store.Delete(tx, cur.Kind(), id); err != nil {
				return err
			}
			if err := logf(tx, cur); err != nil {
				return err
			}
		}
		return nil
	})
}
