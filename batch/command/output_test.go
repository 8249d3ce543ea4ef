package command_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/setlist/setlist/batch/command"
)

// TestOutputFlag: every command that prints a table or JSON refuses any
// other --output before it opens a store.
func TestOutputFlag(t *testing.T) {
	for _, args := range [][]string{{"runs"}, {"tune"}, {"experiment", "status"}} {
		app := command.NewApp("test")
		var out, errOut bytes.Buffer
		app.Writer, app.ErrWriter = &out, &errOut
		argv := append([]string{"batch", "--store", "embedded", "--data-dir", t.TempDir()}, args...)
		code := command.Run(context.Background(), app, append(argv, "-o", "xml"))
		if code == 0 || !strings.Contains(errOut.String(), "--output must be table or json") {
			t.Errorf("batch %s -o xml: exit %d, %s", strings.Join(args, " "), code, errOut.String())
		}
	}
}
