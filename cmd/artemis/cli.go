package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/artemis-go/artemis/client"
)

// The operator CLI: artemis service list|get, artemis instance
// register|unregister|heartbeat, artemis watch. Every command takes
// --server URL and prints a table, or JSON with --json.

type cliFlags struct {
	fs     *flag.FlagSet
	server *string
	asJSON *bool
}

func newCLIFlags(name string, stderr io.Writer) cliFlags {
	fs := flag.NewFlagSet("artemis "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return cliFlags{fs: fs,
		server: fs.String("server", "http://127.0.0.1:8080", "Artemis node URLs, comma-separated: tried in order, the next one when a node is unreachable, answers 5xx or 429, or says service-unavailable or rate-limited"),
		asJSON: fs.Bool("json", false, "print JSON instead of a table")}
}

// servers lists the --server URLs.
func (f cliFlags) servers() []string {
	var out []string
	for part := range strings.SplitSeq(*f.server, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parse parses flags placed before, between or after positional arguments
// and returns the positional ones.
func (f cliFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, err
		}
		if f.fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, f.fs.Arg(0))
		args = f.fs.Args()[1:]
	}
}

func runService(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "get") {
		fmt.Fprintln(stderr, "usage: artemis service list | artemis service get SERVICE_ID  [--server URL] [--json]")
		return 2
	}
	f := newCLIFlags("service "+args[0], stderr)
	pos, err := f.parse(args[1:])
	if err != nil {
		return 2
	}
	ctx := context.Background()
	if args[0] == "list" {
		var resp struct {
			Services []client.Service `json:"services"`
			Version  int64            `json:"version"`
		}
		if err := postJSON(ctx, f.servers(), "/api/discovery/services.json", map[string]string{}, &resp); err != nil {
			return fail(stderr, err)
		}
		if *f.asJSON {
			return printJSON(stdout, resp)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tINSTANCES\tUP")
		for _, s := range resp.Services {
			up := 0
			for _, i := range s.Instances {
				if i.Status == "up" {
					up++
				}
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\n", s.ServiceID, len(s.Instances), up)
		}
		tw.Flush()
		fmt.Fprintf(stdout, "%d services, version %d\n", len(resp.Services), resp.Version)
		return 0
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: artemis service get SERVICE_ID [--server URL] [--json]")
		return 2
	}
	var resp struct {
		Service client.Service `json:"service"`
	}
	if err := getJSON(ctx, f.servers(), "/api/discovery/service.json?serviceId="+url.QueryEscape(pos[0]), &resp); err != nil {
		return fail(stderr, err)
	}
	if *f.asJSON {
		return printJSON(stdout, resp.Service)
	}
	printInstances(stdout, resp.Service.Instances)
	return 0
}

func printInstances(w io.Writer, insts []client.Instance) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tADDRESS\tSTATUS\tZONE\tURL")
	for _, i := range insts {
		fmt.Fprintf(tw, "%s\t%s:%d\t%s\t%s\t%s\n", i.InstanceID, i.IP, i.Port, i.Status, i.ZoneID, i.URL)
	}
	tw.Flush()
}

func runInstance(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && isPullVerb(args[0]) {
		return runInstanceOp(args[0], args[1:], stdout, stderr)
	}
	if len(args) == 0 || (args[0] != "register" && args[0] != "unregister" && args[0] != "heartbeat") {
		fmt.Fprintln(stderr, "usage: artemis instance register|unregister|heartbeat --service S --id I [--url U --ip IP --port N --status S --meta k=v ...] [--server URL] [--json]")
		fmt.Fprintln(stderr, "       artemis instance pull-out|pull-in --service S --id I [--region R] --reason TEXT [--server URL] [--token T] [--json]")
		return 2
	}
	op := args[0]
	f := newCLIFlags("instance "+op, stderr)
	var inst client.Instance
	f.fs.StringVar(&inst.RegionID, "region", "default", "region")
	f.fs.StringVar(&inst.ZoneID, "zone", "", "zone")
	f.fs.StringVar(&inst.GroupID, "group", "", "group")
	f.fs.StringVar(&inst.ServiceID, "service", "", "service id (required)")
	f.fs.StringVar(&inst.InstanceID, "id", "", "instance id (required)")
	f.fs.StringVar(&inst.IP, "ip", "", "IP address")
	f.fs.IntVar(&inst.Port, "port", 0, "port")
	f.fs.StringVar(&inst.Protocol, "protocol", "", "protocol")
	f.fs.StringVar(&inst.URL, "url", "", "URL (required to register)")
	f.fs.StringVar(&inst.HealthCheckURL, "health-check-url", "", "health check URL")
	f.fs.StringVar(&inst.Status, "status", "up", "status")
	f.fs.StringVar(&inst.MachineName, "machine", "", "machine name")
	meta := metaFlag{}
	f.fs.Var(meta, "meta", "metadata entry key=value (repeatable)")
	if err := f.fs.Parse(args[1:]); err != nil {
		return 2
	}
	if inst.ServiceID == "" || inst.InstanceID == "" {
		fmt.Fprintln(stderr, "artemis instance: --service and --id are required")
		return 2
	}
	if len(meta) > 0 {
		inst.Metadata = meta
	}
	var resp json.RawMessage
	if err := postJSON(context.Background(), f.servers(), "/api/registry/"+op+".json", map[string]any{"instances": []client.Instance{inst}}, &resp); err != nil {
		return fail(stderr, err)
	}
	if *f.asJSON {
		fmt.Fprintln(stdout, string(resp))
	}
	var st struct {
		ResponseStatus struct{ Status, ErrorCode, Message string } `json:"responseStatus"`
		Failed         []struct{ ErrorCode, ErrorMessage string }  `json:"failedInstances"`
	}
	json.Unmarshal(resp, &st)
	if st.ResponseStatus.Status != "success" {
		msg := st.ResponseStatus.ErrorCode + " " + st.ResponseStatus.Message
		for _, fi := range st.Failed {
			msg += ": " + fi.ErrorCode + " " + fi.ErrorMessage
		}
		return fail(stderr, errors.New(msg))
	}
	if !*f.asJSON {
		fmt.Fprintf(stdout, "%s %s/%s: ok\n", op, inst.ServiceID, inst.InstanceID)
	}
	return 0
}

type metaFlag map[string]string

func (m metaFlag) String() string { return "" }
func (m metaFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	m[k] = val
	return nil
}

// runWatch streams the instance changes of services until interrupted.
func runWatch(args []string, stdout, stderr io.Writer) int {
	f := newCLIFlags("watch", stderr)
	services, err := f.parse(args)
	if err != nil {
		return 2
	}
	if len(services) == 0 {
		fmt.Fprintln(stderr, "usage: artemis watch SERVICE... [--server URL] [--json]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := client.NewDiscovery(ctx, f.servers())
	if err != nil {
		return fail(stderr, err)
	}
	defer d.Close()
	out := newWatchPrinter(stdout, *f.asJSON)
	for _, id := range services {
		if err := d.Watch(ctx, id, out.print); err != nil {
			return fail(stderr, err)
		}
	}
	<-ctx.Done()
	return 0
}

// watchPrinter prints each service's changes as +/- lines (or JSON states).
type watchPrinter struct {
	w      io.Writer
	asJSON bool
	last   map[string]map[string]client.Instance
}

func newWatchPrinter(w io.Writer, asJSON bool) *watchPrinter {
	return &watchPrinter{w: w, asJSON: asJSON, last: map[string]map[string]client.Instance{}}
}

func (p *watchPrinter) print(s client.Service) {
	now := time.Now().Format("15:04:05.000")
	if p.asJSON {
		b, _ := json.Marshal(struct {
			Time string `json:"time"`
			client.Service
		}{now, s})
		fmt.Fprintln(p.w, string(b))
		return
	}
	prev, first := p.last[s.ServiceID], p.last[s.ServiceID] == nil
	cur := map[string]client.Instance{}
	for _, i := range s.Instances {
		cur[i.InstanceID] = i
	}
	p.last[s.ServiceID] = cur
	if first {
		fmt.Fprintf(p.w, "%s %s: %d instances\n", now, s.ServiceID, len(cur))
		for _, i := range s.Instances {
			fmt.Fprintf(p.w, "%s   %s %s:%d %s %s\n", now, i.InstanceID, i.IP, i.Port, i.Status, i.URL)
		}
		return
	}
	var lines []string
	for id, i := range cur {
		if old, ok := prev[id]; !ok {
			lines = append(lines, fmt.Sprintf("+ %s %s:%d %s %s", id, i.IP, i.Port, i.Status, i.URL))
		} else if old.Status != i.Status || old.URL != i.URL || old.IP != i.IP || old.Port != i.Port {
			lines = append(lines, fmt.Sprintf("~ %s %s:%d %s %s", id, i.IP, i.Port, i.Status, i.URL))
		}
	}
	for id := range prev {
		if _, ok := cur[id]; !ok {
			lines = append(lines, "- "+id)
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintf(p.w, "%s %s: %s (%d instances)\n", now, s.ServiceID, l, len(cur))
	}
}

// postJSON posts req to path of the first of bases that serves it and
// decodes the answer into resp (see call).
func postJSON(ctx context.Context, bases []string, path string, req, resp any) error {
	body, _ := json.Marshal(req)
	return call(ctx, bases, resp, func(base string) (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(base, "/")+path, bytes.NewReader(body))
		if err == nil {
			r.Header.Set("Content-Type", "application/json")
		}
		return r, err
	})
}

func getJSON(ctx context.Context, bases []string, path string, resp any) error {
	return call(ctx, bases, resp, func(base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, "GET", strings.TrimRight(base, "/")+path, nil)
	})
}

// call sends the request newRequest builds to each of bases in turn until
// one serves it: an unreachable node, HTTP 5xx or 429, or an in-band
// service-unavailable or rate-limited answer (a starting or draining node)
// moves on to the next; any other answer is final.
func call(ctx context.Context, bases []string, resp any, newRequest func(base string) (*http.Request, error)) error {
	if len(bases) == 0 {
		return fmt.Errorf("no --server given")
	}
	var errs []error
	for _, base := range bases {
		r, err := newRequest(base)
		if err != nil {
			return err
		}
		b, retry, err := doJSON(r)
		if err == nil {
			return json.Unmarshal(b, resp)
		}
		errs = append(errs, err)
		if !retry || ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// doJSON sends r and returns the answer's body; retry tells whether
// another node may serve it.
func doJSON(r *http.Request) (body []byte, retry bool, err error) {
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Do(r)
	if err != nil {
		return nil, true, fmt.Errorf("cannot reach %s: %w", r.URL.Host, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if res.StatusCode >= 500 || res.StatusCode == 429 {
		return nil, true, fmt.Errorf("%s%s answered HTTP %d: %.300s", r.URL.Host, r.URL.Path, res.StatusCode, b)
	}
	if res.StatusCode >= 400 {
		return nil, false, fmt.Errorf("%s answered HTTP %d: %.300s", r.URL.Path, res.StatusCode, b)
	}
	var st struct {
		ResponseStatus struct{ ErrorCode, Message string } `json:"responseStatus"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, false, fmt.Errorf("cannot decode the answer of %s: %w", r.URL.Path, err)
	}
	if ec := st.ResponseStatus.ErrorCode; ec == "service-unavailable" || ec == "rate-limited" {
		return nil, true, fmt.Errorf("%s answered %s: %s", r.URL.Host, ec, st.ResponseStatus.Message)
	}
	return b, false, nil
}

func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
	return 0
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "artemis:", err)
	return 1
}
