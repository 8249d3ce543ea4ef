//go:build !unix

package embedded

import (
	"fmt"
	"os"
)

// lockDir only opens path where flock is missing: the playground is one
// process, and a second one on the same data dir is the user's to avoid.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("embedded key-value lock: %w", err)
	}
	return f, nil
}
