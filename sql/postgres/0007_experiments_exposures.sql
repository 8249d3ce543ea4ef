-- 0007 (second part): who each experiment exposed, the readout's
-- denominators. serve records a user once per experiment, with their arm,
-- the first time it answers them while the experiment runs (batched every
-- few seconds, duplicates ignored). A user converts when they like a song
-- at or after first_at and before the experiment ended, so the numerator is
-- a subset of the denominator by construction.
CREATE TABLE experiment_exposures (
    experiment_id BIGINT      NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    user_id       BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    arm           TEXT        NOT NULL CHECK (arm IN ('control', 'challenger')),
    first_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment_id, user_id)
);
