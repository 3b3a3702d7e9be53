package server

import (
	"context"
	"fmt"
	"sync"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/artemis-go/artemis/cluster"
	"github.com/artemis-go/artemis/core"
)

// Registry endpoints (contract section 3).

// successBody is the whole answer of a batch with no failures.
var successBody = []byte(`{"responseStatus":{"status":"success","errorCode":"success","message":""}}`)

// batchOp is one of the core's RegisterEach, HeartbeatEach, UnregisterEach.
type batchOp func(insts []*core.Instance, failed []core.FailedInstance, applied core.Applied) []core.FailedInstance

// batch is a pooled request for one registry call. Register decodes whole
// instances (req); heartbeat and unregister only need keys, decoded into
// reused structs so they allocate nothing per instance (insts and ptrs carry
// them to the core).
type batch struct {
	req    instancesRequest
	keys   keysRequest
	insts  []core.Instance
	ptrs   []*core.Instance
	failed []core.FailedInstance
}

// keysRequest is a heartbeat or unregister body: only the InstanceKey of each
// instance is read; other fields are skipped by the decoder.
type keysRequest struct {
	Instances []instanceKey `json:"instances"`
}

type instanceKey struct {
	RegionID   string `json:"regionId"`
	ServiceID  string `json:"serviceId"`
	InstanceID string `json:"instanceId"`
}

// keyed fills b.ptrs from b.keys; an all-blank key is a null entry, skipped.
func (b *batch) keyed() []*core.Instance {
	n := len(b.keys.Instances)
	if cap(b.insts) < n {
		b.insts = make([]core.Instance, n)
	}
	b.insts = b.insts[:n]
	b.ptrs = b.ptrs[:0]
	for i, k := range b.keys.Instances {
		if k == (instanceKey{}) {
			continue
		}
		b.insts[i] = core.Instance{RegionID: k.RegionID, ServiceID: k.ServiceID, InstanceID: k.InstanceID}
		b.ptrs = append(b.ptrs, &b.insts[i])
	}
	return b.ptrs
}

var batches = sync.Pool{New: func() any { return new(batch) }}

func acquireBatch() *batch { return batches.Get().(*batch) }

// releaseBatch clears b (its strings alias a request body) and pools it.
func releaseBatch(b *batch) {
	clear(b.req.Instances)
	clear(b.keys.Instances)
	clear(b.insts)
	clear(b.ptrs)
	clear(b.failed)
	b.req.Instances, b.keys.Instances, b.insts, b.ptrs, b.failed =
		b.req.Instances[:0], b.keys.Instances[:0], b.insts[:0], b.ptrs[:0], b.failed[:0]
	if cap(b.req.Instances) > 4096 || cap(b.keys.Instances) > 4096 || cap(b.failed) > 4096 {
		*b = batch{}
	}
	batches.Put(b)
}

func (s *Server) register(_ context.Context, c *app.RequestContext) {
	s.serveBatch(c, s.reg.RegisterEach, s.replicate[cluster.OpRegister], false)
}

func (s *Server) heartbeat(_ context.Context, c *app.RequestContext) {
	s.serveBatch(c, s.reg.HeartbeatEach, s.replicate[cluster.OpHeartbeat], true)
}

func (s *Server) unregister(_ context.Context, c *app.RequestContext) {
	s.serveBatch(c, s.reg.UnregisterEach, s.replicate[cluster.OpUnregister], true)
}

// serveBatch decodes an instances request (only keys when keysOnly), checks
// it in the contract's order and applies op, handing what it applied to
// applied (the replicator; nil on a single node).
func (s *Server) serveBatch(c *app.RequestContext, op batchOp, applied core.Applied, keysOnly bool) {
	b := acquireBatch()
	defer releaseBatch(b)
	body, release, aerr := s.body(c)
	if aerr != nil {
		writeError(c, aerr)
		return
	}
	defer release()
	if keysOnly {
		if !b.decodeKeys(body) && !decodeBody(c, body, &b.keys, false) {
			return
		}
	} else if !decodeBody(c, body, &b.req, false) {
		return
	}
	if n := max(len(b.req.Instances), len(b.keys.Instances)); n > s.cfg.MaxInstancesPerRequest {
		writeError(c, &apiError{code: 413, msg: fmt.Sprintf("%d instances in one request; at most %d", n, s.cfg.MaxInstancesPerRequest)})
		return
	}
	insts := b.req.Instances
	if keysOnly {
		if len(b.keys.Instances) == 0 {
			insts = nil
		} else if insts = b.keyed(); len(insts) == 0 {
			insts = []*core.Instance{nil} // only null entries: not empty, nothing to do
		}
	}
	// Every answer of applyBatch is a package-level constant or encoded for
	// this request alone: neither changes once written, so it is not copied.
	writeBodyRaw(c, 200, s.applyBatch(insts, b, op, applied, false))
}

// decodeKeys scans a heartbeat or unregister body into b.keys with the
// specialised scanner (hbscan.go); false when the scanner declined, and
// b.keys is then empty for the general decoder.
func (b *batch) decodeKeys(body []byte) bool {
	keys, ok := scanKeys(body, b.keys.Instances)
	if !ok {
		clear(keys)
		keys = keys[:0]
	}
	b.keys.Instances = keys
	return ok
}

// applyBatch runs op over decoded instances and returns the encoded answer.
func (s *Server) applyBatch(insts []*core.Instance, b *batch, op batchOp, applied core.Applied, fromPeer bool) []byte {
	if len(insts) == 0 {
		return mustMarshal(registryResponse{ResponseStatus: failStatus(codeBadRequest, "instances is empty")})
	}
	if !fromPeer && !s.serving() { // peers replicate to a starting node too
		return notServingBody(s.status())
	}
	b.failed = op(insts, b.failed[:0], applied)
	if len(b.failed) == 0 {
		return successBody
	}
	resp := registryResponse{
		ResponseStatus:  responseStatus{Status: statusPartialFail, ErrorCode: codePartialFail, Message: "some instances failed"},
		FailedInstances: make([]failedInstance, len(b.failed)),
	}
	for i, f := range b.failed {
		resp.FailedInstances[i] = failedInstance{Instance: f.Instance, ErrorCode: errorCode(f.Err), ErrorMessage: f.Err.Error()}
	}
	return mustMarshal(resp)
}
