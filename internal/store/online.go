package store

import (
	"cmp"
	"slices"
	"time"

	"github.com/setlist/setlist"
)

// Online evaluation (issue 14): what listeners do with what they are shown.
// Serve attributes every like and dislike to the list it shows the user
// (Outcome, stored with the reaction) and counts what it shows (Exposure,
// flushed by every replica); the online metrics divide the first by the
// second, per model version, source, experiment arm and UTC day.

// DayLayout is how a UTC day is written in the exposure table and the
// online metrics.
const DayLayout = "2006-01-02"

// Day is t's UTC day in DayLayout.
func Day(t time.Time) string { return t.UTC().Format(DayLayout) }

// Exposure is one (day, version, source, arm) of what serve showed: the
// answers given and the distinct users given them. AddExposure adds
// Answers to the stored count (each replica sends its count since its last
// flush) and raises Users to the value sent (the count of a HyperLogLog the
// replicas share), so flushes from any number of replicas, repeated or out
// of order, add up.
type Exposure struct {
	Day     string         `json:"day"`
	Version int64          `json:"model_version"`
	Source  setlist.Source `json:"source"`
	Arm     setlist.Arm    `json:"arm"`
	Answers int64          `json:"answers"`
	Users   int64          `json:"users"`
}

// ShownOpinions is the attributed likes and dislikes of songs that were
// shown, for one (day, version, source, arm): the day is the opinion's
// (created_at, UTC). RR is the sum over the likes of 1/position.
type ShownOpinions struct {
	Day      string
	Version  int64
	Source   setlist.Source
	Arm      setlist.Arm
	Likes    int64
	Dislikes int64
	RR       float64
}

// OnlineMetric is the online evaluation of one (day, version, source, arm):
// how many answers and users were shown, how many shown songs were liked or
// disliked, and the rates. PositiveRate is likes of shown songs per user
// shown, NegativeRate dislikes per user shown (0 when no user was counted),
// MRR the mean reciprocal rank of the liked shown songs (0 when none).
// Summed over days (Total) the users are user-days: a listener answered on
// two days counts twice.
type OnlineMetric struct {
	Day          string         `json:"day,omitempty"`
	Version      int64          `json:"model_version"`
	Source       setlist.Source `json:"source"`
	Arm          setlist.Arm    `json:"arm"`
	Answers      int64          `json:"answers"`
	Users        int64          `json:"users"`
	Likes        int64          `json:"likes"`
	Dislikes     int64          `json:"dislikes"`
	PositiveRate float64        `json:"positive_rate"`
	NegativeRate float64        `json:"negative_rate"`
	MRR          float64        `json:"mrr"`
	rr           float64
}

func (m *OnlineMetric) rates() {
	m.PositiveRate, m.NegativeRate, m.MRR = 0, 0, 0
	if m.Users > 0 {
		m.PositiveRate = float64(m.Likes) / float64(m.Users)
		m.NegativeRate = float64(m.Dislikes) / float64(m.Users)
	}
	if m.Likes > 0 {
		m.MRR = m.rr / float64(m.Likes)
	}
}

type onlineKey struct {
	day     string
	version int64
	source  setlist.Source
	arm     setlist.Arm
}

// MergeOnline joins exposure and shown opinions on (day, version, source,
// arm) into metrics, newest version first, then newest day, source and
// arm. A key with opinions and no exposure (a flush not yet made, or lost)
// has rates of 0 per user: the metrics never divide by a guess.
func MergeOnline(exposure []Exposure, opinions []ShownOpinions) []OnlineMetric {
	byKey := map[onlineKey]*OnlineMetric{}
	get := func(k onlineKey) *OnlineMetric {
		m := byKey[k]
		if m == nil {
			m = &OnlineMetric{Day: k.day, Version: k.version, Source: k.source, Arm: k.arm}
			byKey[k] = m
		}
		return m
	}
	for _, e := range exposure {
		m := get(onlineKey{e.Day, e.Version, e.Source, e.Arm})
		m.Answers += e.Answers
		m.Users += e.Users
	}
	for _, o := range opinions {
		m := get(onlineKey{o.Day, o.Version, o.Source, o.Arm})
		m.Likes += o.Likes
		m.Dislikes += o.Dislikes
		m.rr += o.RR
	}
	out := make([]OnlineMetric, 0, len(byKey))
	for _, m := range byKey {
		m.rates()
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b OnlineMetric) int {
		return cmp.Or(cmp.Compare(b.Version, a.Version), cmp.Compare(b.Day, a.Day),
			cmp.Compare(a.Source, b.Source), cmp.Compare(a.Arm, b.Arm))
	})
	return out
}

// TotalOnline sums metrics over days into one per (version, source, arm),
// in MergeOnline's order (Day empty; users are user-days).
func TotalOnline(daily []OnlineMetric) []OnlineMetric {
	return sumOnline(daily, func(m OnlineMetric) onlineKey { return onlineKey{version: m.Version, source: m.Source, arm: m.Arm} })
}

// VersionOnline sums metrics over days, sources and arms into one per
// version, newest first (Day, Source and Arm empty).
func VersionOnline(daily []OnlineMetric) []OnlineMetric {
	return sumOnline(daily, func(m OnlineMetric) onlineKey { return onlineKey{version: m.Version} })
}

func sumOnline(daily []OnlineMetric, key func(OnlineMetric) onlineKey) []OnlineMetric {
	byKey := map[onlineKey]*OnlineMetric{}
	for _, d := range daily {
		k := key(d)
		m := byKey[k]
		if m == nil {
			m = &OnlineMetric{Version: k.version, Source: k.source, Arm: k.arm}
			byKey[k] = m
		}
		m.Answers += d.Answers
		m.Users += d.Users
		m.Likes += d.Likes
		m.Dislikes += d.Dislikes
		m.rr += d.MRR * float64(d.Likes)
	}
	out := make([]OnlineMetric, 0, len(byKey))
	for _, m := range byKey {
		m.rates()
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b OnlineMetric) int {
		return cmp.Or(cmp.Compare(b.Version, a.Version), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Arm, b.Arm))
	})
	return out
}
