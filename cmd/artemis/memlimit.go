package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// The node's Go memory limit (runtime/debug.SetMemoryLimit) makes the
// collector pace itself against the memory the node may use rather than
// only against the heap it had: near the limit it collects more often
// instead of letting the heap double. It is chosen at startup, in falling
// precedence:
//
//  1. the GOMEMLIMIT environment variable, which the Go runtime reads
//     itself: the node leaves it alone;
//  2. runtime.memoryLimit (--memory-limit, $ARTEMIS_RUNTIME_MEMORYLIMIT,
//     the file): a size (GOMEMLIMIT's syntax: 1610612736, 1536MiB, 2GiB),
//     a share of the available memory (90%), off (or 0: no limit), or auto;
//  3. auto, the default: defaultMemoryShare of the available memory.
//
// The available memory is the lowest cgroup memory limit on the process's
// cgroup path and its ancestors (v2 memory.max, v1 memory.limit_in_bytes),
// or the physical memory (MemTotal of /proc/meminfo) when that is less or
// no cgroup sets one.

// defaultMemoryShare of the available memory is the default limit. The
// rest is headroom for what the Go runtime does not count and a container's
// limit does: the executable's resident pages, socket buffers, the SQLite
// store's own allocations.
const defaultMemoryShare = 0.85

const memoryLimitAuto = "auto"

// memoryLimitSpec is a parsed runtime.memoryLimit.
type memoryLimitSpec struct {
	bytes int64   // a size; math.MaxInt64 for off
	share float64 // of the available memory, when bytes is 0
}

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// parseMemoryLimit parses runtime.memoryLimit: auto, off, 0, N% or a size.
func parseMemoryLimit(s string) (memoryLimitSpec, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "", memoryLimitAuto:
		return memoryLimitSpec{share: defaultMemoryShare}, nil
	case "off", "0":
		return memoryLimitSpec{bytes: math.MaxInt64}, nil
	}
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(pct, 64)
		if err != nil || !(f > 0 && f <= 100) {
			return memoryLimitSpec{}, fmt.Errorf("%q is not a share of memory above 0%% and at most 100%%", s)
		}
		return memoryLimitSpec{share: f / 100}, nil
	}
	num, shift := s, uint(0)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return memoryLimitSpec{}, fmt.Errorf("%q is not auto, off, a percentage or a size (bytes, or with B, KiB, MiB, GiB or TiB)", s)
	}
	if n == 0 {
		return memoryLimitSpec{bytes: math.MaxInt64}, nil
	}
	return memoryLimitSpec{bytes: n << shift}, nil
}

// memoryLimit is the limit chosen for the node and why.
type memoryLimit struct {
	bytes  int64 // math.MaxInt64: none
	set    bool  // whether the node sets it (false: GOMEMLIMIT rules)
	source string
}

// chooseMemoryLimit applies the precedence above to setting (the value of
// runtime.memoryLimit), the environment (getenv) and the memory available
// under root ("/" but in tests).
func chooseMemoryLimit(setting string, getenv func(string) string, root string) (memoryLimit, error) {
	if v := getenv("GOMEMLIMIT"); v != "" {
		return memoryLimit{source: "GOMEMLIMIT=" + v}, nil
	}
	spec, err := parseMemoryLimit(setting)
	if err != nil {
		return memoryLimit{}, fmt.Errorf("invalid configuration: runtime.memoryLimit: %w", err)
	}
	if spec.bytes > 0 {
		return memoryLimit{bytes: spec.bytes, set: true, source: "runtime.memoryLimit " + setting}, nil
	}
	avail, from, err := availableMemory(root)
	if err != nil {
		return memoryLimit{}, fmt.Errorf("cannot take %g%% of the available memory: %w", 100*spec.share, err)
	}
	what := "runtime.memoryLimit " + setting
	if s := strings.TrimSpace(setting); s == "" || s == memoryLimitAuto {
		what = "auto"
	}
	return memoryLimit{bytes: int64(spec.share * float64(avail)), set: true,
		source: fmt.Sprintf("%s: %g%% of %s (%s)", what, 100*spec.share, formatBytes(avail), from)}, nil
}

// availableMemory returns the memory this process may use and where that
// figure comes from: the lowest cgroup limit on its path, or MemTotal when
// that is less or no cgroup sets a limit.
func availableMemory(root string) (int64, string, error) {
	total, err := memTotal(root)
	if err != nil {
		return 0, "", err
	}
	limit, from := cgroupMemoryLimit(root)
	if limit > 0 && limit < total {
		return limit, from, nil
	}
	return total, "MemTotal of /proc/meminfo", nil
}

// memTotal reads MemTotal from /proc/meminfo.
func memTotal(root string) (int64, error) {
	f, err := os.Open(filepath.Join(root, "proc/meminfo"))
	if err != nil {
		return 0, fmt.Errorf("cannot read the physical memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 2 && fields[1] == "kB" {
			if kb, err := strconv.ParseInt(fields[0], 10, 64); err == nil && kb > 0 {
				return kb << 10, nil
			}
		}
		return 0, fmt.Errorf("cannot parse /proc/meminfo line %q", sc.Text())
	}
	return 0, errors.New("cannot find MemTotal in /proc/meminfo")
}

// cgroupMount is a mounted cgroup hierarchy: the cgroup path its root shows
// and where it is mounted.
type cgroupMount struct{ root, point string }

// cgroupMemoryLimit returns the lowest memory limit set on the process's
// cgroups (v2 and v1) and their ancestors, and the file that sets it; 0
// when none does or the files cannot be read.
func cgroupMemoryLimit(root string) (int64, string) {
	paths, err := readProcCgroup(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, ""
	}
	v2, v1, err := readCgroupMounts(filepath.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return 0, ""
	}
	best, from := int64(0), ""
	consider := func(m *cgroupMount, cgPath, file string) {
		if m == nil || cgPath == "" {
			return
		}
		if n, f := lowestLimit(root, *m, cgPath, file); n > 0 && (best == 0 || n < best) {
			best, from = n, f
		}
	}
	consider(v2, paths.v2, "memory.max")
	consider(v1, paths.v1, "memory.limit_in_bytes")
	return best, from
}

type procCgroup struct{ v2, v1 string } // the process's cgroup paths

// readProcCgroup reads /proc/self/cgroup: "0::PATH" for v2, "N:...memory...:PATH" for v1.
func readProcCgroup(name string) (procCgroup, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return procCgroup{}, err
	}
	var pc procCgroup
	for line := range strings.SplitSeq(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			pc.v2 = parts[2]
		case hasField(parts[1], ",", "memory"):
			pc.v1 = parts[2]
		}
	}
	return pc, nil
}

// readCgroupMounts finds the cgroup2 mount and the v1 memory controller's
// mount in /proc/self/mountinfo.
func readCgroupMounts(name string) (v2, v1 *cgroupMount, err error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 {
			continue
		}
		m := &cgroupMount{root: unescapeMount(fields[3]), point: unescapeMount(fields[4])}
		switch {
		case tail[0] == "cgroup2" && v2 == nil:
			v2 = m
		case tail[0] == "cgroup" && v1 == nil && hasField(tail[2], ",", "memory"):
			v1 = m
		}
	}
	return v2, v1, sc.Err()
}

// lowestLimit reads file in the cgroup directory of cgPath and in each of
// its ancestors up to the mount point, and returns the lowest limit set and
// the file (as the host names it) that sets it.
func lowestLimit(root string, m cgroupMount, cgPath, file string) (int64, string) {
	rel := cgPath
	if m.root != "/" && strings.HasPrefix(cgPath, m.root) {
		rel = strings.TrimPrefix(cgPath, m.root)
	}
	dir := path.Join(m.point, rel)
	if _, err := os.Stat(filepath.Join(root, dir)); err != nil {
		dir = m.point // a cgroup namespace shows "/" for a path the mount's root already is
	}
	best, from := int64(0), ""
	for {
		if n, ok := readLimit(filepath.Join(root, dir, file)); ok && (best == 0 || n < best) {
			best, from = n, path.Join(dir, file)
		}
		if dir == m.point || !strings.HasPrefix(dir, m.point) {
			return best, from
		}
		dir = path.Dir(dir)
	}
}

// readLimit reads a limit file: a byte count, or "max" (none). cgroup v1
// writes "none" as the largest page-aligned int64, which MemTotal caps.
func readLimit(name string) (int64, bool) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil && n > 0
}

func hasField(list, sep, want string) bool {
	for f := range strings.SplitSeq(list, sep) {
		if f == want {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// formatBytes writes n in the largest binary unit that keeps it at least 1.
func formatBytes(n int64) string {
	if n == math.MaxInt64 {
		return "none"
	}
	for _, u := range sizeUnits[:4] {
		if n >= 1<<u.shift {
			return strconv.FormatFloat(float64(n)/float64(int64(1)<<u.shift), 'f', 1, 64) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
