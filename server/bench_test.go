package server

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloudwego/hertz/pkg/common/ut"
)

// In-process handler benchmarks through the Hertz engine (no network): the
// cost of routing, decoding, the core call and encoding. ut.PerformRequest
// builds a fresh RequestContext per call, so allocs/op include the harness.
// Every answer must be HTTP 200 with an in-band success: an answer the
// registry refused (rate-limited, data-not-found) is not an operation done.

// newBenchServer is a test server without rate limits: the defaults would
// answer rate-limited in-band once a benchmark outruns them.
func newBenchServer(b *testing.B) *Server {
	return newTestServer(b, Config{RateLimits: &RateLimits{}})
}

func benchServer(b *testing.B, services, perService int) *Server {
	s := newBenchServer(b)
	for sv := range services {
		var sb strings.Builder
		sb.WriteString(`{"instances":[`)
		for i := range perService {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"regionId":"sha","zoneId":"sha-a","serviceId":"svc-%d","instanceId":"10.0.%d.%d:8080",`+
				`"ip":"10.0.%d.%d","port":8080,"url":"http://10.0.%d.%d:8080/api","healthCheckUrl":"http://10.0.%d.%d:8080/health",`+
				`"status":"up","metadata":{"version":"1.4.2","env":"prod","hostname":"host-%d"}}`, sv, sv, i, sv, i, sv, i, sv, i, i)
		}
		sb.WriteString(`]}`)
		if r := do(s, "POST", "/api/registry/register.json", sb.String()); inBandFailure([]byte(r.body)) != "" {
			b.Fatalf("cannot seed: %s", r.body)
		}
	}
	return s
}

// successStatus is how every successful answer carries its responseStatus.
var successStatus = []byte(`"responseStatus":{"status":"success","errorCode":"success"`)

// inBandFailure returns "" for an answer with a success responseStatus, else
// what it says instead. It allocates nothing for a success.
func inBandFailure(body []byte) string {
	if bytes.Contains(body, successStatus) {
		return ""
	}
	var got struct {
		ResponseStatus *responseStatus `json:"responseStatus"`
	}
	if err := stdjson.Unmarshal(body, &got); err != nil || got.ResponseStatus == nil {
		return fmt.Sprintf("no responseStatus in %.200q", body)
	}
	if rs := got.ResponseStatus; rs.Status == statusSuccess && rs.ErrorCode == codeSuccess {
		return fmt.Sprintf("a success not written as %s: update successStatus: %.200q", successStatus, body)
	}
	return fmt.Sprintf("in-band %s/%s: %.200q", got.ResponseStatus.Status, got.ResponseStatus.ErrorCode, body)
}

// staticBody returns the same body for every request.
func staticBody(body string) func([]byte) []byte {
	return func(dst []byte) []byte { return append(dst, body...) }
}

// benchRequest performs the request in parallel. body appends a request's
// body to its argument (nil: no body). One request first must list
// wantInstances instances (counting "instanceId" keys), so a benchmark of
// discovery cannot pass on an empty answer.
func benchRequest(b *testing.B, s *Server, method, path string, body func([]byte) []byte, wantInstances int) {
	perform := func(buf []byte) ([]byte, []byte) {
		var bd *ut.Body
		if body != nil {
			buf = body(buf[:0])
			bd = &ut.Body{Body: bytes.NewReader(buf), Len: len(buf)}
		}
		w := ut.PerformRequest(s.Engine(), method, path, bd)
		if w.Code != 200 {
			b.Fatalf("unexpected status %d: %s", w.Code, w.Body.String())
		}
		if msg := inBandFailure(w.Body.Bytes()); msg != "" {
			b.Fatalf("unexpected answer to %s %s: %s", method, path, msg)
		}
		return buf, w.Body.Bytes()
	}
	_, first := perform(nil)
	if got := bytes.Count(first, []byte(`"instanceId":`)); got != wantInstances {
		b.Fatalf("%s %s lists %d instances; want %d: %.300s", method, path, got, wantInstances, first)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf []byte
		for pb.Next() {
			buf, _ = perform(buf)
		}
	})
}

func BenchmarkHandlerHeartbeat(b *testing.B) {
	s := benchServer(b, 10, 100)
	for _, n := range []int{1, 100} {
		var sb strings.Builder
		sb.WriteString(`{"instances":[`)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"regionId":"sha","serviceId":"svc-3","instanceId":"10.0.3.%d:8080"}`, i)
		}
		sb.WriteString(`]}`)
		b.Run("instances="+strconv.Itoa(n), func(b *testing.B) {
			before := s.reg.Stats().Renewals
			benchRequest(b, s, "POST", "/api/registry/heartbeat.json", staticBody(sb.String()), 0)
			if got := s.reg.Stats().Renewals - before; got != int64(n)*int64(b.N+1) {
				b.Fatalf("%d renewals; want %d", got, n*(b.N+1))
			}
		})
	}
}

func BenchmarkHandlerService(b *testing.B) {
	s := benchServer(b, 10, 100)
	b.Run("method=GET", func(b *testing.B) {
		benchRequest(b, s, "GET", "/api/discovery/service.json?serviceId=svc-5", nil, 100)
	})
	b.Run("method=POST", func(b *testing.B) {
		benchRequest(b, s, "POST", "/api/discovery/service.json", staticBody(`{"discoveryConfig":{"serviceId":"svc-5"},"regionId":"sha"}`), 100)
	})
}

func BenchmarkHandlerLookup(b *testing.B) {
	s := benchServer(b, 10, 100)
	b.Run("services=1", func(b *testing.B) {
		benchRequest(b, s, "POST", "/api/discovery/lookup.json", staticBody(`{"discoveryConfigs":[{"serviceId":"svc-1"}]}`), 100)
	})
	b.Run("services=5", func(b *testing.B) {
		benchRequest(b, s, "POST", "/api/discovery/lookup.json",
			staticBody(`{"discoveryConfigs":[{"serviceId":"svc-1"},{"serviceId":"svc-2"},{"serviceId":"svc-3"},{"serviceId":"svc-4"},{"serviceId":"nope"}]}`), 400)
	})
}

// BenchmarkHandlerRegister registers a new instance per request (a new
// instanceId in one of 10 services, realistic fields): a registration, not
// the renewal an identical re-registration of a live instance is.
func BenchmarkHandlerRegister(b *testing.B) {
	b.Run("instances=1/new", func(b *testing.B) {
		s := newBenchServer(b)
		var next atomic.Int64
		body := func(dst []byte) []byte {
			i := next.Add(1)
			dst = append(dst, `{"instances":[{"regionId":"sha","zoneId":"sha-a","serviceId":"svc-`...)
			dst = strconv.AppendInt(dst, i%10, 10)
			dst = append(dst, `","instanceId":"new-`...)
			dst = strconv.AppendInt(dst, i, 10)
			dst = append(dst, `","ip":"10.1.0.1","port":8080,"url":"http://10.1.0.1:8080/api","healthCheckUrl":"http://10.1.0.1:8080/health",`+
				`"status":"up","metadata":{"version":"1.4.2","env":"prod","hostname":"host-1"}}]}`...)
			return dst
		}
		benchRequest(b, s, "POST", "/api/registry/register.json", body, 0)
		b.StopTimer()
		if st := s.reg.Stats(); st.Instances != int64(b.N+1) || st.Registrations != int64(b.N+1) {
			b.Fatalf("%d instances after %d registrations; want %d new instances", st.Instances, st.Registrations, b.N+1)
		}
	})
}
