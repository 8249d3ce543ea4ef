package setlist_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// goPackage is the part of `go list -json` this test reads.
type goPackage struct {
	ImportPath                         string
	Imports, TestImports, XTestImports []string
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p goPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

const module = "github.com/setlist/setlist"

// TestImportArrows keeps the dependency graph pointing one way. The shared
// core (internal/: the math, the storage adapters, the key space) is what both
// binaries import; batch/ and serve/ hold only what their own binary runs, so
// neither imports the other and the core imports neither. The domain root
// depends on nothing; each external dependency is wrapped by the packages
// named for it.
func TestImportArrows(t *testing.T) {
	// Which of our packages may import a given external dependency.
	owners := map[string][]string{
		"github.com/gofiber/fiber/v2": {module + "/serve/"},
		"github.com/jackc/pgx/v5":     {module + "/internal/postgres", module + "/scripts/"},
		// The embedded backend: SQL text against SQLite lives in one
		// package, and only the embedded store runs the in-process Redis.
		"modernc.org/sqlite":               {module + "/internal/sqlite"},
		"github.com/alicebob/miniredis/v2": {module + "/internal/embedded"},
	}
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/serve") && !strings.HasPrefix(p.ImportPath, module+"/serve") {
				t.Errorf("%s imports %s: nothing outside serve may import serve", p.ImportPath, imp)
			}
			// The measuring trees (bench/, serve/bench/) measure batch's own
			// code: serve's load generator trains in process through batch's
			// CLI, and bench/figures' TestPrecomputeFigures runs a precompute
			// shard (batch/shard; from a test file, which this loop does not
			// read, as serve's end-to-end tests run batch/command). They are
			// linked into no binary (TestBenchImportedByNothing,
			// TestServeLinksNoBatch), so what the arrow keeps, no other
			// binary sharing batch's code, still holds.
			if strings.HasPrefix(imp, module+"/batch") && !strings.HasPrefix(p.ImportPath, module+"/batch") && !inBench(strings.TrimPrefix(p.ImportPath, module+"/")+"/") {
				t.Errorf("%s imports %s: batch/ holds only the batch binary's own code; what another binary needs belongs in internal/", p.ImportPath, imp)
			}
			if p.ImportPath == module+"/internal/config" && strings.HasPrefix(imp, module+"/") {
				t.Errorf("internal/config imports %s: the flags' package holds its own defaults and imports no adapter", imp)
			}
			// Serve's answer path reads the memory limit, not the flags
			// (the playground is a binary's wiring, like serve/command).
			if strings.HasPrefix(p.ImportPath, module+"/serve/internal/") && p.ImportPath != module+"/serve/internal/playground" &&
				imp == module+"/internal/config" {
				t.Errorf("%s imports internal/config: only a binary's command wiring reads the flags (internal/memlimit has the memory limit)", p.ImportPath)
			}
			// The domain's rules need Unicode's tables (normal forms,
			// identifier and confusable data) that only x/text carries.
			if p.ImportPath == module && strings.Contains(imp, ".") && !strings.HasPrefix(imp, "golang.org/x/text/") {
				t.Errorf("the domain package imports %s: it must use the standard library (and golang.org/x/text) only", imp)
			}
			for dep, allowed := range owners {
				if imp != dep && !strings.HasPrefix(imp, dep+"/") {
					continue
				}
				ok := false
				for _, a := range allowed {
					if strings.HasPrefix(p.ImportPath+"/", a) || strings.HasPrefix(p.ImportPath, a) {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s; only %v may", p.ImportPath, imp, allowed)
				}
			}
		}
	}
}

// TestProductionServeLinksNoPlayground keeps the playground out of the
// deployed binary: serve's whole dependency closure (`go list -deps
// ./serve`) holds neither the embedded store (SQLite, C translated to Go and
// the slowest part of every build; miniredis) nor the training pipeline nor
// the synthetic-data generator. They belong to serve-playground
// (serve/playground) and batch.
func TestProductionServeLinksNoPlayground(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./serve").Output()
	if err != nil {
		t.Fatalf("go list -deps ./serve: %v", err)
	}
	forbidden := []string{
		"modernc.org/sqlite", "modernc.org/libc", "github.com/alicebob/miniredis/v2",
		module + "/internal/sqlite", module + "/internal/embedded", module + "/internal/pipeline", module + "/internal/synth",
		module + "/serve/internal/playground",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("go list -deps ./serve listed %d packages; expected serve's few hundred", len(deps))
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("production serve links %s (the playground's); it belongs to serve/playground and batch only", dep)
			}
		}
	}
	// The playground's binary does link them, or the rule above would
	// pass for a wrong reason (a renamed package).
	out, err = exec.Command("go", "list", "-deps", "./serve/playground").Output()
	if err != nil {
		t.Fatalf("go list -deps ./serve/playground: %v", err)
	}
	for _, f := range forbidden {
		if !strings.Contains("\n"+string(out), "\n"+f+"\n") {
			t.Errorf("serve-playground does not link %s: update the list of what production serve must not link", f)
		}
	}
}

// TestServeLinksNoBatch: neither serve binary (production serve, the
// playground) links anything under batch/, whatever imports it indirectly:
// batch/ holds only the batch binary's own code, and what serve needs of
// training is in internal/.
func TestServeLinksNoBatch(t *testing.T) {
	for _, bin := range []string{"./serve", "./serve/playground"} {
		out, err := exec.Command("go", "list", "-deps", bin).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", bin, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 100 {
			t.Fatalf("go list -deps %s listed %d packages; expected a few hundred", bin, len(deps))
		}
		for _, dep := range deps {
			if dep == module+"/batch" || strings.HasPrefix(dep, module+"/batch/") {
				t.Errorf("%s links %s: serve imports nothing under batch/", bin, dep)
			}
		}
	}
}

// TestDomainRulesInRoot: the domain's types and their rules (UserID and
// ParseUserID, SongRef, NewUser, NewSong, Reaction, …) are declared in the
// root package setlist and nowhere else, so there is one rule for what a
// user id or a song is and every adapter calls it.
func TestDomainRulesInRoot(t *testing.T) {
	// Types by name, and the functions that hold a rule (a function named
	// like a domain type elsewhere, e.g. synth.UserID(i), is no rule).
	domain := map[string]bool{
		"type UserID": true, "type SongID": true, "type SongRef": true, "type NewUser": true, "type NewSong": true,
		"type CatalogSong": true, "type SongPatch": true, "type Reaction": true, "type ReactionKind": true,
		"func ParseUserID": true, "func CheckSongNameLength": true, "func NormalizeTags": true,
		"func ValidateTag": true, "func ValidateExternalID": true,
	}
	out, err := exec.Command("git", "ls-files", "*.go").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	found := map[string]bool{}
	fset := token.NewFileSet()
	for _, path := range strings.Fields(string(out)) {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		root := !strings.Contains(path, "/")
		for _, decl := range f.Decls {
			var names []string
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					names = append(names, "func "+d.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					if ts, ok := spec.(*ast.TypeSpec); ok {
						names = append(names, "type "+ts.Name.Name)
					}
				}
			}
			for _, n := range names {
				if !domain[n] {
					continue
				}
				if !root {
					t.Errorf("%s declares %s: the domain's rules live in the root package setlist", path, n)
				}
				found[n] = root || found[n]
			}
		}
	}
	for n := range domain {
		if !found[n] {
			t.Errorf("the root package no longer declares %s: update TestDomainRulesInRoot", n)
		}
	}
}

// benchTrees are where measuring tools live (bench/README.md): bench/ for
// what needs only the root internal/ packages, serve/bench/ for what runs
// serve's server in process (only code under serve/ may import
// serve/internal).
var benchTrees = []string{"bench/", "serve/bench/"}

func inBench(path string) bool {
	for _, b := range benchTrees {
		if strings.HasPrefix(path, b) {
			return true
		}
	}
	return false
}

// TestBenchImportedByNothing: the measuring tools are linked into no
// binary and no other package's tests; they import the product, never the
// other way round.
func TestBenchImportedByNothing(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/") + "/"
		if inBench(rel) {
			continue
		}
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if r, ok := strings.CutPrefix(imp, module+"/"); ok && inBench(r+"/") {
				t.Errorf("%s imports %s: nothing outside bench/ and serve/bench/ imports them", p.ImportPath, imp)
			}
		}
	}
}

// TestFigureHarnessesInBench: a figure harness (a test gated on
// SETLIST_FIGURES, docs/BENCHMARKS.md) lives under bench/ or serve/bench/,
// not among a production package's tests (issue 26 item 4).
func TestFigureHarnessesInBench(t *testing.T) {
	out, err := exec.Command("git", "ls-files", "*.go").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, path := range strings.Fields(string(out)) {
		if inBench(path) {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// The variable's name in quotes, as os.Getenv reads it (spelt
		// with \x22 so that this file does not match).
		if strings.Contains(string(b), "\x22SETLIST_FIGURES\x22") {
			t.Errorf("%s reads SETLIST_FIGURES: figure harnesses live under bench/ (or serve/bench/ for serve's server in process), see bench/README.md", path)
		}
	}
}

// TestBinariesLinkNoTestHelpers: the packages that exist for tests and
// figures (an in-process serve, fixtures, the shared data's reader, test
// databases and Redis) are linked into no binary.
func TestBinariesLinkNoTestHelpers(t *testing.T) {
	helpers := []string{
		module + "/serve/internal/servertest", module + "/serve/internal/fixture", module + "/internal/realdata",
		module + "/internal/postgres/pgtest", module + "/internal/keyspace/redistest",
	}
	for _, bin := range []string{"./serve", "./batch", "./serve/playground"} {
		out, err := exec.Command("go", "list", "-deps", bin).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", bin, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, h := range helpers {
				if dep == h || strings.HasPrefix(dep, h+"/") {
					t.Errorf("%s links %s, a test helper", bin, dep)
				}
			}
		}
	}
}
