-- 0001: the core schema. Every query the system makes is listed next to the
-- index that serves it.

-- Substring search over users and songs (typeahead) uses trigram indexes.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE users (
    id           BIGSERIAL PRIMARY KEY,
    external_id  TEXT        NOT NULL UNIQUE,          -- lookups by the API's user_id; prefix search (text_pattern_ops below)
    display_name TEXT        NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (external_id <> '')
);
-- Prefix search (LIKE 'abc%') with a stable order by external_id.
CREATE INDEX users_external_id_prefix ON users (external_id text_pattern_ops);
-- Substring search (ILIKE '%abc%') over id and display name.
CREATE INDEX users_search_trgm ON users USING gin ((external_id || ' ' || display_name) gin_trgm_ops);

CREATE TABLE songs (
    id         BIGSERIAL PRIMARY KEY,
    artist     TEXT        NOT NULL,
    track      TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (artist, track),                           -- import upserts and lookups by (artist, track)
    CHECK (artist <> '' AND track <> '')
);
-- Catalog typeahead (ILIKE '%abc%' over "artist track").
CREATE INDEX songs_search_trgm ON songs USING gin ((artist || ' ' || track) gin_trgm_ops);

CREATE TABLE reactions (
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    song_id    BIGINT      NOT NULL REFERENCES songs (id) ON DELETE CASCADE,
    kind       TEXT        NOT NULL CHECK (kind IN ('play', 'like', 'dislike')),
    weight     REAL        NOT NULL DEFAULT 1 CHECK (weight >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, song_id, kind)              -- one row per user+song+kind; a user's history is a PK range scan
);
-- Deleting a song cascades through this; song popularity counts scan it.
CREATE INDEX reactions_song ON reactions (song_id);
-- "Has this user reacted since the model's snapshot?" (fold-in trigger).
CREATE INDEX reactions_user_updated ON reactions (user_id, updated_at);

CREATE TABLE model_runs (
    id           BIGSERIAL PRIMARY KEY,
    status       TEXT        NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'published', 'rejected', 'failed', 'rolled_back')),
    params       JSONB       NOT NULL DEFAULT '{}',
    metrics      JSONB       NOT NULL DEFAULT '{}',
    counts       JSONB       NOT NULL DEFAULT '{}',
    timings      JSONB       NOT NULL DEFAULT '{}',
    version      TEXT,                                 -- the Redis model version this run wrote, if any
    reason       TEXT        NOT NULL DEFAULT '',      -- why it was rejected or failed
    notes        TEXT        NOT NULL DEFAULT '',
    snapshot_at  TIMESTAMPTZ,                          -- reactions updated after this are newer than the model
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ,
    published_at TIMESTAMPTZ
);
-- "Last published run" and "last N runs" (status, history, model panel).
CREATE INDEX model_runs_status_id ON model_runs (status, id DESC);
