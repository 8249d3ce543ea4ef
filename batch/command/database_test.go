package command_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/postgres/pgtest"
)

// TestOnlyMigrateCreatesTheDatabase: with the database missing, batch train
// fails naming it, its server and batch migrate, and creates nothing;
// batch migrate creates it and says where; then the others use it
// (issue 26 item 14).
func TestOnlyMigrateCreatesTheDatabase(t *testing.T) {
	c := newCLI(t)
	u, err := url.Parse(c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	exists := func() bool { return pgtest.DatabaseExists(t, c.dbURL) }
	pgtest.DropDatabase(t, c.dbURL)
	for _, args := range [][]string{{"train"}, {"import", "--csv", sampleCSV}, {"runs"}} {
		code, _, errOut := c.run(args...)
		if code != 1 || !strings.Contains(errOut, name) || !strings.Contains(errOut, u.Host) || !strings.Contains(errOut, "batch migrate creates it") {
			t.Errorf("batch %v on a missing database: exit %d\n%s\nwant 1 naming the database, its server and batch migrate", args, code, errOut)
		}
		if exists() {
			t.Fatalf("batch %v created the database", args)
		}
	}
	code, out, errOut := c.run("migrate")
	if code != 0 || !strings.Contains(out, "schema is up to date") || !strings.Contains(errOut, "created database") ||
		!strings.Contains(errOut, "database="+name) || !strings.Contains(errOut, "server="+u.Host) {
		t.Errorf("batch migrate: exit %d\n%s\n%s", code, out, errOut)
	}
	if !exists() {
		t.Fatal("batch migrate did not create the database")
	}
	if _, _, errOut := c.run("runs"); !strings.Contains(errOut, "database="+name) || strings.Contains(errOut, "created database") {
		t.Errorf("batch runs does not say which database it uses, or created one:\n%s", errOut)
	}
}
