package client

import (
	"math/rand/v2"
	"strings"

	"github.com/artemis-go/artemis/core"
)

// Route rules (contract section 11) as discovery attaches them to a Service,
// and Picker, which applies them to choose the instance a call goes to.

// RouteRule is an active route rule of a service: its groups and the
// strategy that spreads traffic over them.
type RouteRule struct {
	// RouteID is the rule's name; the canary rule is CanaryRouteID.
	RouteID string `json:"routeId"`
	// Strategy is StrategyWeightedRoundRobin or StrategyCloseByVisit.
	Strategy string         `json:"strategy"`
	Groups   []ServiceGroup `json:"groups"`
}

// ServiceGroup is a group bound to a route rule.
type ServiceGroup struct {
	// GroupKey is the lower-case serviceId/regionId/zoneId/name.
	GroupKey string `json:"groupKey"`
	// Weight is the group's released weight (0..10000; the server shows 5
	// for a binding without one).
	Weight int `json:"weight"`
	// InstanceIDs are the group's members: instance ids, or IPs for the
	// canary rule's groups.
	InstanceIDs []string `json:"instanceIds"`
	// Instances are, in the canary rule only, the visible instances the
	// server resolved for the group; other rules leave them out.
	Instances []Instance        `json:"instances,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// CanaryRouteID is the name of the route rule canary IPs create.
const CanaryRouteID = "canary-route-rule"

// Route strategies.
const (
	StrategyWeightedRoundRobin = "weighted-round-robin"
	StrategyCloseByVisit       = "close-by-visit"
)

// Rand is the source of randomness Picker draws from; *math/rand/v2.Rand
// satisfies it. IntN returns a number in [0, n).
type Rand interface{ IntN(n int) int }

// Picker chooses one instance of a service for a caller, applying the
// service's route rules:
//
//  1. Canary: when IP is a member of a group of the canary rule, one of
//     that group's instances (the ones the server resolved, still in the
//     service), chosen at random. A caller in several canary groups picks
//     among them by weight.
//  2. Route rule: otherwise the rule named RouteID, or, when RouteID is
//     blank, the service's first rule other than the canary rule. A group
//     of it is chosen at random in proportion to its weight among the
//     groups that have an instance (groups of weight 0 get nothing), then
//     one of its instances at random. A group's instances are the
//     service's instances and logical instances whose instanceId is one of
//     its InstanceIDs or whose groupId makes the group key a prefix of
//     their serviceId/regionId/zoneId/groupId/instanceId (as the server
//     matches group pull-outs). With StrategyCloseByVisit, groups in Zone
//     come first: the others are used only when none of those has an
//     instance.
//  3. Fallback: when no rule applies or no group of it has an instance,
//     any instance of the service.
//
// Only instances whose status is "up" (or blank) are chosen, among the
// service's instances and logicInstances; management's pull-outs are
// already gone from them. A caller outside the canary groups may still be
// sent to a canary instance through the fallback or a rule that includes
// it.
//
// Pick reads the Service and does not keep or modify it; it costs
// O(instances × groups of the rule) and allocates only the candidate list.
// A Picker with a nil Rand is safe for concurrent use; with a Rand, it is
// as safe as the Rand is.
type Picker struct {
	// IP is the caller's IP, looked up in the canary groups.
	IP string
	// Zone is the caller's zone, preferred by close-by-visit rules.
	Zone string
	// RouteID names the rule to follow; blank: the first non-canary rule.
	RouteID string
	// Rand is the random source; nil: math/rand/v2's global one.
	Rand Rand
}

// Pick returns the instance a call from the caller should go to, or
// ErrNoInstance when the service has no instance that is up.
func (p *Picker) Pick(svc Service) (Instance, error) {
	pool := p.candidates(svc)
	if len(pool) == 0 {
		return Instance{}, ErrNoInstance
	}
	if insts := p.canary(svc, pool); len(insts) > 0 {
		return insts[p.intN(len(insts))], nil
	}
	if rule := p.rule(svc); rule != nil {
		if insts := p.routed(rule, pool); len(insts) > 0 {
			return insts[p.intN(len(insts))], nil
		}
	}
	return pool[p.intN(len(pool))], nil
}

// Pick chooses an instance of svc for a caller at callerIP with the
// default Picker (see Picker).
func Pick(svc Service, callerIP string) (Instance, error) {
	p := Picker{IP: callerIP}
	return p.Pick(svc)
}

func (p *Picker) intN(n int) int {
	if n <= 1 {
		return 0
	}
	if p.Rand == nil {
		return rand.IntN(n)
	}
	i := p.Rand.IntN(n)
	if i < 0 || i >= n {
		panic("BUG: client.Rand.IntN returned a number out of [0, n)")
	}
	return i
}

// candidates lists the instances and logical instances that are up.
func (p *Picker) candidates(svc Service) []Instance {
	out := make([]Instance, 0, len(svc.Instances)+len(svc.LogicInstances))
	for _, list := range [][]Instance{svc.Instances, svc.LogicInstances} {
		for _, i := range list {
			if i.Status == "" || i.Status == core.StatusUp {
				out = append(out, i)
			}
		}
	}
	return out
}

// canary returns the instances of the canary groups the caller is in.
func (p *Picker) canary(svc Service, pool []Instance) []Instance {
	if strings.TrimSpace(p.IP) == "" {
		return nil
	}
	var rule *RouteRule
	for i := range svc.RouteRules {
		if sameKey(svc.RouteRules[i].RouteID, CanaryRouteID) {
			rule = &svc.RouteRules[i]
			break
		}
	}
	if rule == nil {
		return nil
	}
	var weights []int
	var sets [][]Instance
	for _, g := range rule.Groups {
		if !containsKey(g.InstanceIDs, p.IP) {
			continue
		}
		if in := groupInstances(rule, g, pool); len(in) > 0 {
			weights, sets = append(weights, max(g.Weight, 0)), append(sets, in)
		}
	}
	if i := p.weighted(weights); i >= 0 {
		return sets[i]
	}
	if len(sets) > 0 { // every canary group of the caller weighs 0
		return sets[0]
	}
	return nil
}

// rule returns the rule the caller follows, nil if none.
func (p *Picker) rule(svc Service) *RouteRule {
	for i := range svc.RouteRules {
		r := &svc.RouteRules[i]
		if p.RouteID != "" {
			if sameKey(r.RouteID, p.RouteID) {
				return r
			}
			continue
		}
		if !sameKey(r.RouteID, CanaryRouteID) {
			return r
		}
	}
	return nil
}

// routed returns the instances of the group of rule chosen by weight.
func (p *Picker) routed(rule *RouteRule, pool []Instance) []Instance {
	sets := make([][]Instance, len(rule.Groups))
	for gi, g := range rule.Groups {
		sets[gi] = groupInstances(rule, g, pool)
	}
	if rule.Strategy == StrategyCloseByVisit && p.Zone != "" {
		if insts := p.choose(rule, sets, func(g ServiceGroup) bool { return sameKey(groupZone(g.GroupKey), p.Zone) }); insts != nil {
			return insts
		}
	}
	return p.choose(rule, sets, func(ServiceGroup) bool { return true })
}

// choose picks by weight among the groups that keep says and that have
// instances; nil when none has weight.
func (p *Picker) choose(rule *RouteRule, sets [][]Instance, keep func(ServiceGroup) bool) []Instance {
	weights := make([]int, len(rule.Groups))
	for gi, g := range rule.Groups {
		if keep(g) && len(sets[gi]) > 0 {
			weights[gi] = max(g.Weight, 0)
		}
	}
	if i := p.weighted(weights); i >= 0 {
		return sets[i]
	}
	return nil
}

// weighted returns an index drawn in proportion to weights, -1 when they
// sum to 0.
func (p *Picker) weighted(weights []int) int {
	total, last, n := 0, -1, 0
	for i, w := range weights {
		if w > 0 {
			total, last, n = total+w, i, n+1
		}
	}
	if n <= 1 {
		return last // no draw for one group (or none)
	}
	r := p.intN(total)
	for i, w := range weights {
		if w <= 0 {
			continue
		}
		if r < w {
			return i
		}
		r -= w
	}
	panic("BUG: weighted choice ran past the total weight")
}

// groupInstances returns the instances of pool that belong to group g of
// rule: for the canary rule, those the server resolved (still in pool: a
// pushed delete removes an instance from the service but not from the
// resolved list), else its members.
func groupInstances(rule *RouteRule, g ServiceGroup, pool []Instance) []Instance {
	if !sameKey(rule.RouteID, CanaryRouteID) {
		return members(g, pool)
	}
	var out []Instance
	for _, ri := range g.Instances {
		if cur, ok := findInstance(pool, ri.InstanceID); ok {
			out = append(out, cur)
		}
	}
	return out
}

// members returns the instances of pool whose instanceId is one of g's
// members or whose group path g's key prefixes.
func members(g ServiceGroup, pool []Instance) []Instance {
	var out []Instance
	prefix := core.FoldKey(g.GroupKey) + "/"
	for _, i := range pool {
		if containsKey(g.InstanceIDs, i.InstanceID) || (g.GroupKey != "" && strings.HasPrefix(instanceGroupPath(i), prefix)) {
			out = append(out, i)
		}
	}
	return out
}

// instanceGroupPath is serviceId/regionId/zoneId/groupId/instanceId folded,
// with blank groupId read as "default" (contract section 11).
func instanceGroupPath(i Instance) string {
	group := i.GroupID
	if strings.TrimSpace(group) == "" {
		group = "default"
	}
	return core.FoldKey(i.ServiceID + "/" + i.RegionID + "/" + i.ZoneID + "/" + group + "/" + i.InstanceID)
}

// groupZone returns the zoneId part of a group key.
func groupZone(key string) string {
	parts := strings.SplitN(key, "/", 4)
	if len(parts) < 3 {
		return ""
	}
	return parts[2]
}

func containsKey(list []string, k string) bool {
	k = strings.TrimSpace(k)
	for _, s := range list {
		if sameKey(strings.TrimSpace(s), k) {
			return true
		}
	}
	return false
}

func findInstance(pool []Instance, id string) (Instance, bool) {
	for _, i := range pool {
		if sameKey(i.InstanceID, id) {
			return i, true
		}
	}
	return Instance{}, false
}
