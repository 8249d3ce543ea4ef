package command

import (
	"bytes"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// TestPrintRunsOnline: batch runs shows a served version's online metrics
// next to its offline ones (summed over sources and arms), "-" for a
// version never served, and the per-source breakdown below.
func TestPrintRunsOnline(t *testing.T) {
	runs := []store.Run{{ID: 5, Status: store.RunPublished}, {ID: 4, Status: store.RunRejected}}
	daily := store.MergeOnline(
		[]store.Exposure{
			{Day: "2026-11-29", Version: 5, Source: setlist.SourceBatch, Arm: setlist.ArmNone, Answers: 30, Users: 3},
			{Day: "2026-11-29", Version: 5, Source: setlist.SourcePopular, Arm: setlist.ArmNone, Answers: 2, Users: 1},
		},
		[]store.ShownOpinions{{Day: "2026-11-29", Version: 5, Source: setlist.SourceBatch, Arm: setlist.ArmNone, Likes: 2, Dislikes: 1, RR: 1.5}})
	var out bytes.Buffer
	if err := printRuns(&out, runs, daily, 7); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if !strings.Contains(lines[0], "LIKES/USER") {
		t.Fatalf("header %q lacks the online columns", lines[0])
	}
	// Version 5: 4 users, 2 likes, 1 dislike, MRR (1 + 1/2) / 2. Fields:
	// run, status, date, time, seconds, users, ndcg, popular ndcg, then
	// the online four.
	if f := strings.Fields(lines[1]); len(f) < 12 || strings.Join(f[8:12], " ") != "4 0.5000 0.2500 0.7500" {
		t.Errorf("run 5: %q, want 4 users shown, 0.5000 likes/user, 0.2500 dislikes/user, MRR 0.7500", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) < 12 || strings.Join(f[8:12], " ") != "- - - -" {
		t.Errorf("run 4 was never served: %q, want dashes", lines[2])
	}
	var breakdown []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 10 && f[0] == "5" {
			breakdown = append(breakdown, strings.Join(f, " "))
		}
	}
	want := []string{"5 batch none 30 3 2 1 0.6667 0.3333 0.7500", "5 popular none 2 1 0 0 0.0000 0.0000 0.0000"}
	if strings.Join(breakdown, "|") != strings.Join(want, "|") {
		t.Errorf("per-source breakdown %q, want %q:\n%s", breakdown, want, out.String())
	}
}
