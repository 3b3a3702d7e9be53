package loadtest

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// churnFlatShare is the verdict's bound: RSS is flat when the line fitted
// to it over the window rises by less than this share of the RSS at the
// window's start.
const churnFlatShare = 0.05

// churnMarks are the minutes whose samples the verdict quotes (those the
// run reaches, and its last minute).
var churnMarks = []int{2, 5, 10}

// ChurnVerdict judges RSS over the samples from Settle to the end.
type ChurnVerdict struct {
	// Judged is false when the window is under two minutes (a short run)
	// or RSS was not read, and Why says which; the slopes are still given
	// when there are samples to fit.
	Judged bool    `json:"judged"`
	Why    string  `json:"why,omitempty"`
	From   float64 `json:"fromSeconds"`
	To     float64 `json:"toSeconds"`
	// Marks are the samples nearest the minutes of churnMarks.
	Marks []ChurnMark `json:"marks"`
	// Slopes in MiB per minute of least-squares lines over the window:
	// RSS, the heap in use, the live heap estimated from the heap goal,
	// and the record arenas (NaN when not exported).
	RSSSlope       float64 `json:"rssMiBPerMinute"`
	HeapInuseSlope float64 `json:"heapInuseMiBPerMinute"`
	LiveHeapSlope  float64 `json:"liveHeapMiBPerMinute"`
	RecordSlope    float64 `json:"recordMiBPerMinute"`
	// LateRSSSlope is RSS's slope over the window's second half: a rise
	// that ends within the window shows as a lower one here.
	LateRSSSlope float64 `json:"lateRssMiBPerMinute"`
	// Rise is the fitted RSS rise over the window and Bound what it must
	// stay under (churnFlatShare of the RSS at the window's start), in MiB.
	Rise  float64 `json:"rssRiseMiB"`
	Bound float64 `json:"boundMiB"`
	Flat  bool    `json:"flat"`
}

// ChurnMark is the sample nearest a minute of the run.
type ChurnMark struct {
	Minute int         `json:"minute"`
	Sample ChurnSample `json:"sample"`
}

// MarshalJSON writes the NaN slopes (a metric not exported) as null.
func (v ChurnVerdict) MarshalJSON() ([]byte, error) {
	type plain ChurnVerdict
	nan := func(f float64) *float64 {
		if math.IsNaN(f) {
			return nil
		}
		return &f
	}
	return json.Marshal(struct {
		plain
		RSSSlope       *float64 `json:"rssMiBPerMinute"`
		HeapInuseSlope *float64 `json:"heapInuseMiBPerMinute"`
		LiveHeapSlope  *float64 `json:"liveHeapMiBPerMinute"`
		RecordSlope    *float64 `json:"recordMiBPerMinute"`
		LateRSSSlope   *float64 `json:"lateRssMiBPerMinute"`
	}{plain(v), nan(v.RSSSlope), nan(v.HeapInuseSlope), nan(v.LiveHeapSlope), nan(v.RecordSlope), nan(v.LateRSSSlope)})
}

// judgeChurn fits lines to the samples from cfg.Settle on.
func judgeChurn(samples []ChurnSample, cfg ChurnConfig) ChurnVerdict {
	v := ChurnVerdict{From: cfg.Settle.Seconds(), RSSSlope: math.NaN(), HeapInuseSlope: math.NaN(), LiveHeapSlope: math.NaN(),
		RecordSlope: math.NaN(), LateRSSSlope: math.NaN()}
	var win []ChurnSample
	for _, s := range samples {
		if s.T >= v.From {
			win = append(win, s)
		}
	}
	last := cfg.Duration.Minutes()
	if len(samples) > 0 {
		last = samples[len(samples)-1].T / 60
		v.To = samples[len(samples)-1].T
	}
	if len(samples) > 0 {
		v.Marks = append(v.Marks, ChurnMark{0, nearest(samples, 0)})
	}
	for _, m := range churnMarks {
		if float64(m) <= last+0.25 {
			v.Marks = append(v.Marks, ChurnMark{m, nearest(samples, float64(m)*60)})
		}
	}
	if end := int(math.Round(last)); len(samples) > 0 && end > 0 && (len(v.Marks) == 0 || v.Marks[len(v.Marks)-1].Minute < end) {
		v.Marks = append(v.Marks, ChurnMark{end, nearest(samples, float64(end)*60)})
	}
	if len(win) < 2 || win[len(win)-1].T-win[0].T < 120 {
		v.Why = fmt.Sprintf("the window from t = %.0f s to the end needs 2 minutes of samples; the run churned for %v", v.From, cfg.Duration)
	} else if win[0].RSSBytes <= 0 {
		v.Why = "the node's RSS was not read"
	}
	if len(win) < 2 {
		return v
	}
	v.RSSSlope = slope(win, func(s ChurnSample) int64 { return s.RSSBytes })
	v.HeapInuseSlope = slope(win, func(s ChurnSample) int64 { return s.HeapInuse })
	v.LiveHeapSlope = slope(win, ChurnSample.liveHeap)
	v.RecordSlope = slope(win, func(s ChurnSample) int64 { return s.RecordBytes })
	mid := (win[0].T + win[len(win)-1].T) / 2
	for i, s := range win {
		if s.T >= mid {
			v.LateRSSSlope = slope(win[i:], func(s ChurnSample) int64 { return s.RSSBytes })
			break
		}
	}
	v.Rise = v.RSSSlope * (win[len(win)-1].T - win[0].T) / 60
	v.Bound = churnFlatShare * float64(win[0].RSSBytes) / (1 << 20)
	v.Judged = v.Why == ""
	v.Flat = v.Judged && v.Rise < v.Bound
	return v
}

// nearest is the sample whose time is nearest t seconds.
func nearest(samples []ChurnSample, t float64) ChurnSample {
	best := samples[0]
	for _, s := range samples[1:] {
		if math.Abs(s.T-t) < math.Abs(best.T-t) {
			best = s
		}
	}
	return best
}

// slope fits a least-squares line to value (bytes) over time and returns
// its slope in MiB per minute; NaN when fewer than two samples have one.
func slope(samples []ChurnSample, value func(ChurnSample) int64) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, s := range samples {
		y := value(s)
		if y < 0 {
			continue
		}
		x, fy := s.T/60, float64(y)/(1<<20)
		n++
		sx, sy, sxx, sxy = sx+x, sy+fy, sxx+x*x, sxy+x*fy
	}
	d := n*sxx - sx*sx
	if n < 2 || d == 0 {
		return math.NaN()
	}
	return (n*sxy - sx*sy) / d
}

// Write saves the report as ResultsDir/<stamp>.md and, with every sample,
// ResultsDir/<stamp>.json; it returns the Markdown's path.
func (r *ChurnReport) Write() (string, error) {
	dir := r.Config.ResultsDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot create %s: %w", dir, err)
	}
	base := filepath.Join(dir, r.Date.Format("20060102T150405Z"))
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("cannot encode the report: %w", err)
	}
	if err := os.WriteFile(base+".json", append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("cannot write the report: %w", err)
	}
	if err := os.WriteFile(base+".md", []byte(r.Markdown()), 0o644); err != nil {
		return "", fmt.Errorf("cannot write the report: %w", err)
	}
	return base + ".md", nil
}

// Markdown renders the report.
func (r *ChurnReport) Markdown() string {
	c, v := r.Config, r.Verdict
	var b strings.Builder
	fmt.Fprintf(&b, "# Churn and RSS, %s\n\n", r.Date.Format(time.RFC3339))
	fmt.Fprintf(&b, "- command: `%s`\n", c.Command)
	fmt.Fprintf(&b, "- measured: %s (%s)\n", c.Rev, r.Go)
	fmt.Fprintf(&b, "- machine: nproc %d, CPU `%s`, host %s; loadavg %s at the start, %s at the end\n", r.Machine.NProc,
		r.Machine.CPUModel, r.Machine.Hostname, r.firstLoad(), r.lastLoad())
	pin := "not pinned"
	if c.ServerCPUs != "" {
		pin = fmt.Sprintf("pinned to CPUs %q", c.ServerCPUs)
	}
	fmt.Fprintf(&b, "- node: `%s server --store memory --lease-ttl %v` on 127.0.0.1 (pid %d), %s; the generator's GOMAXPROCS %d\n",
		c.Binary, c.LeaseTTL, r.PID, pin, r.Machine.GOMAXPROCS)
	if c.Heartbeat {
		fmt.Fprintf(&b, "- expiry: every registered instance heartbeated once per %v (lease TTL / 3), %d renewals in batches of %d\n",
			(c.LeaseTTL / 3).Round(time.Millisecond), r.Heartbeats, churnHeartbeatBatch)
	} else {
		fmt.Fprintf(&b, "- expiry: no heartbeats; the node's lease TTL (%v) outlasts the run, so nothing expires (checked: no evictions)\n", c.LeaseTTL)
	}
	fmt.Fprintf(&b, "- load: %d instances over %d services seeded in %v; then for %v, %d instances (%.0f %%) replaced every %v: "+
		"random registered ones unregistered and as many with new ids registered, %d every %v (one unregister and one register request)\n",
		r.Seed.Instances, c.Services, r.Seed.Elapsed.Round(time.Millisecond), c.Duration, c.perPeriod(), 100*c.Share, c.Period,
		c.batch(), c.Tick)
	fmt.Fprintf(&b, "- sent: %d unregistered, %d registered, %d renewed, in %d requests; %d failed\n", r.Unregistered, r.Registered,
		r.Heartbeats, r.Requests, r.Failures)
	if r.OK() {
		fmt.Fprintf(&b, "- checks: passed: every request answered 200 with an in-band success; the node's instance count within %d of %d at every sample; "+
			"its registration, unregistration and renewal counters equal to what was sent; no evictions, no expired leases\n", c.batch(), c.Instances)
	} else {
		fmt.Fprintf(&b, "- checks: **FAILED**:\n")
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "  - %s\n", p)
		}
	}
	if len(r.Missing) > 0 {
		fmt.Fprintf(&b, "- metrics the node does not export: %s\n", strings.Join(r.Missing, ", "))
	}
	b.WriteString("\n## Verdict\n\n")
	b.WriteString(r.VerdictLine())
	b.WriteString("\n\n| minute | RSS | heap alloc | heap in use | live heap (est.) | record arenas | compactions | change log | GC cycles |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range v.Marks {
		s := m.Sample
		fmt.Fprintf(&b, "| %d (t=%.0f s) | %s | %s | %s | %s | %s | %d | %s | %d |\n", m.Minute, s.T, mibOrDash(s.RSSBytes),
			mibOrDash(s.HeapAlloc), mibOrDash(s.HeapInuse), mibOrDash(s.liveHeap()), mibOrDash(s.RecordBytes), s.Compactions,
			mibOrDash(s.ChangeLogBytes), s.GCs)
	}
	fmt.Fprintf(&b, "\nSlopes over t = %.0f–%.0f s (least squares, MiB/min): RSS %s (%s over the second half), heap in use %s, live heap (est.) %s, record arenas %s.\n",
		v.From, v.To, fmtSlope(v.RSSSlope), fmtSlope(v.LateRSSSlope), fmtSlope(v.HeapInuseSlope), fmtSlope(v.LiveHeapSlope),
		fmtSlope(v.RecordSlope))
	b.WriteString("\nThe live heap is estimated from the heap goal: go_memstats_next_gc_bytes ÷ (1 + GOGC/100), the heap left by " +
		"the last collection (plus under half the stacks and globals); the node was not asked to collect.\n")
	b.WriteString("\n## Samples\n\nt is seconds since the churn started (-1: the empty node, before seeding); sizes in MiB; " +
		"CPU is the node's share of one core since the previous sample.\n\n")
	b.WriteString("| t | RSS | heap alloc | heap in use | heap idle | heap released | heap goal | live heap (est.) | GCs | goroutines | instances | services | " +
		"record arenas | compactions | change log | changes | +registered | -unregistered | failures | CPU | loadavg |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, s := range r.Samples {
		cpu := ""
		if i > 0 && s.CPUSeconds >= 0 && r.Samples[i-1].CPUSeconds >= 0 && s.T > r.Samples[i-1].T && r.Samples[i-1].T >= 0 {
			cpu = fmt.Sprintf("%.0f %%", 100*(s.CPUSeconds-r.Samples[i-1].CPUSeconds)/(s.T-r.Samples[i-1].T))
		}
		fmt.Fprintf(&b, "| %.0f | %s | %s | %s | %s | %s | %s | %s | %d | %d | %d | %d | %s | %d | %s | %d | %d | %d | %d | %s | %s |\n",
			s.T, num(s.RSSBytes), num(s.HeapAlloc), num(s.HeapInuse), num(s.HeapIdle), num(s.HeapReleased), num(s.NextGC), num(s.liveHeap()), s.GCs,
			s.Goroutines, s.Instances, s.Services, num(s.RecordBytes), s.Compactions, num(s.ChangeLogBytes), s.ChangeLogLen,
			s.Registered, s.Unregistered, s.Failures, cpu, s.Load)
	}
	return b.String()
}

// VerdictLine states the verdict with its numbers.
func (r *ChurnReport) VerdictLine() string {
	v := r.Verdict
	var marks []string
	for _, m := range v.Marks {
		marks = append(marks, fmt.Sprintf("minute %d %s", m.Minute, mibOrDash(m.Sample.RSSBytes)))
	}
	nums := fmt.Sprintf("RSS at %s; over t = %.0f–%.0f s RSS moves %s MiB/min (a fitted rise of %.1f MiB; the bound for flat is %.1f MiB, %.0f %% of the RSS at t = %.0f s); %s MiB/min over the second half",
		strings.Join(marks, ", "), v.From, v.To, fmtSlope(v.RSSSlope), v.Rise, v.Bound, 100*churnFlatShare, v.From, fmtSlope(v.LateRSSSlope))
	switch {
	case !v.Judged:
		end := ""
		if n := len(r.Samples); n > 0 {
			end = fmt.Sprintf(", %s at the end (t = %.0f s)", mibOrDash(r.Samples[n-1].RSSBytes), r.Samples[n-1].T)
		}
		return "**Not judged**: " + v.Why + "; RSS at " + strings.Join(marks, ", ") + end + "."
	case v.Flat:
		return "**Flat**: " + nums + "."
	default:
		return "**Not flat**: " + nums + "."
	}
}

func (r *ChurnReport) firstLoad() string {
	if len(r.Samples) == 0 {
		return "?"
	}
	return r.Samples[0].Load
}

func (r *ChurnReport) lastLoad() string {
	if len(r.Samples) == 0 {
		return "?"
	}
	return r.Samples[len(r.Samples)-1].Load
}

func fmtSlope(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return fmt.Sprintf("%+.2f", f)
}

// num is bytes in MiB for the samples table, "-" when unknown.
func num(b int64) string {
	if b < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}
