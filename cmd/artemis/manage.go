package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/artemis-go/artemis/core"
)

// The management commands (contract section 9): artemis instance
// pull-out|pull-in, artemis server pull-out|pull-in, artemis zone
// pull-out|pull-in, artemis canary set, artemis ops and artemis log. They
// take --server URL[,URL...] (failover as the other commands), --token
// (default $ARTEMIS_ADMIN_TOKEN, sent as Authorization: Bearer) and
// --operator (default $USER) for the operation log, and print a table, or
// JSON with --json. Exit status: 0 done, 1 refused or failed (the in-band
// errorCode and message on stderr), 2 usage.

// pullOut is the operation a pull-out adds and a pull-in removes; the
// console uses the same name.
const pullOut = "pullout"

// tokenEnv is the environment variable --token defaults to.
const tokenEnv = "ARTEMIS_ADMIN_TOKEN"

// mgmtFlags are the flags every management command takes.
type mgmtFlags struct {
	cliFlags
	token, operator, region *string
}

// newMgmtFlags makes the flags of a mutation (--operator; --region
// defaults to the node's) or, when mutation is false, of a read (--region
// blank means every region).
func newMgmtFlags(name string, stderr io.Writer, mutation bool) mgmtFlags {
	f := mgmtFlags{cliFlags: newCLIFlags(name, stderr), operator: new(string)}
	f.token = f.fs.String("token", "", "admin token, sent as Authorization: Bearer (default $"+tokenEnv+")")
	if !mutation {
		f.region = f.fs.String("region", "", "only this region (default: all)")
		return f
	}
	f.operator = f.fs.String("operator", os.Getenv("USER"), "operator recorded in the operation log")
	f.region = f.fs.String("region", "", "region (default: the node's region)")
	return f
}

// bearer is the token to send: --token, else $ARTEMIS_ADMIN_TOKEN.
func (f mgmtFlags) bearer() string {
	if t := strings.TrimSpace(*f.token); t != "" {
		return t
	}
	return strings.TrimSpace(os.Getenv(tokenEnv))
}

// operatorID is --operator, or "artemis-cli" when it and $USER are blank.
func (f mgmtFlags) operatorID() string {
	if o := strings.TrimSpace(*f.operator); o != "" {
		return o
	}
	return "artemis-cli"
}

// post sends req to a management path with the token and returns the
// answer; an answer whose responseStatus is not success is an error
// naming its errorCode and message.
func (f mgmtFlags) post(ctx context.Context, path string, req any) (json.RawMessage, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the request to %s: %w", path, err)
	}
	token := f.bearer()
	var resp json.RawMessage
	err = call(ctx, f.servers(), &resp, func(base string) (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(base, "/")+path, bytes.NewReader(body))
		if err == nil {
			r.Header.Set("Content-Type", "application/json")
			if token != "" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
		}
		return r, err
	})
	if err != nil {
		return nil, refusal(err)
	}
	return resp, inBand(resp)
}

// apiStatus is an answer's responseStatus.
type apiStatus struct {
	ResponseStatus struct {
		Status, ErrorCode, Message string
	} `json:"responseStatus"`
}

// inBand returns the in-band failure of an answer, nil on success.
func inBand(resp []byte) error {
	var st apiStatus
	if err := json.Unmarshal(resp, &st); err != nil {
		return fmt.Errorf("cannot decode the answer: %w", err)
	}
	if st.ResponseStatus.Status != "success" {
		return fmt.Errorf("refused: %s: %s", st.ResponseStatus.ErrorCode, st.ResponseStatus.Message)
	}
	return nil
}

// refusal rewrites an HTTP 4xx failure whose body carries a responseStatus
// (403 no-permission, 400 bad-request) as "refused: code: message".
func refusal(err error) error {
	msg := err.Error()
	i := strings.Index(msg, "answered HTTP 4")
	j := strings.Index(msg, "{")
	if i < 0 || j < i {
		return err
	}
	var st apiStatus
	if json.Unmarshal([]byte(msg[j:]), &st) != nil || st.ResponseStatus.ErrorCode == "" {
		return err
	}
	return fmt.Errorf("refused: %s: %s (HTTP %s)", st.ResponseStatus.ErrorCode, st.ResponseStatus.Message, msg[i+len("answered HTTP "):i+len("answered HTTP ")+3])
}

// regionID is --region, or the region of the node asked.
func (f mgmtFlags) regionID(ctx context.Context) (string, error) {
	if r := strings.TrimSpace(*f.region); r != "" {
		return r, nil
	}
	var dep struct {
		RegionID string `json:"regionId"`
	}
	if err := postJSON(ctx, f.servers(), "/api/status/deployment.json", map[string]string{}, &dep); err != nil {
		return "", fmt.Errorf("cannot learn the node's region (give --region): %w", err)
	}
	if dep.RegionID == "" {
		return "", errors.New("the node did not say its region: give --region")
	}
	return dep.RegionID, nil
}

// isPullVerb reports whether a word is pull-out or pull-in.
func isPullVerb(s string) bool { return s == "pull-out" || s == "pull-in" }

// pullTarget is what a pull-out or pull-in command acts on.
type pullTarget struct {
	what  string                                    // "instance", "server", "zone"
	usage string                                    // its flags, for messages
	flags func(fs *mgmtFlags) func() (string, bool) // adds its flags; the returned check names the target, false when incomplete
	path  string
	body  func(region, operator, reason string, complete bool) any
}

// runPull runs "artemis <what> pull-out|pull-in".
func runPull(t pullTarget, verb string, args []string, stdout, stderr io.Writer) int {
	usage := "usage: artemis " + t.what + " pull-out|pull-in " + t.usage + " [--region R] --reason TEXT [--server URL] [--token T] [--operator NAME] [--json]"
	f := newMgmtFlags(t.what+" "+verb, stderr, true)
	reason := f.fs.String("reason", "", "why (required; kept in the operation log)")
	target := t.flags(&f)
	if err := f.fs.Parse(args); err != nil {
		return 2
	}
	name, ok := target()
	if !ok || strings.TrimSpace(*reason) == "" || f.fs.NArg() > 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	ctx := context.Background()
	region, err := f.regionID(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	complete := verb == "pull-in"
	resp, err := f.post(ctx, t.path, t.body(region, f.operatorID(), strings.TrimSpace(*reason), complete))
	if err != nil {
		return fail(stderr, err)
	}
	if *f.asJSON {
		fmt.Fprintln(stdout, string(resp))
		return 0
	}
	done := "pulled out"
	if complete {
		done = "pulled in"
	}
	fmt.Fprintf(stdout, "%s %s %s (region %s): ok\n", done, t.what, name, region)
	return 0
}

// reasonExtensions is the extensions object a reason travels in (the
// instance and server operation logs keep extensions, not a reason).
func reasonExtensions(reason string) map[string]string { return map[string]string{"reason": reason} }

func runInstanceOp(verb string, args []string, stdout, stderr io.Writer) int {
	var service, id *string
	return runPull(pullTarget{what: "instance", usage: "--service S --id I", path: "/api/management/operate-instance.json",
		flags: func(f *mgmtFlags) func() (string, bool) {
			service = f.fs.String("service", "", "service id (required)")
			id = f.fs.String("id", "", "instance id (required)")
			return func() (string, bool) { return *service + "/" + *id, *service != "" && *id != "" }
		},
		body: func(region, operator, reason string, complete bool) any {
			return map[string]any{
				"instanceKey": map[string]string{"regionId": region, "serviceId": *service, "instanceId": *id},
				"operation":   pullOut, "operationComplete": complete, "operatorId": operator,
				"extensions": reasonExtensions(reason),
			}
		}}, verb, args, stdout, stderr)
}

func runServerOp(verb string, args []string, stdout, stderr io.Writer) int {
	var ip *string
	return runPull(pullTarget{what: "server", usage: "--ip IP", path: "/api/management/operate-server.json",
		flags: func(f *mgmtFlags) func() (string, bool) {
			ip = f.fs.String("ip", "", "the server's IP (required)")
			return func() (string, bool) { return *ip, *ip != "" }
		},
		body: func(region, operator, reason string, complete bool) any {
			return map[string]any{
				"serverKey": map[string]string{"regionId": region, "serverId": *ip},
				"operation": pullOut, "operationComplete": complete, "operatorId": operator,
				"extensions": reasonExtensions(reason),
			}
		}}, verb, args, stdout, stderr)
}

func runZone(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || !isPullVerb(args[0]) {
		fmt.Fprintln(stderr, "usage: artemis zone pull-out|pull-in --service S --zone Z [--region R] --reason TEXT [--server URL] [--token T] [--operator NAME] [--json]")
		return 2
	}
	var service, zone *string
	return runPull(pullTarget{what: "zone", usage: "--service S --zone Z", path: "/api/management/zone/operate-zone-operations.json",
		flags: func(f *mgmtFlags) func() (string, bool) {
			service = f.fs.String("service", "", "service id (required)")
			zone = f.fs.String("zone", "", "zone id (required)")
			return func() (string, bool) { return *service + "/" + *zone, *service != "" && *zone != "" }
		},
		body: func(region, operator, reason string, complete bool) any {
			return map[string]any{
				"zoneOperationsList": []map[string]any{{
					"zoneKey":    map[string]string{"regionId": region, "serviceId": *service, "zoneId": *zone},
					"operations": []string{pullOut},
				}},
				"operationComplete": complete, "operatorId": operator, "operation": pullOut,
				"reason": reason, "extensions": reasonExtensions(reason),
			}
		}}, args[0], args[1:], stdout, stderr)
}

// runCanary runs "artemis canary set": the service's canary IPs for an
// app become exactly the given ones.
func runCanary(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: artemis canary set --service S --app A --ip IP[,IP...] [--reason TEXT] [--server URL] [--token T] [--operator NAME] [--json]\n(--ip '' clears the app's canary IPs)"
	if len(args) == 0 || args[0] != "set" {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	f := newMgmtFlags("canary set", stderr, true)
	service := f.fs.String("service", "", "service id (required)")
	app := f.fs.String("app", "", "app id: the canary group's name (required)")
	ips := f.fs.String("ip", "", "canary IPs, comma-separated (required; '' clears them)")
	reason := f.fs.String("reason", "", "why (kept in the operation log)")
	if err := f.fs.Parse(args[1:]); err != nil {
		return 2
	}
	ipSet := false
	f.fs.Visit(func(fl *flag.Flag) { ipSet = ipSet || fl.Name == "ip" })
	if *service == "" || *app == "" || !ipSet || f.fs.NArg() > 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	list := []string{}
	for ip := range strings.SplitSeq(*ips, ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			list = append(list, ip)
		}
	}
	ctx := context.Background()
	resp, err := f.post(ctx, "/api/management/canary/update-canary-ips.json", map[string]any{
		"serviceId": *service, "appId": *app, "canaryIps": list, "operatorId": f.operatorID(),
		"reason": strings.TrimSpace(*reason), "extensions": reasonExtensions(strings.TrimSpace(*reason)),
	})
	if err != nil {
		return fail(stderr, err)
	}
	if *f.asJSON {
		fmt.Fprintln(stdout, string(resp))
		return 0
	}
	shown := strings.Join(list, ", ")
	if shown == "" {
		shown = "none"
	}
	fmt.Fprintf(stdout, "canary IPs of %s for app %s: %s: ok\n", *service, *app, shown)
	return 0
}

// opsView is what artemis ops shows: the operations in force now.
type opsView struct {
	Instances []opsInstance `json:"instances"`
	Servers   []opsServer   `json:"servers"`
	Zones     []opsZone     `json:"zones"`
	Groups    []opsGroup    `json:"groups"`
}

// opsInstance, opsServer and opsZone are the rows of the all-*-operations
// reads, with the wire's names.
type opsInstance struct {
	InstanceKey struct {
		RegionID   string `json:"regionId"`
		ServiceID  string `json:"serviceId"`
		InstanceID string `json:"instanceId"`
	} `json:"instanceKey"`
	Operations []string `json:"operations"`
}

type opsServer struct {
	ServerKey struct {
		RegionID string `json:"regionId"`
		ServerID string `json:"serverId"`
	} `json:"serverKey"`
	Operations []string `json:"operations"`
}

type opsZone struct {
	ZoneKey struct {
		RegionID  string `json:"regionId"`
		ServiceID string `json:"serviceId"`
		ZoneID    string `json:"zoneId"`
	} `json:"zoneKey"`
	Operations []string `json:"operations"`
}

// opsGroup is a group with operations, named by its key when known.
type opsGroup struct {
	GroupID    int64    `json:"groupId"`
	GroupKey   string   `json:"groupKey,omitempty"`
	Operations []string `json:"operations"`
}

// runOps lists what is pulled out now (every operation on instances,
// servers, zones and groups), from the all-*-operations reads.
func runOps(args []string, stdout, stderr io.Writer) int {
	f := newMgmtFlags("ops", stderr, false)
	service := f.fs.String("service", "", "only this service's instances, zones and groups (servers are not per service)")
	if err := f.fs.Parse(args); err != nil {
		return 2
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: artemis ops [--region R] [--service S] [--server URL] [--json]")
		return 2
	}
	v, err := readOps(context.Background(), f, strings.TrimSpace(*f.region))
	if err != nil {
		return fail(stderr, err)
	}
	v.keepService(strings.TrimSpace(*service))
	if *f.asJSON {
		return printJSON(stdout, v)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tREGION\tSERVICE\tTARGET\tOPERATIONS")
	for _, o := range v.Instances {
		k := o.InstanceKey
		fmt.Fprintf(tw, "instance\t%s\t%s\t%s\t%s\n", k.RegionID, k.ServiceID, k.InstanceID, strings.Join(o.Operations, ","))
	}
	for _, o := range v.Servers {
		fmt.Fprintf(tw, "server\t%s\t-\t%s\t%s\n", o.ServerKey.RegionID, o.ServerKey.ServerID, strings.Join(o.Operations, ","))
	}
	for _, o := range v.Zones {
		k := o.ZoneKey
		fmt.Fprintf(tw, "zone\t%s\t%s\tzone %s\t%s\n", k.RegionID, k.ServiceID, k.ZoneID, strings.Join(o.Operations, ","))
	}
	for _, o := range v.Groups {
		region, svc, target := "?", "?", fmt.Sprintf("group %d", o.GroupID)
		if p := strings.SplitN(o.GroupKey, "/", 4); len(p) == 4 {
			svc, region, target = p[0], p[1], fmt.Sprintf("group %s/%s (id %d)", p[2], p[3], o.GroupID)
		}
		fmt.Fprintf(tw, "group\t%s\t%s\t%s\t%s\n", region, svc, target, strings.Join(o.Operations, ","))
	}
	tw.Flush()
	n := len(v.Instances) + len(v.Servers) + len(v.Zones) + len(v.Groups)
	fmt.Fprintf(stdout, "%d pulled out: %d instances, %d servers, %d zones, %d groups\n", n, len(v.Instances), len(v.Servers), len(v.Zones), len(v.Groups))
	return 0
}

// readOps reads every kind of operation in force (region blank: all).
func readOps(ctx context.Context, f mgmtFlags, region string) (*opsView, error) {
	var v opsView
	reads := []struct {
		path string
		into any
	}{
		{"/api/management/all-instance-operations.json", &struct {
			All any `json:"allInstanceOperations"`
		}{&v.Instances}},
		{"/api/management/all-server-operations.json", &struct {
			All any `json:"allServerOperations"`
		}{&v.Servers}},
		{"/api/management/zone/get-all-zone-operations.json", &struct {
			All any `json:"allZoneOperations"`
		}{&v.Zones}},
		{"/api/management/group/get-all-group-operations.json", &struct {
			All any `json:"allGroupOperations"`
		}{&v.Groups}},
	}
	for _, r := range reads {
		resp, err := f.post(ctx, r.path, map[string]string{"regionId": region})
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", r.path, err)
		}
		if err := json.Unmarshal(resp, r.into); err != nil {
			return nil, fmt.Errorf("cannot decode the answer of %s: %w", r.path, err)
		}
	}
	if len(v.Groups) > 0 {
		keys := groupKeys(ctx, f)
		for i := range v.Groups {
			v.Groups[i].GroupKey = keys[v.Groups[i].GroupID]
		}
		if region != "" { // the group reads answer every region
			v.Groups = slices.DeleteFunc(v.Groups, func(g opsGroup) bool {
				p := strings.SplitN(g.GroupKey, "/", 4)
				return len(p) == 4 && !core.EqualFoldKey(p[1], region)
			})
		}
	}
	return &v, nil
}

// groupKeys maps group ids to their keys; empty when they cannot be read
// (the table then shows ids only).
func groupKeys(ctx context.Context, f mgmtFlags) map[int64]string {
	keys := map[int64]string{}
	resp, err := f.post(ctx, "/api/management/group/get-all-groups.json", map[string]string{})
	if err != nil {
		return keys
	}
	var all struct {
		Groups []struct {
			GroupID  int64  `json:"groupId"`
			GroupKey string `json:"groupKey"`
		} `json:"groups"`
	}
	json.Unmarshal(resp, &all)
	for _, g := range all.Groups {
		keys[g.GroupID] = g.GroupKey
	}
	return keys
}

// keepService drops what does not concern service (blank: keeps all);
// servers concern every service and stay.
func (v *opsView) keepService(service string) {
	if service == "" {
		return
	}
	same := func(s string) bool { return core.EqualFoldKey(strings.TrimSpace(s), service) }
	v.Instances = slices.DeleteFunc(v.Instances, func(o opsInstance) bool { return !same(o.InstanceKey.ServiceID) })
	v.Zones = slices.DeleteFunc(v.Zones, func(o opsZone) bool { return !same(o.ZoneKey.ServiceID) })
	v.Groups = slices.DeleteFunc(v.Groups, func(g opsGroup) bool {
		svc, _, _ := strings.Cut(g.GroupKey, "/")
		return !same(svc)
	})
}

// logKinds maps artemis log --kind to log endpoints. The default reads the
// four operation logs.
var logKinds = map[string]string{
	"instance":         "instance-operation-logs",
	"server":           "server-operation-logs",
	"zone":             "zone-operation-logs",
	"group":            "group-operation-logs",
	"groups":           "group-logs",
	"route-rule":       "route-rule-logs",
	"route-rule-group": "route-rule-group-logs",
	"group-instance":   "group-instance-logs",
	"service-instance": "service-instance-logs",
	"group-tag":        "group-tag-logs",
}

// opKinds are the kinds artemis log reads without --kind.
var opKinds = []string{"instance", "server", "zone", "group"}

// logRow is one operation-log row with the kind it was read from.
type logRow struct {
	kind   string
	fields map[string]any
}

func (r logRow) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(r.fields)+1)
	for k, v := range r.fields {
		m[k] = v
	}
	m["kind"] = r.kind
	return json.Marshal(m)
}

func (r logRow) str(k string) string {
	switch v := r.fields[k].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

func (r logRow) num(k string) int64 {
	n, _ := strconv.ParseInt(r.str(k), 10, 64)
	return n
}

// runLog prints the operation log, oldest first.
func runLog(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: artemis log [--kind instance|server|zone|group|groups|route-rule|route-rule-group|group-instance|service-instance|group-tag|all] [--service S] [--id I] [--ip IP] [--zone Z] [--group-id N] [--operation OP] [--by OPERATOR] [--complete true|false] [--filter field=value ...] [--limit N] [--region R] [--server URL] [--json]"
	f := newMgmtFlags("log", stderr, false)
	kind := f.fs.String("kind", "", "log to read (default: instance, server, zone and group operations)")
	filters := metaFlag{}
	filterFlag := func(name, field, help string) {
		f.fs.Func(name, help, func(v string) error { filters[field] = v; return nil })
	}
	filterFlag("service", "serviceId", "only rows of this service")
	filterFlag("id", "instanceId", "only rows of this instance id")
	filterFlag("ip", "serverId", "only rows of this server IP")
	filterFlag("zone", "zoneId", "only rows of this zone")
	filterFlag("group-id", "groupId", "only rows of this group id")
	filterFlag("operation", "operation", "only rows of this operation (pullout, insert-groups, ...)")
	filterFlag("by", "operatorId", "only rows of this operator")
	filterFlag("complete", "complete", "true: only removals (pull-ins); false: only additions")
	f.fs.Var(filters, "filter", "field=value a row must have (repeatable)")
	limit := f.fs.Int("limit", 0, "show only the newest N rows (0: all the server answers)")
	if err := f.fs.Parse(args); err != nil {
		return 2
	}
	kinds, ok := logKindsOf(*kind)
	if !ok || f.fs.NArg() > 0 || *limit < 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if r := strings.TrimSpace(*f.region); r != "" {
		filters["regionId"] = r
	}
	rows, err := readLogs(context.Background(), f, kinds, filters)
	if err != nil {
		return fail(stderr, err)
	}
	if *limit > 0 && len(rows) > *limit {
		rows = rows[len(rows)-*limit:]
	}
	if *f.asJSON {
		return printJSON(stdout, rows)
	}
	printLogs(stdout, rows)
	return 0
}

// logKindsOf returns the endpoints --kind names ("" the operation logs,
// "all" every log, a kind, or an endpoint name).
func logKindsOf(kind string) ([]string, bool) {
	switch kind = strings.TrimSuffix(strings.TrimSpace(kind), ".json"); kind {
	case "":
		return opKinds, true
	case "all":
		return slices.Sorted(func(yield func(string) bool) {
			for k := range logKinds {
				if !yield(k) {
					return
				}
			}
		}), true
	}
	if _, ok := logKinds[kind]; ok {
		return []string{kind}, true
	}
	for k, path := range logKinds {
		if path == kind {
			return []string{k}, true
		}
	}
	return nil, false
}

// readLogs reads the rows of kinds matching filters, merged by time.
func readLogs(ctx context.Context, f mgmtFlags, kinds []string, filters map[string]string) ([]logRow, error) {
	var rows []logRow
	for _, k := range kinds {
		path := "/api/management/log/" + logKinds[k] + ".json"
		resp, err := f.post(ctx, path, filters)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", path, err)
		}
		var a struct {
			Logs []map[string]any `json:"logs"`
		}
		d := json.NewDecoder(bytes.NewReader(resp))
		d.UseNumber()
		if err := d.Decode(&a); err != nil {
			return nil, fmt.Errorf("cannot decode the answer of %s: %w", path, err)
		}
		for _, m := range a.Logs {
			rows = append(rows, logRow{kind: k, fields: m})
		}
	}
	slices.SortStableFunc(rows, func(a, b logRow) int {
		return cmp.Or(cmp.Compare(a.num("createTime"), b.num("createTime")), cmp.Compare(a.num("id"), b.num("id")))
	})
	return rows, nil
}

func printLogs(w io.Writer, rows []logRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tOPERATION\tCHANGE\tTARGET\tOPERATOR\tREASON")
	for _, r := range rows {
		change := "added"
		if r.str("complete") == "true" {
			change = "removed"
		}
		when := time.UnixMilli(r.num("createTime")).Format("2006-01-02 15:04:05")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", when, r.kind, r.str("operation"), change, logTarget(r),
			r.str("operatorId"), logReason(r))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d rows\n", len(rows))
}

// logTarget names what a row changed.
func logTarget(r logRow) string {
	switch r.kind {
	case "instance":
		return r.str("regionId") + "/" + r.str("serviceId") + "/" + r.str("instanceId")
	case "server":
		return r.str("regionId") + "/" + r.str("serverId")
	case "zone":
		return r.str("regionId") + "/" + r.str("serviceId") + " zone " + r.str("zoneId")
	case "group":
		return "group " + r.str("groupId")
	}
	var parts []string
	for _, k := range []string{"serviceId", "regionId", "zoneId", "name", "routeRuleId", "groupId", "instanceId", "tag", "value", "weight"} {
		if v := r.str(k); v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// logReason is a row's reason, or the reason in its extensions.
func logReason(r logRow) string {
	if s := r.str("reason"); s != "" {
		return s
	}
	var ext struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal([]byte(r.str("extensions")), &ext) == nil {
		return ext.Reason
	}
	return ""
}
