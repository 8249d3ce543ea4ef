package recs

import (
	"encoding/json"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quo"te\back`, "tab\tnew\nline\r", "\x00\x1f\x7f", "<script>&", "Zoë — ünïcødé ♪",
		"\u2028\u2029", "bad \xff utf8", "emoji 🎵"} {
		got := appendString(nil, s)
		want, _ := json.Marshal(s)
		if string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	}
}

func TestAppendAnswerIsValidJSON(t *testing.T) {
	sn := &Snapshot{Version: 3, songs: map[setlist.SongID][]byte{
		1: songJSON(setlist.Song{ID: 1, Artist: `A "b"`, Track: "t<1>"}),
		2: songJSON(setlist.Song{ID: 2, Artist: "B", Track: "t2"}),
	}}
	items := []model.Explained{
		{Rec: model.Rec{Song: 1, Score: 0.5}, Because: 2},
		{Rec: model.Rec{Song: 99, Score: 1}}, // deleted since training: left out
		{Rec: model.Rec{Song: 2, Score: -1e-9}},
	}
	b := sn.appendAnswer(nil, "u \"x\"", setlist.ArmChallenger, setlist.SourceFoldIn, items)
	var got struct {
		UserID       string `json:"user_id"`
		ModelVersion int    `json:"model_version"`
		Arm          string
		Source       string
		Items        []struct {
			SongID  int64 `json:"song_id"`
			Artist  string
			Track   string
			Score   float32
			Because *struct {
				SongID int64 `json:"song_id"`
			}
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if got.UserID != `u "x"` || got.ModelVersion != 3 || got.Arm != "challenger" || got.Source != "fold-in" || len(got.Items) != 2 {
		t.Fatalf("decoded %+v from %s", got, b)
	}
	if it := got.Items[0]; it.Artist != `A "b"` || it.Track != "t<1>" || it.Score != 0.5 || it.Because == nil || it.Because.SongID != 2 {
		t.Fatalf("item %+v", it)
	}
	if got.Items[1].Because != nil || got.Items[1].Score != -1e-9 {
		t.Fatalf("item %+v", got.Items[1])
	}
}
