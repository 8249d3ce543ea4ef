-- 0003: the same as sql/postgres/0003_tuning_trials.sql: a run may be a
-- search alone (status tuned), and every trial of a search is recorded.
-- SQLite cannot alter a CHECK constraint, so model_runs is rebuilt (the
-- documented twelve-step procedure; nothing references it yet). Its
-- AUTOINCREMENT counter is carried over so no run id is ever reused.

CREATE TABLE model_runs_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    status       TEXT    NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'staged', 'published', 'tuned', 'rejected', 'failed', 'rolled_back')),
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
INSERT INTO model_runs_new (id, status, params, metrics, counts, timings, version, reason, notes,
                            snapshot_at, started_at, finished_at, published_at)
    SELECT id, status, params, metrics, counts, timings, version, reason, notes,
           snapshot_at, started_at, finished_at, published_at FROM model_runs;
-- The copy set the new counter to the largest id left; the old one may be
-- higher (the newest runs deleted).
UPDATE sqlite_sequence
   SET seq = max(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'model_runs'), 0))
 WHERE name = 'model_runs_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'model_runs_new', seq FROM sqlite_sequence
     WHERE name = 'model_runs' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'model_runs_new');
DROP TABLE model_runs;
ALTER TABLE model_runs_new RENAME TO model_runs;
CREATE INDEX model_runs_status_id ON model_runs (status, id DESC);

CREATE TABLE tuning_trials (
    run_id        INTEGER NOT NULL REFERENCES model_runs (id) ON DELETE CASCADE,
    number        INTEGER NOT NULL CHECK (number >= 0),
    rung          INTEGER NOT NULL DEFAULT 0 CHECK (rung >= 0),
    split         INTEGER NOT NULL DEFAULT 0 CHECK (split >= 0),
    params        TEXT    NOT NULL DEFAULT '{}',             -- JSON: the ALS parameters tried
    iterations    INTEGER NOT NULL CHECK (iterations >= 0),
    user_fraction REAL    NOT NULL CHECK (user_fraction > 0 AND user_fraction <= 1),
    metrics       TEXT    NOT NULL DEFAULT '{}',             -- JSON
    seconds       REAL    NOT NULL CHECK (seconds >= 0),
    pruned        INTEGER NOT NULL DEFAULT 0 CHECK (pruned IN (0, 1)),
    promoted      INTEGER NOT NULL DEFAULT 0 CHECK (promoted IN (0, 1)),
    incumbent     INTEGER NOT NULL DEFAULT 0 CHECK (incumbent IN (0, 1)),
    PRIMARY KEY (run_id, number, rung, split)
) WITHOUT ROWID;
