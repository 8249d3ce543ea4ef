// Package realdata reads interaction files (user_id,artist,track,count,
// gzip-compressed CSV) into dense user and song indexes, for the gated
// tests and benchmarks of the model families (internal/als, internal/ease) on the
// shared data. Nothing else may depend on the shared data: the callers skip
// when the file is absent.
package realdata

import (
	"compress/gzip"
	"encoding/csv"
	"io"
	"os"
	"strconv"
)

// Triples are a file's interactions: entry e is user Rows[e] × song
// Cols[e] with count Vals[e]; a song is an (artist, track) pair, indexes
// in order of first appearance.
type Triples struct {
	Users, Songs int
	Rows, Cols   []int32
	Vals         []float32
}

// Read parses path.
func Read(path string) (*Triples, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(gz)
	r.ReuseRecord = true
	r.FieldsPerRecord = 4
	if _, err := r.Read(); err != nil { // header
		return nil, err
	}
	users := map[string]int32{}
	songs := map[[2]string]int32{}
	t := &Triples{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		u, ok := users[rec[0]]
		if !ok {
			u = int32(len(users))
			users[rec[0]] = u
		}
		key := [2]string{rec[1], rec[2]}
		s, ok := songs[key]
		if !ok {
			s = int32(len(songs))
			songs[key] = s
		}
		c, err := strconv.ParseFloat(rec[3], 32)
		if err != nil {
			return nil, err
		}
		t.Rows, t.Cols, t.Vals = append(t.Rows, u), append(t.Cols, s), append(t.Vals, float32(c))
	}
	t.Users, t.Songs = len(users), len(songs)
	return t, nil
}
