// Package memlimit reads how much memory this process may use, for the
// caches and guards that size themselves from it. It is its own package,
// on the standard library only, so serve's answer path (recs) reads the limit
// without importing the flags' package.
package memlimit

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Process is the process's memory limit: GOMEMLIMIT, else its
// cgroup's (v2 memory.max, then v1), 0 when neither is set. Serve sizes its
// near cache from it and batch the largest EASE catalog it trains.
func Process() int64 {
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

// Machine is the machine's total memory (/proc/meminfo), 0 if unknown.
func Machine() int64 {
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
