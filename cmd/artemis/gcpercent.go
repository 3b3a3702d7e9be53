package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The node's GC percent (runtime/debug.SetGCPercent, GOGC's knob) sets the
// heap goal the collector paces itself against: the live heap left by the
// last collection times 1+percent/100. It is chosen at startup, in falling
// precedence:
//
//  1. the GOGC environment variable, which the Go runtime reads itself:
//     the node leaves it alone;
//  2. runtime.gcPercent (--gc-percent, $ARTEMIS_RUNTIME_GCPERCENT, the
//     file): an integer from 1 to 10000, or off (no proportional trigger:
//     the collector runs only to stay under the memory limit, which must
//     then be set);
//  3. defaultGCPercent.
//
// The default is the runtime's own, 100. 50 was the default for a day and
// was measured (results/README.md, issue 14): under slow churn it lowered
// RSS modestly (264 instead of 272 MiB after 10 minutes of make churn at
// 100k instances, results/churn/20261202T062755Z.md) without flattening
// it, while seeding a million instances ran about 20 % slower (153-157k
// against 194k instances/s), and the service.json P99 right after seeding,
// noisy either way, was 637 µs to 1.30 ms in 4 runs against 344 µs to
// 1.95 ms in 3 at 100 (collections overlapping the reads).
// A lower percent trades CPU for memory; an operator short of memory sets
// it, or a memory limit.

// defaultGCPercent is the default runtime.gcPercent.
const defaultGCPercent = 100

// maxGCPercent bounds runtime.gcPercent: above it the heap goal is so far
// past the live heap that the setting is more likely a typo than a choice.
const maxGCPercent = 10000

const gcPercentOff = "off"

// errGCOffNoLimit is the refusal of runtime.gcPercent off without a memory limit.
var errGCOffNoLimit = errors.New("off needs a memory limit (runtime.memoryLimit or GOMEMLIMIT), and there is none: " +
	"the collector would never run and the heap would grow without bound")

// parseGCPercent parses runtime.gcPercent: off (-1) or an integer from 1 to
// maxGCPercent.
func parseGCPercent(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == gcPercentOff {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxGCPercent {
		return 0, fmt.Errorf("%q is not off or an integer from 1 to %d", s, maxGCPercent)
	}
	return n, nil
}

// gcPercent is the GC percent chosen for the node and why.
type gcPercent struct {
	percent int  // -1: off
	set     bool // whether the node sets it (false: GOGC rules)
	source  string
}

// chooseGCPercent applies the precedence above to setting (the value of
// runtime.gcPercent) and the environment (getenv). limit is the memory
// limit in force (math.MaxInt64: none), which off needs.
func chooseGCPercent(setting string, limit int64, getenv func(string) string) (gcPercent, error) {
	if v := getenv("GOGC"); v != "" {
		return gcPercent{source: "GOGC=" + v}, nil
	}
	p, err := parseGCPercent(setting)
	if err == nil && p < 0 && limit == math.MaxInt64 {
		err = errGCOffNoLimit
	}
	if err != nil {
		return gcPercent{}, fmt.Errorf("invalid configuration: runtime.gcPercent: %w", err)
	}
	source := "runtime.gcPercent " + strings.TrimSpace(setting)
	if p == defaultGCPercent {
		source = "default"
	}
	return gcPercent{percent: p, set: true, source: source}, nil
}

// checkGCPercent refuses, when the configuration is loaded, runtime.gcPercent
// off beside runtime.memoryLimit off, unless GOGC or GOMEMLIMIT rules. The
// limit in force is checked again when it is applied (chooseGCPercent).
func checkGCPercent(c runtimeConfig, getenv func(string) string) error {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return nil
	}
	p, err := parseGCPercent(c.GCPercent)
	spec, err2 := parseMemoryLimit(c.MemoryLimit)
	if err == nil && err2 == nil && p < 0 && spec.bytes == math.MaxInt64 {
		return fmt.Errorf("invalid configuration: runtime.gcPercent: %w", errGCOffNoLimit)
	}
	return nil
}

// formatGCPercent writes a GC percent as GOGC does: off, or the integer.
func formatGCPercent(p int64) string {
	if p < 0 {
		return gcPercentOff
	}
	return strconv.FormatInt(p, 10)
}
