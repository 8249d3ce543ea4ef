// Package experiment is the pure logic of online A/B experiments between
// model versions: which arm a user is in (a salted hash, so every replica
// and every restart agrees without coordination) and the statistics of the
// readout (a sequential test that stays valid however often it is looked
// at; see docs/API.md#experiments for why this one). It does no I/O: batch
// stores experiments and reads outcomes, serve routes users, both call this.
package experiment

import (
	"fmt"
	"math"

	"github.com/setlist/setlist"
)

// Routing is what a server needs to route users: the experiment's id, the
// challenger version, the share of users it gets and the salt of the hash.
type Routing struct {
	ID         int64
	Challenger int64
	Share      float64
	Salt       string
}

// Validate checks a routing's share and salt.
func (r Routing) Validate() error {
	if !(r.Share > 0 && r.Share < 1) {
		return fmt.Errorf("share must be in (0, 1), got %v: %w", r.Share, setlist.ErrInvalid)
	}
	if r.Salt == "" {
		return fmt.Errorf("an experiment needs a salt: %w", setlist.ErrInvalid)
	}
	if r.Challenger <= 0 {
		return fmt.Errorf("challenger version must be > 0, got %d: %w", r.Challenger, setlist.ErrInvalid)
	}
	return nil
}

// Arm is the arm user u is in: ArmChallenger for a share of users chosen by
// Bucket, ArmControl for the rest.
func (r Routing) Arm(u setlist.UserID) setlist.Arm {
	if Bucket(r.Salt, u) < r.Share {
		return setlist.ArmChallenger
	}
	return setlist.ArmControl
}

// Bucket maps (salt, u) to a number uniform in [0, 1): FNV-1a over the
// salt, a separator and the id, then the murmur3 finaliser so that ids
// differing only in their last characters land far apart. It allocates
// nothing (it runs on every recommendation request while an experiment
// runs). A new salt per experiment reshuffles users, so one experiment's
// challenger users are not the next one's again.
func Bucket(salt string, u setlist.UserID) float64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(salt); i++ {
		h ^= uint64(salt[i])
		h *= prime
	}
	h ^= 0xff // a byte no salt or id boundary could fake: ("ab","c") ≠ ("a","bc")
	h *= prime
	for i := 0; i < len(u); i++ {
		h ^= uint64(u[i])
		h *= prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return float64(h>>11) / (1 << 53)
}

// ChiSquare is Pearson's statistic of observed counts against expected
// ones (same length, expected > 0).
func ChiSquare(observed []int, expected []float64) float64 {
	var x float64
	for i, o := range observed {
		d := float64(o) - expected[i]
		x += d * d / expected[i]
	}
	return x
}

// ChiSquareSF is P(X ≥ x) for a chi-square variable with k degrees of
// freedom (the p-value of ChiSquare's statistic), via the regularised upper
// incomplete gamma function.
func ChiSquareSF(x float64, k int) float64 {
	if x <= 0 {
		return 1
	}
	return upperGamma(float64(k)/2, x/2)
}

// upperGamma is Q(a, x) = Γ(a, x)/Γ(a) (Numerical Recipes: series below
// a+1, continued fraction above).
func upperGamma(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 1000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-15 {
				break
			}
		}
		return 1 - sum*math.Exp(-x+a*math.Log(x)-lg)
	}
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return math.Exp(-x+a*math.Log(x)-lg) * h
}
