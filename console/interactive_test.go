package console_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
	"github.com/artemis-go/artemis/server/servertest"
)

// BenchmarkServicesPageInteractive loads the services page of a node that
// holds 1,000 services of 100 instances each (100,000 instances) in a real
// Chromium, browser cache off, and reports how long after the navigation
// started the list was painted and the page took input again
// (ms-interactive), the summary answer's time and size, the bytes the first
// load transferred, and how long a keystroke in the search box takes to
// filter the list and paint. Results: results/console-*.md.
//
//	go test ./console -run '^$' -bench ServicesPageInteractive -benchtime 10x
func BenchmarkServicesPageInteractive(b *testing.B) {
	const services, perService = 1000, 100
	n := servertest.Start(b, core.Config{Region: "default", Zone: "zone-a", LeaseTTL: time.Hour}, server.Config{})
	for s := range services {
		batch := make([]*core.Instance, 0, perService)
		for i := range perService {
			ip := fmt.Sprintf("10.%d.%d.%d", s/256, s%256, i)
			status := "up"
			if i%50 == 0 {
				status = "down"
			}
			batch = append(batch, &core.Instance{RegionID: "default", ZoneID: "zone-a", ServiceID: fmt.Sprintf("svc-%04d", s),
				InstanceID: fmt.Sprintf("svc-%04d-%03d", s, i), IP: ip, Port: 8080, Protocol: "http",
				URL: "http://" + ip + ":8080", HealthCheckURL: "http://" + ip + ":8080/health", Status: status,
				Metadata: map[string]string{"version": "1.2.3", "owner": "team-a"}})
		}
		if failed := n.Registry.Register(batch, nil); len(failed) != 0 {
			b.Fatalf("unexpected failures %v", failed)
		}
	}
	tb := newTab(b)
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
		return err
	}))
	type measure struct {
		Interactive, Ready, SummaryMs, SummaryBytes, FirstLoadBytes, SearchMs float64
		Rows                                                                  int
	}
	var sum measure
	for b.Loop() {
		time.Sleep(600 * time.Millisecond) // past the summary's cache: each load computes it
		tb.do(chromedp.Navigate("about:blank"), chromedp.Navigate(n.URL+"/console/"))
		tb.mustWaitFor(`document.body.dataset.interactive === 'services'`, 30*time.Second)
		m := eval[measure](tb, `(async () => {
			const mark = (name) => performance.getEntriesByName(name)[0].startTime;
			const res = performance.getEntriesByType('resource');
			const summary = res.find((r) => r.name.endsWith('/console/api/summary.json'));
			const nav = performance.getEntriesByType('navigation')[0];
			const first = res.filter((r) => !r.name.includes('/api/')).reduce((a, r) => a + r.transferSize, nav.transferSize);
			const input = document.querySelector('#service-search');
			const t0 = performance.now();
			input.value = 'svc-05';
			input.dispatchEvent(new Event('input'));
			await new Promise((r) => requestAnimationFrame(() => setTimeout(r)));
			const searchMs = performance.now() - t0;
			return {Interactive: mark('artemis:services-interactive'), Ready: mark('artemis:services-ready'),
				SummaryMs: summary.responseEnd - summary.startTime, SummaryBytes: summary.transferSize,
				FirstLoadBytes: first, SearchMs: searchMs,
				Rows: document.querySelector('#service-count').textContent === '100 of 1,000 services' ? 1 : 0};
		})()`)
		if m.Rows != 1 {
			b.Fatalf("the search did not filter the 1,000 services to 100: %q", eval[string](tb, `document.querySelector('#service-count').textContent`))
		}
		b.Logf("interactive %.0f ms (list painted %.0f ms; summary %.0f ms, %.0f bytes); first load %.0f bytes; search keystroke %.1f ms",
			m.Interactive, m.Ready, m.SummaryMs, m.SummaryBytes, m.FirstLoadBytes, m.SearchMs)
		sum.Interactive += m.Interactive
		sum.Ready += m.Ready
		sum.SummaryMs += m.SummaryMs
		sum.SummaryBytes += m.SummaryBytes
		sum.FirstLoadBytes += m.FirstLoadBytes
		sum.SearchMs += m.SearchMs
	}
	k := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(sum.Interactive/k, "ms-interactive")
	b.ReportMetric(sum.Ready/k, "ms-list-painted")
	b.ReportMetric(sum.SummaryMs/k, "ms-summary")
	b.ReportMetric(sum.SummaryBytes/k, "B-summary")
	b.ReportMetric(sum.FirstLoadBytes/k, "B-first-load")
	b.ReportMetric(sum.SearchMs/k, "ms-search-keystroke")
}
