package keyspace

import "time"

// The freshness rules: whether a list stored in Redis may answer for a
// user, from what UserState read of them. They live here, beside the keys
// they read, and nowhere else: serve's answer and its attribution of a
// reaction (recs.pick) decide by them, and so does every test of them.

// TouchedTTL is how long P:touched:{U} outlives U's last reaction.
//
// "Touched" means: U's batch lists are older than U's reactions in every
// version whose snapshot predates the touch, so they must not be served.
// The key is needed only while a version with such a snapshot can be served
// (current, or previous after a rollback); once every servable snapshot is
// newer than the touch, the key's absence says the same as its value. A
// version is servable for about two retrain periods (daily: two days) after
// its snapshot, longer only when training stops. BatchFresh covers that
// case: a version whose snapshot is older than TouchedTTL trusts no absent
// key and folds everyone in, so the TTL bounds memory (one key per user who
// reacted within it) without ever serving a list older than a reaction.
const TouchedTTL = 30 * 24 * time.Hour

// BatchFresh reports whether a version whose reactions snapshot holds the
// writes numbered up to snapshotSeq (see store.SeqBase; 0 in versions from
// before the numbers) and was taken at snapshotNanos (unix ns, 0 when
// unknown) may serve a user its batch list, given the user's P:touched:{U}
// value (their latest write's number, 0 when absent) at now: the user has
// not reacted since the snapshot. An absent key means no reaction within
// TouchedTTL, which proves freshness only for a snapshot younger than that.
func BatchFresh(touched, snapshotSeq, snapshotNanos int64, now time.Time) bool {
	switch {
	case touched != 0:
		return touched <= snapshotSeq
	case snapshotNanos == 0:
		return true // a model without a snapshot time: only reactions through serve are known
	default:
		return snapshotNanos >= now.Add(-TouchedTTL).UnixNano()
	}
}

// FreshBatch reports whether st's batch list, in a version whose snapshot
// is snapshotSeq and snapshotNanos (BatchFresh), is fresh at now: the user
// has not reacted since the snapshot.
func (st UserState) FreshBatch(snapshotSeq, snapshotNanos int64, now time.Time) bool {
	return BatchFresh(st.Touched, snapshotSeq, snapshotNanos, now)
}

// FreshFoldIn is st's cached fold-in when it is fresh, else nil: it was
// solved from the user's current history (its Touched is the user's mark
// now: a reaction since changed the mark, even if the record's delete raced
// with the write) under catalog sequence catalog (a record solved under
// another may lack a song shown again since).
func (st UserState) FreshFoldIn(catalog int64) *FoldInRecord {
	if f := st.FoldIn; f != nil && f.Touched == st.Touched && f.Catalog == catalog {
		return f
	}
	return nil
}
