package server

import (
	stdjson "encoding/json"
	"testing"

	"github.com/cloudwego/hertz/pkg/common/ut"
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
