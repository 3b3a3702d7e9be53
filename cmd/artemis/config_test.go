package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/artemis-go/artemis/server"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "artemis.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigPrecedence(t *testing.T) {
	path := writeConfig(t, `
server:
  addr: 127.0.0.1:9001
  maxBodyBytes: 1048576
registry:
  region: file-region
  zone: file-zone
  leaseTtl: 30s
  selfPreservation:
    enabled: false
    threshold: 0.5
rateLimit:
  heartbeat:
    rate: 10
    burst: 5
log:
  format: json
`)
	cfg, _, err := loadServerConfig([]string{"--config", path, "--zone", "flag-zone"},
		env(map[string]string{"ARTEMIS_REGISTRY_ZONE": "env-zone", "ARTEMIS_REGISTRY_LEASETTL": "45s", "ARTEMIS_SERVER_ADDR": "127.0.0.1:9002"}), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"region from the file", cfg.Registry.Region, "file-region"},
		{"zone: flag beats env and file", cfg.Registry.Zone, "flag-zone"},
		{"lease TTL: env beats file", cfg.Registry.LeaseTTL, 45 * time.Second},
		{"addr: env beats file", cfg.Server.Addr, "127.0.0.1:9002"},
		{"body cap from the file", cfg.Server.MaxBodyBytes, 1 << 20},
		{"self-preservation off in the file", cfg.Registry.SelfPreservation.Disabled, true},
		{"threshold from the file", cfg.Registry.SelfPreservation.Threshold, 0.5},
		{"heartbeat rate limit from the file", cfg.Limits.Heartbeat.Rate, 10.0},
		{"register rate limit default", cfg.Limits.Register.Rate, 20000.0},
		{"log format from the file", cfg.Log.Format, "json"},
		{"shards default", cfg.Registry.Shards, 128},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v; want %v", c.name, c.got, c.want)
		}
	}
	var out bytes.Buffer
	if err := cfg.printYAML(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"zone: flag-zone # flag --zone", "leaseTtl: 45s # env ARTEMIS_REGISTRY_LEASETTL",
		"region: file-region # file " + path, "enabled: false # file", "shards: 128\n", "rate: 10 # file"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPrintConfigCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"server", "--print-config", "--lease-ttl", "7s"}, &out, &errOut); code != 0 {
		t.Fatalf("unexpected exit code %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "leaseTtl: 7s # flag --lease-ttl") || !strings.Contains(out.String(), "addr: 127.0.0.1:8080") {
		t.Fatalf("unexpected --print-config output:\n%s", out.String())
	}
}

// TestMemoryReturnInterval: 30 s by default, 0 turns it off, the
// environment and flags set it.
func TestMemoryReturnInterval(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want time.Duration
	}{
		{nil, nil, 30 * time.Second},
		{[]string{"--memory-return-interval", "0"}, nil, 0},
		{nil, map[string]string{"ARTEMIS_RUNTIME_MEMORYRETURNINTERVAL": "5m"}, 5 * time.Minute},
		{[]string{"--memory-return-interval", "1s"}, map[string]string{"ARTEMIS_RUNTIME_MEMORYRETURNINTERVAL": "5m"}, time.Second},
	} {
		cfg, _, err := loadServerConfig(c.args, env(c.env), &bytes.Buffer{})
		if err != nil || cfg.Runtime.MemoryReturnInterval != c.want {
			t.Fatalf("%v %v: unexpected interval %v, %v; want %v", c.args, c.env, cfg.Runtime.MemoryReturnInterval, err, c.want)
		}
	}
}

func TestBadConfigNamesTheKey(t *testing.T) {
	cases := []struct {
		name  string
		file  string
		args  []string
		env   map[string]string
		wants string
	}{
		{"unknown key", "registry:\n  leaseTtlz: 3s\n", nil, nil, "unknown key registry.leaseTtlz"},
		{"bad duration in file", "registry:\n  leaseTtl: soon\n", nil, nil, "registry.leaseTtl"},
		{"too short TTL", "registry:\n  leaseTtl: 10ms\n", nil, nil, "registry.leaseTtl"},
		{"threshold out of range", "registry:\n  selfPreservation:\n    threshold: 3\n", nil, nil, "registry.selfPreservation.threshold"},
		{"bad env", "", nil, map[string]string{"ARTEMIS_REGISTRY_SHARDS": "many"}, "registry.shards (from $ARTEMIS_REGISTRY_SHARDS)"},
		{"negative shards flag", "", []string{"--shards", "-4"}, nil, "registry.shards"},
		{"bad log level", "log:\n  level: loud\n", nil, nil, "log.level"},
		{"unknown WebSocket library", "", []string{"--ws-library", "nhooyr"}, nil, "push.library"},
		{"pong wait under ping interval", "push:\n  pingInterval: 1m\n  pongWait: 30s\n", nil, nil, "push.pongWait"},
		{"inflated cap under body cap", "server:\n  maxBodyBytes: 100\n  maxInflatedBytes: 10\n", nil, nil, "server.maxInflatedBytes"},
		{"negative rate", "rateLimit:\n  status:\n    rate: -1\n", nil, nil, "rateLimit.status.rate"},
		{"not a mapping", "- a\n- b\n", nil, nil, "cannot parse configuration file"},
		{"empty value", "registry:\n  zone:\n", nil, nil, "registry.zone has no value"},
		{"memory return too often", "", []string{"--memory-return-interval", "500ms"}, nil, "runtime.memoryReturnInterval"},
		{"negative memory return", "runtime:\n  memoryReturnInterval: -1m\n", nil, nil, "runtime.memoryReturnInterval"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if c.file != "" {
				args = append([]string{"--config", writeConfig(t, c.file)}, args...)
			}
			_, _, err := loadServerConfig(args, env(c.env), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.wants) {
				t.Fatalf("unexpected error %v; want one naming %q", err, c.wants)
			}
		})
	}
	if code := run([]string{"server", "--config", "/nonexistent.yaml"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Fatalf("unexpected exit code %d for a missing file", code)
	}
}

// The limits of issue 10 are settings like every other: file, environment
// and flags reach the server, and values that cannot work are refused.
func TestLimitSettings(t *testing.T) {
	path := writeConfig(t, `
server:
  maxLookupServices: 20
  maxConnections: 100
push:
  maxSubscriptionBytes: 2097152
rateLimit:
  cluster: {rate: 7, burst: 9}
  clientShare: 0.5
`)
	cfg, _, err := loadServerConfig([]string{"--config", path, "--request-read-timeout", "5s"},
		env(map[string]string{"ARTEMIS_SERVER_MAXINFLATINGBYTES": "100000000"}), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"lookup cap", cfg.Server.MaxLookupServices, 20},
		{"connections", cfg.Server.MaxConnections, 100},
		{"subscription bytes", cfg.Server.Push.MaxSubscriptionBytes, 2 << 20},
		{"cluster limit", cfg.Limits.Cluster, server.Limit{Rate: 7, Burst: 9}},
		{"client share", cfg.Limits.ClientShare, 0.5},
		{"request read timeout (flag)", cfg.Server.RequestReadTimeout, 5 * time.Second},
		{"inflating bytes (environment)", cfg.Server.MaxInflatingBytes, 100000000},
	} {
		if c.got != c.want {
			t.Errorf("unexpected %s %v; want %v", c.name, c.got, c.want)
		}
	}
	for _, bad := range [][]string{
		{"--max-inflating-bytes", "1000"},
		{"--max-lookup-services", "0"},
		{"--max-connections", "0"},
		{"--request-read-timeout", "1ms"},
		{"--ws-max-subscription-bytes", "1000"},
		{"--rate-limit-client-share", "1.5"},
		{"--rate-limit-cluster", "-1"},
	} {
		if _, _, err := loadServerConfig(bad, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "invalid configuration") {
			t.Errorf("%v: unexpected error %v; want invalid configuration", bad, err)
		}
	}
}
