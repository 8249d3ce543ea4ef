-- 0008: a capped fold-in reads its rows in index order.
--
-- serve's fold-in reads at most --foldin-max-reactions of a user's
-- reactions in store.FoldInOrder (opinions first, then newest, then most
-- played, then song id). Without an index in that order PostgreSQL read and
-- sorted the user's whole history to return the first 1000 rows, so the cap
-- bounded the solve but not the read: a user with a huge history still cost
-- a full sort per fold-in. This index is that order (the expression must match
-- FoldInOrder's text), so the read stops after the cap.
CREATE INDEX reactions_foldin_order ON reactions (user_id, (kind = 'play'), updated_at DESC, weight DESC, song_id);
