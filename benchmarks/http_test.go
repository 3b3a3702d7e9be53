package benchmarks

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
	"github.com/artemis-go/artemis/server/servertest"
)

// startServer runs a registry node on a loopback port with services×perService
// instances registered, and returns its base URL.
func startServer(b *testing.B, services, perService int) string {
	b.Helper()
	// No rate limits: a benchmark outrunning them would be answered
	// rate-limited in-band, which roundTrip refuses.
	base := servertest.Start(b, core.Config{LeaseTTL: time.Hour}, server.Config{RateLimits: &server.RateLimits{}}).URL
	b.Cleanup(http.DefaultClient.CloseIdleConnections)
	for sv := range services {
		var sb strings.Builder
		sb.WriteString(`{"instances":[`)
		for i := range perService {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"regionId":"default","zoneId":"z","serviceId":"svc-%d","instanceId":"i-%d","ip":"10.0.%d.%d",`+
				`"port":8080,"url":"http://10.0.%d.%d:8080/api","healthCheckUrl":"http://10.0.%d.%d:8080/health","status":"up",`+
				`"metadata":{"version":"1.4.2","env":"prod","hostname":"host-%d"}}`, sv, i, sv, i, sv, i, sv, i, i)
		}
		sb.WriteString(`]}`)
		post(b, http.DefaultClient, base+"/api/registry/register.json", []byte(sb.String()))
	}
	return base
}

func post(b *testing.B, c *http.Client, url string, body []byte) {
	var buf bytes.Buffer
	roundTrip(b, c, url, body, &buf)
}

// successStatus is how every successful registry answer carries its
// responseStatus; /health answers a plain OK.
var successStatus = []byte(`"responseStatus":{"status":"success","errorCode":"success"`)

// roundTrip GETs url (body nil) or POSTs body to it, reading the answer into
// buf, and fails unless it is HTTP 200 with an in-band success: a refused
// operation (rate-limited, data-not-found) is not a round trip done.
func roundTrip(b *testing.B, c *http.Client, url string, body []byte, buf *bytes.Buffer) {
	var resp *http.Response
	var err error
	if body == nil {
		resp, err = c.Get(url)
	} else {
		resp, err = c.Post(url, "application/json", bytes.NewReader(body))
	}
	if err != nil {
		b.Fatal(err)
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b.Fatalf("unexpected status %d from %s: %.200s", resp.StatusCode, url, buf.Bytes())
	}
	if got := buf.Bytes(); !bytes.Contains(got, successStatus) && !bytes.Equal(got, []byte("OK")) {
		b.Fatalf("unexpected answer from %s: %.200s", url, got)
	}
}

func roundTrips(b *testing.B, url string, body []byte) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer c.CloseIdleConnections() // lets the server shut down at once
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf bytes.Buffer
		for pb.Next() {
			roundTrip(b, c, url, body, &buf)
		}
	})
}

func BenchmarkRoundTripHeartbeat(b *testing.B) {
	base := startServer(b, 10, 100)
	roundTrips(b, base+"/api/registry/heartbeat.json",
		[]byte(`{"instances":[{"regionId":"default","serviceId":"svc-3","instanceId":"i-7"}]}`))
}

func BenchmarkRoundTripService(b *testing.B) {
	base := startServer(b, 10, 100)
	roundTrips(b, base+"/api/discovery/service.json?serviceId=svc-4", nil)
}

func BenchmarkRoundTripLookup(b *testing.B) {
	base := startServer(b, 10, 100)
	roundTrips(b, base+"/api/discovery/lookup.json", []byte(`{"discoveryConfigs":[{"serviceId":"svc-1"},{"serviceId":"svc-2"}]}`))
}

func BenchmarkRoundTripHealth(b *testing.B) {
	base := startServer(b, 0, 0)
	roundTrips(b, base+"/health", nil)
}
