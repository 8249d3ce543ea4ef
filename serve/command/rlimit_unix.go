//go:build unix

package command

import "syscall"

// fileLimit is the process's open-file limit (soft, which Go has already
// raised to the hard limit at start), or 0 when it cannot be read. Every
// connection holds a file: serve logs it at start, next to the per-client
// connection cap, so an operator can see the headroom (docs/SECURITY.md).
func fileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return r.Cur
}
