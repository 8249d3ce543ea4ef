// Package modelstore is the one implementation of the Redis key space that
// batch writes and serve reads. Every published model lives under its own
// version; one pointer key names the version readers use, and it is switched
// only after every key of the new version is written and counted.
//
// Key space (P is the prefix, "setlist" unless configured; V a version, which
// is the model_runs id of the run that wrote it; U an external user id):
//
//	P:current              version readers use; SET last, atomically
//	P:previous             version kept for rollback
//	P:v{V}:meta            JSON Meta: run id, trained_at, snapshot_at, params, metrics, counts
//	P:v{V}:items           item side for fold-in: song ids, item factors, per-item weights (binary)
//	P:v{V}:popular         the popular list for users with no usable reactions
//	P:v{V}:recs:{U}        the user's precomputed top-K (binary: song ids and scores)
//	P:v{V}:foldin:{U}      serve's cached fold-in top-K for U under V (TTL; dropped on U's next reaction)
//	P:touched:{U}          sequence number of U's last reaction write (store.SeqBase), so a batch list older than it is not served
//	P:experiment           the running A/B experiment's routing "ID CHALLENGER SHARE SALT" (absent: none); its challenger is never swept
//	P:exposure:V:D:S:A     HyperLogLog of the users serve answered from version V's source S in experiment arm A on UTC day D (YYYY-MM-DD; expires ExposureTTL after its last add)
//	P:events               pub/sub channel: "version V" after a switch, "user U" after a reaction, "experiment" after a start or end
//
// Versions other than current and previous expire; a version whose writer
// crashed is never pointed at and is deleted by the next publish.
package modelstore

import (
	"strconv"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/model"
)

// Version is model.Version, named here because every key takes one.
type Version = model.Version

// ParseVersion reads a version as written in keys and in the pointer.
func ParseVersion(s string) (Version, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	return Version(n), err
}

func versionString(v Version) string { return strconv.FormatInt(int64(v), 10) }

// DefaultPrefix namespaces every key; tests use their own prefix so they can
// share one Redis server.
const DefaultPrefix = "setlist"

// Keys builds key names under one prefix. The zero value is not usable; use
// NewKeys.
type Keys struct{ prefix string }

// NewKeys returns the key builder for prefix ("" means DefaultPrefix).
func NewKeys(prefix string) Keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Keys{prefix: prefix}
}

// Prefix is the namespace of every key.
func (k Keys) Prefix() string { return k.prefix }

// Current is the pointer to the version readers use.
func (k Keys) Current() string { return k.prefix + ":current" }

// Previous is the version kept for rollback.
func (k Keys) Previous() string { return k.prefix + ":previous" }

// Events is the pub/sub channel for version switches and user invalidations.
func (k Keys) Events() string { return k.prefix + ":events" }

// VersionPrefix is the common prefix of every key of version v (for SCAN).
func (k Keys) VersionPrefix(v Version) string { return k.prefix + ":v" + versionString(v) + ":" }

// Meta holds version v's run metadata.
func (k Keys) Meta(v Version) string { return k.VersionPrefix(v) + "meta" }

// Items holds version v's item side (song ids, factors, weights) for fold-in.
func (k Keys) Items(v Version) string { return k.VersionPrefix(v) + "items" }

// Popular holds version v's popular list.
func (k Keys) Popular(v Version) string { return k.VersionPrefix(v) + "popular" }

// Recs holds user u's precomputed top-K under version v.
func (k Keys) Recs(v Version, u setlist.UserID) string {
	return k.VersionPrefix(v) + "recs:" + string(u)
}

// FoldIn holds serve's cached fold-in answer for user u under version v.
func (k Keys) FoldIn(v Version, u setlist.UserID) string {
	return k.VersionPrefix(v) + "foldin:" + string(u)
}

// Touched holds the time of user u's last reaction; it is not versioned
// because a reaction outdates the user's list in every version. It expires
// TouchedTTL after the reaction (see BatchFresh).
func (k Keys) Touched(u setlist.UserID) string { return k.prefix + ":touched:" + string(u) }

// Exposure holds the HyperLogLog of the distinct users serve answered from
// version v's source src in arm on UTC day (YYYY-MM-DD). It is not under
// VersionPrefix: a retired version's sweep must not take the day's count
// with it before serve has persisted it; it expires on its own (ExposureTTL).
func (k Keys) Exposure(v Version, day string, src setlist.Source, arm setlist.Arm) string {
	return k.prefix + ":exposure:" + versionString(v) + ":" + day + ":" + string(src) + ":" + string(arm)
}
