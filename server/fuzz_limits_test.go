package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"maps"
	"testing"

	"github.com/artemis-go/artemis/core"
)

// FuzzInflate checks the budgeted inflation against the standard library's
// reader: the same bytes within the cap, 413 over it, 400 for what the
// standard reader refuses, and the budget whole again after every release.
func FuzzInflate(f *testing.F) {
	const limit = 4 << 10
	f.Add([]byte(gzipped(`{"instances":[]}`)))
	f.Add([]byte(gzipped(string(make([]byte, limit)))))
	f.Add([]byte(gzipped(string(make([]byte, limit+1)))))
	f.Add([]byte(gzipped("a") + gzipped("b")))
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"))
	s := newTestServer(f, Config{MaxInflatedBytes: limit})
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, wantErr := stdInflate(raw, limit+1)
		got, release, aerr := s.inflate(raw)
		switch {
		case wantErr != nil:
			if aerr == nil || aerr.code != 400 {
				t.Fatalf("the standard reader refuses (%v); inflate answered %+v", wantErr, aerr)
			}
		case len(want) > limit:
			if aerr == nil || aerr.code != 413 {
				t.Fatalf("%d bytes inflated over the cap of %d; inflate answered %+v", len(want), limit, aerr)
			}
		case aerr != nil:
			t.Fatalf("inflate refused a body the standard reader reads (%d bytes): %+v", len(want), aerr)
		case !bytes.Equal(got, want):
			t.Fatalf("inflate gave %d bytes unlike the standard reader's %d", len(got), len(want))
		}
		if release != nil {
			release()
		}
		if n := s.inflating.inUse.Load(); n != 0 {
			t.Fatalf("%d bytes of the budget still reserved", n)
		}
	})
}

// stdInflate reads raw with compress/gzip (multistream, as inflate reads),
// at most max bytes.
func stdInflate(raw []byte, max int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, max))
	if err != nil && !errors.Is(err, io.EOF) && int64(len(out)) < max {
		return nil, err
	}
	return out, nil
}

// FuzzSubscribe feeds arbitrary subscription messages to a session and then
// overwrites the message: what the hub keeps must not change, every key
// must be the folding of its id, and the byte count must match what is
// held and go back to zero when the session ends.
func FuzzSubscribe(f *testing.F) {
	f.Add([]byte(`{"serviceId":"svc-a"}`), []byte(`{"serviceId":"SVC-B"}`))
	f.Add([]byte(`{"serviceId":"\u212Aafka"}`), []byte(`{"serviceId":"kafka"}`))
	f.Add([]byte(`{"serviceId":""}`), []byte(`not json`))
	s := newTestServer(f, Config{})
	f.Fuzz(func(t *testing.T, m1, m2 []byte) {
		tr := &fakeTransport{}
		ss := s.hub.newSession(wsInstanceChange, tr)
		s.hub.add(ss)
		var held map[string]string
		for _, m := range [][]byte{m1, m2} {
			msg := append([]byte(nil), m...)
			s.onMessage(ss, msg)
			s.hub.mu.RLock()
			held = maps.Clone(ss.services)
			s.hub.mu.RUnlock()
			for i := range msg {
				msg[i] = 'X' // the reader reuses its buffer
			}
		}
		s.hub.mu.RLock()
		var bytesHeld int64
		for key, id := range ss.services {
			if held[key] != id {
				t.Fatalf("subscription %q changed to %q when its message was overwritten", held[key], id)
			}
			if key != core.FoldKey(id) || len(id) > core.MaxFieldLen {
				t.Fatalf("unexpected subscription key %q for id %q", key, id)
			}
			bytesHeld += subscriptionCost(key, id)
		}
		s.hub.mu.RUnlock()
		if got := s.hub.subBytes.Load(); got != bytesHeld {
			t.Fatalf("subscription bytes counted %d; held %d", got, bytesHeld)
		}
		s.hub.remove(ss)
		ss.close(0, "")
		if b, n := s.hub.subBytes.Load(), s.hub.subCount.Load(); b != 0 || n != 0 {
			t.Fatalf("%d bytes, %d subscriptions left after the session ended", b, n)
		}
	})
}

// The replication decoders are the registry's, without the node-status
// check: the same guarantees (200/400/413 with a responseStatus, no panic).
func FuzzReplicationRegister(f *testing.F) {
	fuzzEndpoint(f, "/api/replication/registry/register.json", `{"instances":[`+instA+`]}`)
}

func FuzzReplicationHeartbeat(f *testing.F) {
	fuzzEndpoint(f, "/api/replication/registry/heartbeat.json", `{"instances":[`+instA+`]}`)
}
