// Package keyspace is the one implementation of the Redis key space that
// batch writes and serve reads. Every published model lives under its own
// version; one pointer key names the version readers use, and it is switched
// only after every key of the new version is written and counted.
//
// Key space (P is the prefix, "setlist" unless configured; V a version, which
// is the model_runs id of the run that wrote it; U an external user id, T(x)
// x with '%', '{' and '}' percent-escaped; {…} is a Redis Cluster hash tag,
// except in v{V}, which is "v" and the version: setlist:v12:recs:{ana}):
//
//	P:{P}:current            version readers use; SET last, atomically
//	P:{P}:previous           version kept for rollback
//	P:{P}:versions           hash: version → building | published (publisher only)
//	P:v{V}:{P}:meta          JSON Meta: run id, trained_at, snapshot_at, params, metrics, counts, key layout
//	P:v{V}:{P}:items         item side for fold-in: song ids, item factors, per-item weights (binary)
//	P:v{V}:{P}:popular       the popular list for users with no usable reactions
//	P:v{V}:recs:{T(U)}       the user's precomputed top-K (binary: song ids and scores)
//	P:v{V}:foldin:{T(U)}     serve's cached fold-in top-K for U under V (TTL; dropped on U's next reaction)
//	P:touched:{T(U)}         sequence number of U's last reaction write (store.SeqBase), so a batch list older than it is not served
//	P:{P}:experiment         the running A/B experiment's routing "ID CHALLENGER SHARE SALT" (absent: none); its challenger is never swept
//	P:shown:{T(U)}           the last list serve answered U: version, arm, source, when, song ids (binary; expires ShownWindow after the answer); what a like is attributed to
//	P:exposure:V:D:S:A       HyperLogLog of the users serve answered from version V's source S in experiment arm A on UTC day D (YYYY-MM-DD; expires ExposureTTL after its last add)
//	P:events                 pub/sub channel: "version V" after a switch, "user U" after a reaction, "experiment" after a start or end
//
// The tags put every key of one user in one slot (serve reads them in one
// MGET) and spread users over all slots, while the pointers, the versions
// hash and every version's shared records share the slot of {P}, so the
// switch is one Lua script.
//
// Versions other than current and previous expire; a version whose writer
// crashed is never pointed at and is deleted by the next publish.
package keyspace

import (
	"strconv"
	"strings"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
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

// KeyLayout is the key naming Publish records in every version's meta
// (model.Meta.KeyLayout): 2, keys tagged with their slot. A reader refuses
// a version whose meta names a larger one, a newer writer's whose keys it
// cannot name. (Layout 1, untagged, was never released and is not read.)
const KeyLayout = 2

// Keys builds key names under one prefix. The zero value is not usable;
// use NewKeys.
type Keys struct {
	prefix string
	// tag is the prefix escaped for use in and before a hash tag.
	tag string
}

// NewKeys returns the key builder for prefix ("" means DefaultPrefix).
func NewKeys(prefix string) Keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Keys{prefix: prefix, tag: escapeTag(prefix)}
}

// Prefix is the namespace of every key.
func (k Keys) Prefix() string { return k.prefix }

// shared is the name of a key in the slot of {P}. Like every key it starts
// with "P:", so one SCAN MATCH P:* finds the whole namespace.
func (k Keys) shared(name string) string {
	return k.tag + ":{" + k.tag + "}:" + name
}

// Current is the pointer to the version readers use.
func (k Keys) Current() string { return k.shared("current") }

// Previous is the version kept for rollback.
func (k Keys) Previous() string { return k.shared("previous") }

// Versions is the hash of versions with keys in Redis and their state. Only
// the publisher uses it.
func (k Keys) Versions() string { return k.shared("versions") }

// Events is the pub/sub channel for version switches and user invalidations.
func (k Keys) Events() string { return k.prefix + ":events" }

// VersionPrefix is the common prefix of every key of version v (for SCAN
// MATCH, after globEscape).
func (k Keys) VersionPrefix(v Version) string {
	return k.tag + ":v" + versionString(v) + ":"
}

// versionShared is a record of version v in the slot of {P}.
func (k Keys) versionShared(v Version, name string) string {
	return k.VersionPrefix(v) + "{" + k.tag + "}:" + name
}

// perUser is a key of user u, in u's slot.
func (k Keys) perUser(base string, u setlist.UserID) string {
	return base + "{" + escapeTag(string(u)) + "}"
}

// Meta holds version v's run metadata.
func (k Keys) Meta(v Version) string { return k.versionShared(v, "meta") }

// Items holds version v's item side (song ids, factors, weights) for fold-in.
func (k Keys) Items(v Version) string { return k.versionShared(v, "items") }

// Popular holds version v's popular list.
func (k Keys) Popular(v Version) string { return k.versionShared(v, "popular") }

// Added holds the songs batch refresh folded into version v after it was
// published (model.EncodeAdded); absent until the first refresh adds one.
func (k Keys) Added(v Version) string { return k.versionShared(v, "added") }

// Refreshes counts the refreshes that changed version v (INCR, beside
// Added): a reader compares it with the count it loaded to know the
// version's items or lists changed in place.
func (k Keys) Refreshes(v Version) string { return k.versionShared(v, "refreshes") }

// Recs holds user u's precomputed top-K under version v.
func (k Keys) Recs(v Version, u setlist.UserID) string {
	return k.perUser(k.VersionPrefix(v)+"recs:", u)
}

// FoldIn holds serve's cached fold-in answer for user u under version v.
func (k Keys) FoldIn(v Version, u setlist.UserID) string {
	return k.perUser(k.VersionPrefix(v)+"foldin:", u)
}

// Touched holds the sequence number of user u's last reaction; it is not
// versioned because a reaction outdates the user's list in every version.
// It expires TouchedTTL after the reaction (see BatchFresh).
func (k Keys) Touched(u setlist.UserID) string {
	return k.perUser(k.tag+":touched:", u)
}

// Shown holds the last list serve answered user u (EncodeShown), written
// by serve's exposure flush and read when u likes or dislikes a song: a
// reaction is attributed to a list only if that list was answered to u
// within ShownWindow. Not versioned: the record names its version.
func (k Keys) Shown(u setlist.UserID) string {
	return k.perUser(k.tag+":shown:", u)
}

// Exposure holds the HyperLogLog of the distinct users serve answered from
// version v's source src in arm on UTC day (YYYY-MM-DD). It is not under
// VersionPrefix: a retired version's sweep must not take the day's count
// with it before serve has persisted it; it expires on its own (ExposureTTL).
// Only single-key commands use it, so any slot will do (no tag).
func (k Keys) Exposure(v Version, day string, src setlist.Source, arm setlist.Arm) string {
	return k.tag + ":exposure:" + versionString(v) + ":" + day + ":" + string(src) + ":" + string(arm)
}

// escapeTag makes s safe inside and before a hash tag: Redis Cluster hashes
// the bytes between the first '{' and the next '}', so a '}' in a user id
// would end the tag early and a '{' in the prefix would start it early.
// Percent-escaping '%', '{' and '}' is injective, so distinct ids keep
// distinct keys.
func escapeTag(s string) string {
	if !strings.ContainsAny(s, "%{}") {
		return s
	}
	return tagEscaper.Replace(s)
}

var tagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")
