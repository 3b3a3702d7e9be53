package server

import (
	"context"
	"sync"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/artemis-go/artemis/core"
)

// Registry endpoints (contract section 3).

// successBody is the whole answer of a batch with no failures.
var successBody = []byte(`{"responseStatus":{"status":"success","errorCode":"success","message":""}}`)

type batchOp func(insts []*core.Instance, failed []core.FailedInstance) []core.FailedInstance

// batch is a pooled request for one registry call.
type batch struct {
	req    instancesRequest
	failed []core.FailedInstance
}

var batches = sync.Pool{New: func() any { return new(batch) }}

func acquireBatch() *batch { return batches.Get().(*batch) }

// releaseBatch clears b (its strings alias a request body) and pools it.
func releaseBatch(b *batch) {
	clear(b.req.Instances)
	b.req.Instances = b.req.Instances[:0]
	clear(b.failed)
	b.failed = b.failed[:0]
	if cap(b.req.Instances) > 4096 {
		b.req.Instances = nil
	}
	if cap(b.failed) > 4096 {
		b.failed = nil
	}
	batches.Put(b)
}

func (s *Server) register(_ context.Context, c *app.RequestContext) {
	s.serveBatch(c, s.reg.Register)
}

func (s *Server) heartbeat(_ context.Context, c *app.RequestContext) {
	s.serveBatch(c, s.reg.Heartbeat)
}

func (s *Server) unregister(_ context.Context, c *app.RequestContext) {
	s.serveBatch(c, s.reg.Unregister)
}

// serveBatch decodes an instances request, checks it in the contract's order
// and applies op.
func (s *Server) serveBatch(c *app.RequestContext, op batchOp) {
	b := acquireBatch()
	defer releaseBatch(b)
	release, ok := s.decode(c, &b.req, false)
	if !ok {
		return
	}
	defer release()
	writeBytes(c, 200, s.applyBatch(b, op))
}

// applyBatch runs op over a decoded request and returns the encoded answer.
func (s *Server) applyBatch(b *batch, op batchOp) []byte {
	if len(b.req.Instances) == 0 {
		return mustMarshal(registryResponse{ResponseStatus: failStatus(codeBadRequest, "instances is empty")})
	}
	if !s.up.Load() {
		return mustMarshal(registryResponse{ResponseStatus: failStatus(codeServiceUnavailable, "node is not serving")})
	}
	b.failed = op(b.req.Instances, b.failed[:0])
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
