package console_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeManagement stands in for the management API (contract section 9.1
// and 9.5) until the real one is served: a loopback front that answers
// /api/management/ itself and passes everything else, WebSocket upgrades
// included, to a real node, so the console runs on one origin as it does
// in production. Its operations do not reach the node's discovery.
// Mutations need "Authorization: Bearer <token>", else HTTP 403
// fail/no-permission, as the contract says.
type fakeManagement struct {
	URL   string
	token string

	mu        sync.Mutex // guards the fields below
	calls     []fakeCall
	instOps   map[string]*fakeOps // by instance key, folded
	serverOps map[string]*fakeOps // by server key
	logs      map[string][]map[string]any
	hijacked  map[net.Conn]struct{}
	nextID    int64
}

// fakeCall is one mutation the fake received.
type fakeCall struct {
	Path   string
	Auth   string
	Status int
	Body   map[string]any
}

type fakeOps struct {
	key map[string]any
	ops []string
}

func newFakeManagement(t testing.TB, nodeURL, token string) *fakeManagement {
	t.Helper()
	target, err := url.Parse(nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeManagement{token: token, instOps: map[string]*fakeOps{}, serverOps: map[string]*fakeOps{},
		logs: map[string][]map[string]any{}, hijacked: map[net.Conn]struct{}{}}
	proxy := httputil.NewSingleHostReverseProxy(target) // keeps the browser's Host: the CSP names this origin
	mux := http.NewServeMux()
	mux.Handle("/", proxy)
	mux.HandleFunc("/api/management/", f.serve)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ConnState: f.connState}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		f.dropWebSockets()
	})
	f.URL = "http://" + ln.Addr().String()
	return f
}

func (f *fakeManagement) connState(c net.Conn, s http.ConnState) {
	if s == http.StateHijacked { // a WebSocket the proxy now relays
		f.mu.Lock()
		f.hijacked[c] = struct{}{}
		f.mu.Unlock()
	}
}

// dropWebSockets closes every relayed WebSocket, as a node restart or a
// network cut would; it returns how many it closed.
func (f *fakeManagement) dropWebSockets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.hijacked)
	for c := range f.hijacked {
		c.Close()
	}
	clear(f.hijacked)
	return n
}

// mutations returns the mutations received so far.
func (f *fakeManagement) mutations() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

func (f *fakeManagement) serve(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil && r.Method == "POST" {
		answer(w, 400, fail("bad-request", "cannot decode request: "+err.Error()))
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/api/management/")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch path {
	case "operate-instance.json":
		f.operate(w, r, path, body, "instanceKey", f.instOps, "instance-operation-logs.json")
	case "operate-server.json":
		f.operate(w, r, path, body, "serverKey", f.serverOps, "server-operation-logs.json")
	case "all-instance-operations.json":
		answer(w, 200, map[string]any{"allInstanceOperations": list(f.instOps, "instanceKey"), "responseStatus": success()})
	case "all-server-operations.json":
		answer(w, 200, map[string]any{"allServerOperations": list(f.serverOps, "serverKey"), "responseStatus": success()})
	case "zone/get-all-zone-operations.json":
		answer(w, 200, map[string]any{"allZoneOperations": []any{}, "responseStatus": success()})
	case "group/get-all-group-operations.json":
		answer(w, 200, map[string]any{"allGroupOperations": []any{}, "responseStatus": success()})
	case "log/instance-operation-logs.json", "log/server-operation-logs.json", "log/zone-operation-logs.json", "log/group-operation-logs.json":
		var rows []map[string]any
		for _, row := range f.logs[strings.TrimPrefix(path, "log/")] {
			if op, _ := body["operatorId"].(string); op != "" && row["operatorId"] != op {
				continue
			}
			rows = append(rows, row)
		}
		answer(w, 200, map[string]any{"logs": rows, "responseStatus": success()})
	default:
		answer(w, 404, fail("bad-request", "no such path: "+r.URL.Path))
	}
}

// operate adds (operationComplete false) or removes an operation, as
// contract section 9.1 says; f.mu is held.
func (f *fakeManagement) operate(w http.ResponseWriter, r *http.Request, path string, body map[string]any, keyField string, ops map[string]*fakeOps, logName string) {
	call := fakeCall{Path: path, Auth: r.Header.Get("Authorization"), Body: body}
	defer func() { f.calls = append(f.calls, call) }()
	if call.Auth != "Bearer "+f.token {
		call.Status = 403
		answer(w, 403, fail("no-permission", "a management mutation needs the admin token"))
		return
	}
	key, _ := body[keyField].(map[string]any)
	operation, _ := body["operation"].(string)
	operator, _ := body["operatorId"].(string)
	if key == nil || operation == "" || operator == "" {
		call.Status = 200
		answer(w, 200, fail("bad-request", keyField+", operation or operatorId is null or empty"))
		return
	}
	k, _ := json.Marshal(key)
	id := strings.ToLower(string(k))
	complete, _ := body["operationComplete"].(bool)
	o := ops[id]
	if o == nil {
		o = &fakeOps{key: key}
		ops[id] = o
	}
	o.ops = remove(o.ops, operation)
	if !complete {
		o.ops = append(o.ops, operation)
	}
	f.nextID++
	row := map[string]any{"id": f.nextID, "operation": operation, "operatorId": operator, "token": "",
		"createTime": time.Now().UnixMilli(), "updateTime": time.Now().UnixMilli(), "complete": complete,
		"extensions": body["extensions"]}
	for k, v := range key {
		row[k] = v
	}
	f.logs[logName] = append(f.logs[logName], row)
	call.Status = 200
	answer(w, 200, map[string]any{"responseStatus": success()})
}

func remove(ops []string, op string) []string {
	out := ops[:0]
	for _, o := range ops {
		if o != op {
			out = append(out, o)
		}
	}
	return out
}

func list(ops map[string]*fakeOps, keyField string) []any {
	out := []any{}
	for _, o := range ops {
		if len(o.ops) > 0 {
			out = append(out, map[string]any{keyField: o.key, "operations": o.ops})
		}
	}
	return out
}

func success() map[string]any {
	return map[string]any{"status": "success", "errorCode": "success", "message": ""}
}

func fail(code, message string) map[string]any {
	return map[string]any{"responseStatus": map[string]any{"status": "fail", "errorCode": code, "message": message}}
}

func answer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
