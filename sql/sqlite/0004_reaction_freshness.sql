-- 0004: exact freshness and exclusive opinions for reactions, as
-- sql/postgres/0004_reaction_freshness.sql.
--
-- SQLite has one writer at a time, so the sequence is a counter row every
-- reaction write increments in its own transaction: a snapshot that reads
-- the counter as its first statement sees exactly the writes numbered up to
-- the value it read. It starts at 2^62 like the PostgreSQL sequence.
CREATE TABLE reaction_seq (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    n   INTEGER NOT NULL
);
INSERT INTO reaction_seq (one, n) VALUES (1, 4611686018427387904);

-- The latest opinion wins: pairs written before this migration keep the
-- newer row (on a tie, the like).
DELETE FROM reactions
WHERE kind IN ('like', 'dislike') AND EXISTS (
    SELECT 1 FROM reactions o
    WHERE o.user_id = reactions.user_id AND o.song_id = reactions.song_id
      AND o.kind IN ('like', 'dislike') AND o.kind <> reactions.kind
      AND (reactions.updated_at < o.updated_at OR (reactions.updated_at = o.updated_at AND reactions.kind = 'dislike')));
CREATE UNIQUE INDEX reactions_one_opinion ON reactions (user_id, song_id) WHERE kind IN ('like', 'dislike');
