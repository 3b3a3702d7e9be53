package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

func TestParseGCPercent(t *testing.T) {
	f := func(s string, want int) {
		t.Helper()
		got, err := parseGCPercent(s)
		if err != nil || got != want {
			t.Fatalf("unexpected parse of %q; got %d, %v; want %d", s, got, err, want)
		}
	}
	f("off", -1)
	f(" off ", -1)
	f("50", 50)
	f("1", 1)
	f("100", 100)
	f("10000", 10000)
	for _, bad := range []string{"", "0", "-1", "10001", "50%", "1.5", "Off", "none", "auto", "lots"} {
		if got, err := parseGCPercent(bad); err == nil {
			t.Fatalf("unexpected parse of %q: %d; want an error", bad, got)
		}
	}
}

// TestGCPercentPrecedence: GOGC wins, then runtime.gcPercent (flag over
// environment over file, as every setting), then the default; off needs a
// memory limit in force.
func TestGCPercentPrecedence(t *testing.T) {
	const limit = 1 << 30
	choose := func(args []string, vars map[string]string, limit int64) (gcPercent, error) {
		t.Helper()
		cfg, _, err := loadServerConfig(args, env(vars), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return chooseGCPercent(cfg.Runtime.GCPercent, limit, env(vars))
	}
	path := writeConfig(t, "runtime:\n  gcPercent: 25\n")
	offPath := writeConfig(t, "runtime:\n  gcPercent: off\n  memoryLimit: 1GiB\n")
	for _, tc := range []struct {
		name  string
		args  []string
		vars  map[string]string
		limit int64
		want  gcPercent
	}{
		{"default", nil, nil, limit, gcPercent{100, true, "default"}},
		{"default, no memory limit", nil, nil, math.MaxInt64, gcPercent{100, true, "default"}},
		{"file", []string{"--config", path}, nil, limit, gcPercent{25, true, "runtime.gcPercent 25"}},
		{"file: off", []string{"--config", offPath}, nil, limit, gcPercent{-1, true, "runtime.gcPercent off"}},
		{"environment beats file", []string{"--config", path}, map[string]string{"ARTEMIS_RUNTIME_GCPERCENT": "75"},
			limit, gcPercent{75, true, "runtime.gcPercent 75"}},
		{"flag beats environment", []string{"--gc-percent", "off"}, map[string]string{"ARTEMIS_RUNTIME_GCPERCENT": "75"},
			limit, gcPercent{-1, true, "runtime.gcPercent off"}},
		{"GOGC beats the flag", []string{"--gc-percent", "25"}, map[string]string{"GOGC": "200"},
			limit, gcPercent{0, false, "GOGC=200"}},
		{"GOGC beats the default", nil, map[string]string{"GOGC": "100"}, limit, gcPercent{0, false, "GOGC=100"}},
		{"GOGC off needs no check here", nil, map[string]string{"GOGC": "off"}, math.MaxInt64, gcPercent{0, false, "GOGC=off"}},
	} {
		got, err := choose(tc.args, tc.vars, tc.limit)
		if err != nil || got != tc.want {
			t.Fatalf("%s: unexpected GC percent %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	// off with no memory limit in force (GOMEMLIMIT=off, or none could be
	// worked out) is refused when it is applied.
	if got, err := choose([]string{"--gc-percent", "off"}, map[string]string{"GOMEMLIMIT": "off"}, math.MaxInt64); !errors.Is(err, errGCOffNoLimit) ||
		!strings.Contains(err.Error(), "runtime.gcPercent") {
		t.Fatalf("unexpected answer to off without a memory limit: %+v, %v; want %v", got, err, errGCOffNoLimit)
	}
}

// TestGCPercentConfigErrors: bad values, and off beside memoryLimit off,
// are configuration errors naming the key; GOMEMLIMIT or GOGC lift the
// latter.
func TestGCPercentConfigErrors(t *testing.T) {
	f := func(args []string, vars map[string]string, want string) {
		t.Helper()
		_, _, err := loadServerConfig(args, env(vars), io.Discard)
		if want == "" {
			if err != nil {
				t.Fatalf("unexpected error for %v %v: %v", args, vars, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("unexpected error for %v %v; got %v; want one containing %q", args, vars, err, want)
		}
	}
	f([]string{"--gc-percent", "0"}, nil, `runtime.gcPercent: "0" is not off or an integer from 1 to 10000`)
	f([]string{"--gc-percent", "20000"}, nil, "runtime.gcPercent")
	f(nil, map[string]string{"ARTEMIS_RUNTIME_GCPERCENT": "half"}, "runtime.gcPercent")
	f([]string{"--config", writeConfig(t, "runtime:\n  gcPercent: -1\n")}, nil, "runtime.gcPercent")
	f([]string{"--gc-percent", "lots"}, map[string]string{"GOGC": "100"}, "runtime.gcPercent") // still checked when GOGC wins
	offOff := "runtime.gcPercent: off needs a memory limit"
	f([]string{"--gc-percent", "off", "--memory-limit", "off"}, nil, offOff)
	f([]string{"--gc-percent", "off", "--memory-limit", "0"}, nil, offOff)
	f([]string{"--gc-percent", "off", "--memory-limit", "off"}, map[string]string{"GOMEMLIMIT": "1GiB"}, "")
	f([]string{"--gc-percent", "off", "--memory-limit", "off"}, map[string]string{"GOGC": "100"}, "")
	f([]string{"--gc-percent", "off"}, nil, "") // auto
	f([]string{"--gc-percent", "off", "--memory-limit", "512MiB"}, nil, "")
}

// TestApplyGCPercent sets the runtime's GC percent and logs it with its
// source; GOGC leaves it alone; off without a memory limit is refused.
func TestApplyGCPercent(t *testing.T) {
	oldPercent := debug.SetGCPercent(30) // the default must be set, not found
	defer debug.SetGCPercent(oldPercent)
	oldLimit := debug.SetMemoryLimit(1 << 30)
	defer debug.SetMemoryLimit(oldLimit)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	apply := func(args []string, vars map[string]string) error {
		t.Helper()
		logs.Reset()
		cfg, _, err := loadServerConfig(args, env(vars), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return applyGCPercent(log, cfg, env(vars))
	}
	if err := apply(nil, nil); err != nil || currentGCPercent() != 100 ||
		!strings.Contains(logs.String(), `msg="gc percent" gcPercent=100 source=default`) {
		t.Fatalf("unexpected default: %v, %d, %q", err, currentGCPercent(), logs.String())
	}
	if err := apply([]string{"--gc-percent", "off"}, nil); err != nil || currentGCPercent() != -1 ||
		!strings.Contains(logs.String(), `gcPercent=off source="runtime.gcPercent off"`) {
		t.Fatalf("unexpected off: %v, %d, %q", err, currentGCPercent(), logs.String())
	}
	debug.SetGCPercent(80)
	if err := apply([]string{"--gc-percent", "25"}, map[string]string{"GOGC": "80"}); err != nil || currentGCPercent() != 80 ||
		!strings.Contains(logs.String(), "runtime.gcPercent is ignored: GOGC is set") ||
		!strings.Contains(logs.String(), `gcPercent=80 source="GOGC=80"`) {
		t.Fatalf("GOGC did not leave the runtime alone: %v, %d, %q", err, currentGCPercent(), logs.String())
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if err := apply([]string{"--gc-percent", "off"}, nil); !errors.Is(err, errGCOffNoLimit) || currentGCPercent() != 80 {
		t.Fatalf("unexpected answer to off without a memory limit: %v, %d", err, currentGCPercent())
	}
}
