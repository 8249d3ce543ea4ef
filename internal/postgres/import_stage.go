package postgres

import (
	"fmt"
	"math"

	"github.com/setlist/setlist/internal/store"
)

// stageColumns are import_rows' columns in the order stageSource gives them.
var stageColumns = []string{"u", "s", "plays", "user_ext", "artist", "track"}

// maxStageKeys bounds each of stageSource's dictionaries, and maxRunSongs
// the songs of one user's run it sums. When a dictionary is full it starts
// afresh: a key seen again later gets a new number and a second key row,
// which the merge maps to the same id; when a run is full its plays are
// sent unsummed. Either way the bound costs some repeated rows and the
// server's summing, never a wrong result. 2^18 keys are a few tens of MB.
// Variables only so that a test can make them tiny.
var (
	maxStageKeys = 1 << 18
	maxRunSongs  = 1 << 16
)

// stageSource feeds COPY from the CSV's rows, replacing each user and song
// by a small number (a dictionary per import): a play becomes (u, s, plays),
// and the first time a number is used a key row (u, user_ext) or
// (s, artist, track) goes before it. The server then joins 4-byte integers
// instead of the file's strings, and the staged table is a third of the
// size; only the key rows carry text.
//
// Exports list a user's rows together, so it also sums each user's repeated
// songs itself, one run of rows at a time (memory: one user's songs). When
// every user's rows were one run, the staged plays have one row per (user,
// song) and the merge need not group them (see summed): that grouping, a
// hash table of every pair, was a third of a re-import's time.
type stageSource struct {
	rows   *store.Rows
	source string
	users  map[string]int32
	songs  map[songKey]int32
	next   [2]int32 // the next user and song numbers

	// The current run: its user and number, and its plays so far, one per
	// song (runSongs indexes runPlays by song number).
	runUser  string
	runNum   int32
	inRun    bool
	runSongs map[int32]int
	runPlays []stagePlay
	// split is set when some user's rows were not one run, or a run was
	// sent unsummed: the staged plays may repeat a (user, song).
	split bool

	out    []stageRow // rows ready for COPY; at is the current one
	at     int
	values []any
	err    error
}

type songKey struct{ artist, track string }

type stagePlay struct {
	song  int32
	plays float64
}

// stageRow is one staged row: a play, or a user's or a song's key row.
type stageRow struct {
	kind byte // 'p', 'u' or 's'
	num  int32
	play stagePlay
	a, b string // user_ext; or artist and track
}

func newStageSource(rows *store.Rows, source string) *stageSource {
	return &stageSource{
		rows:     rows,
		source:   source,
		users:    map[string]int32{},
		songs:    map[songKey]int32{},
		runSongs: map[int32]int{},
		values:   make([]any, len(stageColumns)),
	}
}

// summed reports whether the staged plays hold at most one row per (user,
// song) as far as this source knows: the merge must still check that no
// user or song was staged under two numbers (a dictionary that started
// afresh).
func (s *stageSource) summed() bool { return !s.split }

// Next moves to the next staged row.
func (s *stageSource) Next() bool {
	if s.at+1 < len(s.out) {
		s.at++
		return true
	}
	s.out, s.at = s.out[:0], 0
	for len(s.out) == 0 {
		if s.err != nil {
			return false
		}
		if !s.rows.Next() {
			s.endRun()
			return len(s.out) > 0
		}
		v, _ := s.rows.Values()
		s.add(v[0].(string), v[1].(string), v[2].(string), v[3].(float64))
	}
	return true
}

// add takes one CSV row; the rows it makes ready go to s.out.
func (s *stageSource) add(user, artist, track string, plays float64) {
	if !s.inRun || user != s.runUser {
		s.endRun()
		u, seen := s.users[user]
		if seen {
			// Back after another user's rows: its plays of a song may
			// now be in two runs.
			s.split = true
		} else {
			var ok bool
			if u, ok = s.number(0); !ok {
				return
			}
			if len(s.users) >= maxStageKeys {
				clear(s.users)
			}
			s.users[user] = u
			s.out = append(s.out, stageRow{kind: 'u', num: u, a: user})
		}
		s.runUser, s.runNum, s.inRun = user, u, true
	}
	k := songKey{artist, track}
	so, ok := s.songs[k]
	if !ok {
		if so, ok = s.number(1); !ok {
			return
		}
		if len(s.songs) >= maxStageKeys {
			clear(s.songs)
		}
		s.songs[k] = so
		s.out = append(s.out, stageRow{kind: 's', num: so, a: artist, b: track})
	}
	if i, ok := s.runSongs[so]; ok {
		s.runPlays[i].plays += plays
		return
	}
	if len(s.runPlays) >= maxRunSongs {
		// A user with more songs than a run may hold: send what is
		// summed so far and let the server sum the rest.
		s.flushRun()
		s.split = true
	}
	s.runSongs[so] = len(s.runPlays)
	s.runPlays = append(s.runPlays, stagePlay{song: so, plays: plays})
}

// endRun sends the current run's plays.
func (s *stageSource) endRun() {
	s.flushRun()
	s.inRun = false
}

func (s *stageSource) flushRun() {
	for _, p := range s.runPlays {
		s.out = append(s.out, stageRow{kind: 'p', num: s.runNum, play: p})
	}
	s.runPlays = s.runPlays[:0]
	clear(s.runSongs)
}

// number takes the next number of dictionary i (0 users, 1 songs).
func (s *stageSource) number(i int) (int32, bool) {
	if s.next[i] == math.MaxInt32 {
		s.err = fmt.Errorf("import %s: more than %d distinct users or songs in one file", s.source, math.MaxInt32)
		return 0, false
	}
	n := s.next[i]
	s.next[i]++
	return n, true
}

// Values is the current staged row, in stageColumns' order; the slice is
// reused.
func (s *stageSource) Values() ([]any, error) {
	r := &s.out[s.at]
	v := s.values
	clear(v)
	switch r.kind {
	case 'u':
		v[0], v[3] = r.num, r.a
	case 's':
		v[1], v[4], v[5] = r.num, r.a, r.b
	default:
		v[0], v[1], v[2] = r.num, r.play.song, r.play.plays
	}
	return v, nil
}

// Err is the CSV's error, or the dictionary's.
func (s *stageSource) Err() error {
	if err := s.rows.Err(); err != nil {
		return err
	}
	return s.err
}
