package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/postgres"
)

// Stored list depth (issue 22 item 2): the model is stored 20 deep, and
// these scenarios compare it with the depth stored before (5) in the same
// run, unfiltered and under request filters:
//
//	batch@depth5        batch against the same version stored 5 deep
//	                    (prefix -redis-prefix + "-depth5", rebuilt from
//	                    the version's artifact with its lists cut to 5)
//	batch+filter-hit    batch with exclude_tags=explicit: a tenth of the
//	                    songs carry the tag, so the 20 stored songs almost
//	                    always hold 5 that pass (source batch)
//	batch+filter-score  batch with tags=genre-0: a tenth of the songs carry
//	                    it, so the list rarely holds 5 and serve scores the
//	                    allowed catalog (source fold-in)
const (
	shallowDepth  = 5
	filterHit     = "exclude_tags=explicit"
	filterScoring = "tags=genre-0"
)

// tagSongs gives every song one genre tag (genre-0 … genre-9 by id) and a
// tenth of them "explicit" (by id / 10): what the filter scenarios filter
// on. Idempotent; serve reads tags when it loads a version.
func tagSongs(ctx context.Context, db *postgres.DB) error {
	_, err := db.Pool.Exec(ctx, `UPDATE songs SET tags = t.tags FROM (
		SELECT id, CASE WHEN (id / 10) % 10 = 0 THEN ARRAY['explicit', 'genre-' || id % 10]
		       ELSE ARRAY['genre-' || id % 10] END AS tags FROM songs) t
		WHERE songs.id = t.id AND songs.tags IS DISTINCT FROM t.tags`)
	if err != nil {
		return fmt.Errorf("tag the benchmark's songs: %w", err)
	}
	return nil
}

// shallowCopy publishes version v under prefix as it would have been
// stored shallowDepth deep, unless that prefix already serves v: the
// version's artifact, its lists computed by the one top-N and cut, written
// by the one Publisher.
func shallowCopy(ctx context.Context, db *postgres.DB, rdb redis.UniversalClient, prefix string, v keyspace.Version) error {
	if cur, err := keyspace.NewReader(rdb, prefix).Current(ctx); err == nil && cur == v {
		return nil
	} else if err != nil && !errors.Is(err, setlist.ErrNotFound) {
		return err
	}
	a, err := artifact.Load(ctx, db, v)
	if err != nil {
		return fmt.Errorf("the depth-%d copy needs version %d's artifact: %w", shallowDepth, v, err)
	}
	lists, err := a.Lists(ctx, 0)
	if err != nil {
		return err
	}
	cut := make([][]feedback.Scored, len(lists))
	for i, l := range lists {
		cut[i] = l[:min(shallowDepth, len(l))]
	}
	a.Meta.K = shallowDepth
	if _, err := keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix)).Publish(ctx, v, a.Release(cut, nil)); err != nil {
		return fmt.Errorf("publish the depth-%d copy: %w", shallowDepth, err)
	}
	fmt.Printf("published version %d %d deep under %s (for batch@depth5)\n", v, shallowDepth, prefix)
	return nil
}
