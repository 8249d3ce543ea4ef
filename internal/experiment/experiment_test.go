package experiment

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/setlist/setlist"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestAssignmentBalanced routes 100,000 ids at several shares and checks
// each share by a chi-square goodness-of-fit test (1 degree of freedom) at
// the 0.1 % level, and that the same id always lands in the same arm.
func TestAssignmentBalanced(t *testing.T) {
	const n = 100_000
	for _, tc := range []struct {
		salt  string
		share float64
	}{
		{"a1b2c3d4e5f60718", 0.5},
		{"a1b2c3d4e5f60718", 0.1},
		{"0000000000000000", 0.01},
		{"ffffffffffffffff", 0.25},
		{"x", 0.9},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.salt, tc.share), func(t *testing.T) {
			r := Routing{ID: 1, Challenger: 2, Share: tc.share, Salt: tc.salt}
			obs := []int{0, 0}
			for i := range n {
				u := setlist.UserID(fmt.Sprintf("user-%d", i)) // sequential ids: the worst case for a weak hash
				a := r.Arm(u)
				if a != r.Arm(u) {
					t.Fatalf("%s: arm changed between calls", u)
				}
				if a == setlist.ArmChallenger {
					obs[0]++
				} else {
					obs[1]++
				}
			}
			exp := []float64{n * tc.share, n * (1 - tc.share)}
			x := ChiSquare(obs, exp)
			p := ChiSquareSF(x, 1)
			t.Logf("share %v: challenger %d of %d (%.4f), chi2 %.3f, p %.3f", tc.share, obs[0], n, float64(obs[0])/n, x, p)
			if p < 0.001 {
				t.Errorf("challenger %d of %d at share %v: chi2 %.2f, p %.5f", obs[0], n, tc.share, x, p)
			}
		})
	}
}

// TestAssignmentUniform checks the buckets themselves over 20 equal bins
// (19 degrees of freedom), so a share other than the ones above is fair
// too, and that a new salt reshuffles users.
func TestAssignmentUniform(t *testing.T) {
	const n, bins = 100_000, 20
	obs := make([]int, bins)
	exp := make([]float64, bins)
	moved := 0
	for i := range n {
		u := setlist.UserID(fmt.Sprintf("%d", i))
		b := Bucket("salt-one", u)
		if b < 0 || b >= 1 {
			t.Fatalf("bucket %v out of [0,1)", b)
		}
		obs[int(b*bins)]++
		if (b < 0.5) != (Bucket("salt-two", u) < 0.5) {
			moved++
		}
	}
	for i := range exp {
		exp[i] = n / bins
	}
	if p := ChiSquareSF(ChiSquare(obs, exp), bins-1); p < 0.001 {
		t.Errorf("buckets not uniform: %v (p %.5f)", obs, p)
	}
	// Independent salts: half the users change halves (±5 σ).
	if math.Abs(float64(moved)-n/2) > 5*math.Sqrt(n/4) {
		t.Errorf("%d of %d users changed halves with a new salt, want about %d", moved, n, n/2)
	}
	// The separator: ("ab","c") and ("a","bc") are different inputs.
	if Bucket("ab", "c") == Bucket("a", "bc") {
		t.Error("salt/id boundary is ambiguous")
	}
}

func TestChiSquareSF(t *testing.T) {
	// Tabulated chi-square critical values.
	for _, tc := range []struct {
		x    float64
		k    int
		want float64
	}{
		{3.841458820694124, 1, 0.05},
		{10.827566170662733, 1, 0.001},
		{30.14352720564616, 19, 0.05},
		{0.454936423119572, 1, 0.5},
		{0, 3, 1},
	} {
		if got := ChiSquareSF(tc.x, tc.k); !near(got, tc.want, 1e-9) {
			t.Errorf("ChiSquareSF(%v, %d) = %v, want %v", tc.x, tc.k, got, tc.want)
		}
	}
}

func TestNormalQuantile(t *testing.T) {
	for _, tc := range []struct{ p, want float64 }{
		{0.5, 0}, {0.975, 1.959963984540054}, {0.8, 0.8416212335729143}, {0.025, -1.959963984540054}, {0.999, 3.090232306167813},
	} {
		if got := NormalQuantile(tc.p); !near(got, tc.want, 1e-12) {
			t.Errorf("NormalQuantile(%v) = %.15f, want %.15f", tc.p, got, tc.want)
		}
	}
}

// TestTest checks readouts against values computed by hand from the
// formulas in stats.go (the arithmetic is in each case's comment).
func TestTest(t *testing.T) {
	d := Design{Alpha: 0.05, MDE: 0.02, Share: 0.5, Power: 0.8}
	for _, tc := range []struct {
		name                string
		control, challenger Counts
		lr, diff, low, high float64
		verdict             string
		planned             int64
	}{
		// θ̂ = .13−.10 = .03; V = .1·.9/1000 + .13·.87/1000 = 2.031e-4; τ² = 4e-4;
		// Λ = sqrt(2.031/6.031)·exp(9e-4·4e-4/(2·2.031e-4·6.031e-4)) = .58031·e^1.46951 = 2.5227 < 20.
		// Planned: (1.959964+0.841621)²·.1·.9·(2+2)/4e-4 = 7063.99 → 7064.
		{"small lift, too little data", Counts{1000, 100}, Counts{1000, 130}, 2.5226756845307112, 0.03, -0.01656200046692416, 0.07656200046692416, VerdictNone, 7064},
		// θ̂ = .12−.10 = .02; V = (.09+.1056)/5000 = 3.912e-5; Λ = 31.436 ≥ 20.
		{"lift detected", Counts{5000, 500}, Counts{5000, 600}, 31.435839607849733, 0.02, 0.000995834916360145, 0.03900416508363984, VerdictBetter, 7064},
		{"drop detected", Counts{5000, 600}, Counts{5000, 500}, 31.435839607849733, -0.02, -0.03900416508363984, -0.000995834916360145, VerdictWorse, 8289}, // planned at control .12: 7.848880·.1056·4/4e-4 = 8288.4
		// 10 % share: θ̂ = .1−.1111 = −.0111; V = 1.00974e-4; Λ = 0.7314.
		{"uneven arms", Counts{9000, 1000}, Counts{1000, 100}, 0.7314454608141439, -0.0111111111111111, -0.04209909931196827, 0.01987687708974607, VerdictNone, 7752}, // planned at control 1/9: 7.848880·.098765·4/4e-4 = 7752.0 (design share .5)
		{"too early", Counts{100, 5}, Counts{100, 50}, 1, 0.45, -1, 1, VerdictTooEarly, 3729},                                                                         // planned at .05: 7.848880·.0475·4/4e-4 = 3728.2
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Test(d, tc.control, tc.challenger)
			if !near(r.LR, tc.lr, 1e-9*tc.lr) || !near(r.Diff, tc.diff, 1e-12) || !near(r.DiffCI.Low, tc.low, 1e-9) || !near(r.DiffCI.High, tc.high, 1e-9) {
				t.Errorf("LR %v diff %v CI [%v, %v]; want %v %v [%v, %v]", r.LR, r.Diff, r.DiffCI.Low, r.DiffCI.High, tc.lr, tc.diff, tc.low, tc.high)
			}
			if !near(r.P, math.Min(1, 1/tc.lr), 1e-9) {
				t.Errorf("p %v, want %v", r.P, 1/tc.lr)
			}
			if r.Verdict != tc.verdict {
				t.Errorf("verdict %q, want %q", r.Verdict, tc.verdict)
			}
			if r.PlannedUsers != tc.planned {
				t.Errorf("planned %d, want %d", r.PlannedUsers, tc.planned)
			}
		})
	}
}

func TestPlannedUnitsShare(t *testing.T) {
	// A 10 % challenger share: (1/.1 + 1/.9) = 11.111 instead of 4:
	// 2.801585²·.09·11.1111/4e-4 = 19622.2 → 19623.
	if got := PlannedUnits(0.1, Design{Alpha: 0.05, MDE: 0.02, Share: 0.1, Power: 0.8}); got != 19623 {
		t.Errorf("planned %d, want 19623", got)
	}
}

func TestWilson(t *testing.T) {
	// p̂ = .1, n = 1000, z = 1.96: centre (.1 + 1.92e-3)/1.00384, half 1.96·sqrt(9e-5 + 9.6e-7)/1.00384.
	got := Wilson(Counts{1000, 100}, 1.959963984540054)
	if !near(got.Low, 0.08290944359309571, 1e-12) || !near(got.High, 0.1201519631953484, 1e-12) {
		t.Errorf("Wilson(100/1000) = %+v", got)
	}
	got = Wilson(Counts{10, 0}, 1.959963984540054)
	if got.Low != 0 || !near(got.High, 0.2775327998628892, 1e-12) {
		t.Errorf("Wilson(0/10) = %+v", got)
	}
}

// simulate runs one experiment with looks after every batch of users and
// reports whether a test ever rejected: the mSPRT's Λ ≥ 1/α, and the naive
// repeated fixed-horizon z-test |z| ≥ 1.96.
func simulate(rng *rand.Rand, pc, pt, share float64, looks, perLook int, d Design) (msprt, naive bool) {
	var c, ch Counts
	for range looks {
		for range perLook {
			if rng.Float64() < share {
				ch.Units++
				if rng.Float64() < pt {
					ch.Converted++
				}
			} else {
				c.Units++
				if rng.Float64() < pc {
					c.Converted++
				}
			}
		}
		r := Test(d, c, ch)
		if r.Verdict == VerdictBetter || r.Verdict == VerdictWorse {
			msprt = true
		}
		if r.Verdict != VerdictTooEarly {
			v := variance(c) + variance(ch)
			if math.Abs(r.Diff)/math.Sqrt(v) >= 1.959963984540054 {
				naive = true
			}
		}
	}
	return msprt, naive
}

// TestAAFalsePositives: with the same rate in both arms, an experiment read
// after each of 30 days rejects in at most α of 1,000 seeded runs (allowing
// three standard errors), while reading a fixed-horizon z-test as often
// rejects far more: the reason for the sequential test.
func TestAAFalsePositives(t *testing.T) {
	const runs = 1000
	d := Design{Alpha: 0.05, MDE: 0.02, Share: 0.5, Power: 0.8}
	var msprt, naive int
	for seed := range runs {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		m, z := simulate(rng, 0.1, 0.1, 0.5, 30, 300, d)
		if m {
			msprt++
		}
		if z {
			naive++
		}
	}
	se := math.Sqrt(d.Alpha * (1 - d.Alpha) / runs)
	t.Logf("A/A, 30 looks: mSPRT rejected %d/%d, peeked z-test %d/%d", msprt, runs, naive, runs)
	if float64(msprt)/runs > d.Alpha+3*se {
		t.Errorf("mSPRT false-positive rate %.3f > α %.2f", float64(msprt)/runs, d.Alpha)
	}
	if float64(naive)/runs < 2*d.Alpha {
		t.Errorf("peeked z-test false positives %.3f: the simulation cannot tell a valid test from an invalid one", float64(naive)/runs)
	}
}

// TestPower: with a true lift of MDE the test finds it (and calls it
// better, never worse) in most runs by 9,000 users.
func TestPower(t *testing.T) {
	const runs = 200
	d := Design{Alpha: 0.05, MDE: 0.03, Share: 0.5, Power: 0.8}
	better, worse := 0, 0
	for seed := range runs {
		rng := rand.New(rand.NewPCG(uint64(seed), 11))
		var c, ch Counts
		for range 9000 {
			if rng.Float64() < 0.5 {
				ch.Units++
				if rng.Float64() < 0.13 {
					ch.Converted++
				}
			} else {
				c.Units++
				if rng.Float64() < 0.10 {
					c.Converted++
				}
			}
		}
		switch Test(d, c, ch).Verdict {
		case VerdictBetter:
			better++
		case VerdictWorse:
			worse++
		}
	}
	t.Logf("true lift .10→.13 at 9,000 users: better %d/%d, worse %d", better, runs, worse)
	if better < runs*7/10 || worse > 0 {
		t.Errorf("better %d/%d, worse %d", better, runs, worse)
	}
}

func TestValidate(t *testing.T) {
	for _, r := range []Routing{{Challenger: 1, Share: 0, Salt: "s"}, {Challenger: 1, Share: 1, Salt: "s"}, {Challenger: 1, Share: 0.1}, {Share: 0.1, Salt: "s"}} {
		if r.Validate() == nil {
			t.Errorf("%+v validated", r)
		}
	}
	if err := (Routing{Challenger: 3, Share: 0.1, Salt: "s"}).Validate(); err != nil {
		t.Error(err)
	}
}

func BenchmarkArm(b *testing.B) {
	r := Routing{Challenger: 2, Share: 0.1, Salt: "a1b2c3d4e5f60718"}
	u := setlist.UserID("some-user-id-of-typical-length")
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Arm(u)
	}
}
