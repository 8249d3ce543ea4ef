-- 0006: online evaluation, as sql/postgres/0006_online_evaluation.sql
-- (SQLite adds one column per statement; day is 'YYYY-MM-DD', UTC).
ALTER TABLE reactions ADD COLUMN shown_version INTEGER;
ALTER TABLE reactions ADD COLUMN shown_arm TEXT CHECK (shown_arm IN ('none', 'control', 'challenger'));
ALTER TABLE reactions ADD COLUMN shown_source TEXT CHECK (shown_source IN ('batch', 'fold-in', 'popular'));
ALTER TABLE reactions ADD COLUMN shown_position INTEGER CHECK (shown_position >= 1);
CREATE INDEX reactions_shown ON reactions (shown_version, created_at) WHERE shown_position IS NOT NULL;

CREATE TABLE exposure (
    day     TEXT    NOT NULL,
    version INTEGER NOT NULL,
    source  TEXT    NOT NULL CHECK (source IN ('batch', 'fold-in', 'popular')),
    arm     TEXT    NOT NULL CHECK (arm IN ('none', 'control', 'challenger')),
    answers INTEGER NOT NULL DEFAULT 0 CHECK (answers >= 0),
    users   INTEGER NOT NULL DEFAULT 0 CHECK (users >= 0),
    PRIMARY KEY (version, day, source, arm)
);
