package config

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// ProcessMemoryLimit is the process's memory limit: GOMEMLIMIT, else its
// cgroup's (v2 memory.max, then v1), 0 when neither is set. Serve sizes its
// near cache from it and batch the largest EASE catalog it trains.
func ProcessMemoryLimit() int64 {
	if limit := debug.SetMemoryLimit(-1); limit > 0 && limit != math.MaxInt64 { // reads without changing it
		return limit
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // "max", or v1's "unlimited" (a huge number)
			return 0
		}
		return n
	}
	return 0
}

// MachineMemory is the machine's total memory (/proc/meminfo), 0 if unknown.
func MachineMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// ParseBytes reads a size: a count of bytes with an optional KiB, MiB, GiB
// (or KB, MB, GB) suffix.
func ParseBytes(given string) (int64, error) {
	v := strings.TrimSpace(given)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}} {
		if rest, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("want a size such as 134217728, 128MiB or 1GiB, got %q", given)
	}
	return n * mult, nil
}
