package command

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist/internal/pipeline"
)

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"train", "train", 0},
		{"", "tune", 4},
		{"trian", "train", 1}, // one transposition, not two substitutions
		{"improt", "import", 1},
		{"tune", "runs", 2},
		{"ca", "abc", 3}, // optimal string alignment: no edit of a transposed pair
		{"kitten", "sitting", 3},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := editDistance(tt.b, tt.a); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d (symmetric)", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestNearest(t *testing.T) {
	names := []string{"migrate", "import", "import-model", "train", "tune", "runs", "refresh", "republish", "export", "experiment", "catalog"}
	for _, tt := range []struct{ given, want string }{
		{"import-m", "import-model"}, // a unique prefix wins over the distance rule
		{"trian", "train"},
		{"improt", "import"},
		{"tun", "tune"},
		{"exp", ""}, // export and experiment share the prefix, and neither is near
		{"re", ""},  // ambiguous prefix, nothing near
		{"deploy", ""},
		{"", ""},
		{"xyz", ""},
		{"catalgo", "catalog"},
	} {
		if got := nearest(tt.given, names); got != tt.want {
			t.Errorf("nearest(%q) = %q, want %q", tt.given, got, tt.want)
		}
	}
}

func TestHoistGlobalFlags(t *testing.T) {
	app := &cli.App{
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "database-url"},
			&cli.StringFlag{Name: "redis-url"},
			&cli.BoolFlag{Name: "redis-cluster"},
		},
		Commands: []*cli.Command{
			{Name: "train", Flags: []cli.Flag{&cli.IntFlag{Name: "k"}, &cli.StringFlag{Name: "notes"}}},
			{Name: "pin"},
			{Name: "catalog", Subcommands: []*cli.Command{{Name: "import", Flags: []cli.Flag{&cli.StringFlag{Name: "csv"}}}}},
			// A command that defines a global flag's name keeps it.
			{Name: "own", Flags: []cli.Flag{&cli.StringFlag{Name: "redis-url"}}},
		},
	}
	for _, tt := range []struct{ args, want []string }{
		{[]string{"batch"}, []string{"batch"}},
		{[]string{"batch", "--database-url", "D", "train", "-k", "3"}, []string{"batch", "--database-url", "D", "train", "-k", "3"}},
		{[]string{"batch", "train", "--database-url", "D", "-k", "3"}, []string{"batch", "--database-url", "D", "train", "-k", "3"}},
		{[]string{"batch", "train", "--database-url=D", "--redis-cluster", "-k", "3"}, []string{"batch", "--database-url=D", "--redis-cluster", "train", "-k", "3"}},
		{[]string{"batch", "--redis-url", "R", "catalog", "import", "--csv", "f", "-database-url", "D"}, []string{"batch", "--redis-url", "R", "-database-url", "D", "catalog", "import", "--csv", "f"}},
		// A value that looks like a global flag stays with its flag.
		{[]string{"batch", "train", "--notes", "--redis-url", "-k", "3"}, []string{"batch", "train", "--notes", "--redis-url", "-k", "3"}},
		// A value of a global flag that names a command is not the command.
		{[]string{"batch", "--database-url", "train", "pin", "--redis-url", "R", "3"}, []string{"batch", "--database-url", "train", "--redis-url", "R", "pin", "3"}},
		{[]string{"batch", "own", "--redis-url", "R"}, []string{"batch", "own", "--redis-url", "R"}},
		{[]string{"batch", "train", "--", "--database-url", "D"}, []string{"batch", "train", "--", "--database-url", "D"}},
		{[]string{"batch", "trian", "--database-url", "D"}, []string{"batch", "trian", "--database-url", "D"}},
	} {
		if got := hoistGlobalFlags(app, tt.args); !slices.Equal(got, tt.want) {
			t.Errorf("hoistGlobalFlags(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

// TestSearchFamilyDefault: wherever a search runs (train --tune-budget,
// tune), it compares the families unless told otherwise (issue 26 item 16).
func TestSearchFamilyDefault(t *testing.T) {
	app := NewApp("test")
	for _, name := range []string{"train", "tune"} {
		cmd := findCommand(app.Commands, name)
		for _, f := range cmd.Flags {
			if sf, ok := f.(*cli.StringFlag); ok && sf.Name == "family" && sf.Value != pipeline.FamilyAuto {
				t.Errorf("batch %s --family defaults to %q, want %q", name, sf.Value, pipeline.FamilyAuto)
			}
		}
	}
}
