-- 0007: online A/B experiments between model versions (issue 14). A share
-- of users, chosen by a hash of salt and user id (batch/experiment), is
-- served the challenger version; everyone else the current one. The salt is
-- stored so every serve replica, and every restart, routes a user the same
-- way. One experiment runs at a time: the partial unique index refuses a
-- second running row even if two `batch experiment start` race.
CREATE TABLE experiments (
    id                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               TEXT    NOT NULL,
    control_version    BIGINT  NOT NULL REFERENCES model_runs (id),   -- current when it started (control follows current)
    challenger_version BIGINT  NOT NULL REFERENCES model_runs (id),
    share              DOUBLE PRECISION NOT NULL CHECK (share > 0 AND share < 1),  -- challenger's share of users
    salt               TEXT    NOT NULL CHECK (salt <> ''),
    alpha              DOUBLE PRECISION NOT NULL CHECK (alpha > 0 AND alpha < 1),  -- the readout's false-positive rate
    mde                DOUBLE PRECISION NOT NULL CHECK (mde > 0 AND mde < 1),      -- minimum detectable effect (absolute), the test's τ
    status             TEXT    NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stopped', 'promoted')),
    started_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at           TIMESTAMPTZ,
    CHECK ((status = 'running') = (ended_at IS NULL)),
    CHECK (challenger_version <> control_version)
);
CREATE UNIQUE INDEX experiments_one_running ON experiments (status) WHERE status = 'running';
