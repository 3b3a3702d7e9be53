package client

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Registry registers instances and keeps them alive: every heartbeat
// interval it renews all of them in one WebSocket message, falls back to
// heartbeat.json when the socket is down, and re-registers any instance the
// server no longer knows (data-not-found). Close unregisters them. It is
// safe for concurrent use.
type Registry struct {
	o      *options
	nodes  *nodes
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	insts  map[string]Instance // by instanceKey; guarded by mu
	ws     *websocket.Conn     // heartbeat socket, nil when down; guarded by mu
	wsNode string              // the node ws is connected to; guarded by mu
}

type registryResponse struct {
	envelope
	FailedInstances []struct {
		Instance     Instance `json:"instance"`
		ErrorCode    string   `json:"errorCode"`
		ErrorMessage string   `json:"errorMessage"`
	} `json:"failedInstances"`
}

// NewRegistry returns a registry client bootstrapped from urls.
func NewRegistry(ctx context.Context, urls []string, opts ...Option) (*Registry, error) {
	o, n, loopCtx, cancel, err := start(ctx, "registry", urls, opts)
	if err != nil {
		return nil, err
	}
	r := &Registry{o: o, nodes: n, cancel: cancel, done: make(chan struct{}), insts: map[string]Instance{}}
	go r.heartbeatLoop(loopCtx)
	return r, nil
}

// Register registers insts and keeps them alive until Unregister or Close.
func (r *Registry) Register(ctx context.Context, insts ...Instance) error {
	for i := range insts {
		if insts[i].RegionID == "" {
			insts[i].RegionID = r.o.region
		}
	}
	if err := r.send(ctx, "/api/registry/register.json", insts); err != nil {
		return err
	}
	r.mu.Lock()
	for _, i := range insts {
		r.insts[instanceKey(i)] = i
	}
	r.mu.Unlock()
	return nil
}

// Unregister removes insts from the registry and stops renewing them.
func (r *Registry) Unregister(ctx context.Context, insts ...Instance) error {
	r.mu.Lock()
	for i := range insts {
		if insts[i].RegionID == "" {
			insts[i].RegionID = r.o.region
		}
		delete(r.insts, instanceKey(insts[i]))
	}
	r.mu.Unlock()
	return r.send(ctx, "/api/registry/unregister.json", insts)
}

// send posts a batch and fails unless every instance was accepted.
func (r *Registry) send(ctx context.Context, path string, insts []Instance) error {
	var resp registryResponse
	if err := r.nodes.call(ctx, path, map[string]any{"instances": insts}, &resp); err != nil {
		return err
	}
	if resp.ResponseStatus.Status != "success" {
		msg := resp.ResponseStatus.ErrorCode + " " + resp.ResponseStatus.Message
		for _, f := range resp.FailedInstances {
			msg += fmt.Sprintf("; %s/%s: %s %s", f.Instance.ServiceID, f.Instance.InstanceID, f.ErrorCode, f.ErrorMessage)
		}
		return fmt.Errorf("client: %s refused: %s", path, msg)
	}
	return nil
}

// Close unregisters every instance and stops the client.
func (r *Registry) Close(ctx context.Context) error {
	r.cancel()
	<-r.done
	r.mu.Lock()
	insts := make([]Instance, 0, len(r.insts))
	for _, i := range r.insts {
		insts = append(insts, i)
	}
	r.insts = map[string]Instance{}
	if r.ws != nil {
		r.ws.Close()
		r.ws = nil
	}
	r.mu.Unlock()
	if len(insts) == 0 {
		return nil
	}
	return r.send(ctx, "/api/registry/unregister.json", insts)
}

func (r *Registry) heartbeatLoop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.o.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Heartbeat(ctx)
		}
	}
}

// Heartbeat renews every registered instance now (the loop calls it every
// interval) and re-registers those the server lost.
func (r *Registry) Heartbeat(ctx context.Context) {
	r.mu.Lock()
	insts := make([]Instance, 0, len(r.insts))
	for _, i := range r.insts {
		insts = append(insts, i)
	}
	r.mu.Unlock()
	if len(insts) == 0 {
		return
	}
	resp, err := r.wsHeartbeat(ctx, insts)
	if err != nil {
		r.o.log.Warn("WebSocket heartbeat failed; using HTTP", "err", err)
		resp = registryResponse{}
		if err := r.nodes.call(ctx, "/api/registry/heartbeat.json", map[string]any{"instances": insts}, &resp); err != nil {
			r.o.log.Error("heartbeat failed on every node", "err", err)
			return
		}
	}
	var lost []Instance
	for _, f := range resp.FailedInstances {
		if f.ErrorCode == "data-not-found" {
			r.mu.Lock()
			i, ok := r.insts[instanceKey(f.Instance)]
			r.mu.Unlock()
			if ok {
				lost = append(lost, i)
			}
		}
	}
	if len(lost) > 0 {
		if err := r.send(ctx, "/api/registry/register.json", lost); err != nil {
			r.o.log.Error("cannot re-register lost instances", "err", err)
		}
	}
}

// wsHeartbeat sends one heartbeat message on the socket (dialling it when
// down) and reads its answer. An answer of service-unavailable or
// rate-limited closes the socket and avoids its node, and the caller falls
// back to HTTP, which tries the other nodes.
func (r *Registry) wsHeartbeat(ctx context.Context, insts []Instance) (registryResponse, error) {
	var resp registryResponse
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ws == nil {
		if err := r.dialLocked(ctx); err != nil {
			return resp, err
		}
	}
	r.ws.SetWriteDeadline(time.Now().Add(2 * time.Second))
	r.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	msg, _ := json.Marshal(map[string]any{"instances": insts})
	v, err := verdictUnavailable, r.ws.WriteMessage(websocket.TextMessage, msg)
	if err == nil {
		var answer []byte
		if _, answer, err = r.ws.ReadMessage(); err == nil {
			err = json.Unmarshal(answer, &resp)
		}
		if err == nil {
			v, err = inBandVerdict(resp.ResponseStatus)
		}
	}
	if err != nil {
		r.nodes.avoidAfter(r.wsNode, v)
		r.ws.Close()
		r.ws = nil
	}
	return resp, err
}

// dialLocked opens the heartbeat socket to the first node, in order, that
// accepts it (each node once).
func (r *Registry) dialLocked(ctx context.Context) error {
	var err error
	for _, u := range r.nodes.order() {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ws, hr, derr := websocket.DefaultDialer.DialContext(dctx, wsURL(u, "/ws/registry/heartbeat"), nil)
		cancel()
		if derr == nil {
			r.ws, r.wsNode = ws, u
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err = derr
		r.nodes.avoidAfter(u, dialVerdict(hr))
	}
	return fmt.Errorf("cannot open the heartbeat socket: %w", err)
}
