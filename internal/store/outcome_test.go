package store_test

import (
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// TestOutcomeColumnsRoundTrip: what a backend writes into the shown_*
// columns reads back as the attribution it came from, NULLs included.
func TestOutcomeColumnsRoundTrip(t *testing.T) {
	batch := &store.Shown{Version: 7, Arm: setlist.ArmChallenger, Source: setlist.SourceBatch, Songs: []setlist.SongID{4, 9, 2}}
	for _, c := range []struct {
		name  string
		shown *store.Shown
		song  setlist.SongID
		want  *store.Outcome
	}{
		{"unattributed write", nil, 9, nil},
		{"shown at position 2", batch, 9, &store.Outcome{Version: 7, Arm: setlist.ArmChallenger, Source: setlist.SourceBatch, Position: 2}},
		{"not in the list shown", batch, 5, &store.Outcome{Version: 7, Arm: setlist.ArmChallenger}},
		{"no list shown, no version", &store.Shown{}, 9, &store.Outcome{Arm: setlist.ArmNone}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cols := store.OutcomeColumnsOf(c.shown, c.song)
			got := cols.Outcome()
			if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
				t.Errorf("round trip = %+v, want %+v", got, c.want)
			}
			if c.want != nil && c.want.Version == 0 && cols.Version != nil {
				t.Error("version 0 written as a value, want NULL")
			}
		})
	}
}
