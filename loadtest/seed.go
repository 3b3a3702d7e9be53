package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The fixture: instance i belongs to service i % Services, so every service
// gets Instances/Services instances. All request bodies are built once.

func serviceID(s int) string  { return "svc-" + strconv.Itoa(s) }
func instanceID(i int) string { return "inst-" + strconv.Itoa(i) }

// appendInstance appends instance i with realistic fields: ip, url,
// healthCheckUrl and three metadata entries.
func appendInstance(b []byte, i, services int) []byte {
	ip := "10." + strconv.Itoa(i>>16&0xff) + "." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff)
	b = append(b, `{"regionId":"default","zoneId":"default","serviceId":"`...)
	b = append(b, serviceID(i%services)...)
	b = append(b, `","instanceId":"`...)
	b = append(b, instanceID(i)...)
	b = append(b, `","machineName":"host-`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","ip":"`...)
	b = append(b, ip...)
	b = append(b, `","port":8080,"protocol":"http","url":"http://`...)
	b = append(b, ip...)
	b = append(b, `:8080/api","healthCheckUrl":"http://`...)
	b = append(b, ip...)
	b = append(b, `:8080/health","status":"up","metadata":{"version":"1.4.2","env":"prod","hostname":"host-`...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, `"}}`...)
}

// appendKey appends the key fields of instance i (what a heartbeat needs).
func appendKey(b []byte, i, services int) []byte {
	b = append(b, `{"regionId":"default","serviceId":"`...)
	b = append(b, serviceID(i%services)...)
	b = append(b, `","instanceId":"`...)
	b = append(b, instanceID(i)...)
	return append(b, `"}`...)
}

// instancesBody returns {"instances":[...]} for instances [from, to).
func instancesBody(from, to, services int, full bool) []byte {
	return appendInstancesBody(make([]byte, 0, (to-from)*360+16), from, to, services, full)
}

// appendInstancesBody appends the body of instancesBody to b.
func appendInstancesBody(b []byte, from, to, services int, full bool) []byte {
	b = append(b, `{"instances":[`...)
	for i := from; i < to; i++ {
		if i > from {
			b = append(b, ',')
		}
		if full {
			b = appendInstance(b, i, services)
		} else {
			b = appendKey(b, i, services)
		}
	}
	return append(b, `]}`...)
}

// SeedStats reports a seeding run.
type SeedStats struct {
	Instances int           `json:"instances"`
	Requests  int           `json:"requests"`
	Elapsed   time.Duration `json:"elapsedNs"`
	Rate      float64       `json:"instancesPerSecond"`
	// Server RSS after seeding, and its peak (when the generator started it).
	RSSBytes     int64 `json:"rssBytes,omitempty"`
	PeakRSSBytes int64 `json:"peakRssBytes,omitempty"`
}

// seed registers cfg.Instances instances in batches with a progress bar on
// progress. Every batch must answer success.
func seed(ctx context.Context, client *http.Client, base string, cfg Config, progress io.Writer) (SeedStats, error) {
	start := time.Now()
	batches := (cfg.Instances + cfg.SeedBatch - 1) / cfg.SeedBatch
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	stopBar := startProgress(progress, "seeding", int64(cfg.Instances), &done, start)
	for range cfg.SeedWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1)) - 1
				if n >= batches || ctx.Err() != nil {
					return
				}
				from, to := n*cfg.SeedBatch, min((n+1)*cfg.SeedBatch, cfg.Instances)
				if err := postOK(ctx, client, base+"/api/registry/register.json", instancesBody(from, to, cfg.Services, true)); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("cannot seed instances %d..%d: %w", from, to, err) })
					return
				}
				done.Add(int64(to - from))
			}
		}()
	}
	wg.Wait()
	stopBar()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	el := time.Since(start)
	return SeedStats{Instances: cfg.Instances, Requests: batches, Elapsed: el, Rate: float64(cfg.Instances) / el.Seconds()}, firstErr
}

// keepalive heartbeats every seeded instance in batches of KeepaliveBatch,
// spread evenly over period, until ctx is done. Its requests are not
// measured. Batches stay small, as real clients' are: one request renewing a
// thousand instances holds a core for about a millisecond, and would show in
// the measured requests' P99 as queueing behind it.
func keepalive(ctx context.Context, client *http.Client, base string, cfg Config, period time.Duration) {
	size := cfg.KeepaliveBatch
	batches := (cfg.Instances + size - 1) / size
	bodies := make([][]byte, batches)
	for n := range bodies {
		bodies[n] = instancesBody(n*size, min((n+1)*size, cfg.Instances), cfg.Services, false)
	}
	tick := time.NewTicker(max(period/time.Duration(batches), time.Millisecond))
	defer tick.Stop()
	for n := 0; ; n = (n + 1) % batches {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			postOK(ctx, client, base+"/api/registry/heartbeat.json", bodies[n]) // failures show as expiry
		}
	}
}

// postOK posts body and requires HTTP 200 with a success responseStatus.
func postOK(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || !bytes.HasPrefix(got, successPrefix) {
		return fmt.Errorf("unexpected answer %d: %.200s", resp.StatusCode, got)
	}
	return nil
}

// successPrefix starts every successful answer of the registry.
var successPrefix = []byte(`{"responseStatus":{"status":"success"`)

// startProgress draws a progress bar of done/total until the returned stop is called.
func startProgress(w io.Writer, what string, total int64, done *atomic.Int64, start time.Time) func() {
	if w == nil {
		return func() {}
	}
	// On a terminal the bar redraws in place; in a log it prints every 2 s.
	every, cr := 2*time.Second, ""
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			every, cr = 200*time.Millisecond, "\r"
		}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	draw := func() {
		d := done.Load()
		width := 30
		filled := int(float64(width) * float64(d) / float64(max(total, 1)))
		rate := float64(d) / max(time.Since(start).Seconds(), 1e-9)
		fmt.Fprintf(w, "%s%s [%-*s] %d/%d %.0f/s", cr, what, width, bytes.Repeat([]byte("#"), filled), d, total, rate)
		if cr == "" {
			fmt.Fprintln(w)
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				draw()
				if cr != "" {
					fmt.Fprintln(w)
				}
				return
			case <-t.C:
				draw()
			}
		}
	}()
	return func() { close(stop); <-finished }
}
