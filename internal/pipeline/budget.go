package pipeline

import (
	"fmt"
	"time"
)

// budget is the one owner of a run's search budget (Config.TuneBudget and
// Config.TuneTrials; only Config.Validate reads them besides): whether the
// run searches, how the time is shared between the ALS search and the
// family comparison, when each stops, and what the progress bar counts.
// With family auto one budget covers both: the ALS search ends early by
// what EASE's trials are predicted to take (reserve), and the comparison
// runs in what is left, so the two honour the budget as an ALS-only search
// does (overrunning by at most about one trial).
type budget struct {
	total  time.Duration // 0: no time limit
	trials int           // 0: no trial limit
	auto   bool          // family auto: the comparison shares the budget
	now    func() time.Time
	// end is when the whole search, family comparison included, must
	// end: set when the ALS search starts (alsShare), else by the
	// comparison itself (familyEnd).
	end time.Time
}

func newBudget(cfg Config, now func() time.Time) *budget {
	return &budget{total: cfg.TuneBudget, trials: cfg.TuneTrials, auto: cfg.Family == FamilyAuto, now: now}
}

// searching says whether the run searches at all.
func (b *budget) searching() bool { return b.trials > 0 || b.total > 0 }

// shared says whether the family comparison shares the time budget with
// the ALS search (family auto and a time budget).
func (b *budget) shared() bool { return b.auto && b.total > 0 }

// alsShare is the ALS search's time (0: none) and starts the clock. With
// family auto and a time budget, the family comparison's reserve comes off
// it when EASE is offered (perTrial > 0: one EASE trial's predicted time).
func (b *budget) alsShare(perTrial time.Duration, easeOffered bool) time.Duration {
	share := b.total
	if b.shared() {
		b.end = b.now().Add(b.total)
		if easeOffered {
			share -= b.reserve(perTrial)
		}
	}
	return share
}

// reserve is the share kept for the family comparison: every trial EASE's
// search plans at its predicted cost, at most half.
func (b *budget) reserve(perTrial time.Duration) time.Duration {
	return min(b.total/2, time.Duration(easeTrials)*perTrial)
}

// easeTooSlow says why EASE is not offered on n songs when one of its
// trials (perTrial) would take more than a quarter of the time budget
// (two trials more than half); "" when it fits or there is no time limit.
func (b *budget) easeTooSlow(n int, perTrial time.Duration) string {
	if b.total > 0 && 2*perTrial > b.total/2 {
		return fmt.Sprintf("one EASE trial on %d songs takes about %v, more than a quarter of the %v budget", n, perTrial.Round(time.Second), b.total)
	}
	return ""
}

// familyEnd is when the family comparison must stop: the search's end when
// the ALS search set it, else its reserve from now; zero without a time
// limit.
func (b *budget) familyEnd(perTrial time.Duration) time.Time {
	if b.total > 0 && b.end.IsZero() {
		return b.now().Add(b.reserve(perTrial))
	}
	return b.end
}

// easeMore says whether another EASE trial may start: always without a
// time limit and for the first (its cost was reserved), else when its
// predicted end (the last trial's time, next) is within end.
func (b *budget) easeMore(tried int, next time.Duration, end time.Time) bool {
	return b.total == 0 || tried == 0 || !b.now().Add(next).After(end)
}

// maxLambdas caps EASE's λ grid: four values without a time limit, all of
// them (0) with one, where time decides.
func (b *budget) maxLambdas() int {
	if b.total == 0 {
		return 4
	}
	return 0
}

// String is the time budget as logged.
func (b *budget) String() string { return b.total.String() }

// progress is what the search's bar counts to: milliseconds of the time
// budget, else trials; set gives the bar's position after n trials started
// at start.
func (b *budget) progress() (total int64, set func(n int64, start time.Time) int64) {
	if b.total > 0 {
		total = b.total.Milliseconds()
		return total, func(_ int64, start time.Time) int64 { return min(total, b.now().Sub(start).Milliseconds()) }
	}
	return int64(b.trials), func(n int64, _ time.Time) int64 { return n }
}
