package main

import (
	"bytes"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestParseMemoryLimit(t *testing.T) {
	f := func(s string, want memoryLimitSpec) {
		t.Helper()
		got, err := parseMemoryLimit(s)
		if err != nil || got != want {
			t.Fatalf("unexpected parse of %q; got %+v, %v; want %+v", s, got, err, want)
		}
	}
	f("", memoryLimitSpec{share: defaultMemoryShare})
	f("auto", memoryLimitSpec{share: defaultMemoryShare})
	f("off", memoryLimitSpec{bytes: math.MaxInt64})
	f("0", memoryLimitSpec{bytes: math.MaxInt64})
	f("0GiB", memoryLimitSpec{bytes: math.MaxInt64})
	f("90%", memoryLimitSpec{share: 0.9})
	f("12.5%", memoryLimitSpec{share: 0.125})
	f("100%", memoryLimitSpec{share: 1})
	f("1610612736", memoryLimitSpec{bytes: 1610612736})
	f("1536MiB", memoryLimitSpec{bytes: 1536 << 20})
	f("2GiB", memoryLimitSpec{bytes: 2 << 30})
	f("512KiB", memoryLimitSpec{bytes: 512 << 10})
	f("1TiB", memoryLimitSpec{bytes: 1 << 40})
	f("100B", memoryLimitSpec{bytes: 100})
	for _, bad := range []string{"0%", "101%", "-5%", "x%", "2GB", "2G", "-1", "1.5GiB", "9999999TiB", "lots"} {
		if got, err := parseMemoryLimit(bad); err == nil {
			t.Fatalf("unexpected parse of %q: %+v; want an error", bad, got)
		}
	}
}

// TestAvailableMemory reads cgroup and meminfo files laid out as a host
// or a container shows them (testdata/memlimit/*: proc/ and sys/ trees).
func TestAvailableMemory(t *testing.T) {
	const memTotal = 16 << 30
	for _, tc := range []struct {
		dir  string
		want int64
		from string
	}{
		{"cgroup2-container", 2 << 30, "/sys/fs/cgroup/memory.max"},
		{"cgroup2-nested", 1 << 30, "/sys/fs/cgroup/system.slice/memory.max"}, // the slice's limit is lower than the service's
		{"cgroup2-unlimited", memTotal, "MemTotal of /proc/meminfo"},
		{"cgroup1-unlimited", memTotal, "MemTotal of /proc/meminfo"},
		{"cgroup1-limited", 512 << 20, "/sys/fs/cgroup/memory/kubepods/burstable/pod1/abc/memory.limit_in_bytes"},
		{"cgroup1-container", 768 << 20, "/sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{"no-cgroup", memTotal, "MemTotal of /proc/meminfo"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			got, from, err := availableMemory(filepath.Join("testdata/memlimit", tc.dir))
			if err != nil || got != tc.want || from != tc.from {
				t.Fatalf("unexpected available memory %d from %q (%v); want %d from %q", got, from, err, tc.want, tc.from)
			}
		})
	}
	if _, _, err := availableMemory("testdata/memlimit/no-meminfo"); err == nil {
		t.Fatal("no error without /proc/meminfo")
	}
}

// TestMemoryLimitPrecedence: GOMEMLIMIT wins, then runtime.memoryLimit
// (flag over environment over file, as every setting), then auto.
func TestMemoryLimitPrecedence(t *testing.T) {
	root := "testdata/memlimit/cgroup2-container" // 2 GiB available
	choose := func(args []string, vars map[string]string) memoryLimit {
		t.Helper()
		cfg, _, err := loadServerConfig(args, env(vars), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		ml, err := chooseMemoryLimit(cfg.Runtime.MemoryLimit, env(vars), root)
		if err != nil {
			t.Fatal(err)
		}
		return ml
	}
	path := writeConfig(t, "runtime:\n  memoryLimit: 1GiB\n")
	share, avail := defaultMemoryShare, float64(2<<30)
	for _, tc := range []struct {
		name string
		args []string
		vars map[string]string
		want memoryLimit
	}{
		{"default: auto", nil, nil,
			memoryLimit{int64(share * avail), true, "auto: 85% of 2.0GiB (/sys/fs/cgroup/memory.max)"}},
		{"file", []string{"--config", path}, nil, memoryLimit{1 << 30, true, "runtime.memoryLimit 1GiB"}},
		{"environment beats file", []string{"--config", path}, map[string]string{"ARTEMIS_RUNTIME_MEMORYLIMIT": "50%"},
			memoryLimit{1 << 30, true, "runtime.memoryLimit 50%: 50% of 2.0GiB (/sys/fs/cgroup/memory.max)"}},
		{"flag beats environment", []string{"--memory-limit", "off"}, map[string]string{"ARTEMIS_RUNTIME_MEMORYLIMIT": "50%"},
			memoryLimit{math.MaxInt64, true, "runtime.memoryLimit off"}},
		{"GOMEMLIMIT beats the flag", []string{"--memory-limit", "1GiB"}, map[string]string{"GOMEMLIMIT": "3GiB"},
			memoryLimit{0, false, "GOMEMLIMIT=3GiB"}},
		{"GOMEMLIMIT beats auto", nil, map[string]string{"GOMEMLIMIT": "off"}, memoryLimit{0, false, "GOMEMLIMIT=off"}},
	} {
		if got := choose(tc.args, tc.vars); got != tc.want {
			t.Fatalf("%s: unexpected limit %+v; want %+v", tc.name, got, tc.want)
		}
	}
	if _, _, err := loadServerConfig([]string{"--memory-limit", "lots"}, env(nil), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "runtime.memoryLimit") {
		t.Fatalf("unexpected error for a bad limit: %v", err)
	}
}

// TestApplyMemoryLimit sets the runtime's limit and logs it with its source.
func TestApplyMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, _, err := loadServerConfig([]string{"--memory-limit", "25%"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	applyMemoryLimit(log, cfg, env(nil), "testdata/memlimit/cgroup2-container")
	if got := debug.SetMemoryLimit(-1); got != 512<<20 {
		t.Fatalf("unexpected memory limit %d; want 512 MiB", got)
	}
	if want := `limit=512.0MiB bytes=536870912 source="runtime.memoryLimit 25%: 25% of 2.0GiB (/sys/fs/cgroup/memory.max)" responseCache=32.0MiB`; !strings.Contains(logs.String(), want) {
		t.Fatalf("unexpected log %q; want %q", logs.String(), want)
	}
	logs.Reset()
	applyMemoryLimit(log, cfg, env(map[string]string{"GOMEMLIMIT": "1GiB"}), "testdata/memlimit/cgroup2-container")
	if got := debug.SetMemoryLimit(-1); got != 512<<20 || !strings.Contains(logs.String(), "runtime.memoryLimit is ignored: GOMEMLIMIT is set") {
		t.Fatalf("GOMEMLIMIT did not leave the runtime alone: %d, %q", got, logs.String())
	}
	logs.Reset()
	applyMemoryLimit(log, cfg, env(nil), "testdata/memlimit/no-meminfo")
	if got := debug.SetMemoryLimit(-1); got != 512<<20 || !strings.Contains(logs.String(), "no memory limit set") {
		t.Fatalf("an unknown memory size changed the limit: %d, %q", got, logs.String())
	}
}
