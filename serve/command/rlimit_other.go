//go:build !unix

package command

// fileLimit is unknown off Unix.
func fileLimit() uint64 { return 0 }
