package recs

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
)

// Answers are rendered by hand into JSON: the song part of each item is
// encoded once per model load, so a batch answer costs a few appends instead
// of reflection over every field. The tests decode every shape with
// encoding/json to keep this honest.

// songJSON renders `"song_id":1,"artist":"…","track":"…"`.
func songJSON(s setlist.Song) []byte {
	b := make([]byte, 0, 40+len(s.Artist)+len(s.Track))
	b = append(b, `"song_id":`...)
	b = strconv.AppendInt(b, int64(s.ID), 10)
	b = append(b, `,"artist":`...)
	b = appendString(b, s.Artist)
	b = append(b, `,"track":`...)
	b = appendString(b, s.Track)
	return b
}

// appendAnswer renders {user_id, model_version, arm, source, items}. Items whose
// song the snapshot cannot name (deleted since training) are left out.
func (sn *Snapshot) appendAnswer(b []byte, u setlist.UserID, arm setlist.Arm, src setlist.Source, items []model.Explained) []byte {
	b = append(b, `{"user_id":`...)
	b = appendString(b, string(u))
	b = append(b, `,"model_version":`...)
	b = strconv.AppendInt(b, int64(sn.Version), 10)
	b = append(b, `,"arm":"`...)
	b = append(b, arm...)
	b = append(b, `","source":"`...)
	b = append(b, src...)
	b = append(b, `","items":[`...)
	return append(appendItems(sn, b, items, func(it model.Explained) (model.Rec, setlist.SongID) { return it.Rec, it.Because }), "]}"...)
}

// AppendSimilar renders GET /v1/songs/{id}/similar's answer {song,
// model_version, items} for seed and its similar songs recs, by hand as
// appendAnswer does (a flood of similar songs is mostly rendering once
// the lists are cached). Songs the snapshot cannot name are left out; a
// seed it cannot name renders as the zero song.
func (sn *Snapshot) AppendSimilar(b []byte, seed setlist.SongID, recs []model.Rec) []byte {
	b = append(b, `{"song":{`...)
	if name, ok := sn.songs[seed]; ok {
		b = append(b, name...)
	} else {
		b = append(b, songJSON(setlist.Song{})...)
	}
	b = append(b, `},"model_version":`...)
	b = strconv.AppendInt(b, int64(sn.Version), 10)
	b = append(b, `,"items":[`...)
	return append(appendItems(sn, b, recs, func(r model.Rec) (model.Rec, setlist.SongID) { return r, 0 }), "]}"...)
}

// appendItems renders the items of both answers, comma-separated, leaving
// out songs the snapshot cannot name; rec gives an item's song, score and
// (for explained answers, else 0) the song it is recommended because of.
func appendItems[T any](sn *Snapshot, b []byte, items []T, rec func(T) (model.Rec, setlist.SongID)) []byte {
	first := true
	for _, it := range items {
		r, why := rec(it)
		name, ok := sn.songs[r.Song]
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendScored(b, name, r.Score)
		if because, ok := sn.songs[why]; ok && why != 0 {
			b = append(b, `,"because":{`...)
			b = append(b, because...)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return b
}

// appendScored opens an item: `{` the song's pre-rendered name and its
// score.
func appendScored(b, name []byte, score float32) []byte {
	b = append(b, '{')
	b = append(b, name...)
	b = append(b, `,"score":`...)
	return appendScore(b, score)
}

// appendScore renders a score; JSON has no NaN, and a broken factor must
// not break the answer.
func appendScore(b []byte, score float32) []byte {
	f := float64(score)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		f = 0
	}
	return strconv.AppendFloat(b, f, 'g', -1, 32)
}

// shownRecs is the songs of a stored list an answer was cut from, as a
// listener could see them: those the snapshot names, hidden ones (in cat)
// left out.
func (sn *Snapshot) shownRecs(list []model.Rec, cat *catalogState) []setlist.SongID {
	out := make([]setlist.SongID, 0, len(list))
	for _, r := range list {
		if _, ok := sn.songs[r.Song]; ok && !cat.isHidden(r.Song) {
			out = append(out, r.Song)
		}
	}
	return out
}

// shownItems is shownRecs over a fold-in's (or an answer's) items.
func (sn *Snapshot) shownItems(list []model.Explained, cat *catalogState) []setlist.SongID {
	out := make([]setlist.SongID, 0, len(list))
	for _, it := range list {
		if _, ok := sn.songs[it.Song]; ok && !cat.isHidden(it.Song) {
			out = append(out, it.Song)
		}
	}
	return out
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping what JSON requires plus
// <, > and & (as encoding/json does, so answers are safe inside HTML) and
// replacing invalid UTF-8 with U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
