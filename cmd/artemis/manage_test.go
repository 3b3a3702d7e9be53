package main

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	artemis "github.com/artemis-go/artemis/client"
)

// The management commands against a fake node that records what it is
// sent and answers from a script; manage_e2e_test.go runs them against the
// real server.

type mgmtRequest struct {
	path, auth string
	body       map[string]any
}

type fakeMgmt struct {
	*httptest.Server
	// answers maps a path to its answer (HTTP 200); unknown paths answer
	// success with nothing else.
	answers map[string]string
	// status, when set, overrides the HTTP status of every answer.
	status int

	mu   sync.Mutex
	reqs []mgmtRequest // guarded by mu
}

func newFakeMgmt(t *testing.T) *fakeMgmt {
	f := &fakeMgmt{answers: map[string]string{
		"/api/status/deployment.json": `{"regionId":"r9","zoneId":"z9","responseStatus":{"status":"success","errorCode":"success"}}`,
	}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		json.Unmarshal(b, &body)
		f.mu.Lock()
		f.reqs = append(f.reqs, mgmtRequest{path: r.URL.Path, auth: r.Header.Get("Authorization"), body: body})
		f.mu.Unlock()
		answer, ok := f.answers[r.URL.Path]
		if !ok {
			answer = `{"responseStatus":{"status":"success","errorCode":"success","message":""}}`
		}
		if f.status != 0 {
			w.WriteHeader(f.status)
		}
		io.WriteString(w, answer)
	}))
	t.Cleanup(f.Close)
	return f
}

// sent returns the requests to path.
func (f *fakeMgmt) sent(path string) []mgmtRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []mgmtRequest
	for _, r := range f.reqs {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// only returns the one request to path, failing the test otherwise.
func (f *fakeMgmt) only(t *testing.T, path string) mgmtRequest {
	t.Helper()
	got := f.sent(path)
	if len(got) != 1 {
		t.Fatalf("unexpected number of requests to %s; got %d; want 1", path, len(got))
	}
	return got[0]
}

// squeeze collapses each run of spaces in a table to one, so assertions
// do not depend on column widths.
func squeeze(table string) string {
	lines := strings.Split(table, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// asJSON round-trips v so it compares with decoded bodies.
func asJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(v)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPullCommandsSend(t *testing.T) {
	t.Setenv("USER", "alice")
	t.Setenv(tokenEnv, "")
	reason := map[string]any{"reason": "deploy 42"}
	for _, c := range []struct {
		name    string
		args    []string
		path    string
		want    map[string]any
		wantOut string
	}{
		{"instance pull-out", []string{"instance", "pull-out", "--service", "order", "--id", "order-1", "--region", "r1", "--reason", "deploy 42", "--token", "T"},
			"/api/management/operate-instance.json",
			map[string]any{"instanceKey": map[string]any{"regionId": "r1", "serviceId": "order", "instanceId": "order-1"},
				"operation": "pullout", "operationComplete": false, "operatorId": "alice", "extensions": reason},
			"pulled out instance order/order-1 (region r1): ok"},
		{"instance pull-in", []string{"instance", "pull-in", "--service", "order", "--id", "order-1", "--region", "r1", "--reason", "deploy 42", "--token", "T", "--operator", "bob"},
			"/api/management/operate-instance.json",
			map[string]any{"instanceKey": map[string]any{"regionId": "r1", "serviceId": "order", "instanceId": "order-1"},
				"operation": "pullout", "operationComplete": true, "operatorId": "bob", "extensions": reason},
			"pulled in instance order/order-1 (region r1): ok"},
		{"server pull-out", []string{"server", "pull-out", "--ip", "10.0.0.7", "--region", "r1", "--reason", "deploy 42", "--token", "T"},
			"/api/management/operate-server.json",
			map[string]any{"serverKey": map[string]any{"regionId": "r1", "serverId": "10.0.0.7"},
				"operation": "pullout", "operationComplete": false, "operatorId": "alice", "extensions": reason},
			"pulled out server 10.0.0.7 (region r1): ok"},
		{"zone pull-in", []string{"zone", "pull-in", "--service", "order", "--zone", "z2", "--region", "r1", "--reason", "deploy 42", "--token", "T"},
			"/api/management/zone/operate-zone-operations.json",
			map[string]any{"zoneOperationsList": []any{map[string]any{"zoneKey": map[string]any{"regionId": "r1", "serviceId": "order", "zoneId": "z2"},
				"operations": []any{"pullout"}}}, "operationComplete": true, "operatorId": "alice", "operation": "pullout",
				"reason": "deploy 42", "extensions": reason},
			"pulled in zone order/z2 (region r1): ok"},
		{"canary set", []string{"canary", "set", "--service", "order", "--app", "web", "--ip", "10.0.0.1, 10.0.0.2", "--token", "T", "--reason", "deploy 42"},
			"/api/management/canary/update-canary-ips.json",
			map[string]any{"serviceId": "order", "appId": "web", "canaryIps": []any{"10.0.0.1", "10.0.0.2"}, "operatorId": "alice",
				"reason": "deploy 42", "extensions": reason},
			"canary IPs of order for app web: 10.0.0.1, 10.0.0.2: ok"},
		{"canary clear", []string{"canary", "set", "--service", "order", "--app", "web", "--ip", "", "--token", "T"},
			"/api/management/canary/update-canary-ips.json",
			map[string]any{"serviceId": "order", "appId": "web", "canaryIps": []any{}, "operatorId": "alice",
				"reason": "", "extensions": map[string]any{"reason": ""}},
			"canary IPs of order for app web: none: ok"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeMgmt(t)
			code, out, errOut := cli(t, append(c.args, "--server", f.URL)...)
			if code != 0 || strings.TrimSpace(out) != c.wantOut {
				t.Fatalf("unexpected result; got %d %q %q; want 0 %q", code, out, errOut, c.wantOut)
			}
			r := f.only(t, c.path)
			if r.auth != "Bearer T" {
				t.Fatalf("unexpected Authorization; got %q; want %q", r.auth, "Bearer T")
			}
			if diff := cmp.Diff(asJSON(t, c.want), r.body); diff != "" {
				t.Fatalf("unexpected body (-want +got):\n%s", diff)
			}
			if n := len(f.sent("/api/status/deployment.json")); n != 0 {
				t.Fatalf("asked the node's region %d times with --region given", n)
			}
		})
	}
}

// Without --region the node's region is used; without --token,
// $ARTEMIS_ADMIN_TOKEN; with neither, no Authorization header.
func TestPullDefaults(t *testing.T) {
	t.Setenv("USER", "")
	f := newFakeMgmt(t)
	t.Setenv(tokenEnv, "from-env")
	if code, out, errOut := cli(t, "instance", "pull-out", "--service", "s", "--id", "i", "--reason", "r", "--server", f.URL); code != 0 || !strings.Contains(out, "(region r9)") {
		t.Fatalf("unexpected result: %d %q %q", code, out, errOut)
	}
	r := f.only(t, "/api/management/operate-instance.json")
	key, _ := r.body["instanceKey"].(map[string]any)
	if key["regionId"] != "r9" || r.auth != "Bearer from-env" || r.body["operatorId"] != "artemis-cli" {
		t.Fatalf("unexpected defaults: region %v, auth %q, operator %v", key["regionId"], r.auth, r.body["operatorId"])
	}
	t.Setenv(tokenEnv, "")
	if code, _, errOut := cli(t, "server", "pull-in", "--ip", "1.2.3.4", "--reason", "r", "--server", f.URL); code != 0 {
		t.Fatalf("unexpected result: %d %q", code, errOut)
	}
	if r := f.only(t, "/api/management/operate-server.json"); r.auth != "" {
		t.Fatalf("unexpected Authorization without a token: %q", r.auth)
	}
}

func TestManageUsage(t *testing.T) {
	f := newFakeMgmt(t)
	for _, args := range [][]string{
		{"instance", "pull-out", "--service", "s", "--id", "i"},     // no reason
		{"instance", "pull-out", "--service", "s", "--reason", "r"}, // no id
		{"instance", "pull-in", "--service", "s", "--id", "i", "--reason", "r", "extra"},
		{"server", "pull-out", "--reason", "r"},                             // no ip
		{"zone", "pull-out", "--service", "s", "--reason", "r"},             // no zone
		{"zone", "drain", "--service", "s", "--zone", "z", "--reason", "r"}, // no such verb
		{"zone"},
		{"canary", "set", "--service", "s", "--app", "a"}, // no --ip
		{"canary", "get", "--service", "s"},
		{"log", "--kind", "nope"},
		{"log", "--limit", "-1"},
		{"ops", "extra"},
		{"instance", "pull-out", "--service", "s", "--id", "i", "--reason", "r", "--bogus"},
	} {
		if code, _, _ := cli(t, append(args, "--server", f.URL)...); code != 2 {
			t.Fatalf("artemis %s: unexpected exit status %d; want 2", strings.Join(args, " "), code)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) != 0 {
		t.Fatalf("usage errors sent %d requests; want none", len(f.reqs))
	}
}

// A refusal exits 1 with the in-band errorCode and message, whether it
// comes with HTTP 403 or 200; it is final (no other node is asked), while
// an unavailable node is skipped.
func TestPullRefused(t *testing.T) {
	args := func(servers string) []string {
		return []string{"instance", "pull-out", "--service", "s", "--id", "i", "--region", "r", "--reason", "x", "--server", servers}
	}
	forbidden := newFakeMgmt(t)
	forbidden.status = 403
	forbidden.answers["/api/management/operate-instance.json"] = `{"responseStatus":{"status":"fail","errorCode":"no-permission","message":"management mutations need the admin token"}}`
	other := newFakeMgmt(t)
	code, out, errOut := cli(t, args(forbidden.URL+","+other.URL)...)
	if code != 1 || out != "" || !strings.Contains(errOut, "refused: no-permission: management mutations need the admin token (HTTP 403)") {
		t.Fatalf("unexpected result of a 403: %d %q %q", code, out, errOut)
	}
	if n := len(other.sent("/api/management/operate-instance.json")); n != 0 {
		t.Fatalf("a refusal was tried on another node %d times", n)
	}

	bad := newFakeMgmt(t)
	bad.answers["/api/management/operate-instance.json"] = `{"responseStatus":{"status":"fail","errorCode":"bad-request","message":"operatorId is null or empty"}}`
	if code, _, errOut := cli(t, args(bad.URL)...); code != 1 || !strings.Contains(errOut, "refused: bad-request: operatorId is null or empty") {
		t.Fatalf("unexpected result of an in-band bad-request: %d %q", code, errOut)
	}

	draining := newFakeMgmt(t)
	draining.answers["/api/management/operate-instance.json"] = `{"responseStatus":{"status":"fail","errorCode":"service-unavailable","message":"node is starting"}}`
	ok := newFakeMgmt(t)
	if code, out, errOut := cli(t, args(draining.URL+","+ok.URL)...); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("unexpected result through a draining node: %d %q %q", code, out, errOut)
	}
	ok.only(t, "/api/management/operate-instance.json")
}

func TestOpsTable(t *testing.T) {
	f := newFakeMgmt(t)
	const okStatus = `"responseStatus":{"status":"success","errorCode":"success","message":""}`
	f.answers["/api/management/all-instance-operations.json"] = `{"allInstanceOperations":[` +
		`{"instanceKey":{"regionId":"r1","serviceId":"order","instanceId":"order-1"},"operations":["pullout"]},` +
		`{"instanceKey":{"regionId":"r1","serviceId":"pay","instanceId":"pay-1"},"operations":["pullout"]}],` + okStatus + `}`
	f.answers["/api/management/all-server-operations.json"] = `{"allServerOperations":[{"serverKey":{"regionId":"r1","serverId":"10.0.0.7"},"operations":["pullout"]}],` + okStatus + `}`
	f.answers["/api/management/zone/get-all-zone-operations.json"] = `{"allZoneOperations":[{"zoneKey":{"regionId":"r1","serviceId":"order","zoneId":"z2"},"operations":["pullout"]}],` + okStatus + `}`
	f.answers["/api/management/group/get-all-group-operations.json"] = `{"allGroupOperations":[{"groupId":7,"operations":["pullout"]},{"groupId":8,"operations":["pullout"]}],` + okStatus + `}`
	f.answers["/api/management/group/get-all-groups.json"] = `{"groups":[{"groupId":7,"groupKey":"order/r1/z1/blue"},{"groupId":8,"groupKey":"pay/r2/z1/green"}],` + okStatus + `}`

	code, out, errOut := cli(t, "ops", "--server", f.URL)
	if code != 0 {
		t.Fatalf("ops: %d %q", code, errOut)
	}
	for _, want := range []string{"instance r1 order order-1", "server r1 - 10.0.0.7",
		"zone r1 order zone z2", "group r1 order group z1/blue (id 7)", "group r2 pay group z1/green (id 8)",
		"6 pulled out: 2 instances, 1 servers, 1 zones, 2 groups"} {
		if !strings.Contains(squeeze(out), want) {
			t.Fatalf("ops table lacks %q:\n%s", want, out)
		}
	}
	if r := f.only(t, "/api/management/all-instance-operations.json"); r.body["regionId"] != "" {
		t.Fatalf("unexpected regionId without --region: %v", r.body["regionId"])
	}

	code, out, _ = cli(t, "ops", "--server", f.URL, "--service", "ORDER", "--region", "r1", "--json")
	var v opsView
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
		t.Fatalf("ops --json: %d %v %q", code, err, out)
	}
	if len(v.Instances) != 1 || v.Instances[0].InstanceKey.InstanceID != "order-1" || len(v.Servers) != 1 || len(v.Zones) != 1 ||
		len(v.Groups) != 1 || v.Groups[0].GroupKey != "order/r1/z1/blue" {
		t.Fatalf("unexpected ops of order in r1: %+v", v)
	}
	if got := f.sent("/api/management/all-server-operations.json"); got[len(got)-1].body["regionId"] != "r1" {
		t.Fatalf("--region was not sent: %v", got[len(got)-1].body)
	}
}

func TestLogTable(t *testing.T) {
	f := newFakeMgmt(t)
	const okStatus = `"responseStatus":{"status":"success","errorCode":"success","message":""}`
	f.answers["/api/management/log/instance-operation-logs.json"] = `{"logs":[` +
		`{"id":3,"operation":"pullout","operatorId":"alice","token":"","createTime":1700000003000,"regionId":"r1","serviceId":"order","instanceId":"order-1","complete":false,"extensions":"{\"reason\":\"deploy 42\"}"},` +
		`{"id":9,"operation":"pullout","operatorId":"bob","token":"","createTime":1700000009000,"regionId":"r1","serviceId":"order","instanceId":"order-1","complete":true,"extensions":"{}"}],` + okStatus + `}`
	f.answers["/api/management/log/server-operation-logs.json"] = `{"logs":[` +
		`{"id":5,"operation":"pullout","operatorId":"carol","token":"","createTime":1700000005000,"regionId":"r1","serverId":"10.0.0.7","complete":false,"extensions":"{\"reason\":\"disk\"}"}],` + okStatus + `}`
	f.answers["/api/management/log/zone-operation-logs.json"] = `{"logs":[],` + okStatus + `}`
	f.answers["/api/management/log/group-operation-logs.json"] = `{"logs":[` +
		`{"id":1,"operation":"pullout","operatorId":"dave","token":"","createTime":1700000001000,"groupId":7,"complete":false,"extensions":"{}","reason":"canary bad"}],` + okStatus + `}`
	f.answers["/api/management/log/group-logs.json"] = `{"logs":[` +
		`{"id":2,"operation":"insert-groups","operatorId":"dave","token":"","createTime":1700000002000,"groupId":7,"serviceId":"order","regionId":"r1","zoneId":"z1","name":"blue","appId":"a","status":"active","extensions":"{}","reason":""}],` + okStatus + `}`

	code, out, errOut := cli(t, "log", "--server", f.URL, "--service", "order", "--complete", "false", "--by", "alice", "--filter", "extensions={}")
	if code != 0 {
		t.Fatalf("log: %d %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"group", "instance", "server", "instance"} // by time, across kinds
	if len(lines) != len(want)+2 || lines[len(lines)-1] != "4 rows" {
		t.Fatalf("unexpected log table:\n%s", out)
	}
	for i, kind := range want {
		if f := strings.Fields(lines[i+1]); f[2] != kind {
			t.Fatalf("row %d: unexpected kind; got %q; want %q:\n%s", i, f[2], kind, out)
		}
	}
	for _, w := range []string{"pullout added r1/order/order-1 alice deploy 42", "removed r1/order/order-1 bob",
		"r1/10.0.0.7", "disk", "group 7", "canary bad"} {
		if !strings.Contains(squeeze(out), w) {
			t.Fatalf("log table lacks %q:\n%s", w, out)
		}
	}
	for _, kind := range []string{"instance", "server", "zone", "group"} {
		r := f.only(t, "/api/management/log/"+logKinds[kind]+".json")
		wantBody := map[string]any{"serviceId": "order", "complete": "false", "operatorId": "alice", "extensions": "{}"}
		if diff := cmp.Diff(wantBody, r.body); diff != "" {
			t.Fatalf("unexpected filters sent to the %s log (-want +got):\n%s", kind, diff)
		}
	}

	code, out, _ = cli(t, "log", "--server", f.URL, "--kind", "groups", "--json", "--limit", "1")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil {
		t.Fatalf("log --json: %d %v %q", code, err, out)
	}
	if len(rows) != 1 || rows[0]["kind"] != "groups" || rows[0]["operation"] != "insert-groups" || rows[0]["name"] != "blue" {
		t.Fatalf("unexpected group-logs rows: %v", rows)
	}
	code, out, _ = cli(t, "log", "--server", f.URL, "--kind", "instance-operation-logs", "--limit", "1")
	if code != 0 || !strings.Contains(out, "bob") || strings.Contains(out, "alice") || !strings.Contains(out, "1 rows") {
		t.Fatalf("--limit 1 does not keep the newest row: %d\n%s", code, out)
	}
}

// TestManageAgainstServer runs the management commands against a real
// in-process node (a memory management plane; a loopback client may
// mutate without a token) and checks their effect on discovery, and that
// the SDK's Picker honours the canary rule the CLI set.
func TestManageAgainstServer(t *testing.T) {
	base := startInProcess(t)
	t.Setenv(tokenEnv, "")
	must := func(args ...string) string {
		t.Helper()
		code, out, errOut := cli(t, append(args, "--server", base)...)
		if code != 0 {
			t.Fatalf("artemis %s: %d %q %q", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	shown := func() []string {
		t.Helper()
		var resp struct {
			Service artemis.Service `json:"service"`
		}
		if err := getJSON(context.Background(), []string{base}, "/api/discovery/service.json?serviceId=order", &resp); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, i := range resp.Service.Instances {
			ids = append(ids, i.InstanceID)
		}
		slices.Sort(ids)
		return ids
	}
	want := func(step string, ids ...string) {
		t.Helper()
		if got := shown(); !slices.Equal(got, ids) {
			t.Fatalf("%s: unexpected instances of order; got %v; want %v", step, got, ids)
		}
	}
	must("instance", "register", "--service", "order", "--id", "order-1", "--url", "http://10.0.0.1", "--ip", "10.0.0.1", "--zone", "z1")
	must("instance", "register", "--service", "order", "--id", "order-2", "--url", "http://10.0.0.2", "--ip", "10.0.0.2", "--zone", "z2")
	want("registered", "order-1", "order-2")

	for _, c := range []struct {
		what    []string
		hidden  string
		opsLine string
	}{
		{[]string{"instance", "--service", "order", "--id", "order-1"}, "order-1", "instance default order order-1"},
		{[]string{"server", "--ip", "10.0.0.2"}, "order-2", "server default - 10.0.0.2"},
		{[]string{"zone", "--service", "order", "--zone", "z1"}, "order-1", "zone default order zone z1"},
	} {
		verb := func(v string) []string {
			return append([]string{c.what[0], v}, append(c.what[1:], "--reason", "test "+c.what[0])...)
		}
		must(verb("pull-out")...)
		var rest []string
		for _, id := range []string{"order-1", "order-2"} {
			if id != c.hidden {
				rest = append(rest, id)
			}
		}
		want(c.what[0]+" pull-out", rest...)
		if out := must("ops"); !strings.Contains(squeeze(out), c.opsLine) || !strings.Contains(out, "1 pulled out") {
			t.Fatalf("artemis ops after the %s pull-out lacks %q:\n%s", c.what[0], c.opsLine, out)
		}
		must(verb("pull-in")...)
		want(c.what[0]+" pull-in", "order-1", "order-2")
	}
	if out := must("ops"); !strings.Contains(out, "0 pulled out") {
		t.Fatalf("artemis ops after every pull-in:\n%s", out)
	}
	out := must("log")
	for _, w := range []string{"instance", "server", "zone", "test instance", "test server", "6 rows"} {
		if !strings.Contains(out, w) {
			t.Fatalf("artemis log lacks %q:\n%s", w, out)
		}
	}

	// Canary: a caller at 10.0.0.2 is sent to the canary instance there;
	// another caller to either instance.
	must("canary", "set", "--service", "order", "--app", "web", "--ip", "10.0.0.2")
	if out := must("log", "--kind", "group-instance"); !strings.Contains(out, "instanceId=10.0.0.2") {
		t.Fatalf("artemis log --kind group-instance lacks the canary member:\n%s", out)
	}
	var resp struct {
		Service artemis.Service `json:"service"`
	}
	if err := getJSON(context.Background(), []string{base}, "/api/discovery/service.json?serviceId=order", &resp); err != nil {
		t.Fatal(err)
	}
	canary := artemis.Picker{IP: "10.0.0.2", Rand: rand.New(rand.NewPCG(1, 2))}
	other := artemis.Picker{IP: "10.0.0.99", Rand: rand.New(rand.NewPCG(1, 2))}
	got := map[string]int{}
	for range 50 {
		c, err := canary.Pick(resp.Service)
		if err != nil || c.InstanceID != "order-2" {
			t.Fatalf("canary caller: unexpected pick %q, %v; want order-2 (rules %+v)", c.InstanceID, err, resp.Service.RouteRules)
		}
		o, err := other.Pick(resp.Service)
		if err != nil {
			t.Fatal(err)
		}
		got[o.InstanceID]++
	}
	if got["order-1"] == 0 || got["order-2"] == 0 {
		t.Fatalf("a caller outside the canary was not spread over both instances: %v", got)
	}
}
