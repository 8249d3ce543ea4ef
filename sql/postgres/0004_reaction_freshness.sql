-- 0004: exact freshness and exclusive opinions for reactions.
--
-- reaction_seq numbers every write to a user's reactions (React, Unreact,
-- CreateUser with likes). A write takes its number in its last statement,
-- under a shared advisory lock; a training snapshot takes the lock
-- exclusively, so no write is between its number and its commit, reads the
-- sequence's value S and starts its snapshot. A write is in the snapshot
-- exactly when its number is ≤ S, whatever the clocks say (updated_at is
-- the transaction's start and says nothing about commit order). Numbers
-- start at 2^62, above any unix-nanosecond time serve stored before, so a
-- user's older "touched" time never outranks a number.
CREATE SEQUENCE reaction_seq AS BIGINT START WITH 4611686018427387905 MINVALUE 4611686018427387904;

-- The latest opinion wins: a user has at most one of like and dislike per
-- song. Rows from before this migration where both exist keep the newer one
-- (by updated_at; on a tie, the like) and the older is deleted here.
DELETE FROM reactions r USING reactions o
WHERE r.user_id = o.user_id AND r.song_id = o.song_id
  AND r.kind IN ('like', 'dislike') AND o.kind IN ('like', 'dislike') AND r.kind <> o.kind
  AND (r.updated_at < o.updated_at OR (r.updated_at = o.updated_at AND r.kind = 'dislike'));
CREATE UNIQUE INDEX reactions_one_opinion ON reactions (user_id, song_id) WHERE kind IN ('like', 'dislike');
