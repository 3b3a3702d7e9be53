package server

import (
	"context"
	stdjson "encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudwego/hertz/pkg/common/ut"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/management"
	"github.com/artemis-go/artemis/store"
)

const adminToken = "adm1n"

var bearer = ut.Header{Key: "Authorization", Value: "Bearer " + adminToken}

// mgmt posts body to /api/management/path.json with the admin token.
func mgmt(s *Server, path, body string, headers ...ut.Header) response {
	if headers == nil {
		headers = []ut.Header{bearer}
	}
	return do(s, "POST", "/api/management/"+path+".json", body, headers...)
}

func instanceIDsOf(t *testing.T, s *Server, svc string) string {
	t.Helper()
	var resp struct {
		Service struct{ Instances []struct{ InstanceID string } }
	}
	r := do(s, "GET", "/api/discovery/service.json?serviceId="+svc, "")
	if err := stdjson.Unmarshal([]byte(r.body), &resp); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range resp.Service.Instances {
		ids = append(ids, in.InstanceID)
	}
	return strings.Join(sortedStrings(ids), ",")
}

const pullOutA1 = `{"instanceKey":{"regionId":"sha","serviceId":"svc","instanceId":"a1"},"operation":"pullout","operationComplete":%s,"operatorId":"ops"}`

func TestManagementAuth(t *testing.T) {
	s := newTestServer(t, Config{AdminToken: adminToken})
	body := strings.Replace(pullOutA1, "%s", "false", 1)
	for name, h := range map[string][]ut.Header{
		"no token":     {{Key: "X-None", Value: "1"}},
		"wrong bearer": {{Key: "Authorization", Value: "Bearer nope"}},
		"not bearer":   {{Key: "Authorization", Value: adminToken}},
	} {
		r := mgmt(s, "operate-instance", body, h...)
		if code, ec := answer(t, r); code != 403 || ec != "no-permission" {
			t.Fatalf("%s: answered %d %s; want 403 no-permission", name, code, ec)
		}
	}
	if ops := mgmt(s, "all-instance-operations", `{}`).body; strings.Contains(ops, "pullout") {
		t.Fatalf("a refused mutation changed something: %s", ops)
	}
	// The body's token is accepted, and lower-case "bearer" too.
	withToken := strings.Replace(body, `"operatorId":"ops"`, `"operatorId":"ops","token":"`+adminToken+`"`, 1)
	if code, ec := answer(t, mgmt(s, "operate-instance", withToken, ut.Header{Key: "X-None", Value: "1"})); code != 200 || ec != "success" {
		t.Fatalf("the body's token: %d %s", code, ec)
	}
	// Reads are open.
	if code, ec := answer(t, mgmt(s, "all-instance-operations", `{}`, ut.Header{Key: "X-None", Value: "1"})); code != 200 || ec != "success" {
		t.Fatalf("a read without the token: %d %s", code, ec)
	}
	// No token configured: loopback clients only (ut's client is 0.0.0.0).
	open := newTestServer(t, Config{})
	if code, ec := answer(t, mgmt(open, "operate-instance", body)); code != 403 || ec != "no-permission" {
		t.Fatalf("a non-loopback client with no token configured: %d %s; want 403", code, ec)
	}
	// A node that is not up refuses mutations.
	s.state.Store(nodeStarting)
	if code, ec := answer(t, mgmt(s, "operate-instance", body)); ec != "service-unavailable" {
		t.Fatalf("a mutation on a starting node: %d %s; want service-unavailable", code, ec)
	}
}

// A pull-out hides the instance from discovery on this node before the
// answer; a pull-in brings it back; the operations and the log show both.
func TestManagementPullOut(t *testing.T) {
	s := newTestServer(t, Config{AdminToken: adminToken})
	do(s, "POST", "/api/registry/register.json", `{"instances":[`+inst("svc", "a1")+`,`+inst("svc", "a2")+`]}`)
	if got := instanceIDsOf(t, s, "svc"); got != "a1,a2" {
		t.Fatalf("unexpected instances %s", got)
	}
	if code, ec := answer(t, mgmt(s, "operate-instance", strings.Replace(pullOutA1, "%s", "false", 1))); code != 200 || ec != "success" {
		t.Fatalf("pull-out answered %d %s", code, ec)
	}
	if got := instanceIDsOf(t, s, "svc"); got != "a2" {
		t.Fatalf("after the pull-out discovery shows %s; want a2", got)
	}
	ops := mgmt(s, "instance-operations", `{"instanceKey":{"regionId":"sha","serviceId":"SVC","instanceId":"A1"}}`).body
	if !strings.Contains(ops, `"operations":["pullout"]`) {
		t.Fatalf("instance-operations (keys in another case) answered %s", ops)
	}
	if down := mgmt(s, "instance-down", `{"instance":`+inst("svc", "a1")+`}`).body; !strings.Contains(down, `"down":true`) {
		t.Fatalf("instance-down answered %s", down)
	}
	svc := mgmt(s, "service", `{"serviceId":"svc"}`).body
	if !strings.Contains(svc, `"instanceId":"a1"`) || !strings.Contains(svc, `"status":"down"`) || !strings.Contains(svc, `"creationTime"`) {
		t.Fatalf("management service.json should show the pulled-out instance as down, with its lease times: %s", svc)
	}
	if code, ec := answer(t, mgmt(s, "operate-instance", strings.Replace(pullOutA1, "%s", "true", 1))); code != 200 || ec != "success" {
		t.Fatalf("pull-in answered %d %s", code, ec)
	}
	if got := instanceIDsOf(t, s, "svc"); got != "a1,a2" {
		t.Fatalf("after the pull-in discovery shows %s; want a1,a2", got)
	}
	logs := mgmt(s, "log/instance-operation-logs", `{"instanceId":"a1"}`).body
	var l struct {
		Logs []struct {
			Operation string
			Complete  bool
		}
	}
	if err := stdjson.Unmarshal([]byte(logs), &l); err != nil || len(l.Logs) != 2 || l.Logs[0].Complete || !l.Logs[1].Complete {
		t.Fatalf("unexpected operation log %s", logs)
	}
}

func TestManagementBadRequests(t *testing.T) {
	s := newTestServer(t, Config{AdminToken: adminToken})
	for _, tc := range []struct{ path, body, msg string }{
		{"operate-instance", `{"instanceKey":{"regionId":"sha","serviceId":"svc","instanceId":"a1"},"operation":"pullout"}`, "operatorId is null or empty"},
		{"operate-instance", `not json`, "cannot decode request"},
		{"service", `{}`, "serviceId is null or empty"},
		{"instance-down", `{}`, "instance is null or empty"},
		{"group/insert-groups", `{"groups":[{"serviceId":"svc"}]}`, "null or empty"},
	} {
		r := mgmt(s, tc.path, tc.body)
		code, ec := answer(t, r)
		if ec != "bad-request" || !strings.Contains(r.body, tc.msg) || code >= 500 {
			t.Fatalf("%s %s answered %d %s; want bad-request %q", tc.path, tc.body, code, r.body, tc.msg)
		}
	}
}

// Groups, route rules, canary IPs and logical instances reach discovery.
func TestManagementRoutes(t *testing.T) {
	s := newTestServer(t, Config{AdminToken: adminToken})
	do(s, "POST", "/api/registry/register.json", `{"instances":[`+inst("svc", "a1")+`]}`)
	if code, ec := answer(t, mgmt(s, "canary/update-canary-ips", `{"serviceId":"svc","appId":"app","canaryIps":["10.9.9.9"]}`)); code != 200 || ec != "success" {
		t.Fatalf("canary answered %d %s", code, ec)
	}
	if code, ec := answer(t, mgmt(s, "group/insert-service-instances", `{"serviceInstances":[{"serviceId":"svc","instanceId":"logic-1","url":"http://l","regionId":"sha"}]}`)); code != 200 || ec != "success" {
		t.Fatalf("insert-service-instances answered %d %s", code, ec)
	}
	body := do(s, "GET", "/api/discovery/service.json?serviceId=svc", "").body
	if !strings.Contains(body, `"routeId":"canary-route-rule"`) || !strings.Contains(body, `"instanceId":"logic-1"`) {
		t.Fatalf("discovery lacks the canary rule or the logical instance: %s", body)
	}
	groups := mgmt(s, "group/get-all-groups", `{}`).body
	if !strings.Contains(groups, `"groupKey":"svc/sha/canary/app"`) {
		t.Fatalf("get-all-groups answered %s", groups)
	}
	// A service with no registered instance still shows its logical ones.
	do(s, "POST", "/api/registry/unregister.json", `{"instances":[`+inst("svc", "a1")+`]}`)
	if body := do(s, "GET", "/api/discovery/service.json?serviceId=svc", "").body; !strings.Contains(body, `"instanceId":"logic-1"`) {
		t.Fatalf("a service without registered instances lost its logical instance: %s", body)
	}
}

// Golden answers of management reads.
func TestManagementGolden(t *testing.T) {
	s := newTestServer(t, Config{AdminToken: adminToken})
	do(s, "POST", "/api/registry/register.json", `{"instances":[`+inst("svc", "a1")+`]}`)
	mgmt(s, "operate-instance", strings.Replace(pullOutA1, "%s", "false", 1))
	mgmt(s, "operate-server", `{"serverKey":{"regionId":"sha","serverId":"10.0.0.7"},"operation":"pullout","operationComplete":false,"operatorId":"ops"}`)
	mgmt(s, "zone/operate-zone-operations", `{"zoneOperationsList":[{"zoneKey":{"regionId":"sha","serviceId":"svc","zoneId":"z1"},"operations":["pullout"]}],"operationComplete":false,"operatorId":"ops"}`)
	for name, path := range map[string]string{
		"mgmt_all_instance_operations": "all-instance-operations",
		"mgmt_all_server_operations":   "all-server-operations",
		"mgmt_all_zone_operations":     "zone/get-all-zone-operations",
	} {
		golden(t, name, mgmt(s, path, `{}`).body)
	}
}

// Pull-out and pull-in of one instance, again and again: every change shows
// in discovery (a run of two nodes stopped showing them after 100 changes).
func TestManagementManyPullOuts(t *testing.T) {
	s := newTestServer(t, Config{AdminToken: adminToken})
	do(s, "POST", "/api/registry/register.json", `{"instances":[`+inst("svc", "a1")+`]}`)
	pullOutCycles(t, s, 300)
}

func TestManagementManyPullOutsSQLite(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "m.db"), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg, err := core.New(core.Config{Region: "SHA"})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	m, err := management.New(context.Background(), management.Config{Store: st, Registry: reg, Region: "SHA", AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := New(reg, Config{AdminToken: adminToken, Management: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer s.closeBackground()
	do(s, "POST", "/api/registry/register.json", `{"instances":[`+inst("svc", "a1")+`]}`)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // readers rebuild the snapshot while management changes it
		for {
			select {
			case <-stop:
				return
			default:
				reg.Service("svc")
			}
		}
	}()
	pullOutCycles(t, s, 300)
}

// A mutation with a wrong Authorization header is refused before its body
// is read (a gzip bomb gets 403, not 413); log filters match numbers as
// written.
func TestManagementAuthBeforeBodyAndNumericFilters(t *testing.T) {
	s := newTestServer(t, Config{AdminToken: adminToken})
	bomb := gzipped(`{"token":"x",` + strings.Repeat(" ", 40<<20) + `"a":1}`)
	r := mgmt(s, "operate-instance", bomb, ut.Header{Key: "Authorization", Value: "Bearer nope"}, ut.Header{Key: "Content-Encoding", Value: "gzip"})
	if code, ec := answer(t, r); code != 403 || ec != "no-permission" {
		t.Fatalf("a bomb with a wrong token answered %d %s; want 403 no-permission before reading it", code, ec)
	}
	if code, ec := answer(t, mgmt(s, "operate-instance", `not json`, ut.Header{Key: "X-None", Value: "1"})); code != 403 || ec != "no-permission" {
		t.Fatalf("a malformed body without a token answered %d %s; want 403", code, ec)
	}
	do(s, "POST", "/api/registry/register.json", `{"instances":[`+inst("svc", "a1")+`]}`)
	mgmt(s, "operate-instance", strings.Replace(pullOutA1, "%s", "false", 1))
	var l struct{ Logs []map[string]any }
	stdjson.Unmarshal([]byte(mgmt(s, "log/instance-operation-logs", `{}`).body), &l)
	if len(l.Logs) != 1 {
		t.Fatalf("unexpected logs %v", l.Logs)
	}
	created, _ := stdjson.Marshal(l.Logs[0]["createTime"])
	var byNumber struct{ Logs []any }
	stdjson.Unmarshal([]byte(mgmt(s, "log/instance-operation-logs", `{"createTime":`+string(created)+`,"complete":false}`).body), &byNumber)
	if len(byNumber.Logs) != 1 {
		t.Fatalf("filtering by createTime %s (a number) and complete false matched %d rows; want 1", created, len(byNumber.Logs))
	}
}

// pullOutCycles pulls a1 out and in n times, checking discovery after each.
func pullOutCycles(t *testing.T, s *Server, n int) {
	t.Helper()
	for i := range n {
		complete := i%2 == 1
		body := strings.Replace(pullOutA1, "%s", strconv.FormatBool(complete), 1)
		if code, ec := answer(t, mgmt(s, "operate-instance", body)); code != 200 || ec != "success" {
			t.Fatalf("change %d answered %d %s", i, code, ec)
		}
		want := ""
		if complete {
			want = "a1"
		}
		if got := instanceIDsOf(t, s, "svc"); got != want {
			t.Fatalf("after change %d (pull-in %v) discovery shows %q; want %q", i, complete, got, want)
		}
	}
}
