-- 0009: songs as a managed catalog (issue 22 item 1).
--
-- available: false hides the song from every answer and every list the
-- next train writes; its reactions stay (they are still signal about the
-- listeners who made them). tags: short lowercase words (genre,
-- "explicit"), normalised and sorted by the Go side (setlist.NormalizeTags)
-- so filters compare bytes. released: the release day, if known.
-- external_id: the customer's own id (an ISRC), unique when set.
-- created_at (0001) is already filled for every row: "new since the
-- published version" reads it.
ALTER TABLE songs
    ADD COLUMN available   BOOLEAN NOT NULL DEFAULT true,
    ADD COLUMN tags        TEXT[]  NOT NULL DEFAULT '{}',
    ADD COLUMN released    DATE,
    ADD COLUMN external_id TEXT,
    ADD CONSTRAINT songs_external_id_unique UNIQUE (external_id),
    ADD CONSTRAINT songs_external_id_nonempty CHECK (external_id <> ''),
    ADD CONSTRAINT songs_tags_bounded CHECK (cardinality(tags) <= 16);
-- GET /v1/songs?tag=: songs carrying a tag (tags @> ARRAY[tag]).
CREATE INDEX songs_tags ON songs USING gin (tags);
-- The hidden set (HiddenSongs) is small: a partial index holds only it.
CREATE INDEX songs_hidden ON songs (id) WHERE NOT available;

-- The catalog change sequence: one row, bumped (UPDATE ... RETURNING) in
-- the same transaction as every catalog write (CreateSong, PatchSong,
-- SetAvailable, ImportCatalog). The row lock orders concurrent writers, so
-- a higher number always commits after a lower one: serve replicas keep
-- the hidden set of the highest number they have read (HiddenSongs reads
-- the number and the set in one snapshot) and re-read when told of a
-- higher one.
CREATE TABLE catalog_seq (
    id  BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    seq BIGINT  NOT NULL
);
INSERT INTO catalog_seq (seq) VALUES (0);
