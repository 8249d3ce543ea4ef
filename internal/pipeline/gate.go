package pipeline

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/feedback"
)

// How a run's metrics were measured (RunParams.Eval). The gate compares a
// candidate only with a published figure measured the same way: figures
// measured differently differ by more than any allowed regression.
const (
	// EvalHoldout: the run's parameters fit on the training split of a
	// seeded per-user holdout, scored on the held-out reactions (batch
	// train, and batch import-model since issue 26).
	EvalHoldout = "holdout"
	// EvalFoldIn: imported item factors scored with the holdout users
	// folded in. The factors may have been trained on the holdout, so the
	// figure is optimistic; imports recorded it before issue 26 (without
	// an eval field).
	EvalFoldIn = "fold-in"
)

// evalMethod reads how a recorded run (its params JSON) was measured:
// runs recorded before the field are holdout figures, except imports.
func evalMethod(params []byte) string {
	var p struct {
		Eval   string `json:"eval"`
		Source string `json:"source"`
	}
	if json.Unmarshal(params, &p) != nil {
		return ""
	}
	switch {
	case p.Eval != "":
		return p.Eval
	case p.Source == artifact.SourceImported:
		return EvalFoldIn
	default:
		return EvalHoldout
	}
}

// GateInput is what the quality gate judges.
type GateInput struct {
	NDCG, BaselineNDCG float64 // the candidate's and the popularity baseline's NDCG@5 on the same holdout
	EvalUsers          int     // users evaluated; 0 means the data has no holdout
	// PublishedNDCG is the NDCG@5 the currently published run recorded, nil
	// when nothing is published. It was measured on that run's snapshot, not
	// on this one: data drift moves it too, which is why the gate allows a
	// relative MaxRegression rather than demanding "no worse".
	PublishedNDCG *float64
	MaxRegression float64
	Force         bool
	// Lists is what the batch lists about to be published look like; the
	// zero value (no lists: a stage-only run) is not judged.
	Lists ListCheck
	// FoldIn, for an imported model, scores its own item factors with the
	// holdout users folded in. NDCG above judges the file's parameters (a
	// fit on the training split, as a trained candidate is judged); this
	// judges the factors, and must beat popularity: a wrong id map scores
	// like chance. It is optimistic (the factors may have been trained on
	// the holdout), so it is never compared with a published figure.
	FoldIn *FoldInCheck
}

// FoldInCheck is an imported model's factors' NDCG@5 with the holdout
// users folded in, and popularity's on the same split.
type FoldInCheck struct{ NDCG, BaselineNDCG float64 }

// ListCheck counts what the gate needs of the lists a run is about to
// publish: the NDCG above judges the item side through a holdout, these
// judge the user side actually written to Redis (imported user factors
// are never evaluated otherwise).
type ListCheck struct {
	Users int // users with at least one song they have not reacted to
	// Short counts those whose list is shorter than min(k, songs left to
	// them): with finite scores every unreacted song is a candidate, so a
	// short list means scores that compare false (NaN).
	Short int
}

// CheckLists counts the users of m (rows = lists) whose list is short.
// Songs left to a user are those they did not react to and that are not
// in except (taken down; sorted item indexes).
func CheckLists(lists [][]feedback.Scored, m *feedback.CSR, k int, except []int32) ListCheck {
	var c ListCheck
	for u, l := range lists {
		row, _ := m.Row(u)
		left := m.Cols - len(row) - len(except)
		for i, j := 0, 0; i < len(row) && j < len(except); {
			switch {
			case row[i] < except[j]:
				i++
			case row[i] > except[j]:
				j++
			default: // reacted to and taken down: counted twice above
				left++
				i, j = i+1, j+1
			}
		}
		if left <= 0 {
			continue
		}
		c.Users++
		if len(l)-feedback.Withheld(l, except) < min(k, left) {
			c.Short++
		}
	}
	return c
}

// GateDecision is the gate's verdict. Reason explains a rejection, or what
// would have been rejected when Forced.
type GateDecision struct {
	Publish bool
	Forced  bool
	Reason  string
}

// Gate decides whether a candidate model may be published: it must beat the
// popularity baseline (a model that cannot is worse than serving everyone the
// charts) and must not fall more than MaxRegression (relative) below the
// published run's NDCG@5. Force publishes anyway and says what it overrode.
func Gate(in GateInput) GateDecision {
	var reason string
	switch {
	case in.EvalUsers == 0:
		reason = "no user has enough positive reactions for a holdout (≥ 2), so the model cannot be evaluated"
	case math.IsNaN(in.NDCG):
		reason = "NDCG@5 is not a number"
	case in.Lists.Short > 0:
		reason = fmt.Sprintf("%d of %d users' batch lists are shorter than the songs left to them (scores that are not numbers)",
			in.Lists.Short, in.Lists.Users)
	case in.FoldIn != nil && !(in.FoldIn.NDCG > in.FoldIn.BaselineNDCG):
		reason = fmt.Sprintf("the imported factors, the holdout users folded in, score NDCG@5 %.4f, not above the popularity baseline's %.4f (do users.csv and items.csv list the factors' rows?)",
			in.FoldIn.NDCG, in.FoldIn.BaselineNDCG)
	case in.NDCG <= in.BaselineNDCG:
		reason = fmt.Sprintf("NDCG@5 %.4f does not beat the popularity baseline's %.4f", in.NDCG, in.BaselineNDCG)
	case in.PublishedNDCG != nil && in.NDCG < *in.PublishedNDCG*(1-in.MaxRegression):
		reason = fmt.Sprintf("NDCG@5 %.4f is more than %.1f%% below the published run's %.4f",
			in.NDCG, 100*in.MaxRegression, *in.PublishedNDCG)
	}
	switch {
	case reason == "":
		return GateDecision{Publish: true}
	case in.Force:
		return GateDecision{Publish: true, Forced: true, Reason: "forced past the quality gate: " + reason}
	default:
		return GateDecision{Reason: reason}
	}
}
