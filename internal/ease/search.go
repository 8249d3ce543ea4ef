package ease

import "github.com/setlist/setlist/internal/feedback"

// lambdaScales are the λ a search tries, in this order, times the data's
// Scale: the best λ differed 15× between two data sets, so the grid spans
// two decades each way, nearest first so a short budget still tries the
// likeliest values.
var lambdaScales = []float64{1, 0.3, 3, 0.1, 10, 0.03, 30}

// searchWeightings are tried at the best λ once the λ grid is done.
var searchWeightings = []feedback.Weighting{feedback.WeightRaw, feedback.WeightBM25}

// SearchTrials is how many trials a whole search plans: the λ grid and the
// other weightings.
func SearchTrials() int { return len(lambdaScales) + len(searchWeightings) }

// Search is EASE's hyper-parameter grid: from base, λ = s·scale for each of
// lambdaScales in order (at most maxLambdas of them when maxLambdas > 0),
// then the best setting so far with each of searchWeightings. Before every
// trial more says whether one may start (the caller's budget); try trains
// and scores one setting (higher is better). It returns the best setting
// (nil when none was tried) and its score (-1 then).
func Search(base Params, scale float64, maxLambdas int, more func() bool, try func(Params) (float64, error)) (*Params, float64, error) {
	var choice *Params
	best := -1.0
	run := func(p Params) error {
		score, err := try(p)
		if err != nil {
			return err
		}
		if score > best {
			best, choice = score, &p
		}
		return nil
	}
	for i, s := range lambdaScales {
		if (maxLambdas > 0 && i >= maxLambdas) || !more() {
			break
		}
		p := base
		p.Lambda = s * scale
		if err := run(p); err != nil {
			return nil, 0, err
		}
	}
	for _, w := range searchWeightings {
		if choice == nil || !more() {
			break
		}
		p := *choice
		p.Weighting = w
		if err := run(p); err != nil {
			return nil, 0, err
		}
	}
	return choice, best, nil
}
