package command

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminToken: the token comes from --admin-token-file (a mounted
// Secret, trimmed of the trailing newline editors add) or else
// SETLIST_ADMIN_TOKEN; none disables admin; a named file that is missing or
// empty stops serve instead of silently disabling admin.
func TestAdminToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, empty := write("token", "s3cret\n"), write("empty", " \n")
	for _, c := range []struct {
		name, file, env, want, err string
	}{
		{name: "none"},
		{name: "env", env: "from-env", want: "from-env"},
		{name: "file", file: good, want: "s3cret"},
		{name: "file wins", file: good, env: "from-env", want: "s3cret"},
		{name: "missing file", file: filepath.Join(dir, "nope"), err: "read --admin-token-file"},
		{name: "empty file", file: empty, err: "is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SETLIST_ADMIN_TOKEN", c.env)
			cfg := Config{AdminTokenFile: c.file}
			got, err := cfg.adminToken()
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("token %q, %v; want %q", got, err, c.want)
			}
		})
	}
	for _, args := range [][]string{
		{"serve", "--write-rate", "-1"},
		{"serve", "--write-burst", "0"},
		{"serve", "--trusted-proxies", "not-an-ip"},
	} {
		if _, err := ParseConfig(args); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	cfg, err := ParseConfig([]string{"serve", "--trusted-proxies", "10.0.0.0/8", "--write-rate", "5", "--write-burst", "7"})
	if err != nil || len(cfg.Server.API.TrustedProxies) != 1 || cfg.Server.API.WriteRate != 5 || cfg.Server.API.WriteBurst != 7 {
		t.Fatalf("parsed %+v, %v", cfg.Server.API, err)
	}
}
