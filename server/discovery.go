package server

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/artemis-go/artemis/core"
)

// Discovery endpoints (contract section 4). service.json, and lookup.json
// naming one service, answer a registered service with its answer cached
// for the current snapshot (answers.go), set as the response body without
// copying; other answers, and answers the cache does not take, are written
// from the snapshots' pre-encoded JSON into the pooled response buffer.

const okStatusJSON = `{"status":"success","errorCode":"success","message":""}`

var (
	serviceHead  = []byte(`{"responseStatus":` + okStatusJSON + `,"service":`)
	servicesHead = []byte(`{"responseStatus":` + okStatusJSON + `,"services":[`)
	deltaHead    = []byte(`{"responseStatus":` + okStatusJSON + `,"delta":{`)
)

// appendService appends the Service object of id: its snapshot, or an empty
// service when none of its instances is registered.
func (s *Server) appendService(dst []byte, id string) []byte {
	return s.appendServiceOf(dst, id, s.reg.Service(id))
}

// appendServiceOf is appendService given id's snapshot (nil: none).
func (s *Server) appendServiceOf(dst []byte, id string, snap *core.Snapshot) []byte {
	if snap != nil {
		return snap.AppendJSON(slices.Grow(dst, snap.Size()+64))
	}
	if s.mgmt != nil { // no instance registered: logical instances and route rules may still attach
		return s.mgmt.ServiceView(id, nil).AppendJSON(dst)
	}
	return core.AppendEmptyService(dst, id)
}

func (s *Server) service(_ context.Context, c *app.RequestContext) {
	if s.refuseUnlessServing(c) {
		return
	}
	var id string
	if c.IsGet() {
		id = b2s(queryValue(c, "serviceId"))
	} else {
		var req serviceRequest
		release, ok := s.decode(c, &req, false)
		if !ok {
			return
		}
		defer release()
		if req.DiscoveryConfig != nil {
			id = req.DiscoveryConfig.ServiceID
		}
	}
	if strings.TrimSpace(id) == "" {
		writeJSON(c, 200, statusOnly{failStatus(codeBadRequest, "serviceId is blank")})
		return
	}
	snap := s.reg.Service(id)
	if snap != nil {
		s.writeAnswer(c, answerService, snap)
		return
	}
	buf := bodyBuffer(c)
	*buf = append(*buf, serviceHead...)
	*buf = s.appendServiceOf(*buf, id, nil)
	*buf = append(*buf, '}')
}

func (s *Server) lookup(_ context.Context, c *app.RequestContext) {
	if s.refuseUnlessServing(c) {
		return
	}
	var req lookupRequest
	release, ok := s.decode(c, &req, false)
	if !ok {
		return
	}
	defer release()
	if n := len(req.DiscoveryConfigs); n > s.cfg.MaxLookupServices {
		writeError(c, &apiError{code: 413, msg: fmt.Sprintf("%d discoveryConfigs in one lookup; at most %d", n, s.cfg.MaxLookupServices)})
		return
	}
	ids := uniqueServiceIDs(req.DiscoveryConfigs)
	if len(ids) == 1 {
		if snap := s.reg.Service(ids[0]); snap != nil {
			s.writeAnswer(c, answerLookup, snap)
			return
		}
	}
	buf := bodyBuffer(c)
	*buf = append(*buf, servicesHead...)
	for i, id := range ids {
		if i > 0 {
			*buf = append(*buf, ',')
		}
		*buf = s.appendService(*buf, id)
	}
	*buf = append(*buf, ']', '}')
}

// writeAnswer answers with snap wrapped as kind: the cached body, set
// without copying, or a copy into the response buffer when the cache does
// not take it.
func (s *Server) writeAnswer(c *app.RequestContext, kind int, snap *core.Snapshot) {
	if body := s.answers.answer(kind, snap); body != nil {
		c.Response.Header.SetContentType(contentTypeJSON)
		c.Response.SetBodyRaw(body)
		return
	}
	buf := bodyBuffer(c)
	*buf = appendAnswer(slices.Grow(*buf, answerSize(kind, snap)), kind, snap)
}

// uniqueServiceIDs lists the service ids of a lookup in the order of their
// first appearance, each once (compared as the registry compares them): a
// request may not multiply its answer by naming a service many times. A
// null config or blank id stays, once, and is answered as an empty service.
func uniqueServiceIDs(dcs []*discoveryConfig) []string {
	ids := make([]string, len(dcs))
	for i, dc := range dcs {
		if dc != nil {
			ids[i] = dc.ServiceID
		}
	}
	return uniqueKeys(ids)
}

// uniqueKeys removes from ids, in place, every id equal under the
// registry's folding to an earlier one.
func uniqueKeys(ids []string) []string {
	out := ids[:0]
	var seen map[string]struct{} // folded ids, for long lists only
	if len(ids) > 16 {
		seen = make(map[string]struct{}, len(ids))
	}
	for _, id := range ids {
		if seen != nil {
			key := core.FoldKey(id)
			if _, dup := seen[key]; dup {
				continue
			}
			seen[key] = struct{}{}
		} else if slices.ContainsFunc(out, func(prev string) bool { return core.EqualFoldKey(prev, id) }) {
			continue
		}
		out = append(out, id)
	}
	return out
}

func (s *Server) services(_ context.Context, c *app.RequestContext) {
	if s.refuseUnlessServing(c) {
		return
	}
	if !c.IsGet() {
		var req servicesRequest
		release, ok := s.decode(c, &req, true)
		if !ok {
			return
		}
		release()
	}
	snaps, version := s.reg.Services()
	buf := bodyBuffer(c)
	*buf = append(*buf, servicesHead...)
	size := 0
	for _, snap := range snaps {
		size += snap.Size() + 1
	}
	*buf = slices.Grow(*buf, size+64)
	for i, snap := range snaps {
		if i > 0 {
			*buf = append(*buf, ',')
		}
		*buf = snap.AppendJSON(*buf)
	}
	*buf = append(*buf, `],"version":`...)
	*buf = strconv.AppendInt(*buf, version, 10)
	*buf = append(*buf, '}')
}

func (s *Server) servicesDelta(_ context.Context, c *app.RequestContext) {
	if s.refuseUnlessServing(c) {
		return
	}
	var req deltaRequest
	if c.IsGet() {
		v, err := strconv.ParseInt(string(queryValue(c, "version")), 10, 64)
		if err != nil {
			writeJSON(c, 400, statusOnly{failStatus(codeBadRequest, "version is not an integer")})
			return
		}
		req.Version = v
	} else {
		release, ok := s.decode(c, &req, false)
		if !ok {
			return
		}
		release()
	}
	changes, version, err := s.reg.ChangesSince(req.Version, nil)
	if err != nil {
		writeJSON(c, 200, struct {
			ResponseStatus responseStatus `json:"responseStatus"`
			Version        int64          `json:"version"`
		}{failStatus(errorCode(err), "version "+strconv.FormatInt(req.Version, 10)+
			" is outside the change log; fetch services.json"), version})
		return
	}
	buf := bodyBuffer(c)
	*buf = append(*buf, deltaHead...)
	*buf = appendDelta(*buf, changes)
	*buf = append(*buf, `},"version":`...)
	*buf = strconv.AppendInt(*buf, version, 10)
	*buf = append(*buf, '}')
}

// appendDelta appends "serviceId":[changes...] members, services in the order
// of their first change, each service's changes oldest first.
func appendDelta(dst []byte, changes []*core.Change) []byte {
	order := make([]string, 0, 8)
	groups := make(map[string][]*core.Change, 8)
	for _, ch := range changes {
		key := ch.ServiceID
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], ch)
	}
	for i, key := range order {
		if i > 0 {
			dst = append(dst, ',')
		}
		g := groups[key]
		dst = append(dst, mustMarshal(key)...)
		dst = append(dst, ':', '[')
		for j, ch := range g {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, ch.JSON()...)
		}
		dst = append(dst, ']')
	}
	return dst
}

// queryValue returns the query parameter name, matched case-insensitively.
// The result aliases the request and must not outlive the handler.
func queryValue(c *app.RequestContext, name string) []byte {
	args := c.QueryArgs()
	if v := args.Peek(name); len(v) > 0 {
		return v
	}
	var found []byte
	args.VisitAll(func(k, v []byte) {
		if found == nil && bytes.EqualFold(k, []byte(name)) {
			found = v
		}
	})
	return found
}

// queryValues returns every value of the query parameter name (case-insensitive).
func queryValues(c *app.RequestContext, name string) []string {
	var out []string
	c.QueryArgs().VisitAll(func(k, v []byte) {
		if bytes.EqualFold(k, []byte(name)) {
			out = append(out, string(v))
		}
	})
	return out
}
