package command

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestStartErrorLogFormat: an error before the server starts (here --auth
// tokens without tokens) is logged in the configured format, as every
// other line, not the log package's (issue 26 item 12).
func TestStartErrorLogFormat(t *testing.T) {
	t.Setenv("SETLIST_ADMIN_TOKEN", "")
	for _, format := range []string{"text", "json"} {
		app := NewApp("test")
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		code := Run(context.Background(), app, []string{"serve", "--log-format", format})
		line := out.String()
		if code != 1 || !strings.Contains(line, "--api-tokens-file") {
			t.Fatalf("%s: exit %d, %q", format, code, line)
		}
		var v map[string]any
		isJSON := json.Unmarshal([]byte(line), &v) == nil
		if (format == "json") != isJSON || (format == "text" && !strings.HasPrefix(line, "time=")) {
			t.Errorf("--log-format %s: the start error is logged as %q", format, line)
		}
	}
}
