package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Cluster mode (Config.Cluster): one node and a cluster of Config.Cluster
// nodes, on the same server CPUs, searched rate by rate in one run. The
// cluster's nodes are peers of each other; its seed goes through its first
// node and is replicated; the attack's requests are spread over its nodes
// round-robin, so each node serves a share of the clients and applies the
// others' replicated batches.

func runCluster(ctx context.Context, cfg Config, client *http.Client, rep *Report, single *side, scenario string,
	logf func(string, ...any), keep func(*child)) error {
	addrs := make([]string, cfg.Cluster)
	urls := make([]string, cfg.Cluster)
	for i := range addrs {
		a, err := freeLoopbackAddr()
		if err != nil {
			return err
		}
		addrs[i], urls[i] = a, "http://"+a
	}
	var nodes []*child
	defer func() {
		client.CloseIdleConnections()
		for _, n := range nodes {
			n.stop()
		}
	}()
	for i, a := range addrs {
		n, err := startChildAt(ctx, cfg.Binary, cfg.ServerCPUs, a, "server", "--lease-ttl", cfg.LeaseTTL.String(),
			"--store", "memory", "--node-url", urls[i], "--peers", strings.Join(urls, ","), "--sync-timeout", "5s")
		if err != nil {
			return err
		}
		keep(n)
		nodes = append(nodes, n)
	}
	for _, u := range urls {
		if err := waitUp(ctx, client, u, 30*time.Second); err != nil {
			return err
		}
	}
	logf("cluster of %d nodes started on %s (cpus %q)", cfg.Cluster, strings.Join(urls, ", "), cfg.ServerCPUs)
	st, err := seed(ctx, client, urls[0], cfg, nil)
	if err != nil {
		return err
	}
	for _, u := range urls { // replicated everywhere before the search
		if err := waitLeases(ctx, client, u, int64(cfg.Instances), time.Minute); err != nil {
			return err
		}
	}
	logf("cluster seeded with %d instances through %s in %v, replicated to every node", st.Instances, urls[0], st.Elapsed.Round(time.Millisecond))
	version, err := currentVersion(ctx, client, single.base)
	if err != nil {
		return err
	}
	sides := []*side{single, {name: "cluster", base: urls[0], pid: nodes[0].pid(), leases: true, bases: urls}}
	stop, err := prepare(ctx, client, cfg, scenario, version, sides)
	defer stop()
	if err != nil {
		return err
	}
	fm := findMax(ctx, cfg, sides, logf)
	rep.Cluster = cfg.Cluster
	rep.RegistryMax, rep.ClusterMax = &fm[0], &fm[1]
	rep.Registry = fm[0].Best
	rep.finish()
	logf("cluster of %d: %d/s; one node: %d/s; ratio %.2f", cfg.Cluster, fm[1].MaxRate, fm[0].MaxRate, rep.Ratios["clusterMaxRate"])
	return nil
}

// spreadTargeter spreads a scenario's requests over several nodes,
// round-robin: each node gets every len(bases)-th request of its own
// target set.
func spreadTargeter(scenario string, bases []string, cfg Config, version int64) (vegeta.Targeter, error) {
	trs := make([]vegeta.Targeter, len(bases))
	for i, b := range bases {
		tr, err := targeter(scenario, b, cfg, version)
		if err != nil {
			return nil, err
		}
		trs[i] = tr
	}
	var next atomic.Uint64
	return func(t *vegeta.Target) error {
		return trs[(next.Add(1)-1)%uint64(len(trs))](t)
	}, nil
}

// waitUp waits until the node at base reports status up.
func waitUp(ctx context.Context, client *http.Client, base string, d time.Duration) error {
	for deadline := time.Now().Add(d); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
		var a struct{ NodeStatus struct{ Status string } }
		if getJSON(ctx, client, base+"/api/status/node.json", &a) == nil && a.NodeStatus.Status == "up" {
			return nil
		}
	}
	return fmt.Errorf("%s did not report up within %v", base, d)
}

// waitLeases waits until the node at base holds n leases.
func waitLeases(ctx context.Context, client *http.Client, base string, n int64, d time.Duration) error {
	var got int64
	for deadline := time.Now().Add(d); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
		var a struct{ LeaseCount int64 }
		if getJSON(ctx, client, base+"/api/status/leases.json?appIds=none", &a) == nil {
			if got = a.LeaseCount; got >= n {
				return nil
			}
		}
	}
	return fmt.Errorf("%s holds %d of %d instances after %v", base, got, n, d)
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp.Body)
	return json.NewDecoder(resp.Body).Decode(v)
}
