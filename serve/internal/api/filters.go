package api

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/serve/internal/recs"
)

// The request filters of GET …/recommendations and …/similar (issue 22
// item 4). A list parameter may be repeated; song ids and tags may also be
// comma-separated in one value (neither can contain a comma), artists not
// (artist names do: each value is one artist).
const (
	paramExcludeArtists = "exclude_artists"
	paramExcludeSongs   = "exclude_songs"
	paramTags           = "tags"
	paramExcludeTags    = "exclude_tags"
	paramMaxPerArtist   = "max_per_artist"
	paramReleasedAfter  = "released_after"
)

var filterParams = []string{paramExcludeArtists, paramExcludeSongs, paramTags, paramExcludeTags, paramMaxPerArtist, paramReleasedAfter}

// Bounds on one request's filter, so a query cannot make every answer
// compare against an unbounded list.
const (
	maxFilterValues = 100 // values of one list parameter
)

// checkParams answers 400 naming the first query parameter the route does
// not know: a misspelt filter (exclude_artist=) must not silently serve an
// unfiltered answer.
func checkParams(c *fiber.Ctx, known ...string) error {
	var bad string
	c.Context().QueryArgs().VisitAll(func(k, _ []byte) {
		if bad == "" && !slices.Contains(known, string(k)) {
			bad = string(k)
		}
	})
	if bad != "" {
		bad = truncate(bad, 40)
		return fmt.Errorf("unknown query parameter %q (this route takes %s): %w", bad, strings.Join(known, ", "), setlist.ErrInvalid)
	}
	return nil
}

// values returns every value of a list parameter (repeated, and split on
// commas when split), empty items dropped.
func values(c *fiber.Ctx, name string, split bool) ([]string, error) {
	var out []string
	for _, raw := range c.Context().QueryArgs().PeekMulti(name) {
		v := string(raw)
		if !split {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
			continue
		}
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	if len(out) > maxFilterValues {
		return nil, fmt.Errorf("%s takes at most %d values, got %d: %w", name, maxFilterValues, len(out), setlist.ErrInvalid)
	}
	return out, nil
}

// parseFilter reads the filter parameters (nil when none is given),
// naming the parameter of a malformed value.
func parseFilter(c *fiber.Ctx) (*recs.Filter, error) {
	var f recs.Filter
	var err error
	if f.ExcludeArtists, err = values(c, paramExcludeArtists, false); err != nil {
		return nil, err
	}
	for _, a := range f.ExcludeArtists {
		if !utf8.ValidString(a) || strings.IndexByte(a, 0) >= 0 || len(a) > setlist.MaxSongNameLen {
			return nil, fmt.Errorf("%s: an artist must be valid UTF-8 without NUL, at most %d bytes: %w", paramExcludeArtists, setlist.MaxSongNameLen, setlist.ErrInvalid)
		}
	}
	songs, err := values(c, paramExcludeSongs, true)
	if err != nil {
		return nil, err
	}
	for _, s := range songs {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive song id: %w", paramExcludeSongs, truncate(s, 40), setlist.ErrInvalid)
		}
		f.ExcludeSongs = append(f.ExcludeSongs, setlist.SongID(id))
	}
	for _, p := range []struct {
		name string
		dst  *[]string
	}{{paramTags, &f.Tags}, {paramExcludeTags, &f.ExcludeTags}} {
		tags, err := values(c, p.name, true)
		if err != nil {
			return nil, err
		}
		for i, t := range tags {
			tags[i] = strings.ToLower(t)
			if err := setlist.ValidateTag(tags[i]); err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
		}
		*p.dst = tags
	}
	if f.MaxPerArtist, err = intQuery(c, paramMaxPerArtist, 0, 1, recs.MaxN); err != nil {
		return nil, err
	}
	if s := c.Query(paramReleasedAfter); s != "" {
		d, err := setlist.ParseDate(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", paramReleasedAfter, err)
		}
		f.ReleasedAfter = &d
	}
	if !f.Active() {
		return nil, nil
	}
	return &f, nil
}

// truncate cuts s to at most n runes for an error message.
func truncate(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i] + "…"
		}
		n--
	}
	return s
}
