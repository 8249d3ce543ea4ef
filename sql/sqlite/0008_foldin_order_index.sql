-- 0008: a capped fold-in reads its rows in index order (see the PostgreSQL
-- migration of the same number): the index is store.FoldInOrder, so
-- LIMIT stops the read instead of sorting the user's whole history.
CREATE INDEX reactions_foldin_order ON reactions (user_id, kind = 'play', updated_at DESC, weight DESC, song_id);
