-- 0009: songs as a managed catalog (see the PostgreSQL migration of the
-- same number). tags is a JSON array of strings, normalised and sorted by
-- the Go side (setlist.NormalizeTags); released is the release day as
-- TEXT YYYY-MM-DD (so it compares as a date); available is 0 or 1.
ALTER TABLE songs ADD COLUMN available INTEGER NOT NULL DEFAULT 1 CHECK (available IN (0, 1));
ALTER TABLE songs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags) AND json_type(tags) = 'array');
ALTER TABLE songs ADD COLUMN released TEXT CHECK (released IS NULL OR released GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]');
ALTER TABLE songs ADD COLUMN external_id TEXT CHECK (external_id IS NULL OR external_id <> '');
CREATE UNIQUE INDEX songs_external_id ON songs (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX songs_hidden ON songs (id) WHERE available = 0;

-- The catalog change sequence: one row, bumped in the same transaction as
-- every catalog write (SQLite has one writer at a time, so numbers commit
-- in order).
CREATE TABLE catalog_seq (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO catalog_seq (id, seq) VALUES (1, 0);
