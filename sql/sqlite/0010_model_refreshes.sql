-- 0010: new songs between trainings (batch refresh), as
-- sql/postgres/0010_model_refreshes.sql. Times are INTEGER microseconds.
CREATE TABLE model_refreshes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    version       INTEGER NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'done', 'failed', 'skipped')),
    songs_added   INTEGER NOT NULL DEFAULT 0,
    users_updated INTEGER NOT NULL DEFAULT 0,
    songs         TEXT    NOT NULL DEFAULT '[]',        -- JSON array of song ids
    reason        TEXT    NOT NULL DEFAULT '',
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER
);
CREATE INDEX model_refreshes_version_id ON model_refreshes (version, id DESC);
CREATE INDEX reactions_created_song ON reactions (created_at, song_id);
