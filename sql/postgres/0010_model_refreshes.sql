-- 0010: new songs between trainings (batch refresh, issue 22 item 3).
--
-- model_refreshes records every `batch refresh` of a published version:
-- which version it refreshed, whether it finished, the songs it folded in
-- (item-side fold-in from their listeners' user vectors) and how many
-- users' stored lists it updated in place. /v1/model shows the last one.
CREATE TABLE model_refreshes (
    id            BIGSERIAL PRIMARY KEY,
    version       BIGINT      NOT NULL,                 -- the model_runs.id / Redis version refreshed
    status        TEXT        NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'done', 'failed', 'skipped')),
    songs_added   INTEGER     NOT NULL DEFAULT 0,
    users_updated INTEGER     NOT NULL DEFAULT 0,
    songs         JSONB       NOT NULL DEFAULT '[]',    -- ids of the songs folded in
    reason        TEXT        NOT NULL DEFAULT '',      -- why it failed or was skipped
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ
);
-- "Last refresh of version V" (/v1/model, batch refresh's own report).
CREATE INDEX model_refreshes_version_id ON model_refreshes (version, id DESC);

-- "Which songs were reacted to since the snapshot?" (refresh's candidates):
-- a range scan over the recent reactions instead of the whole table.
-- created_at never changes (a repeated play updates updated_at), so the
-- index costs an insert per new reaction row and nothing per update.
CREATE INDEX reactions_created_song ON reactions (created_at, song_id);
