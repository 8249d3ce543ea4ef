-- 0007: online A/B experiments, the same data as
-- sql/postgres/0007_experiments.sql; times are unix microseconds.
CREATE TABLE experiments (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL,
    control_version    INTEGER NOT NULL REFERENCES model_runs (id),
    challenger_version INTEGER NOT NULL REFERENCES model_runs (id),
    share              REAL    NOT NULL CHECK (share > 0 AND share < 1),
    salt               TEXT    NOT NULL CHECK (salt <> ''),
    alpha              REAL    NOT NULL CHECK (alpha > 0 AND alpha < 1),
    mde                REAL    NOT NULL CHECK (mde > 0 AND mde < 1),
    status             TEXT    NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stopped', 'promoted')),
    started_at         INTEGER NOT NULL,
    ended_at           INTEGER,
    CHECK ((status = 'running') = (ended_at IS NULL)),
    CHECK (challenger_version <> control_version)
);
CREATE UNIQUE INDEX experiments_one_running ON experiments (status) WHERE status = 'running';
