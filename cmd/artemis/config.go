package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/artemis-go/artemis/cluster"
	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
)

// The server's configuration comes from, in rising precedence: defaults, a
// YAML file (--config), environment variables (ARTEMIS_<KEY>), and flags.
// Every setting has one key ("registry.leaseTtl"); its environment variable
// is the key upper-cased with dots as underscores (ARTEMIS_REGISTRY_LEASETTL)
// and its flag is listed in the table below. Errors name the key.

// serverConfig is everything `artemis server` is configured with.
type serverConfig struct {
	Registry core.Config
	Server   server.Config
	Limits   server.RateLimits
	Store    storeConfig
	Log      logConfig
	Runtime  runtimeConfig
	// sources records where each key's value came from.
	sources map[string]string
}

// storeConfig is where management state is kept.
type storeConfig struct {
	DSN string // sqlite:PATH, postgres://..., or memory
}

// runtimeConfig configures the Go runtime.
type runtimeConfig struct {
	MemoryLimit string // auto, off, N% or a size; see memlimit.go
	GCPercent   string // off or 1..10000; see gcpercent.go
	// MemoryReturnInterval is how often idle heap memory is handed back to
	// the operating system (0: never); see package memreturn.
	MemoryReturnInterval time.Duration
}

type logConfig struct {
	Level  string // debug, info, warn, error
	Format string // text or json
}

// setting binds one configuration key to a field.
type setting struct {
	key   string
	flag  string // "" for file and environment only
	usage string
	field string // the Go field name core or server validation errors use
	value flag.Value
}

func (s setting) env() string {
	return "ARTEMIS_" + strings.ToUpper(strings.ReplaceAll(s.key, ".", "_"))
}

// settings returns the table of settings bound to c, with defaults set.
func (c *serverConfig) settings() []setting {
	rc, sc, rl := &c.Registry, &c.Server, &c.Limits
	*rc = core.Config{Region: "default", Zone: "default", LeaseTTL: 20 * time.Second, Shards: 128,
		EvictionTick: 250 * time.Millisecond, ClockResolution: 10 * time.Millisecond, ChangeLogSize: 1 << 17, ChangeLogAge: 10 * time.Minute, ChangeLogBytes: 64 << 20,
		SelfPreservation: core.SelfPreservationConfig{Window: 10 * time.Second, MinPeak: 50, Threshold: 0.85, PeakDecay: 10 * time.Minute}}
	*sc = server.Config{Addr: "127.0.0.1:8080", MaxBodyBytes: 8 << 20, MaxInflatedBytes: 32 << 20, MaxInflatingBytes: 128 << 20,
		MaxHeaderBytes: 16 << 10, MaxInstancesPerRequest: 10_000, MaxLookupServices: 1_000, MaxConnections: 50_000,
		RequestReadTimeout: 30 * time.Second, Cluster: cluster.Config{SyncTimeout: 10 * time.Second}, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		Push: server.PushConfig{Library: server.WSLibraries[0], SendQueue: 256, PingInterval: 30 * time.Second, PongWait: 75 * time.Second,
			WriteWait: 10 * time.Second, SessionLifetime: 30 * time.Minute, MaxSubscriptionBytes: 64 << 20, ClientShare: 0.25}}
	pc := &sc.Push
	*rl = server.DefaultRateLimits
	c.Log = logConfig{Level: "info", Format: "text"}
	c.Runtime = runtimeConfig{MemoryLimit: memoryLimitAuto, GCPercent: strconv.Itoa(defaultGCPercent), MemoryReturnInterval: 30 * time.Second}
	c.Store = storeConfig{DSN: "sqlite:artemis-data/artemis.db"}
	sp := &rc.SelfPreservation
	spEnabled := true
	return []setting{
		{"server.addr", "addr", "listen address", "Addr", (*stringValue)(&sc.Addr)},
		{"server.nodeUrl", "node-url", "URL this node advertises (default http://ADDR)", "NodeURL", (*stringValue)(&sc.NodeURL)},
		{"server.maxBodyBytes", "max-body-bytes", "request body cap (413 above)", "MaxBodyBytes", (*intValue)(&sc.MaxBodyBytes)},
		{"server.maxInflatedBytes", "max-inflated-bytes", "gzip request body cap after inflation", "MaxInflatedBytes", (*intValue)(&sc.MaxInflatedBytes)},
		{"server.maxInflatingBytes", "max-inflating-bytes", "bytes of gzip bodies inflated at once over the node (503 service-unavailable above, after 1 s)", "MaxInflatingBytes", (*intValue)(&sc.MaxInflatingBytes)},
		{"server.maxHeaderBytes", "max-header-bytes", "request header cap", "MaxHeaderBytes", (*intValue)(&sc.MaxHeaderBytes)},
		{"server.maxLookupServices", "max-lookup-services", "services in one lookup.json or leases.json (413 bad-request above)", "MaxLookupServices", (*intValue)(&sc.MaxLookupServices)},
		{"server.maxConnections", "max-connections", "open connections, WebSocket sessions included (closed at accept above)", "MaxConnections", (*intValue)(&sc.MaxConnections)},
		{"server.requestReadTimeout", "request-read-timeout", "time from a request's first byte to its last (header and body)", "RequestReadTimeout", (*durationValue)(&sc.RequestReadTimeout)},
		{"server.maxInstancesPerRequest", "max-instances-per-request", "instances in one registry request (bad-request above)", "MaxInstancesPerRequest", (*intValue)(&sc.MaxInstancesPerRequest)},
		{"server.readTimeout", "read-timeout", "bound on each read of a connection", "ReadTimeout", (*durationValue)(&sc.ReadTimeout)},
		{"server.writeTimeout", "write-timeout", "connection write timeout", "WriteTimeout", (*durationValue)(&sc.WriteTimeout)},
		{"server.idleTimeout", "idle-timeout", "keep-alive idle timeout", "IdleTimeout", (*durationValue)(&sc.IdleTimeout)},
		{"server.pprof", "pprof", "serve /debug/pprof/ (loopback clients only) with mutex and block profiling", "Pprof", (*boolValue)(&sc.Pprof)},
		{"server.pprofRemote", "pprof-remote", "let non-loopback clients read /debug/pprof/ too", "PprofRemote", (*boolValue)(&sc.PprofRemote)},
		{"server.responseCacheBytes", "response-cache-bytes", "bytes of encoded service.json (and one-service lookup.json) answers kept to be sent without copying (0: 64 MiB, or 1/16 of the memory limit when less; -1: off)", "ResponseCacheBytes", (*intValue)(&sc.ResponseCacheBytes)},
		{"runtime.memoryLimit", "memory-limit", "Go memory limit the collector paces itself against: auto (85% of the cgroup's memory limit, else of the machine's memory), a share (90%), a size (1536MiB, 2GiB) or off; GOMEMLIMIT, when set, wins", "", (*stringValue)(&c.Runtime.MemoryLimit)},
		{"runtime.gcPercent", "gc-percent", "Go GC percent: the heap goal is the live heap times 1+N/100 (100, the default and the runtime's own: 2x; 50: 1.5x); an integer from 1 to 10000, or off (collect only near the memory limit, which must then be set); GOGC, when set, wins", "", (*stringValue)(&c.Runtime.GCPercent)},
		{"runtime.memoryReturnInterval", "memory-return-interval", "how often idle Go heap memory is handed back to the operating system, with a forced collection, when 16 MiB and an eighth of the heap in use are idle or the heap grew by as much since the last return; 0: never (the runtime's scavenger alone, which keeps up to about 1.1x the heap goal)", "", (*durationValue)(&c.Runtime.MemoryReturnInterval)},
		{"registry.region", "region", "region of this node; instances of other regions are refused", "Region", (*stringValue)(&rc.Region)},
		{"registry.zone", "zone", "zone of this node", "Zone", (*stringValue)(&rc.Zone)},
		{"registry.leaseTtl", "lease-ttl", "lease time-to-live without a heartbeat", "LeaseTTL", (*durationValue)(&rc.LeaseTTL)},
		{"registry.shards", "shards", "lock stripes (rounded up to a power of two)", "Shards", (*intValue)(&rc.Shards)},
		{"registry.evictionTick", "eviction-tick", "granularity of lease expiry", "EvictionTick", (*durationValue)(&rc.EvictionTick)},
		{"registry.clockResolution", "clock-resolution", "how often the registry reads the clock for its operations (0: on every operation); stamps are up to this early", "ClockResolution", (*durationValue)(&rc.ClockResolution)},
		{"registry.changelogSize", "changelog-size", "changes retained for services-delta.json", "ChangeLogSize", (*intValue)(&rc.ChangeLogSize)},
		{"registry.changelogAge", "changelog-age", "how long changes are retained", "ChangeLogAge", (*durationValue)(&rc.ChangeLogAge)},
		{"registry.changelogBytes", "changelog-bytes", "bytes of changes retained (a reader that falls off reloads everything)", "ChangeLogBytes", (*intValue)(&rc.ChangeLogBytes)},
		{"registry.selfPreservation.enabled", "self-preservation", "suspend eviction when renewals collapse", "Disabled", (*boolValue)(&spEnabled)},
		{"registry.selfPreservation.window", "self-preservation-window", "window renewals are counted over", "Window", (*durationValue)(&sp.Window)},
		{"registry.selfPreservation.minPeak", "self-preservation-min-peak", "peak renewals below which no protection applies", "MinPeak", (*int64Value)(&sp.MinPeak)},
		{"registry.selfPreservation.threshold", "self-preservation-threshold", "fraction of the peak under which eviction stops", "Threshold", (*floatValue)(&sp.Threshold)},
		{"registry.selfPreservation.peakDecay", "self-preservation-peak-decay", "how long a peak holds", "PeakDecay", (*durationValue)(&sp.PeakDecay)},
		{"rateLimit.register.rate", "rate-limit-register", "register requests per second (0: unlimited)", "", (*floatValue)(&rl.Register.Rate)},
		{"rateLimit.register.burst", "", "register burst", "", (*intValue)(&rl.Register.Burst)},
		{"rateLimit.heartbeat.rate", "rate-limit-heartbeat", "heartbeat requests per second (0: unlimited)", "", (*floatValue)(&rl.Heartbeat.Rate)},
		{"rateLimit.heartbeat.burst", "", "heartbeat burst", "", (*intValue)(&rl.Heartbeat.Burst)},
		{"rateLimit.unregister.rate", "rate-limit-unregister", "unregister requests per second (0: unlimited)", "", (*floatValue)(&rl.Unregister.Rate)},
		{"rateLimit.unregister.burst", "", "unregister burst", "", (*intValue)(&rl.Unregister.Burst)},
		{"rateLimit.discovery.rate", "rate-limit-discovery", "discovery requests per second (0: unlimited)", "", (*floatValue)(&rl.Discovery.Rate)},
		{"rateLimit.discovery.burst", "", "discovery burst", "", (*intValue)(&rl.Discovery.Burst)},
		{"rateLimit.status.rate", "rate-limit-status", "status and cluster requests per second (0: unlimited)", "", (*floatValue)(&rl.Status.Rate)},
		{"rateLimit.status.burst", "", "status burst", "", (*intValue)(&rl.Status.Burst)},
		{"rateLimit.cluster.rate", "rate-limit-cluster", "cluster.json and up-*-nodes.json requests per second (0: unlimited)", "", (*floatValue)(&rl.Cluster.Rate)},
		{"rateLimit.cluster.burst", "", "cluster burst", "", (*intValue)(&rl.Cluster.Burst)},
		{"rateLimit.clientShare", "rate-limit-client-share", "share of the status and cluster limits one client IP may use (0 or 1: no per-client share)", "", (*floatValue)(&rl.ClientShare)},
		{"push.library", "ws-library", "WebSocket implementation: " + strings.Join(server.WSLibraries, " or "), "", (*stringValue)(&pc.Library)},
		{"push.sendQueue", "ws-send-queue", "frames queued per WebSocket subscriber before it is sent a reload", "", (*intValue)(&pc.SendQueue)},
		{"push.pingInterval", "ws-ping-interval", "how often the server pings each WebSocket session", "", (*durationValue)(&pc.PingInterval)},
		{"push.pongWait", "ws-pong-wait", "a WebSocket session silent this long is closed", "", (*durationValue)(&pc.PongWait)},
		{"push.writeWait", "ws-write-wait", "bound on one WebSocket write", "", (*durationValue)(&pc.WriteWait)},
		{"push.sessionLifetime", "ws-session-lifetime", "WebSocket sessions are closed after this long so clients rebalance", "", (*durationValue)(&pc.SessionLifetime)},
		{"push.maxSubscriptionBytes", "ws-max-subscription-bytes", "bytes of subscribed service ids over every WebSocket session of the node (1008 above)", "", (*intValue)(&pc.MaxSubscriptionBytes)},
		{"push.clientShare", "ws-client-share", "share of push.maxSubscriptionBytes the sessions of one client IP may hold (1: no per-client share)", "", (*floatValue)(&pc.ClientShare)},
		{"cluster.peers", "peers", "every node of the cluster, comma-separated URLs (the one equal to server.nodeUrl is this node); empty: a single node", "Peers", (*listValue)(&sc.Cluster.Peers)},
		{"cluster.token", "cluster-token", "token peers must send on /api/replication/ (Authorization: Bearer); never printed", "ClusterToken", (*secretValue)(&sc.Cluster.Token)},
		{"cluster.syncTimeout", "sync-timeout", "how long a starting node tries to copy the registry from a peer before it serves alone", "SyncTimeout", (*durationValue)(&sc.Cluster.SyncTimeout)},
		{"store.dsn", "store", "management store: sqlite:PATH (embedded; the default, created on first start), postgres://... (shared by a cluster) or memory (nothing kept)", "", (*stringValue)(&c.Store.DSN)},
		{"management.adminToken", "admin-token", "token every management mutation needs (Authorization: Bearer); empty: loopback clients only; never printed", "AdminToken", (*secretValue)(&sc.AdminToken)},
		{"rateLimit.management.rate", "rate-limit-management", "management requests per second (0: unlimited)", "", (*floatValue)(&rl.Management.Rate)},
		{"rateLimit.management.burst", "", "management burst", "", (*intValue)(&rl.Management.Burst)},
		{"log.level", "log-level", "debug, info, warn or error", "", (*stringValue)(&c.Log.Level)},
		{"log.format", "log-format", "text or json", "", (*stringValue)(&c.Log.Format)},
	}
}

// loadServerConfig builds the configuration from args, the environment
// (getenv) and the file named by --config. It returns flag.ErrHelp for -h.
func loadServerConfig(args []string, getenv func(string) string, stderr io.Writer) (*serverConfig, bool, error) {
	c := &serverConfig{sources: map[string]string{}}
	table := c.settings()
	byKey := map[string]setting{}
	fs := flag.NewFlagSet("artemis server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration file (keys as in --print-config)")
	printConfig := fs.Bool("print-config", false, "print the effective configuration as YAML and exit")
	flagValues := map[string]*pendingFlag{}
	for _, s := range table {
		byKey[strings.ToLower(s.key)] = s
		if s.flag != "" {
			pf := &pendingFlag{target: s.value}
			flagValues[s.key] = pf
			fs.Var(pf, s.flag, s.usage+" ("+s.key+", $"+s.env()+")")
		}
	}
	noSP := fs.Bool("no-self-preservation", false, "always evict expired leases (registry.selfPreservation.enabled=false)")
	if err := fs.Parse(args); err != nil {
		return nil, false, err
	}
	if fs.NArg() > 0 {
		return nil, false, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *configPath != "" {
		if err := c.applyFile(*configPath, byKey); err != nil {
			return nil, false, err
		}
	}
	for _, s := range table {
		if v := getenv(s.env()); v != "" {
			if err := s.value.Set(v); err != nil {
				return nil, false, fmt.Errorf("invalid configuration: %s (from $%s): %w", s.key, s.env(), err)
			}
			c.sources[s.key] = "env " + s.env()
		}
	}
	for _, s := range table {
		if pf := flagValues[s.key]; pf != nil && pf.set {
			if err := s.value.Set(pf.raw); err != nil {
				return nil, false, fmt.Errorf("invalid configuration: %s (flag --%s): %w", s.key, s.flag, err)
			}
			c.sources[s.key] = "flag --" + s.flag
		}
	}
	spEnabled := *(*bool)(byKey["registry.selfpreservation.enabled"].value.(*boolValue))
	c.Registry.SelfPreservation.Disabled = !spEnabled || *noSP
	if err := c.validate(table); err != nil {
		return nil, false, err
	}
	if err := checkGCPercent(c.Runtime, getenv); err != nil {
		return nil, false, err
	}
	return c, *printConfig, nil
}

// pendingFlag holds a flag's text until file and environment are applied,
// so that flags win.
type pendingFlag struct {
	target flag.Value
	raw    string
	set    bool
}

func (p *pendingFlag) String() string {
	if p == nil || p.target == nil {
		return ""
	}
	return p.target.String()
}

func (p *pendingFlag) Set(v string) error {
	if err := validateText(p.target, v); err != nil {
		return err
	}
	p.raw, p.set = v, true
	return nil
}

func (p *pendingFlag) IsBoolFlag() bool {
	_, ok := p.target.(*boolValue)
	return ok
}

// validateText checks that v parses for the target's type without setting it.
func validateText(target flag.Value, v string) error {
	var err error
	switch target.(type) {
	case *durationValue:
		_, err = time.ParseDuration(v)
	case *intValue:
		_, err = strconv.Atoi(v)
	case *int64Value:
		_, err = strconv.ParseInt(v, 10, 64)
	case *floatValue:
		_, err = strconv.ParseFloat(v, 64)
	case *boolValue:
		_, err = strconv.ParseBool(v)
	}
	return err
}

// applyFile reads a YAML file of nested keys; unknown keys are errors.
func (c *serverConfig) applyFile(path string, byKey map[string]setting) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read configuration file: %w", err)
	}
	var doc map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("cannot parse configuration file %s: %w", path, err)
	}
	flat := map[string]any{}
	if err := flatten("", doc, flat); err != nil {
		return fmt.Errorf("invalid configuration in %s: %w", path, err)
	}
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, ok := byKey[strings.ToLower(k)]
		if !ok {
			return fmt.Errorf("invalid configuration in %s: unknown key %s", path, k)
		}
		v := fmt.Sprint(flat[k])
		if list, ok := flat[k].([]any); ok { // a YAML list: cluster.peers
			parts := make([]string, len(list))
			for i, e := range list {
				parts[i] = fmt.Sprint(e)
			}
			v = strings.Join(parts, ",")
		}
		if err := s.value.Set(v); err != nil {
			return fmt.Errorf("invalid configuration in %s: %s: %w", path, s.key, err)
		}
		c.sources[s.key] = "file " + path
	}
	return nil
}

func flatten(prefix string, v any, out map[string]any) error {
	m, ok := v.(map[string]any)
	if !ok {
		if prefix == "" {
			if v == nil {
				return nil
			}
			return fmt.Errorf("the document is not a mapping")
		}
		out[prefix] = v
		return nil
	}
	for k, sub := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub == nil {
			return fmt.Errorf("%s has no value", key)
		}
		if err := flatten(key, sub, out); err != nil {
			return err
		}
	}
	return nil
}

func validDSN(dsn string) bool {
	return dsn == "memory" || (strings.HasPrefix(dsn, "sqlite:") && len(dsn) > len("sqlite:")) ||
		strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// badPeers returns the first peer that is not an http(s) URL with a host.
func badPeers(peers []string) string {
	for _, p := range peers {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return p
		}
	}
	return ""
}

// validate checks values the core and server would refuse, naming the key.
func (c *serverConfig) validate(table []setting) error {
	named := func(err error) error {
		msg := err.Error()
		for _, s := range table {
			if s.field != "" && strings.Contains(msg, "cannot use "+s.field+" ") || strings.Contains(msg, "cannot use SelfPreservation."+s.field+" ") {
				return fmt.Errorf("invalid configuration: %s: %w", s.key, err)
			}
		}
		return fmt.Errorf("invalid configuration: %w", err)
	}
	if _, err := core.CheckConfig(c.Registry); err != nil {
		return named(err)
	}
	checks := []struct {
		key string
		bad bool
		why string
	}{
		{"server.addr", c.Server.Addr == "", "must not be empty"},
		{"server.maxBodyBytes", c.Server.MaxBodyBytes < 1, "must be positive"},
		{"server.maxInflatedBytes", c.Server.MaxInflatedBytes < c.Server.MaxBodyBytes, "must be at least server.maxBodyBytes"},
		{"server.maxInflatingBytes", c.Server.MaxInflatingBytes < 2*(c.Server.MaxInflatedBytes+1), "must be at least twice server.maxInflatedBytes, plus 2"},
		{"server.maxHeaderBytes", c.Server.MaxHeaderBytes < 1024, "must be at least 1024"},
		{"server.maxLookupServices", c.Server.MaxLookupServices < 1, "must be positive"},
		{"server.maxConnections", c.Server.MaxConnections < 1, "must be positive"},
		{"server.requestReadTimeout", c.Server.RequestReadTimeout < 100*time.Millisecond, "must be at least 100ms"},
		{"push.maxSubscriptionBytes", c.Server.Push.MaxSubscriptionBytes < 1<<20, "must be at least 1 MiB"},
		{"cluster.peers", badPeers(c.Server.Cluster.Peers) != "", "must be http:// or https:// URLs: " + badPeers(c.Server.Cluster.Peers)},
		{"cluster.syncTimeout", c.Server.Cluster.SyncTimeout <= 0, "must be positive"},
		{"store.dsn", !validDSN(c.Store.DSN), "must be sqlite:PATH, postgres://..., postgresql://... or memory"},
		{"rateLimit.clientShare", c.Limits.ClientShare < 0 || c.Limits.ClientShare > 1, "must be between 0 and 1"},
		{"push.clientShare", c.Server.Push.ClientShare <= 0 || c.Server.Push.ClientShare > 1, "must be above 0 and at most 1"},
		{"server.maxInstancesPerRequest", c.Server.MaxInstancesPerRequest < 1, "must be positive"},
		{"server.readTimeout", c.Server.ReadTimeout <= 0, "must be positive"},
		{"server.writeTimeout", c.Server.WriteTimeout <= 0, "must be positive"},
		{"server.idleTimeout", c.Server.IdleTimeout <= 0, "must be positive"},
		{"push.library", !slices.Contains(server.WSLibraries, c.Server.Push.Library), "must be " + strings.Join(server.WSLibraries, " or ")},
		{"push.sendQueue", c.Server.Push.SendQueue < 1, "must be positive"},
		{"push.pingInterval", c.Server.Push.PingInterval <= 0, "must be positive"},
		{"push.pongWait", c.Server.Push.PongWait <= c.Server.Push.PingInterval, "must be longer than push.pingInterval"},
		{"push.writeWait", c.Server.Push.WriteWait <= 0, "must be positive"},
		{"push.sessionLifetime", c.Server.Push.SessionLifetime < time.Second, "must be at least 1s"},
		{"log.level", !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level), "must be debug, info, warn or error"},
		{"log.format", c.Log.Format != "text" && c.Log.Format != "json", "must be text or json"},
		{"server.responseCacheBytes", c.Server.ResponseCacheBytes < -1, "must be -1 (off), 0 (the default) or a size in bytes"},
		{"runtime.memoryReturnInterval", c.Runtime.MemoryReturnInterval != 0 && c.Runtime.MemoryReturnInterval < time.Second, "must be 0 (never) or at least 1s"},
	}
	if _, err := parseMemoryLimit(c.Runtime.MemoryLimit); err != nil {
		return fmt.Errorf("invalid configuration: runtime.memoryLimit: %w", err)
	}
	if _, err := parseGCPercent(c.Runtime.GCPercent); err != nil {
		return fmt.Errorf("invalid configuration: runtime.gcPercent: %w", err)
	}
	for op, l := range map[string]server.Limit{"register": c.Limits.Register, "heartbeat": c.Limits.Heartbeat,
		"unregister": c.Limits.Unregister, "discovery": c.Limits.Discovery, "status": c.Limits.Status, "cluster": c.Limits.Cluster, "management": c.Limits.Management} {
		checks = append(checks,
			struct {
				key string
				bad bool
				why string
			}{"rateLimit." + op + ".rate", l.Rate < 0, "must not be negative"},
			struct {
				key string
				bad bool
				why string
			}{"rateLimit." + op + ".burst", l.Rate > 0 && l.Burst < 1, "must be at least 1 when the rate is set"})
	}
	for _, ch := range checks {
		if ch.bad {
			return fmt.Errorf("invalid configuration: %s %s", ch.key, ch.why)
		}
	}
	return nil
}

// printYAML writes the effective configuration as nested YAML, with each
// value's source as a comment.
func (c *serverConfig) printYAML(w io.Writer) error {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, s := range c.settingsView() {
		parts := strings.Split(s.key, ".")
		node := root
		for i, p := range parts {
			if i == len(parts)-1 {
				val := &yaml.Node{Kind: yaml.ScalarNode, Value: s.value.String()}
				if src := c.sources[s.key]; src != "" {
					val.LineComment = src
				}
				node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p}, val)
				break
			}
			var next *yaml.Node
			for j := 0; j+1 < len(node.Content); j += 2 {
				if node.Content[j].Value == p {
					next = node.Content[j+1]
				}
			}
			if next == nil {
				next = &yaml.Node{Kind: yaml.MappingNode}
				node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p}, next)
			}
			node = next
		}
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return fmt.Errorf("cannot print the configuration: %w", err)
	}
	return enc.Close()
}

// settingsView binds a fresh table to a copy of c's values, for printing.
func (c *serverConfig) settingsView() []setting {
	view := &serverConfig{}
	table := view.settings()
	view.Registry, view.Server, view.Limits, view.Log, view.Store, view.Runtime = c.Registry, c.Server, c.Limits, c.Log, c.Store, c.Runtime
	for i := range table {
		if table[i].key == "registry.selfPreservation.enabled" {
			table[i].value = boolText(!c.Registry.SelfPreservation.Disabled)
		}
	}
	return table
}

type (
	stringValue   string
	intValue      int
	int64Value    int64
	floatValue    float64
	boolValue     bool
	durationValue time.Duration
	boolText      bool
)

// listValue is a comma-separated list (a YAML list in the file).
type listValue []string

func (v *listValue) Set(s string) error {
	*v = nil
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*v = append(*v, part)
		}
	}
	return nil
}
func (v *listValue) String() string { return strings.Join(*v, ",") }

// secretValue is a string that is never printed.
type secretValue string

func (v *secretValue) Set(s string) error { *v = secretValue(s); return nil }
func (v *secretValue) String() string {
	if *v == "" {
		return ""
	}
	return "(set; not printed)"
}

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }
func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	*v = intValue(n)
	return err
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }
func (v *int64Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	*v = int64Value(n)
	return err
}
func (v *int64Value) String() string { return strconv.FormatInt(int64(*v), 10) }
func (v *floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	*v = floatValue(f)
	return err
}
func (v *floatValue) String() string { return strconv.FormatFloat(float64(*v), 'g', -1, 64) }
func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	*v = boolValue(b)
	return err
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	*v = durationValue(d)
	return err
}
func (v *durationValue) String() string { return time.Duration(*v).String() }
func (v boolText) Set(string) error     { return errors.New("read-only") }
func (v boolText) String() string       { return strconv.FormatBool(bool(v)) }
