package api

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// Songs as a managed catalog (issue 22 item 1): POST /v1/songs and PATCH
// /v1/songs/{song_id} change the catalog (admin scope: an operator's act,
// not a listener application's), GET /v1/songs/{song_id} reads one song
// with its metadata, GET /v1/songs filters by tag and availability.

// CatalogDB is the catalog part of the system of record.
type CatalogDB interface {
	CreateSong(ctx context.Context, n setlist.NewSong) (setlist.CatalogSong, int64, error)
	PatchSong(ctx context.Context, id setlist.SongID, p setlist.SongPatch) (setlist.CatalogSong, int64, error)
	CatalogSong(ctx context.Context, id setlist.SongID) (setlist.CatalogSong, error)
	SearchCatalog(ctx context.Context, q store.SongQuery) ([]setlist.CatalogSong, error)
}

// CatalogNotifier tells every serve replica that the catalog changed up to
// change number seq (the keyspace's "catalog changed" event), so a takedown
// reaches every answer within a second instead of the next periodic check.
type CatalogNotifier interface {
	CatalogChanged(ctx context.Context, seq int64) error
}

// catalogChanged notifies after a committed change (seq > 0). The change is
// in the database whatever happens here: a failed notification is logged
// and left to the replicas' periodic check of the sequence, not reported as
// a failed write (the client would retry a write that succeeded).
func (a *API) catalogChanged(ctx context.Context, seq int64) {
	if seq <= 0 || a.deps.Catalog == nil {
		return
	}
	if err := a.deps.Catalog.CatalogChanged(ctx, seq); err != nil && a.deps.Log != nil {
		a.deps.Log.Warn("catalog changed, but the event was not sent; replicas see it at their next check", "seq", seq, "err", err)
	}
}

// newSongBody is POST /v1/songs.
type newSongBody struct {
	Artist     string        `json:"artist"`
	Track      string        `json:"track"`
	Available  *bool         `json:"available"`
	Tags       []string      `json:"tags"`
	Released   *setlist.Date `json:"released"`
	ExternalID string        `json:"external_id"`
}

func (a *API) createSong(c *fiber.Ctx) error {
	var b newSongBody
	if err := decodeJSON(c, &b); err != nil {
		return err
	}
	s, seq, err := a.deps.DB.CreateSong(c.UserContext(), setlist.NewSong{Artist: b.Artist, Track: b.Track, Available: b.Available,
		Tags: b.Tags, Released: b.Released, ExternalID: b.ExternalID})
	if err != nil {
		return err
	}
	a.catalogChanged(c.UserContext(), seq)
	c.Location("/v1/songs/" + strconv.FormatInt(int64(s.ID), 10))
	return c.Status(fiber.StatusCreated).JSON(s)
}

// songPatchBody is PATCH /v1/songs/{song_id}: released and external_id
// may be null (clear), so they are read raw to tell null from absent.
type songPatchBody struct {
	Available  *bool          `json:"available"`
	Tags       *[]string      `json:"tags"`
	Released   jsontext.Value `json:"released"`
	ExternalID jsontext.Value `json:"external_id"`
}

func (b songPatchBody) patch() (setlist.SongPatch, error) {
	p := setlist.SongPatch{Available: b.Available, Tags: b.Tags}
	if p.Tags != nil && *p.Tags == nil {
		return p, fmt.Errorf("tags must be an array of strings (give [] to clear), got null: %w", setlist.ErrInvalid)
	}
	if len(b.Released) > 0 {
		d := setlist.Date{}
		if b.Released.Kind() != 'n' {
			if err := json.Unmarshal(b.Released, &d); err != nil {
				return p, fmt.Errorf("released must be a date YYYY-MM-DD or null: %w", setlist.ErrInvalid)
			}
		}
		p.Released = &d
	}
	if len(b.ExternalID) > 0 {
		id := ""
		if b.ExternalID.Kind() != 'n' {
			if err := json.Unmarshal(b.ExternalID, &id); err != nil {
				return p, fmt.Errorf("external_id must be a string or null: %w", setlist.ErrInvalid)
			}
			if id == "" {
				return p, fmt.Errorf("external_id must not be empty (give null to clear it): %w", setlist.ErrInvalid)
			}
		}
		p.ExternalID = &id
	}
	if p.Empty() {
		return p, fmt.Errorf("the patch changes nothing: give any of available, tags, released, external_id: %w", setlist.ErrInvalid)
	}
	return p, nil
}

func (a *API) patchSong(c *fiber.Ctx) error {
	id, err := songParam(c)
	if err != nil {
		return err
	}
	var b songPatchBody
	if err := decodeJSON(c, &b); err != nil {
		return err
	}
	p, err := b.patch()
	if err != nil {
		return err
	}
	s, seq, err := a.deps.DB.PatchSong(c.UserContext(), id, p)
	if err != nil {
		return err
	}
	a.catalogChanged(c.UserContext(), seq)
	return c.JSON(s)
}

func (a *API) song(c *fiber.Ctx) error {
	id, err := songParam(c)
	if err != nil {
		return err
	}
	s, err := a.deps.DB.CatalogSong(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(s)
}

// songQuery reads GET /v1/songs' tag= and available= filters.
func songQuery(c *fiber.Ctx, q *store.SongQuery) error {
	if raw := c.Query("tag"); raw != "" {
		q.Tag = strings.ToLower(strings.TrimSpace(raw))
		if err := setlist.ValidateTag(q.Tag); err != nil {
			return fmt.Errorf("tag: %w", err)
		}
	}
	if raw := c.Query("available"); raw != "" {
		v, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("available must be true or false, got %.40q: %w", raw, setlist.ErrInvalid)
		}
		q.Available = &v
	}
	return nil
}
