package setlist_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// goPackage is the part of `go list -json` this test reads.
type goPackage struct {
	ImportPath string
	Imports    []string
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

// TestImportArrows keeps the dependency graph pointing one way: serve may use
// batch's packages (ALS math, storage, key space), never the reverse; the
// domain root depends on nothing; each external dependency is wrapped by the
// packages named for it.
func TestImportArrows(t *testing.T) {
	// Which of our packages may import a given external dependency.
	owners := map[string][]string{
		"github.com/gofiber/fiber/v2": {module + "/serve/"},
		"github.com/jackc/pgx/v5":     {module + "/batch/postgres", module + "/scripts/"},
		// The embedded backend: SQL text against SQLite lives in one
		// package, and only the embedded store runs the in-process Redis.
		"modernc.org/sqlite":               {module + "/batch/sqlite"},
		"github.com/alicebob/miniredis/v2": {module + "/batch/embedded"},
	}
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/serve") && !strings.HasPrefix(p.ImportPath, module+"/serve") {
				t.Errorf("%s imports %s: nothing outside serve may import serve", p.ImportPath, imp)
			}
			if p.ImportPath == module+"/batch/config" && strings.HasPrefix(imp, module+"/") {
				t.Errorf("batch/config imports %s: the flags' package holds its own defaults and imports no adapter", imp)
			}
			if p.ImportPath == module && strings.Contains(imp, ".") {
				t.Errorf("the domain package imports %s: it must use the standard library only", imp)
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
