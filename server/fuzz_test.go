package server

import (
	"bytes"
	stdjson "encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/common/ut"
	"github.com/gobwas/ws"
)

// Fuzz targets for every request decoder: whatever the body, the answer is
// 200, 400 or 413 with a JSON responseStatus, never a 5xx or a crash.

func fuzzEndpoint(f *testing.F, path string, seeds ...string) {
	f.Helper()
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(gzipped(s)), true)
	}
	f.Add([]byte("{"), false)
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"), true)
	s := newTestServer(f, Config{MaxBodyBytes: 64 << 10, MaxInflatedBytes: 256 << 10})
	f.Fuzz(func(t *testing.T, body []byte, gz bool) {
		var headers []ut.Header
		if gz {
			headers = append(headers, ut.Header{Key: "Content-Encoding", Value: "gzip"})
		}
		r := do(s, "POST", path, string(body), headers...)
		if r.code != 200 && r.code != 400 && r.code != 413 {
			t.Fatalf("unexpected HTTP status %d for %q: %s", r.code, body, r.body)
		}
		var got struct {
			ResponseStatus *responseStatus `json:"responseStatus"`
		}
		if err := stdjson.Unmarshal([]byte(r.body), &got); err != nil {
			t.Fatalf("answer is not JSON: %v: %q", err, r.body)
		}
		if got.ResponseStatus == nil || got.ResponseStatus.ErrorCode == "" {
			t.Fatalf("answer without responseStatus: %s", r.body)
		}
		if r.code != 200 && got.ResponseStatus.ErrorCode != codeBadRequest {
			t.Fatalf("unexpected error code %q with HTTP %d", got.ResponseStatus.ErrorCode, r.code)
		}
		if s.Panics() != 0 {
			t.Fatalf("a handler panicked on %q", body)
		}
	})
}

func FuzzRegister(f *testing.F) {
	fuzzEndpoint(f, "/api/registry/register.json",
		`{"instances":[`+instA+`]}`, `{"Instances":[`+instB+`,null]}`, `{"instances":[`+instOther+`,`+instBad+`]}`,
		`{"instances":[{"regionId":"sha","serviceId":"s","instanceId":"i","url":"u","port":70000,"metadata":{"k":"\u0000"}}]}`)
}

func FuzzHeartbeat(f *testing.F) {
	fuzzEndpoint(f, "/api/registry/heartbeat.json", `{"instances":[`+instA+`]}`, `{"instances":[null,{}]}`)
}

func FuzzUnregister(f *testing.F) {
	fuzzEndpoint(f, "/api/registry/unregister.json", `{"instances":[`+instA+`]}`, `{"instances":[]}`)
}

func FuzzLookup(f *testing.F) {
	fuzzEndpoint(f, "/api/discovery/lookup.json",
		`{"discoveryConfigs":[{"serviceId":"a"},null,{"serviceId":"b","discoveryData":{"k":"v"}}],"regionId":"sha"}`)
}

func FuzzService(f *testing.F) {
	fuzzEndpoint(f, "/api/discovery/service.json", `{"discoveryConfig":{"serviceId":"a"},"regionId":"sha","zoneId":"z"}`, `{}`)
}

func FuzzServices(f *testing.F) {
	fuzzEndpoint(f, "/api/discovery/services.json", `{"regionId":"sha","zoneId":"z"}`, ``)
}

func FuzzServicesDelta(f *testing.F) {
	fuzzEndpoint(f, "/api/discovery/services-delta.json", `{"regionId":"sha","version":1767323045000000}`, `{"version":-1}`)
}

func FuzzLeases(f *testing.F) {
	fuzzEndpoint(f, "/api/status/leases.json", `{"serviceIds":["a","b"]}`, `{}`)
}

func FuzzUpNodes(f *testing.F) {
	fuzzEndpoint(f, "/api/cluster/up-registry-nodes.json", `{"regionId":"sha","zoneId":"z"}`)
}

// clientFrame masks and frames a client message.
func clientFrame(op ws.OpCode, fin bool, payload string) []byte {
	return ws.MustCompileFrame(ws.MaskFrameInPlace(ws.NewFrame(op, fin, []byte(payload))))
}

// FuzzWebSocketFrames feeds arbitrary client byte streams to the frame
// reader of a session: it must end (the stream ends), never panic, and
// write back only well-formed frames: heartbeat answers with a
// responseStatus, and control answers.
func FuzzWebSocketFrames(f *testing.F) {
	hb := `{"instances":[{"regionId":"sha","serviceId":"s","instanceId":"i"}]}`
	join := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	f.Add(clientFrame(ws.OpText, true, hb), byte(0))
	f.Add(join(clientFrame(ws.OpText, false, hb[:10]), clientFrame(ws.OpPing, true, "p"),
		clientFrame(ws.OpContinuation, true, hb[10:])), byte(0))
	f.Add(join(clientFrame(ws.OpText, true, `{"serviceId":"s"}`), clientFrame(ws.OpClose, true, "\x03\xe8bye")), byte(1))
	f.Add(clientFrame(ws.OpText, true, "\xff\xfe"), byte(0))
	f.Add([]byte{0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}, byte(0))
	s := newTestServer(f, Config{MaxBodyBytes: 4096, Push: PushConfig{Library: LibraryGorilla}}) // answers unframed
	f.Fuzz(func(t *testing.T, stream []byte, kind byte) {
		tr := &fakeTransport{}
		ss := s.hub.newSession(int(kind)%numWSKinds, tr)
		s.readFrames(ss, bytes.NewReader(stream), func(time.Time) error { return nil })
		for _, a := range tr.got() {
			var got struct {
				ResponseStatus *responseStatus `json:"responseStatus"`
			}
			if err := stdjson.Unmarshal([]byte(a), &got); err != nil || got.ResponseStatus == nil {
				t.Fatalf("answer is not a response: %q (%v)", a, err)
			}
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for _, r := range tr.raw {
			fr, err := ws.ReadFrame(strings.NewReader(r))
			if err != nil || !fr.Header.OpCode.IsControl() || fr.Header.Masked {
				t.Fatalf("control answer is not an unmasked control frame: %q (%v)", r, err)
			}
		}
	})
}
