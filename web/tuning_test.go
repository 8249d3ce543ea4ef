package web_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// checkModelPanel: the model panel shows the parameter search (one dot per
// trial, the best-so-far line, a sentence naming the winner and why it
// stopped), parameters under human labels, and disclosures that look like
// disclosures (a chevron and a show/hide cue that flips when opened).
func checkModelPanel(t *testing.T, b *browser) {
	t.Helper()
	b.waitFor("the parameter search", `document.querySelector('#model .tuning') !== null`)
	b.waitFor("the online metrics", `document.querySelector('#model .online h3') !== null`)
	trials := b.num(`document.querySelectorAll('#model .tuning-chart circle.trial').length`)
	if trials == 0 {
		t.Error("the search chart has no trial dots")
	}
	// The trials' table has its own wide view (issue 26 items 9 and 17).
	if href := b.str(`document.querySelector('#model .tuning a.run-link')?.getAttribute('href') || ''`); !regexp.MustCompile(`^#/runs/\d+$`).MatchString(href) {
		t.Errorf("the parameter search links to %q, want its view #/runs/{run}", href)
	}
	if n := b.num(`document.querySelectorAll('#model .tuning-chart circle.trial-picked').length`); n != 1 {
		t.Errorf("%d trials ringed as picked, want 1", n)
	}
	points := b.str(`document.querySelector('#model .series-best polyline')?.getAttribute('points') || ''`)
	if strings.Count(points, ",") < 1 || strings.Contains(points, "NaN") {
		t.Errorf("best-so-far line points %q", points)
	}
	summary := b.str(`document.querySelector('#model .tuning-summary')?.textContent || ''`)
	if !regexp.MustCompile(`^Run \d+ tried \d+ configurations?.* it stopped because .+\. (Trial \d+ won|It kept)`).MatchString(summary) {
		t.Errorf("search summary %q does not say what it tried, why it stopped and what won", summary)
	}
	for _, bad := range []string{"NaN", "undefined", "null"} {
		if strings.Contains(b.str(`document.querySelector('#model').textContent`), bad) {
			t.Errorf("the model panel shows %q", bad)
		}
	}

	// The served model's family, under its name.
	if fam := b.str(`document.querySelector('#model .model-family')?.textContent || ''`); !strings.Contains(fam, "ALS (matrix factorisation)") {
		t.Errorf("the model panel names the family %q, want ALS (matrix factorisation)", fam)
	}

	// Parameters under people's names, only those that apply.
	b.run("open the training parameters", chromedp.Click(`#model details.params > summary`, chromedp.ByQuery))
	labels := b.str(`[...document.querySelectorAll('#model details.params dt')].map(e => e.textContent).join('|')`)
	if !strings.Contains(labels, "Latent factors") || !strings.Contains(labels, "Regularisation (λ)") {
		t.Errorf("parameter labels %q lack the human names", labels)
	}
	if regexp.MustCompile(`\b[a-z]+_[a-z0-9_]+\b|\b[A-Z][a-z]+[A-Z]\w*`).MatchString(labels) {
		t.Errorf("parameter labels %q show code names", labels)
	}

	// Every disclosure of the panel shows a chevron and a cue that flips.
	cue := func(sel string) string {
		return b.str(fmt.Sprintf(`(() => { const s = document.querySelector(%s); if (!s) return 'missing';
			const before = getComputedStyle(s, '::before'), after = getComputedStyle(s, '::after');
			return [before.content !== 'none' && before.borderRightStyle === 'solid', after.content].join(' '); })()`, jsString(sel)))
	}
	for _, sel := range []string{"#model details.chart-table > summary", "#model details.params > summary"} {
		open := b.str(fmt.Sprintf(`String(document.querySelector(%s).parentElement.open)`, jsString(sel)))
		want := map[string]string{"true": `true "hide"`, "false": `true "show"`}[open]
		if got := cue(sel); got != want {
			t.Errorf("%s (open %s): chevron and cue %q, want %q", sel, open, got, want)
		}
	}
	b.run("close the training parameters", chromedp.Click(`#model details.params > summary`, chromedp.ByQuery))
}

// checkOnlineFake: against the fake API's two versions, the model panel's
// online table shows each version's users shown, likes and dislikes per
// user and MRR, marks the served version, and breaks it down per source.
func checkOnlineFake(t *testing.T, b *browser) {
	t.Helper()
	b.waitFor("the online table", `document.querySelector('#model .online-versions') !== null`)
	if got := b.str(`[...document.querySelectorAll('#model .online-versions tbody tr')].map(r => [...r.cells].map(c => c.textContent).join(' ')).join('|')`); got != "v6 120 0.250 0.050 0.410|v5 80 0.150 0.100 0.330" {
		t.Errorf("online rows %q", got)
	}
	if n := b.num(`document.querySelectorAll('#model .online-versions tr.online-current[data-version="6"]').length`); n != 1 {
		t.Errorf("%d online rows marked as the served version 6, want 1", n)
	}
	if n := b.num(`document.querySelectorAll('#model .online-breakdown tbody tr').length`); n != 2 {
		t.Errorf("%d per-source online rows, want 2", n)
	}
}
