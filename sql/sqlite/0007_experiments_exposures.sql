-- 0007 (second part): who each experiment exposed, the same data as
-- sql/postgres/0007_experiments_exposures.sql.
CREATE TABLE experiment_exposures (
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    arm           TEXT    NOT NULL CHECK (arm IN ('control', 'challenger')),
    first_at      INTEGER NOT NULL,
    PRIMARY KEY (experiment_id, user_id)
) WITHOUT ROWID;
