package management

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/store"
)

// Operations (pull-out and the like) on instances, servers, zones and
// groups: contract sections 9.1, 9.2 and 9.3. Adding an operation that is
// there, or removing one that is not, succeeds; each call writes a log row.

// OperateInstance adds (OperationComplete false) or removes (true) an
// operation on an instance.
func (m *Manager) OperateInstance(ctx context.Context, req *OperateInstanceRequest) error {
	k := req.InstanceKey
	if err := required("regionId", k.RegionID, "serviceId", k.ServiceID, "instanceId", k.InstanceID,
		"operation", req.Operation, "operatorId", req.OperatorID); err != nil {
		return err
	}
	op := &store.InstanceOperation{
		InstanceKey: store.InstanceKey{RegionID: trim(k.RegionID), ServiceID: trim(k.ServiceID), InstanceID: trim(k.InstanceID)},
		Operation:   trim(req.Operation), OperatorID: trim(req.OperatorID), Token: m.token(req.Token),
	}
	a := Audit{OperatorID: op.OperatorID, Token: req.Token, Extensions: req.Extensions}
	return m.update(ctx, func(tx *store.Tx) error {
		if err := operate(tx, op, req.OperationComplete); err != nil {
			return err
		}
		return m.log(tx, store.KindInstanceOperation, op.Operation, &a, req.OperationComplete, op.InstanceKey.ServiceID, map[string]any{
			"regionId": op.InstanceKey.RegionID, "serviceId": op.InstanceKey.ServiceID, "instanceId": op.InstanceKey.InstanceID,
			"complete": req.OperationComplete, "extensions": a.extensions(),
		})
	})
}

// OperateServer adds or removes an operation on a server (all instances on
// an IP).
func (m *Manager) OperateServer(ctx context.Context, req *OperateServerRequest) error {
	k := req.ServerKey
	if err := required("regionId", k.RegionID, "serverId", k.ServerID, "operation", req.Operation, "operatorId", req.OperatorID); err != nil {
		return err
	}
	op := &store.ServerOperation{
		ServerKey: store.ServerKey{RegionID: trim(k.RegionID), ServerID: trim(k.ServerID)},
		Operation: trim(req.Operation), OperatorID: trim(req.OperatorID), Token: m.token(req.Token),
	}
	a := Audit{OperatorID: op.OperatorID, Token: req.Token, Extensions: req.Extensions}
	return m.update(ctx, func(tx *store.Tx) error {
		if err := operate(tx, op, req.OperationComplete); err != nil {
			return err
		}
		return m.log(tx, store.KindServerOperation, op.Operation, &a, req.OperationComplete, "", map[string]any{
			"regionId": op.ServerKey.RegionID, "serverId": op.ServerKey.ServerID,
			"complete": req.OperationComplete, "extensions": a.extensions(),
		})
	})
}

// operate puts op, or deletes the row with its natural key when complete.
func operate[T any, P interface {
	*T
	store.Entity
}](tx *store.Tx, op P, complete bool) error {
	if !complete {
		_, err := store.Put(tx, op)
		return err
	}
	cur, err := store.Find(tx, op)
	if err != nil || cur == nil {
		return err
	}
	_, err = store.Delete(tx, cur.Kind(), cur.EntityID())
	return err
}

// InstanceOperations returns the operations on an instance, nil if none.
func (m *Manager) InstanceOperations(k store.InstanceKey) ([]string, error) {
	if err := required("regionId", k.RegionID, "serviceId", k.ServiceID, "instanceId", k.InstanceID); err != nil {
		return nil, err
	}
	want := fkey(k.RegionID, k.ServiceID, k.InstanceID)
	var ops []string
	for _, op := range m.state.Load().instanceOps {
		if fkey(op.InstanceKey.RegionID, op.InstanceKey.ServiceID, op.InstanceKey.InstanceID) == want {
			ops = append(ops, op.Operation)
		}
	}
	slices.Sort(ops)
	return ops, nil
}

// AllInstanceOperations lists the operations on every instance of a region
// (every region when regionID is blank), by instance key.
func (m *Manager) AllInstanceOperations(regionID string) []InstanceOperations {
	groups := map[string]*InstanceOperations{}
	for _, op := range m.state.Load().instanceOps {
		k := op.InstanceKey
		if !matches(regionID, k.RegionID) {
			continue
		}
		fk := fkey(k.RegionID, k.ServiceID, k.InstanceID)
		if groups[fk] == nil {
			groups[fk] = &InstanceOperations{InstanceKey: k}
		}
		groups[fk].Operations = append(groups[fk].Operations, op.Operation)
	}
	return sortedOps(groups, func(o *InstanceOperations) []string { return o.Operations })
}

// ServerOperations returns the operations on a server, nil if none.
func (m *Manager) ServerOperations(k store.ServerKey) ([]string, error) {
	if err := required("regionId", k.RegionID, "serverId", k.ServerID); err != nil {
		return nil, err
	}
	want := fkey(k.RegionID, k.ServerID)
	var ops []string
	for _, op := range m.state.Load().serverOps {
		if fkey(op.ServerKey.RegionID, op.ServerKey.ServerID) == want {
			ops = append(ops, op.Operation)
		}
	}
	slices.Sort(ops)
	return ops, nil
}

// AllServerOperations lists the operations on every server of a region
// (every region when regionID is blank).
func (m *Manager) AllServerOperations(regionID string) []ServerOperations {
	groups := map[string]*ServerOperations{}
	for _, op := range m.state.Load().serverOps {
		k := op.ServerKey
		if !matches(regionID, k.RegionID) {
			continue
		}
		fk := fkey(k.RegionID, k.ServerID)
		if groups[fk] == nil {
			groups[fk] = &ServerOperations{ServerKey: k}
		}
		groups[fk].Operations = append(groups[fk].Operations, op.Operation)
	}
	return sortedOps(groups, func(o *ServerOperations) []string { return o.Operations })
}

// InstanceDown reports whether management takes inst out of discovery, by
// any cause of section 11 (instance, server, zone or group operation).
func (m *Manager) InstanceDown(inst *core.Instance) bool {
	st := m.state.Load()
	p := st.plans[core.FoldKey(trim(inst.ServiceID))]
	return st.downFields(p, inst.RegionID, inst.ZoneID, inst.GroupID, inst.InstanceID, inst.IP)
}

// ServerDown reports whether a server has an operation. A blank regionId
// matches every region.
func (m *Manager) ServerDown(k store.ServerKey) (bool, error) {
	if err := required("serverId", k.ServerID); err != nil {
		return false, err
	}
	for _, op := range m.state.Load().serverOps {
		if matches(k.RegionID, op.ServerKey.RegionID) && core.EqualFoldKey(trim(k.ServerID), op.ServerKey.ServerID) {
			return true, nil
		}
	}
	return false, nil
}

// OperateZoneOperations adds or removes each listed (zone, operation);
// blank operations are skipped.
func (m *Manager) OperateZoneOperations(ctx context.Context, req *OperateZonesRequest) error {
	var ops []*store.ZoneOperation
	for _, zo := range req.ZoneOperationsList {
		k := zo.ZoneKey
		if err := required("regionId", k.RegionID, "serviceId", k.ServiceID, "zoneId", k.ZoneID); err != nil {
			return err
		}
		for _, name := range zo.Operations {
			if blank(name) {
				continue
			}
			ops = append(ops, &store.ZoneOperation{
				ZoneKey:   store.ZoneKey{RegionID: trim(k.RegionID), ServiceID: trim(k.ServiceID), ZoneID: trim(k.ZoneID)},
				Operation: trim(name), OperatorID: trim(req.OperatorID), Token: m.token(req.Token),
			})
		}
	}
	return m.update(ctx, func(tx *store.Tx) error {
		for _, op := range ops {
			if err := operate(tx, op, req.OperationComplete); err != nil {
				return err
			}
			k := op.ZoneKey
			if err := m.log(tx, store.KindZoneOperation, op.Operation, &req.Audit, req.OperationComplete, k.ServiceID, map[string]any{
				"regionId": k.RegionID, "serviceId": k.ServiceID, "zoneId": k.ZoneID, "complete": req.OperationComplete,
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// AllZoneOperations lists the operations on every zone.
func (m *Manager) AllZoneOperations() []ZoneOperations { return m.ZoneOperationsList(store.ZoneKey{}) }

// ZoneOperationsList lists the zone operations whose key matches the given
// fields (blank fields match all).
func (m *Manager) ZoneOperationsList(f store.ZoneKey) []ZoneOperations {
	groups := map[string]*ZoneOperations{}
	for _, op := range m.state.Load().zoneOps {
		k := op.ZoneKey
		if !matches(f.RegionID, k.RegionID) || !matches(f.ServiceID, k.ServiceID) || !matches(f.ZoneID, k.ZoneID) {
			continue
		}
		fk := fkey(k.RegionID, k.ServiceID, k.ZoneID)
		if groups[fk] == nil {
			groups[fk] = &ZoneOperations{ZoneKey: k}
		}
		groups[fk].Operations = append(groups[fk].Operations, op.Operation)
	}
	return sortedOps(groups, func(o *ZoneOperations) []string { return o.Operations })
}

// ZoneOperations returns the operations on a zone, nil if none.
func (m *Manager) ZoneOperations(k store.ZoneKey) ([]string, error) {
	if err := required("regionId", k.RegionID, "serviceId", k.ServiceID, "zoneId", k.ZoneID); err != nil {
		return nil, err
	}
	list := m.ZoneOperationsList(k)
	if len(list) == 0 {
		return nil, nil
	}
	return list[0].Operations, nil
}

// IsZoneDown reports whether a zone has an operation.
func (m *Manager) IsZoneDown(k store.ZoneKey) (bool, error) {
	ops, err := m.ZoneOperations(k)
	return len(ops) > 0, err
}

// OperateGroupOperations adds or removes each listed (group, operation);
// blank operations are skipped.
func (m *Manager) OperateGroupOperations(ctx context.Context, req *OperateGroupsRequest) error {
	var ops []*store.GroupOperation
	for _, gop := range req.GroupOperationsList {
		if gop.GroupID == 0 {
			return badRequest("groupId is null or empty")
		}
		for _, name := range gop.Operations {
			if !blank(name) {
				ops = append(ops, &store.GroupOperation{GroupID: gop.GroupID, Operation: trim(name), OperatorID: trim(req.OperatorID), Token: m.token(req.Token)})
			}
		}
	}
	return m.update(ctx, func(tx *store.Tx) error {
		for _, op := range ops {
			if err := m.operateGroup(tx, op, req.OperationComplete, &req.Audit); err != nil {
				return err
			}
		}
		return nil
	})
}

// OperateGroupOperation finds the group by its natural key, creating it if
// absent, and adds or removes one operation on it.
func (m *Manager) OperateGroupOperation(ctx context.Context, req *OperateGroupRequest) error {
	if err := required("serviceId", req.ServiceID, "regionId", req.RegionID, "zoneId", req.ZoneID, "name", req.Name,
		"operation", req.Operation); err != nil {
		return err
	}
	g := &store.Group{ServiceID: trim(req.ServiceID), RegionID: trim(req.RegionID), ZoneID: trim(req.ZoneID), Name: trim(req.Name),
		AppID: trim(req.AppID), Status: trim(req.Status)}
	if g.Status == "" {
		g.Status = store.StatusActive
	}
	return m.update(ctx, func(tx *store.Tx) error {
		cur, err := store.Find(tx, g)
		if err != nil {
			return err
		}
		if cur == nil {
			if _, err := store.Put(tx, g); err != nil {
				return err
			}
			if err := m.logGroup(tx, g, "operate-group-operation", &req.Audit, false); err != nil {
				return err
			}
			cur = g
		}
		op := &store.GroupOperation{GroupID: cur.GroupID, Operation: trim(req.Operation), OperatorID: trim(req.OperatorID), Token: m.token(req.Token)}
		return m.operateGroup(tx, op, req.OperationComplete, &req.Audit)
	})
}

func (m *Manager) operateGroup(tx *store.Tx, op *store.GroupOperation, complete bool, a *Audit) error {
	if err := operate(tx, op, complete); err != nil {
		return err
	}
	service := ""
	if g, _ := store.Get[store.Group](tx, op.GroupID); g != nil {
		service = g.ServiceID
	}
	return m.log(tx, store.KindGroupOperation, op.Operation, a, complete, service, map[string]any{
		"groupId": op.GroupID, "complete": complete, "extensions": a.extensions(), "reason": a.Reason,
	})
}

// GroupOperations returns the operations on a group, nil if none.
func (m *Manager) GroupOperations(groupID int64) (*GroupOperations, error) {
	if groupID == 0 {
		return nil, badRequest("groupId is null or empty")
	}
	var ops []string
	for _, op := range m.state.Load().groupOps {
		if op.GroupID == groupID {
			ops = append(ops, op.Operation)
		}
	}
	if ops == nil {
		return nil, nil
	}
	slices.Sort(ops)
	return &GroupOperations{GroupID: groupID, Operations: ops}, nil
}

// AllGroupOperations lists the operations on every group.
func (m *Manager) AllGroupOperations() []GroupOperations {
	groups := map[string]*GroupOperations{}
	for _, op := range m.state.Load().groupOps {
		k := itoa(op.GroupID)
		if groups[k] == nil {
			groups[k] = &GroupOperations{GroupID: op.GroupID}
		}
		groups[k].Operations = append(groups[k].Operations, op.Operation)
	}
	out := sortedOps(groups, func(o *GroupOperations) []string { return o.Operations })
	slices.SortFunc(out, func(a, b GroupOperations) int { return cmp.Compare(a.GroupID, b.GroupID) })
	return out
}

// sortedOps returns the values of groups sorted by key, operations sorted.
func sortedOps[T any](groups map[string]*T, ops func(*T) []string) []T {
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		slices.Sort(ops(groups[k]))
		out = append(out, *groups[k])
	}
	return out
}

// downFields is down for an instance given by its fields.
func (st *state) downFields(p *plan, region, zone, group, instanceID, ip string) bool {
	if _, ok := st.serverDown[fkey(region, ip)]; ok {
		return true
	}
	if p == nil {
		return false
	}
	if _, ok := p.instanceDown[fkey(region, instanceID)]; ok {
		return true
	}
	if _, ok := p.zoneDown[fkey(region, zone)]; ok {
		return true
	}
	_, ok := p.groupDown[fkey(region, zone, groupName(group))]
	return ok
}

// matches reports whether a filter value (blank = any) matches v.
func matches(filter, v string) bool {
	return blank(filter) || core.EqualFoldKey(trim(filter), trim(v))
}

func trim(s string) string { return strings.TrimSpace(s) }
