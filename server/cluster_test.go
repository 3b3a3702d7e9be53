package server

import (
	"context"
	stdjson "encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/artemis-go/artemis/cluster"
	"github.com/artemis-go/artemis/core"
)

// testNode is one node of an in-process cluster.
type testNode struct {
	s    *Server
	reg  *core.Registry
	base string
	ln   net.Listener
}

// listeners reserves n loopback addresses.
func listeners(t *testing.T, n int) []net.Listener {
	t.Helper()
	lns := make([]net.Listener, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	return lns
}

func urlsOf(lns []net.Listener) []string {
	urls := make([]string, len(lns))
	for i, ln := range lns {
		urls[i] = "http://" + ln.Addr().String()
	}
	return urls
}

// clusterConfig is a cluster.Config with short intervals for tests.
func clusterConfig(peers []string, token string) cluster.Config {
	return cluster.Config{Peers: peers, Token: token, SyncTimeout: 2 * time.Second, PollInterval: 50 * time.Millisecond,
		HeartbeatDelay: 20 * time.Millisecond, RetryFor: time.Second, RequestTimeout: time.Second}
}

// startNode starts a node of the cluster peers on ln, with a real clock.
func startNode(t *testing.T, ln net.Listener, cc cluster.Config) *testNode {
	t.Helper()
	reg, err := core.New(core.Config{Region: "SHA", Zone: "sha-a", LeaseTTL: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	s := New(reg, Config{Listener: ln, NodeURL: base, Cluster: cc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	go s.Run()
	n := &testNode{s: s, reg: reg, base: base, ln: ln}
	t.Cleanup(n.stop)
	waitFor(t, func() bool {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, "node "+base+" listening")
	return n
}

func (n *testNode) stop() {
	http.DefaultClient.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.s.Shutdown(ctx)
	n.reg.Close()
}

// startCluster starts n nodes that name each other as peers and waits until
// every one is up.
func startCluster(t *testing.T, n int, token string) []*testNode {
	t.Helper()
	lns := listeners(t, n)
	peers := urlsOf(lns)
	nodes := make([]*testNode, n)
	for i, ln := range lns {
		nodes[i] = startNode(t, ln, clusterConfig(peers, token))
	}
	for _, nd := range nodes {
		waitFor(t, func() bool { return nd.s.status() == cluster.StatusUp }, "node "+nd.base+" up")
		waitFor(t, func() bool {
			for _, p := range nd.s.cluster.Peers() {
				if p.Status != cluster.StatusUp {
					return false
				}
			}
			return true
		}, "node "+nd.base+" sees its peers up")
	}
	return nodes
}

// instanceIDs lists the instance ids service.json of svc answers on n.
func (n *testNode) instanceIDs(t *testing.T, svc string) []string {
	t.Helper()
	var resp struct {
		ResponseStatus responseStatus
		Service        struct {
			Instances []struct{ InstanceID string }
		}
	}
	body := httpDo(t, "GET", n.base+"/api/discovery/service.json?serviceId="+svc, "")
	if err := stdjson.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("service.json is not JSON: %v: %s", err, body)
	}
	var ids []string
	for _, in := range resp.Service.Instances {
		ids = append(ids, in.InstanceID)
	}
	return sortedStrings(ids)
}

func TestClusterReplicatesClientOperations(t *testing.T) {
	nodes := startCluster(t, 3, "")
	a, b, c := nodes[0], nodes[1], nodes[2]
	sub := dial(t, c.base, "/ws/discovery/instance-change")
	sub.WriteMessage(websocket.TextMessage, []byte(`{"serviceId":"svc"}`))
	waitFor(t, func() bool { return len(hubKeys(c.s)) == 1 }, "the subscription on c")

	httpDo(t, "POST", a.base+"/api/registry/register.json", `{"instances":[`+inst("svc", "i1")+`,`+inst("svc", "i2")+`]}`)
	for _, n := range nodes {
		waitFor(t, func() bool { return strings.Join(n.instanceIDs(t, "svc"), ",") == "i1,i2" }, "both instances on "+n.base)
	}
	// Push on a peer for a replicated change.
	got := map[string]bool{}
	for range 2 {
		ch, ok := next(t, sub, 2*time.Second)
		if !ok {
			t.Fatalf("c pushed %v; want new i1 and i2", got)
		}
		got[ch.ChangeType+" "+ch.Instance.InstanceID] = true
	}
	if !got["new i1"] || !got["new i2"] {
		t.Fatalf("c pushed %v; want new i1 and i2", got)
	}
	// A heartbeat is replicated (and not replicated again by the peers).
	before := b.s.replicatedIn.Load()
	httpDo(t, "POST", a.base+"/api/registry/heartbeat.json", `{"instances":[{"regionId":"sha","serviceId":"svc","instanceId":"i1"}]}`)
	waitFor(t, func() bool { return b.s.replicatedIn.Load() > before }, "the heartbeat at b")
	// An unregister on another node is replicated everywhere.
	httpDo(t, "POST", b.base+"/api/registry/unregister.json", `{"instances":[{"regionId":"sha","serviceId":"svc","instanceId":"i2"}]}`)
	for _, n := range nodes {
		waitFor(t, func() bool { return strings.Join(n.instanceIDs(t, "svc"), ",") == "i1" }, "i2 gone on "+n.base)
	}
	time.Sleep(100 * time.Millisecond) // nothing echoes back: each change was applied once per node
	for _, n := range nodes {
		for _, p := range n.s.cluster.Stats() {
			if p.Failures != 0 {
				t.Fatalf("%s -> %s: %d failed batches", n.base, p.URL, p.Failures)
			}
		}
	}
	for _, n := range []*testNode{b, c} {
		if v := n.reg.Stats().Instances; v != 1 {
			t.Fatalf("%s holds %d instances; want 1", n.base, v)
		}
	}
	out := scrape(t, a.s)
	for _, want := range []string{`artemis_replication_batches_total{peer="` + b.base + `"}`, `artemis_cluster_peer_up{peer="` + c.base + `"} 1`, "artemis_node_up 1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
}

func TestClusterStatusEndpoints(t *testing.T) {
	nodes := startCluster(t, 3, "")
	var cs struct {
		NodeCount   int
		NodesStatus []nodeStatus
	}
	if err := stdjson.Unmarshal([]byte(httpDo(t, "GET", nodes[0].base+"/api/status/cluster.json", "")), &cs); err != nil {
		t.Fatal(err)
	}
	if cs.NodeCount != 3 || len(cs.NodesStatus) != 3 || cs.NodesStatus[0].Node.URL != nodes[0].base {
		t.Fatalf("unexpected cluster.json %+v", cs)
	}
	for _, ns := range cs.NodesStatus {
		if ns.Status != "up" || !ns.CanServiceRegistry || ns.Node.Zone.ZoneID != "sha-a" {
			t.Fatalf("unexpected node status %+v", ns)
		}
	}
	upNodes := func() []string {
		var r struct{ Nodes []serviceNode }
		stdjson.Unmarshal([]byte(httpDo(t, "GET", nodes[0].base+"/api/cluster/up-registry-nodes.json", "")), &r)
		var urls []string
		for _, n := range r.Nodes {
			urls = append(urls, n.URL)
		}
		return sortedStrings(urls)
	}
	if got := upNodes(); len(got) != 3 {
		t.Fatalf("up-registry-nodes lists %v; want the 3 nodes", got)
	}
	nodes[2].stop()
	waitFor(t, func() bool { return len(upNodes()) == 2 }, "the stopped node gone from up-registry-nodes")
	stdjson.Unmarshal([]byte(httpDo(t, "GET", nodes[0].base+"/api/status/cluster.json", "")), &cs)
	if st := cs.NodesStatus[2].Status; st != "unknown" && st != "down" {
		t.Fatalf("a stopped peer is %q; want unknown or down", st)
	}
}

func TestClusterToken(t *testing.T) {
	nodes := startCluster(t, 2, "s3cret")
	a, b := nodes[0], nodes[1]
	for _, auth := range []string{"", "Bearer wrong", "s3cret", "Bearer s3cret2", "Basic s3cret"} {
		req, _ := http.NewRequest("POST", b.base+"/api/replication/registry/register.json", strings.NewReader(`{"instances":[`+inst("svc", "forged")+`]}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(body), `"no-permission"`) {
			t.Fatalf("replication with Authorization %q answered %d %s; want 401 no-permission", auth, resp.StatusCode, body)
		}
	}
	if ids := b.instanceIDs(t, "svc"); len(ids) != 0 {
		t.Fatalf("refused replication applied %v", ids)
	}
	resp, _ := http.Get(b.base + "/api/replication/registry/services.json")
	if resp.StatusCode != 401 {
		t.Fatalf("services.json without the token answered %d; want 401", resp.StatusCode)
	}
	resp.Body.Close()
	// The nodes themselves send it.
	httpDo(t, "POST", a.base+"/api/registry/register.json", `{"instances":[`+inst("svc", "real")+`]}`)
	waitFor(t, func() bool { return strings.Join(b.instanceIDs(t, "svc"), ",") == "real" }, "the replicated instance on b")
}

// A node that starts copies the registry from a peer before it reports up:
// registry and discovery answer service-unavailable meanwhile, and once up
// it has every instance.
func TestStartupSync(t *testing.T) {
	lns := listeners(t, 2)
	peers := urlsOf(lns)
	a := startNode(t, lns[0], clusterConfig(peers, "tok"))
	waitFor(t, func() bool { return a.s.status() == cluster.StatusUp }, "a up alone after the sync timeout")
	var body strings.Builder
	body.WriteString(`{"instances":[`)
	for i := range 3000 {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(inst("svc-"+string(rune('a'+i%5)), "i"+strconv.Itoa(i)))
	}
	body.WriteString(`]}`)
	httpDo(t, "POST", a.base+"/api/registry/register.json", body.String())

	b := startNode(t, lns[1], clusterConfig(peers, "tok"))
	sawStarting := false
	for b.s.status() != cluster.StatusUp {
		if b.s.status() == cluster.StatusStarting {
			sawStarting = true
			r := httpDo(t, "GET", b.base+"/api/discovery/service.json?serviceId=svc-a", "")
			if b.s.status() == cluster.StatusStarting && !strings.Contains(r, "service-unavailable") {
				t.Fatalf("a starting node answered discovery: %.200s", r)
			}
		}
		time.Sleep(time.Millisecond)
	}
	if got := b.reg.Stats().Instances; got != 3000 {
		t.Fatalf("b reported up with %d instances; want 3000 (sawStarting %v)", got, sawStarting)
	}
	if !sawStarting {
		t.Log("b copied before the first look (fast machine)")
	}
}

// A replicated heartbeat of an instance the peer lacks registers it.
func TestReplicatedHeartbeatRegisters(t *testing.T) {
	s := newTestServer(t, Config{})
	r := do(s, "POST", "/api/replication/registry/heartbeat.json", `{"instances":[`+instA+`]}`)
	if code, ec := answer(t, r); code != 200 || ec != "success" {
		t.Fatalf("replicated heartbeat answered %d %s", code, ec)
	}
	if n := s.reg.Stats().Instances; n != 1 {
		t.Fatalf("a replicated heartbeat of an unknown instance left %d instances; want 1", n)
	}
	// A starting node accepts replication; its clients are refused.
	s.state.Store(nodeStarting)
	if code, ec := answer(t, do(s, "POST", "/api/replication/registry/unregister.json", `{"instances":[`+instA+`]}`)); code != 200 || ec != "success" {
		t.Fatalf("replicated unregister on a starting node answered %d %s", code, ec)
	}
	if code, ec := answer(t, do(s, "POST", "/api/registry/register.json", `{"instances":[`+instA+`]}`)); code != 200 || ec != "service-unavailable" {
		t.Fatalf("client register on a starting node answered %d %s; want service-unavailable", code, ec)
	}
	if code, ec := answer(t, do(s, "GET", "/api/discovery/service.json?serviceId=x", "")); code != 200 || ec != "service-unavailable" {
		t.Fatalf("discovery on a starting node answered %d %s; want service-unavailable", code, ec)
	}
}

// A heartbeat a peer sent before an unregister (it waits in the peer's
// outbox for up to HeartbeatDelay) must not bring the instance back: here
// the heartbeat is replicated late on purpose.
func TestLateReplicatedHeartbeatDoesNotUndoUnregister(t *testing.T) {
	lns := listeners(t, 2)
	peers := urlsOf(lns)
	cc := clusterConfig(peers, "")
	cc.HeartbeatDelay = 300 * time.Millisecond // heartbeats leave A late
	a := startNode(t, lns[0], cc)
	b := startNode(t, lns[1], cc)
	for _, n := range []*testNode{a, b} {
		waitFor(t, func() bool { return n.s.status() == cluster.StatusUp }, n.base+" up")
	}
	var body []string
	for i := range 10 {
		body = append(body, inst("zomb", "z"+strconv.Itoa(i)))
	}
	httpDo(t, "POST", a.base+"/api/registry/register.json", `{"instances":[`+strings.Join(body, ",")+`]}`)
	waitFor(t, func() bool { return len(b.instanceIDs(t, "zomb")) == 10 }, "the instances on b")
	for i := range 10 {
		key := `{"instances":[{"regionId":"sha","serviceId":"zomb","instanceId":"z` + strconv.Itoa(i) + `"}]}`
		httpDo(t, "POST", a.base+"/api/registry/heartbeat.json", key)  // waits in a's outbox
		httpDo(t, "POST", b.base+"/api/registry/unregister.json", key) // at once
	}
	sent := a.s.cluster.Stats()[0].Batches
	waitFor(t, func() bool { return a.s.cluster.Stats()[0].Batches > sent }, "a's late heartbeats delivered to b")
	time.Sleep(100 * time.Millisecond)
	for _, n := range []*testNode{a, b} {
		if ids := n.instanceIDs(t, "zomb"); len(ids) != 0 {
			t.Fatalf("%s shows %v after every instance was unregistered; a late heartbeat brought them back", n.base, ids)
		}
	}
}
