-- 0003: a run's hyper-parameter search is recorded trial by trial, and a run
-- can be a search alone (`batch tune`: status tuned, nothing published),
-- whose chosen parameters the next `batch train` starts from.
ALTER TABLE model_runs DROP CONSTRAINT model_runs_status_check;
ALTER TABLE model_runs ADD CONSTRAINT model_runs_status_check
    CHECK (status IN ('running', 'staged', 'published', 'tuned', 'rejected', 'failed', 'rolled_back'));

-- One row per evaluation of the search: a configuration (number) at one
-- fidelity (rung: iterations and user fraction) on one validation split.
-- Written with the run's registry update, in its transaction.
CREATE TABLE tuning_trials (
    run_id        BIGINT           NOT NULL REFERENCES model_runs (id) ON DELETE CASCADE,
    number        INTEGER          NOT NULL CHECK (number >= 0),
    rung          INTEGER          NOT NULL DEFAULT 0 CHECK (rung >= 0),
    split         INTEGER          NOT NULL DEFAULT 0 CHECK (split >= 0),
    params        JSONB            NOT NULL DEFAULT '{}',   -- the ALS parameters tried
    iterations    INTEGER          NOT NULL CHECK (iterations >= 0),  -- fidelity: ALS sweeps run
    user_fraction DOUBLE PRECISION NOT NULL CHECK (user_fraction > 0 AND user_fraction <= 1),  -- fidelity: share of users trained on
    metrics       JSONB            NOT NULL DEFAULT '{}',   -- validation metrics (ndcg_at_5, ...)
    seconds       DOUBLE PRECISION NOT NULL CHECK (seconds >= 0),
    pruned        BOOLEAN          NOT NULL DEFAULT false,  -- stopped at this rung
    promoted      BOOLEAN          NOT NULL DEFAULT false,  -- went on to a higher rung
    incumbent     BOOLEAN          NOT NULL DEFAULT false,  -- the parameters in use before the search
    PRIMARY KEY (run_id, number, rung, split)              -- `batch runs --trials RUN`, /v1/model: a PK range scan
);
