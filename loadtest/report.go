package loadtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/tsenart/vegeta/v12/lib/plot"
)

// Report is everything one run measured; it is written to ResultsDir as
// JSON and as one row of ResultsDir/README.md, and its HTML plot to PlotDir.
type Report struct {
	Date           time.Time `json:"date"`
	Commit         string    `json:"commit"`
	Machine        Machine   `json:"machine"`
	Tool           string    `json:"tool"`
	Scenario       string    `json:"scenario"`
	Label          string    `json:"label,omitempty"`
	Instances      int       `json:"instances"`
	Services       int       `json:"services"`
	HeartbeatBatch int       `json:"heartbeatBatch"`
	ServerCPUs     string    `json:"serverCpus,omitempty"`
	FindMax        bool      `json:"findMax"`
	Rounds         int       `json:"rounds,omitempty"` // interleaved segments per server
	MaxP99         string    `json:"maxP99,omitempty"`

	Seed         *SeedStats         `json:"seed,omitempty"`
	ServiceProbe LatencyQuantiles   `json:"serviceProbeAfterSeed,omitzero"`
	Registry     *Summary           `json:"registry,omitempty"`
	Noop         *Summary           `json:"noop,omitempty"`
	RegistryMax  *FindMaxResult     `json:"registryFindMax,omitempty"`
	NoopMax      *FindMaxResult     `json:"noopFindMax,omitempty"`
	Cluster      int                `json:"cluster,omitempty"` // nodes of the cluster side
	ClusterMax   *FindMaxResult     `json:"clusterFindMax,omitempty"`
	Ratios       map[string]float64 `json:"ratios,omitempty"`
	Push         *PushResult        `json:"push,omitempty"`
	NoopPush     *PushResult        `json:"noopPush,omitempty"`
	Idle         *IdleResult        `json:"idleConnections,omitempty"`
	// Plot is where the run's HTML plot was written (Config.PlotDir).
	Plot string `json:"plot,omitempty"`

	plot     *plot.Plot
	plotDir  string
	pushRate float64
}

// Machine identifies where a run happened.
type Machine struct {
	NProc      int    `json:"nproc"`
	CPUModel   string `json:"cpuModel"`
	GOMAXPROCS int    `json:"gomaxprocs"` // of the generator
	Hostname   string `json:"hostname"`
}

func newReport(cfg Config) *Report {
	host, _ := os.Hostname()
	r := &Report{
		Date: time.Now().UTC(), Commit: gitDescribe(), Tool: "vegeta/v12 lib", Scenario: cfg.Scenario, Label: cfg.Label,
		Instances: cfg.Instances, Services: cfg.Services, HeartbeatBatch: cfg.HeartbeatBatch, ServerCPUs: cfg.ServerCPUs,
		FindMax: cfg.FindMax, plotDir: cfg.PlotDir,
		Machine: Machine{NProc: onlineCPUs(), CPUModel: cpuModel(), GOMAXPROCS: runtime.GOMAXPROCS(0), Hostname: host},
	}
	if cfg.FindMax {
		r.MaxP99 = cfg.MaxP99.String()
	}
	if cfg.Rounds > 1 && !cfg.FindMax {
		r.Rounds = cfg.Rounds
	}
	if cfg.SeedOnly {
		r.Scenario = "seed"
	}
	r.pushRate = float64(cfg.Rate)
	if cfg.Scenario == "push" || cfg.Scenario == "idle-ws" {
		lib := cfg.WSLibrary
		if lib == "" {
			lib = "gobwas" // the server's default
		}
		r.Tool = "server " + lib + ", client gorilla"
	}
	return r
}

// finish computes the registry-to-noop ratios.
func (r *Report) finish() {
	r.Ratios = map[string]float64{}
	if r.Registry != nil && r.Noop != nil && r.Noop.Latency.P99 > 0 && !r.FindMax {
		r.Ratios["p99"] = float64(r.Registry.Latency.P99) / float64(r.Noop.Latency.P99)
		r.Ratios["p50"] = float64(r.Registry.Latency.P50) / float64(r.Noop.Latency.P50)
	}
	if r.Push != nil && r.NoopPush != nil && r.NoopPush.Latency.P99 > 0 {
		r.Ratios["p99"] = float64(r.Push.Latency.P99) / float64(r.NoopPush.Latency.P99)
		r.Ratios["p50"] = float64(r.Push.Latency.P50) / float64(r.NoopPush.Latency.P50)
	}
	if r.RegistryMax != nil && r.ClusterMax != nil && r.RegistryMax.MaxRate > 0 {
		r.Ratios["clusterMaxRate"] = float64(r.ClusterMax.MaxRate) / float64(r.RegistryMax.MaxRate)
	}
	if r.RegistryMax != nil && r.NoopMax != nil && r.NoopMax.MaxRate > 0 {
		r.Ratios["maxRate"] = float64(r.RegistryMax.MaxRate) / float64(r.NoopMax.MaxRate)
	}
}

// Write saves the report as DIR/<stamp>-<scenario>.json and its plot, if
// the run made one, as PLOTDIR/<stamp>-<scenario>.html.
func (r *Report) Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot create %s: %w", dir, err)
	}
	base := r.Date.Format("20060102T150405Z") + "-" + r.Scenario
	if r.FindMax {
		base += "-findmax"
	}
	if r.plot != nil && (r.Registry != nil || r.Noop != nil) && !r.FindMax {
		path, err := r.writePlot(filepath.Join(r.plotDir, base+".html"))
		if err != nil {
			return "", err
		}
		r.Plot = path
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("cannot encode the report: %w", err)
	}
	name := filepath.Join(dir, base+".json")
	if err := os.WriteFile(name, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("cannot write the report: %w", err)
	}
	return name, nil
}

// writePlot writes the HTML plot to path and returns it.
func (r *Report) writePlot(path string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("cannot create %s: %w", filepath.Dir(path), err)
	}
	r.plot.Close()
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("cannot write the plot: %w", err)
	}
	w := bufio.NewWriter(f)
	_, err = r.plot.WriteTo(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("cannot write the plot: %w", err)
	}
	return path, nil
}

// readmeHeader starts the results table of ResultsDir/README.md.
const readmeHeader = `| date (UTC) | commit | machine | generator GOMAXPROCS | tool | scenario | instances | requested/s | achieved/s | P50 | P99 | P99.9 | errors | server RSS | no-op P99 | ratio | note |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
`

// Row renders the report as one row of the results table.
func (r *Report) Row() string {
	m := fmt.Sprintf("%d× %s", r.Machine.NProc, r.Machine.CPUModel)
	s, note := r.Registry, r.Label
	if s == nil {
		s = r.Noop
	}
	if s == nil && r.FindMax { // no rate passed: the row shows the first failed step
		for _, fm := range []*FindMaxResult{r.RegistryMax, r.NoopMax} {
			if s == nil && fm != nil && len(fm.Steps) > 0 {
				s = &fm.Steps[0]
			}
		}
	}
	cells := []string{r.Date.Format("2006-01-02 15:04"), r.Commit, m, fmt.Sprint(r.Machine.GOMAXPROCS), r.Tool, r.Scenario,
		fmt.Sprint(r.Instances)}
	dur := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	switch {
	case r.Push != nil:
		p := r.Push
		rss := "-"
		if p.Server != nil {
			rss = mib(p.Server.RSSBytes)
		}
		note = strings.TrimSpace(fmt.Sprintf("push latency (register sent → frame read) at %d subscribers of one service; %d changes; frames %d/%d. %s",
			p.Subscribers, p.Changes, p.FramesReceived, p.FramesExpected, note))
		noopP99, ratio := "-", "-"
		if n := r.NoopPush; n != nil {
			noopP99 = dur(n.Latency.P99)
			ratio = fmt.Sprintf("%.2f× P99", r.Ratios["p99"])
			note = strings.TrimSpace(fmt.Sprintf("no-op push (Hertz + loopback TCP only): P50 %s, frames %d/%d. %s",
				dur(n.Latency.P50), n.FramesReceived, n.FramesExpected, note))
		}
		cells = append(cells, fmt.Sprintf("%.0f changes", r.pushRate), "-", dur(p.Latency.P50), dur(p.Latency.P99), dur(p.Latency.P999),
			fmt.Sprint(p.FramesExpected-p.FramesReceived), rss, noopP99, ratio)
	case r.Idle != nil:
		i := r.Idle
		note = strings.TrimSpace(fmt.Sprintf("%d idle WebSocket sessions (%d still open after 10 s): server RSS %s → %s, %.1f KiB per connection, %d goroutines (stacks %s, heap %s). %s",
			i.Connections, i.StillOpen, mib(i.RSSBeforeBytes), mib(i.RSSAfterBytes), float64(i.BytesPerConn)/1024, i.GoroutinesAfter,
			mib(i.StackInuseBytes), mib(i.HeapInuseBytes), note))
		cells = append(cells, "-", "-", "-", "-", "-", fmt.Sprint(i.Connections-i.StillOpen), mib(i.RSSAfterBytes), "-", "-")
	case s != nil:
		rss := "-"
		if s.Server != nil {
			rss = mib(s.Server.RSSBytes)
		}
		errs := 0
		for _, n := range s.Errors {
			errs += n
		}
		noopP99, ratio := "-", "-"
		if r.Noop != nil && s != r.Noop {
			noopP99 = dur(r.Noop.Latency.P99)
		}
		if v, ok := r.Ratios["p99"]; ok {
			ratio = fmt.Sprintf("%.2f× P99", v)
		}
		if r.Rounds > 1 && r.Noop != nil && s != r.Noop {
			note = strings.TrimSpace(fmt.Sprintf("interleaved with the no-op in %d rounds. %s", r.Rounds, note))
		}
		if v, ok := r.Ratios["maxRate"]; ok {
			ratio = fmt.Sprintf("%.2f× max rate", v)
		}
		if r.FindMax {
			maxRate := func(fm *FindMaxResult) string {
				if fm == nil {
					return "not run"
				}
				if fm.FirstFail > 0 {
					return fmt.Sprintf("%d/s (first failure %d/s)", fm.MaxRate, fm.FirstFail)
				}
				return fmt.Sprintf("%d/s", fm.MaxRate)
			}
			if r.ClusterMax != nil {
				ratio = fmt.Sprintf("%.2f× max rate (cluster/one node)", r.Ratios["clusterMaxRate"])
				note = strings.TrimSpace(fmt.Sprintf("find-max P99≤%s: one node %s, a cluster of %d on the same CPUs %s. %s", r.MaxP99,
					maxRate(r.RegistryMax), r.Cluster, maxRate(r.ClusterMax), note))
			} else {
				note = strings.TrimSpace(fmt.Sprintf("find-max P99≤%s: registry %s, no-op %s. %s", r.MaxP99,
					maxRate(r.RegistryMax), maxRate(r.NoopMax), note))
			}
		}
		cells = append(cells, fmt.Sprintf("%.0f", s.RequestedRate), fmt.Sprintf("%.0f", s.AchievedRate),
			dur(s.Latency.P50), dur(s.Latency.P99), dur(s.Latency.P999), fmt.Sprint(errs), rss, noopP99, ratio)
	case r.Seed != nil:
		note = strings.TrimSpace(fmt.Sprintf("seeding: %.0f instances/s, peak RSS %s; service.json after: %s. %s",
			r.Seed.Rate, mib(r.Seed.PeakRSSBytes), r.ServiceProbe, note))
		cells = append(cells, "-", "-", dur(r.ServiceProbe.P50), dur(r.ServiceProbe.P99), dur(r.ServiceProbe.P999), "0",
			mib(r.Seed.RSSBytes), "-", "-")
	default:
		cells = append(cells, "-", "-", "-", "-", "-", "-", "-", "-", "-")
	}
	cells = append(cells, note)
	return "| " + strings.Join(cells, " | ") + " |\n"
}

// AppendRow adds the report's row to DIR/README.md, creating the table.
func (r *Report) AppendRow(dir string) error {
	path := filepath.Join(dir, "README.md")
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	s := string(b)
	if !strings.Contains(s, "| date (UTC) | commit |") {
		if s == "" {
			s = "# Recorded results\n\n"
		}
		s = strings.TrimRight(s, "\n") + "\n\n## Load tests\n\n" + readmeHeader
	}
	s = strings.TrimRight(s, "\n") + "\n" + r.Row()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// onlineCPUs counts the machine's processors (nproc --all), not the ones
// this process is pinned to.
func onlineCPUs() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "processor") {
			n++
		}
	}
	return max(n, 1)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
