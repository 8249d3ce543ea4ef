-- 0006: online evaluation (issue 14). A like or dislike recorded through
-- serve carries the outcome of its attribution: the model version and
-- experiment arm the user was assigned to when it arrived, and, when the
-- song was in the list serve would show them then, that list's source and
-- the song's 1-based position in it. NULL shown_arm: not attributed (a play,
-- an imported row, a row from before this migration, or serve could not
-- read what it shows); shown_arm set and shown_position NULL: not shown.
-- Adding nullable columns without a default rewrites nothing.
ALTER TABLE reactions
    ADD COLUMN shown_version  BIGINT,
    ADD COLUMN shown_arm      TEXT CHECK (shown_arm IN ('none', 'control', 'challenger')),
    ADD COLUMN shown_source   TEXT CHECK (shown_source IN ('batch', 'fold-in', 'popular')),
    ADD COLUMN shown_position INTEGER CHECK (shown_position >= 1),
    ADD CONSTRAINT reactions_shown_whole CHECK ((shown_source IS NULL) = (shown_position IS NULL));
-- The online metrics read only attributed, shown opinions, by version.
CREATE INDEX reactions_shown ON reactions (shown_version, created_at)
    WHERE shown_position IS NOT NULL;

-- Exposure: per model version, source, arm and UTC day, the answers serve
-- gave and the distinct users it gave them to. Every serve replica adds its
-- answer count since its last flush (answers) and sets users to the count
-- of the shared Redis HyperLogLog of that key (never lowering it), so the
-- rows sum across replicas and survive restarts.
CREATE TABLE exposure (
    day     DATE   NOT NULL,
    version BIGINT NOT NULL,
    source  TEXT   NOT NULL CHECK (source IN ('batch', 'fold-in', 'popular')),
    arm     TEXT   NOT NULL CHECK (arm IN ('none', 'control', 'challenger')),
    answers BIGINT NOT NULL DEFAULT 0 CHECK (answers >= 0),
    users   BIGINT NOT NULL DEFAULT 0 CHECK (users >= 0),
    PRIMARY KEY (version, day, source, arm)
);
