-- 0001: the core schema in SQLite's dialect, holding the same data as
-- sql/postgres/0001_init.sql for the embedded playground (--store embedded).
-- Times are INTEGER microseconds since the Unix epoch (PostgreSQL's
-- precision), written by the Go side so both backends agree to the µs.

CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    external_id  TEXT    NOT NULL UNIQUE CHECK (external_id <> ''),  -- lookups and prefix ranges (BINARY collation: byte order)
    display_name TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
);

CREATE TABLE songs (
    id         INTEGER PRIMARY KEY,
    artist     TEXT    NOT NULL,
    track      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (artist, track),                                -- import upserts and lookups by (artist, track)
    CHECK (artist <> '' AND track <> '')
);

CREATE TABLE reactions (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    song_id    INTEGER NOT NULL REFERENCES songs (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('play', 'like', 'dislike')),
    weight     REAL    NOT NULL DEFAULT 1 CHECK (weight >= 0),  -- rounded to float32 by the Go side, as PostgreSQL's REAL
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, song_id, kind)                   -- a user's history is a primary key range scan
) WITHOUT ROWID;
CREATE INDEX reactions_song ON reactions (song_id);

-- AUTOINCREMENT: a run id is a published model version, so ids are never
-- reused even after the newest row is deleted.
CREATE TABLE model_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    status       TEXT    NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'published', 'rejected', 'failed', 'rolled_back')),
    params       TEXT    NOT NULL DEFAULT '{}',            -- JSON
    metrics      TEXT    NOT NULL DEFAULT '{}',
    counts       TEXT    NOT NULL DEFAULT '{}',
    timings      TEXT    NOT NULL DEFAULT '{}',
    version      INTEGER,
    reason       TEXT    NOT NULL DEFAULT '',
    notes        TEXT    NOT NULL DEFAULT '',
    snapshot_at  INTEGER,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    published_at INTEGER
);
CREATE INDEX model_runs_status_id ON model_runs (status, id DESC);

-- The embedded key-value store's keys (batch/embedded), so published model
-- versions survive a restart: rewritten in one transaction after each
-- version switch and at shutdown, loaded at start.
CREATE TABLE kv (
    key       BLOB    PRIMARY KEY,
    type      TEXT    NOT NULL CHECK (type IN ('string', 'hash')),
    value     BLOB    NOT NULL,                            -- the string, or a JSON object of the hash's fields
    expire_at INTEGER                                      -- unix ms; NULL: no TTL
) WITHOUT ROWID;
