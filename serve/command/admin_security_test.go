package command

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/setlist/setlist/serve/internal/recs"
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
		{"serve", "--auth", "off", "--scoring-rate", "-1"},
		{"serve", "--auth", "off", "--scoring-burst", "0"},
		{"serve", "--trusted-proxies", "not-an-ip"},
		{"serve", "--auth", "off", "--auth-fail-burst", "0"},
		{"serve", "--auth", "off", "--max-conns-per-client", "-1"},
		{"serve", "--auth", "maybe"},
	} {
		if _, err := ParseConfig(args); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	cfg, err := ParseConfig([]string{"serve", "--auth", "off", "--trusted-proxies", "10.0.0.0/8", "--write-rate", "5", "--write-burst", "7"})
	if err != nil || len(cfg.Server.API.TrustedProxies) != 1 || cfg.Server.API.WriteRate != 5 || cfg.Server.API.WriteBurst != 7 {
		t.Fatalf("parsed %+v, %v", cfg.Server.API, err)
	}
	if r, b := cfg.Server.Recs.ScoringRate, cfg.Server.Recs.ScoringBurst; r != recs.DefaultScoringRate || b != recs.DefaultScoringBurst {
		t.Fatalf("scoring rate %g, burst %d by default; want %d and %d", r, b, recs.DefaultScoringRate, recs.DefaultScoringBurst)
	}
	t.Setenv("SETLIST_SCORING_RATE", "0")
	if cfg, err := ParseConfig([]string{"serve", "--auth", "off"}); err != nil || cfg.Server.Recs.ScoringRate != 0 {
		t.Fatalf("SETLIST_SCORING_RATE=0: rate %g, %v; want 0 (no limit)", cfg.Server.Recs.ScoringRate, err)
	}
}

// TestAuthConfig: production fails closed (no tokens file and no admin
// token: serve refuses to start, saying how to fix it), the tokens file is
// read at start with line-numbered errors, and --playground names the
// playground's own binary (its defaults: serve/internal/playground).
func TestAuthConfig(t *testing.T) {
	t.Setenv("SETLIST_ADMIN_TOKEN", "")
	t.Setenv("SETLIST_STORE", "")
	if _, err := ParseConfig([]string{"serve"}); err == nil || !strings.Contains(err.Error(), "--auth tokens needs --api-tokens-file") {
		t.Fatalf("serve with no tokens: %v, want a refusal naming --api-tokens-file", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	if err := os.WriteFile(file, []byte("read 0123456789abcdef\nadmin fedcba9876543210\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]string{"serve", "--api-tokens-file", file})
	if err != nil || !cfg.Server.API.RequireAuth || cfg.Addr != ":8080" || cfg.MetricsAddr != ":9464" {
		t.Fatalf("production config: %+v, %v", cfg, err)
	}
	tok, err := cfg.apiTokens()
	if err != nil || tok.Len() != 2 {
		t.Fatalf("tokens %v, %v", tok.Len(), err)
	}
	if err := os.WriteFile(file, []byte("read 0123456789abcdef\nsuper fedcba9876543210\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.apiTokens(); err == nil || !strings.Contains(err.Error(), file+":2:") {
		t.Fatalf("bad scope: %v, want the file and line", err)
	}

	// The playground is its own binary: production serve says so.
	for _, args := range [][]string{{"serve", "--playground"}, {"serve", "--api-tokens-file", file, "--playground"}} {
		if _, err := ParseConfig(args); err == nil || !strings.Contains(err.Error(), "serve-playground") {
			t.Errorf("%v: %v, want a refusal naming serve-playground", args, err)
		}
	}
	t.Setenv("SETLIST_PLAYGROUND", "true")
	if _, err := ParseConfig([]string{"serve", "--api-tokens-file", file}); err == nil || !strings.Contains(err.Error(), "serve-playground") {
		t.Errorf("SETLIST_PLAYGROUND=true: %v, want a refusal naming serve-playground", err)
	}
	t.Setenv("SETLIST_PLAYGROUND", "")
	// Nor does it offer the embedded store.
	if _, err := ParseConfig([]string{"serve", "--api-tokens-file", file, "--store", "embedded"}); err == nil {
		t.Error("serve --store embedded: accepted")
	}
}
