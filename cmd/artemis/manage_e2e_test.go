package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Process-level tests of the management plane: bin/artemis started as an
// operator starts it, spoken to over loopback with net/http and the CLI.
// (a) a pull-out answered survives kill -9 (SQLite); (b) two nodes sharing
// one PostgreSQL database see each other's pull-outs; (c) mutations need
// the admin token.

const (
	mgmtSvc    = "e2e-mgmt"
	mgmtRegion = "e2e"
	mgmtToken  = "e2e-admin-token"
)

func buildArtemis(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "artemis")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("cannot build: %v\n%s", err, out)
	}
	return bin
}

// newMgmtNode returns a node on a free loopback port serving region e2e
// with args added; it is killed when the test ends.
func newMgmtNode(t *testing.T, args ...string) *e2eNode {
	t.Helper()
	addr := freeAddr(t)
	n := &e2eNode{addr: addr, base: "http://" + addr}
	n.args = append([]string{"server", "--addr", addr, "--node-url", n.base, "--region", mgmtRegion, "--zone", "z1",
		"--lease-ttl", "120s", "--log-level", "warn"}, args...)
	t.Cleanup(n.kill)
	return n
}

// startUp starts the node and waits until it reports up.
func (n *e2eNode) startUp(t *testing.T, bin string) {
	t.Helper()
	n.start(t, bin)
	n.waitUp(t)
}

// waitUp waits until the node reports up.
func (n *e2eNode) waitUp(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); n.status() != "up"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not come up:\n%s", n.base, n.logs.String())
		}
	}
}

// mgmtCall POSTs body to path with token as Bearer (none when blank) and
// returns the HTTP status and the decoded answer.
func mgmtCall(t *testing.T, base, path, token string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", base+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s%s: %v", base, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("POST %s answered non-JSON (HTTP %d): %q", path, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// registerE2E registers instances of mgmtSvc with the given ids.
func registerE2E(t *testing.T, base string, ids ...string) {
	t.Helper()
	var insts []map[string]any
	for i, id := range ids {
		ip := fmt.Sprintf("10.9.0.%d", i+1)
		insts = append(insts, map[string]any{"regionId": mgmtRegion, "zoneId": "z1", "serviceId": mgmtSvc, "instanceId": id,
			"ip": ip, "port": 80, "url": "http://" + ip + "/", "status": "up"})
	}
	if code, m := mgmtCall(t, base, "/api/registry/register.json", "", map[string]any{"instances": insts}); code != 200 || errCode(m) != "success" {
		t.Fatalf("register: HTTP %d %v", code, m)
	}
}

// visible returns the sorted instance ids service.json shows (nil, false
// when the node does not answer with success).
func visible(base string) ([]string, bool) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + "/api/discovery/service.json?serviceId=" + mgmtSvc)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	var m map[string]any
	if json.NewDecoder(resp.Body).Decode(&m) != nil || errCode(m) != "success" {
		return nil, false
	}
	ids := instanceIDsOf(m["service"])
	slices.Sort(ids)
	return ids, true
}

func wantVisible(t *testing.T, base string, want ...string) {
	t.Helper()
	got, ok := visible(base)
	if !ok || !slices.Equal(got, want) {
		t.Fatalf("unexpected instances of %s on %s; got %v (answered: %v); want %v", mgmtSvc, base, got, ok, want)
	}
}

// pullBody is operate-instance's body for instance id of mgmtSvc.
func pullBody(id string, complete bool) map[string]any {
	return map[string]any{"instanceKey": map[string]string{"regionId": mgmtRegion, "serviceId": mgmtSvc, "instanceId": id},
		"operation": "pullout", "operationComplete": complete, "operatorId": "e2e", "extensions": map[string]string{"reason": "e2e test"}}
}

// pulledOut returns the instance ids all-instance-operations lists.
func pulledOut(t *testing.T, base string) []string {
	t.Helper()
	code, m := mgmtCall(t, base, "/api/management/all-instance-operations.json", "", map[string]string{"regionId": mgmtRegion})
	if code != 200 || errCode(m) != "success" {
		t.Fatalf("all-instance-operations: HTTP %d %v", code, m)
	}
	all, _ := m["allInstanceOperations"].([]any)
	var ids []string
	for _, o := range all {
		o, _ := o.(map[string]any)
		k, _ := o["instanceKey"].(map[string]any)
		ops, _ := o["operations"].([]any)
		if slices.Contains(ops, any("pullout")) {
			ids = append(ids, fmt.Sprint(k["instanceId"]))
		}
	}
	slices.Sort(ids)
	return ids
}

// TestManagementSurvivesKill: a pull-out answered by a node on SQLite is
// still in force after kill -9 right after the answer and a restart on the
// same file: the re-registered instance stays hidden, and the operation is
// listed (HTTP and artemis ops) and logged (artemis log) with its reason.
func TestManagementSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level management test; runs without -short (CI runs it)")
	}
	bin := buildArtemis(t)
	n := newMgmtNode(t, "--store", "sqlite:"+filepath.Join(t.TempDir(), "a.db"), "--admin-token", mgmtToken)
	n.startUp(t, bin)
	registerE2E(t, n.base, "i1", "i2")
	wantVisible(t, n.base, "i1", "i2")

	code, m := mgmtCall(t, n.base, "/api/management/operate-instance.json", mgmtToken, pullBody("i1", false))
	n.kill() // SIGKILL at once: the answer must mean durable
	if code != 200 || errCode(m) != "success" {
		t.Fatalf("pull-out: HTTP %d %v", code, m)
	}

	n.startUp(t, bin)
	wantVisible(t, n.base) // the registry itself is not kept
	registerE2E(t, n.base, "i1", "i2")
	wantVisible(t, n.base, "i2")
	if got := pulledOut(t, n.base); !slices.Equal(got, []string{"i1"}) {
		t.Fatalf("unexpected pulled-out instances after the restart; got %v; want [i1]", got)
	}

	// The CLI sees the same: artemis ops and artemis log.
	code, out, errOut := cli(t, "ops", "--server", n.base, "--json")
	var ops opsView
	if err := json.Unmarshal([]byte(out), &ops); code != 0 || err != nil || len(ops.Instances) != 1 || ops.Instances[0].InstanceKey.InstanceID != "i1" {
		t.Fatalf("artemis ops after the restart: %d %v %q %q", code, err, out, errOut)
	}
	code, out, errOut = cli(t, "log", "--server", n.base, "--kind", "instance", "--id", "i1")
	if code != 0 || !strings.Contains(out, "pullout") || !strings.Contains(out, "e2e test") || !strings.Contains(out, "1 rows") {
		t.Fatalf("artemis log after the restart: %d %q %q", code, out, errOut)
	}

	// And pull-in through the CLI brings it back, on this node before the
	// answer.
	code, out, errOut = cli(t, "instance", "pull-in", "--server", n.base, "--service", mgmtSvc, "--id", "i1", "--reason", "done", "--token", mgmtToken)
	if code != 0 || !strings.Contains(out, "pulled in instance "+mgmtSvc+"/i1 (region "+mgmtRegion+"): ok") {
		t.Fatalf("artemis instance pull-in: %d %q %q", code, out, errOut)
	}
	wantVisible(t, n.base, "i1", "i2")
	if got := pulledOut(t, n.base); len(got) != 0 {
		t.Fatalf("unexpected pulled-out instances after the pull-in: %v", got)
	}
}

// TestManagementNeedsToken: with --admin-token, a mutation without it (or
// with another) is refused with HTTP 403 no-permission and changes
// nothing, reads stay open, and the token in the header or the body (or
// $ARTEMIS_ADMIN_TOKEN for the CLI) is accepted. Without --admin-token, a
// client that is not on loopback is refused.
func TestManagementNeedsToken(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level management test; runs without -short (CI runs it)")
	}
	bin := buildArtemis(t)
	n := newMgmtNode(t, "--store", "memory", "--admin-token", mgmtToken)
	n.startUp(t, bin)
	registerE2E(t, n.base, "i1", "i2")

	mutations := []struct {
		path string
		body any
	}{
		{"/api/management/operate-instance.json", pullBody("i1", false)},
		{"/api/management/operate-server.json", map[string]any{"serverKey": map[string]string{"regionId": mgmtRegion, "serverId": "10.9.0.2"},
			"operation": "pullout", "operationComplete": false, "operatorId": "e2e"}},
		{"/api/management/zone/operate-zone-operations.json", map[string]any{"zoneOperationsList": []any{map[string]any{
			"zoneKey": map[string]string{"regionId": mgmtRegion, "serviceId": mgmtSvc, "zoneId": "z1"}, "operations": []string{"pullout"}}},
			"operationComplete": false, "operatorId": "e2e"}},
		{"/api/management/canary/update-canary-ips.json", map[string]any{"serviceId": mgmtSvc, "appId": "app", "canaryIps": []string{"10.9.0.1"}}},
		{"/api/management/group/insert-groups.json", map[string]any{"groups": []any{map[string]string{"serviceId": mgmtSvc,
			"regionId": mgmtRegion, "zoneId": "z1", "name": "g", "appId": "app", "status": "active"}}}},
	}
	for _, token := range []string{"", "wrong-token"} {
		for _, mu := range mutations {
			code, m := mgmtCall(t, n.base, mu.path, token, mu.body)
			if code != 403 || errCode(m) != "no-permission" {
				t.Fatalf("%s with token %q: unexpected answer HTTP %d %v; want 403 no-permission", mu.path, token, code, m)
			}
		}
	}
	// Nothing changed, and the reads answered without a token.
	wantVisible(t, n.base, "i1", "i2")
	if got := pulledOut(t, n.base); len(got) != 0 {
		t.Fatalf("refused mutations pulled out %v", got)
	}
	for path, field := range map[string]string{
		"/api/management/all-server-operations.json":           "allServerOperations",
		"/api/management/zone/get-all-zone-operations.json":    "allZoneOperations",
		"/api/management/group/get-all-groups.json":            "groups",
		"/api/management/group/get-all-route-rules.json":       "routeRules",
		"/api/management/log/instance-operation-logs.json":     "logs",
		"/api/management/log/server-operation-logs.json":       "logs",
		"/api/management/log/zone-operation-logs.json":         "logs",
		"/api/management/log/group-logs.json":                  "logs",
		"/api/management/log/group-instance-logs.json":         "logs",
		"/api/management/group/get-all-group-operations.json":  "allGroupOperations",
		"/api/management/group/get-all-route-rule-groups.json": "routeRuleGroups",
		"/api/management/group/get-all-group-tags.json":        "allGroupTags",
		"/api/management/log/route-rule-logs.json":             "logs",
		"/api/management/log/route-rule-group-logs.json":       "logs",
		"/api/management/log/group-operation-logs.json":        "logs",
		"/api/management/log/service-instance-logs.json":       "logs",
		"/api/management/log/group-tag-logs.json":              "logs",
		"/api/management/all-instance-operations.json":         "allInstanceOperations",
	} {
		code, m := mgmtCall(t, n.base, path, "", map[string]string{"regionId": mgmtRegion})
		if list, _ := m[field].([]any); code != 200 || errCode(m) != "success" || len(list) != 0 {
			t.Fatalf("%s after refused mutations: HTTP %d %v; want success with no %s", path, code, m, field)
		}
	}

	// The CLI without a token is refused the same way, and says why.
	t.Setenv(tokenEnv, "")
	code, _, errOut := cli(t, "instance", "pull-out", "--server", n.base, "--service", mgmtSvc, "--id", "i1", "--reason", "r")
	if code != 1 || !strings.Contains(errOut, "refused: no-permission") || !strings.Contains(errOut, "HTTP 403") {
		t.Fatalf("artemis instance pull-out without a token: %d %q", code, errOut)
	}
	wantVisible(t, n.base, "i1", "i2")

	// The token in the body is accepted and logged as "".
	body := pullBody("i1", false)
	body["token"] = mgmtToken
	if code, m := mgmtCall(t, n.base, "/api/management/operate-instance.json", "", body); code != 200 || errCode(m) != "success" {
		t.Fatalf("pull-out with the body token: HTTP %d %v", code, m)
	}
	wantVisible(t, n.base, "i2")
	_, m := mgmtCall(t, n.base, "/api/management/log/instance-operation-logs.json", "", map[string]string{})
	if logs, _ := m["logs"].([]any); len(logs) != 1 || logs[0].(map[string]any)["token"] != "" {
		t.Fatalf("unexpected log after a pull-out with the body token: %v", m)
	}
	// $ARTEMIS_ADMIN_TOKEN serves the CLI.
	t.Setenv(tokenEnv, mgmtToken)
	if code, out, errOut := cli(t, "instance", "pull-in", "--server", n.base, "--service", mgmtSvc, "--id", "i1", "--reason", "r"); code != 0 {
		t.Fatalf("artemis instance pull-in with $%s: %d %q %q", tokenEnv, code, out, errOut)
	}
	wantVisible(t, n.base, "i1", "i2")

	t.Run("no token: loopback only", func(t *testing.T) {
		ip := nonLoopbackIP()
		if ip == "" {
			t.Skip("no non-loopback IPv4 address to connect from")
		}
		addr := net.JoinHostPort(ip, strings.Split(freeAddr(t), ":")[1])
		open := &e2eNode{addr: addr, base: "http://" + addr, args: []string{"server", "--addr", addr, "--node-url", "http://" + addr,
			"--region", mgmtRegion, "--store", "memory", "--log-level", "warn"}}
		t.Cleanup(open.kill)
		open.startUp(t, bin)
		registerE2E(t, open.base, "i1")
		code, m := mgmtCall(t, open.base, "/api/management/operate-instance.json", "", pullBody("i1", false))
		if code != 403 || errCode(m) != "no-permission" {
			t.Fatalf("a mutation from %s without a configured token: HTTP %d %v; want 403 no-permission", ip, code, m)
		}
		wantVisible(t, open.base, "i1")
		if !strings.Contains(open.logs.String(), "loopback") {
			t.Fatalf("the start log does not say mutations are loopback-only:\n%s", open.logs.String())
		}
	})
}

// nonLoopbackIP returns an IPv4 address of this machine that is not
// loopback, "" if none.
func nonLoopbackIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// e2ePostgres creates a fresh database on the server ARTEMIS_TEST_POSTGRES
// names (.ci/run sets it with store/testdata/pg.sh) and returns its DSN.
func e2ePostgres(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("ARTEMIS_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("PostgreSQL test skipped: ARTEMIS_TEST_POSTGRES is unset (start one with store/testdata/pg.sh start DIR; .ci/run does)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("cannot connect to ARTEMIS_TEST_POSTGRES=%s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("artemis_e2e_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("cannot create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("cannot parse %s: %v", dsn, err)
	}
	return strings.Replace(dsn, "/"+cfg.Database, "/"+name, 1)
}

// until polls cond every 20 ms for up to 5 s and returns how long it took
// to hold, or false if it never did.
func until(cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > 5*time.Second {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestManagementTwoNodesOnPostgres: two nodes, peers of each other, on one
// PostgreSQL database. A pull-out answered by one node hides the instance
// on the other (the contract says within 1 s; the test polls every 20 ms
// for up to 5 s and logs what it saw, it does not time the store), a
// pull-in brings it back, and either node can act.
func TestManagementTwoNodesOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level management test; runs without -short (CI runs it)")
	}
	dsn := e2ePostgres(t)
	bin := buildArtemis(t)
	a, b := &e2eNode{addr: freeAddr(t)}, &e2eNode{addr: freeAddr(t)}
	a.base, b.base = "http://"+a.addr, "http://"+b.addr
	peers := a.base + "," + b.base
	for _, n := range []*e2eNode{a, b} {
		n.args = []string{"server", "--addr", n.addr, "--node-url", n.base, "--region", mgmtRegion, "--zone", "z1",
			"--lease-ttl", "120s", "--log-level", "warn", "--peers", peers, "--cluster-token", "e2e-cluster",
			"--sync-timeout", "3s", "--store", dsn, "--admin-token", mgmtToken}
		t.Cleanup(n.kill)
		n.start(t, bin)
	}
	for _, n := range []*e2eNode{a, b} {
		n.waitUp(t)
	}
	registerE2E(t, a.base, "i1", "i2")
	if _, ok := until(func() bool { ids, _ := visible(b.base); return slices.Equal(ids, []string{"i1", "i2"}) }); !ok {
		ids, _ := visible(b.base)
		t.Fatalf("the registration on A did not reach B: B shows %v", ids)
	}

	const rounds = 5
	var hide, show []time.Duration
	for r := range rounds {
		from, to := a, b
		if r%2 == 1 { // odd rounds act on B and watch A
			from, to = b, a
		}
		code, m := mgmtCall(t, from.base, "/api/management/operate-instance.json", mgmtToken, pullBody("i1", false))
		if code != 200 || errCode(m) != "success" {
			t.Fatalf("round %d: pull-out on %s: HTTP %d %v", r, from.base, code, m)
		}
		wantVisible(t, from.base, "i2") // its own node: before the answer
		took, ok := until(func() bool { ids, _ := visible(to.base); return slices.Equal(ids, []string{"i2"}) })
		if !ok {
			ids, _ := visible(to.base)
			t.Fatalf("round %d: a pull-out on %s was not applied by %s within %v: it shows %v", r, from.base, to.base, took, ids)
		}
		hide = append(hide, took)
		if got := pulledOut(t, to.base); !slices.Equal(got, []string{"i1"}) {
			t.Fatalf("round %d: %s lists pulled-out %v; want [i1]", r, to.base, got)
		}

		code, m = mgmtCall(t, from.base, "/api/management/operate-instance.json", mgmtToken, pullBody("i1", true))
		if code != 200 || errCode(m) != "success" {
			t.Fatalf("round %d: pull-in on %s: HTTP %d %v", r, from.base, code, m)
		}
		wantVisible(t, from.base, "i1", "i2")
		took, ok = until(func() bool { ids, _ := visible(to.base); return slices.Equal(ids, []string{"i1", "i2"}) })
		if !ok {
			ids, _ := visible(to.base)
			t.Fatalf("round %d: a pull-in on %s was not applied by %s within %v: it shows %v", r, from.base, to.base, took, ids)
		}
		show = append(show, took)
	}
	report := func(what string, d []time.Duration) {
		s := slices.Clone(d)
		slices.Sort(s)
		note := "within the contract's 1 s"
		if s[len(s)-1] > time.Second {
			note = "ABOVE the contract's 1 s at least once (not asserted: wall-clock on a shared machine)"
		}
		t.Logf("%s seen by the other node after (polled every 20 ms, %d rounds): min %v, median %v, max %v: %s",
			what, len(s), s[0], s[len(s)/2], s[len(s)-1], note)
	}
	report("pull-out", hide)
	report("pull-in", show)

	// Both nodes read one log: 2 rows a round, whichever node wrote them.
	for _, n := range []*e2eNode{a, b} {
		code, out, errOut := cli(t, "log", "--server", n.base, "--kind", "instance", "--id", "i1", "--json")
		var rows []map[string]any
		if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 2*rounds {
			t.Fatalf("artemis log on %s: %d %v, %d rows; want %d: %q", n.base, code, err, len(rows), 2*rounds, errOut)
		}
	}
}
