// Package synth generates seeded synthetic listening data in the import's CSV
// format (user_id,artist,track,count) for tests and scale benchmarks: song
// popularity follows a power law (Zipf), user activity is heavy-tailed, and
// users belong to planted taste clusters so a model has something to learn
// beyond popularity. It streams: memory is constant in the number of rows.
package synth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/setlist/setlist"
)

// Config shapes a data set. Zero fields take the defaults noted.
type Config struct {
	Users     int   // listeners
	Songs     int   // catalogue size
	Reactions int64 // rows wanted; met exactly unless users hit MaxPerUser
	Clusters  int   // planted taste groups; 0 means 20
	// Taste is the share of a user's songs drawn from their cluster's
	// catalogue (the rest follow global popularity); 0 means 0.8.
	Taste float64
	// Zipf is the popularity exponent s > 1; 0 means 1.1.
	Zipf float64
	Seed uint64
}

func (c Config) withDefaults() Config {
	if c.Clusters == 0 {
		c.Clusters = 20
	}
	if c.Taste == 0 {
		c.Taste = 0.8
	}
	if c.Zipf == 0 {
		c.Zipf = 1.1
	}
	return c
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.Users < 1 || c.Songs < 1 || c.Reactions < 1 {
		errs = append(errs, fmt.Errorf("users, songs and reactions must be ≥ 1, got %d, %d, %d", c.Users, c.Songs, c.Reactions))
	}
	if c.Clusters < 1 || c.Clusters > c.Songs {
		errs = append(errs, fmt.Errorf("clusters must be between 1 and the number of songs, got %d", c.Clusters))
	}
	if !(c.Taste >= 0 && c.Taste <= 1) {
		errs = append(errs, fmt.Errorf("taste must be in [0, 1], got %v", c.Taste))
	}
	if !(c.Zipf > 1) {
		errs = append(errs, fmt.Errorf("zipf exponent must be > 1, got %v", c.Zipf))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("synthetic data config: %w: %w", setlist.ErrInvalid, err)
	}
	return nil
}

// Stats says what Write produced.
type Stats struct {
	Rows  int64
	Users int
	Bytes int64
}

// UserID is the id of user i in generated data.
func UserID(i int) string { return "user" + strconv.Itoa(i) }

// Cluster is the taste cluster of user i (users are dealt round-robin).
func Cluster(i, clusters int) int { return i % clusters }

// SongCluster is the cluster whose users favour song j.
func SongCluster(j, clusters int) int { return j % clusters }

// Artist and Track name song j.
func Artist(j int) string { return "Artist " + strconv.Itoa(j/8) }

// Track names song j; (Artist, Track) is unique per j.
func Track(j int) string { return "Track " + strconv.Itoa(j) }

// Write streams the data set as CSV with a header. Each user's songs are
// distinct, so every row is one (user, song) count.
func Write(w io.Writer, cfg Config) (Stats, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	// Activity: a lognormal weight per user, drawn twice from the same seed
	// (once to normalise, once to emit) so no per-user array is kept.
	activity := func() func() float64 {
		r := rand.New(rand.NewPCG(cfg.Seed, 1))
		return func() float64 { return math.Exp(1.2 * r.NormFloat64()) }
	}
	next := activity()
	var total float64
	for range cfg.Users {
		total += next()
	}
	next = activity()

	rng := rand.New(rand.NewPCG(cfg.Seed, 2))
	global := rand.NewZipf(rng, cfg.Zipf, 1, uint64(cfg.Songs-1))
	perCluster := (cfg.Songs + cfg.Clusters - 1) / cfg.Clusters
	local := rand.NewZipf(rng, cfg.Zipf, 1, uint64(max(perCluster-1, 0)))
	maxPerUser := max(cfg.Songs/2, 1)

	bw := &countingWriter{w: w}
	out := bufio.NewWriterSize(bw, 1<<20)
	out.WriteString("user_id,artist,track,count\n")
	var st Stats
	var line []byte
	seen := map[int]struct{}{}
	var carry float64
	for u := range cfg.Users {
		want := float64(cfg.Reactions)*next()/total + carry
		n := int(want)
		carry = want - float64(n)
		n = min(max(n, 1), maxPerUser)
		if u == cfg.Users-1 { // the remainder lands on the last user
			n = min(max(int(cfg.Reactions-st.Rows), 1), maxPerUser)
		}
		c := Cluster(u, cfg.Clusters)
		clear(seen)
		id := UserID(u)
		for tries := 0; len(seen) < n && tries < 20*n; tries++ {
			var j int
			if rng.Float64() < cfg.Taste {
				j = c + cfg.Clusters*int(local.Uint64())
				if j >= cfg.Songs {
					continue
				}
			} else {
				j = int(global.Uint64())
			}
			if _, dup := seen[j]; dup {
				continue
			}
			seen[j] = struct{}{}
			count := 1 + int(rng.ExpFloat64()*1.5)
			line = append(line[:0], id...)
			line = append(line, ',')
			line = append(line, Artist(j)...)
			line = append(line, ',')
			line = append(line, Track(j)...)
			line = append(line, ',')
			line = strconv.AppendInt(line, int64(count), 10)
			line = append(line, '\n')
			if _, err := out.Write(line); err != nil {
				return st, fmt.Errorf("write synthetic data: %w", err)
			}
			st.Rows++
		}
		st.Users++
	}
	if err := out.Flush(); err != nil {
		return st, fmt.Errorf("write synthetic data: %w", err)
	}
	st.Bytes = bw.n
	return st, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
