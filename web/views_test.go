package web_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestRunView: the model panel links to its search's view (/#/runs/5),
// which opens in place and shows every trial in a table sortable by any
// column, each varying parameter's importance, a slice plot per parameter
// and the optimisation history (issue 26 item 17); /#/runs lists the runs,
// each linked, and a run no search chose says so.
func TestRunView(t *testing.T) {
	_, base := newFakeAPI(t, 50)
	b := newBrowser(t)
	b.run("open the page", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/"))
	b.waitFor("the search link", `document.querySelector('#model a.run-link') !== null`)
	b.eval(`window.__marker = 1`, nil)
	navs := b.navs.Load()
	b.run("open the search", chromedp.Click(`#model a.run-link`, chromedp.ByQuery))
	b.waitFor("the trials table", `document.querySelectorAll('#runs-view table.trials tbody tr').length === 20`)
	b.assertNoNavigation(navs, "opening the search view")
	if got := b.str(`location.hash`); got != "#/runs/5" {
		t.Errorf("the search link opened %q, want #/runs/5", got)
	}
	if b.num(`document.querySelector('#model').getClientRects().length`) != 0 {
		t.Error("the model panel still shows next to the search view")
	}

	// Columns: every varying parameter (the fake varies factors and
	// weighting) between the trial's facts and its score.
	heads := b.str(`[...document.querySelectorAll('#runs-view table.trials thead th')].map((th) => th.textContent).join('|')`)
	if heads != "Trial|Rung|Split|Iterations|Users|factors|weighting|NDCG@5|Best so far|Seconds|Outcome" {
		t.Errorf("trials table columns %q", heads)
	}
	// Sorting by NDCG@5: best first, marked on its header; again: worst first.
	col := `[...document.querySelectorAll('#runs-view table.trials thead th')].findIndex((th) => th.textContent === 'NDCG@5')`
	scores := `[...document.querySelectorAll('#runs-view table.trials tbody tr')].map((tr) => parseFloat(tr.children[` + col + `].textContent))`
	b.run("sort by NDCG@5", chromedp.Click(`#runs-view table.trials th:nth-child(8) button`, chromedp.ByQuery))
	b.waitFor("descending order", `document.querySelector('#runs-view table.trials th:nth-child(8)').getAttribute('aria-sort') === 'descending'`)
	if !b.bool(`(() => { const s = ` + scores + `; return s.every((v, i) => i === 0 || s[i - 1] >= v); })()`) {
		t.Errorf("after sorting by NDCG@5 the scores read %s, want descending", b.str(`JSON.stringify(`+scores+`)`))
	}
	b.run("sort again", chromedp.Click(`#runs-view table.trials th:nth-child(8) button`, chromedp.ByQuery))
	if !b.bool(`(() => { const s = ` + scores + `; return s.every((v, i) => i === 0 || s[i - 1] <= v); })()`) {
		t.Errorf("after sorting twice the scores read %s, want ascending", b.str(`JSON.stringify(`+scores+`)`))
	}
	if b.str(`document.activeElement.closest('th')?.textContent || ''`) != "NDCG@5" {
		t.Error("sorting moved the keyboard focus off the header's button")
	}

	// Importance: one bar per varying parameter, shares summing to 100 %.
	shares := b.str(`[...document.querySelectorAll('#runs-view .importance-row')].map((g) => g.dataset.param + '=' + g.lastChild.textContent.replace(' ', '')).join(' ')`)
	total := 0
	for _, kv := range strings.Fields(shares) {
		_, pct, _ := strings.Cut(kv, "=")
		n, err := strconv.Atoi(strings.TrimSuffix(pct, "%"))
		if err != nil {
			t.Fatalf("importance label %q", kv)
		}
		total += n
	}
	if strings.Count(shares, "=") != 2 || total < 99 || total > 101 {
		t.Errorf("importance %q: want factors and weighting summing to 100 %%", shares)
	}
	// A slice per parameter with a dot per trial, and the history's 20.
	if got := b.str(`[...document.querySelectorAll('#runs-view figure.slice')].map((f) => f.dataset.param + ':' + f.querySelectorAll('circle.trial').length).join(' ')`); got != "factors:20 weighting:20" {
		t.Errorf("slice plots %q, want factors and weighting with 20 trials each", got)
	}
	if n := b.num(`document.querySelectorAll('#runs-view .tuning-chart circle.trial').length`); n != 20 {
		t.Errorf("the optimisation history has %d dots, want 20", n)
	}
	if bad := b.str(`(document.querySelector('#runs-view').textContent.match(/NaN|undefined|null/) || [''])[0]`); bad != "" {
		t.Errorf("the search view shows %q", bad)
	}

	// The list of runs, each linked; a run without a search says so.
	b.run("open the runs", chromedp.Navigate(base+"/#/runs"))
	b.waitFor("the runs table", `document.querySelectorAll('#runs-view table.runs-table tbody tr').length === 7`)
	b.run("open run 3", chromedp.Click(`#runs-view tr[data-run="3"] a`, chromedp.ByQuery))
	b.waitFor("no search for run 3", `document.querySelector('#run-no-search') !== null`)
	b.run("open an unknown run", chromedp.Navigate(base+"/#/runs/99"))
	b.waitFor("the unknown run's alert", `(document.querySelector('#runs-view .alert')?.textContent || '').includes('No run 99')`)
	b.run("back to the listeners", chromedp.Click(`.site-nav a[data-view=home]`, chromedp.ByQuery))
	b.waitFor("the listener page", `document.querySelector('#model').getClientRects().length > 0 && document.querySelector('#runs-view').hidden`)
}

// TestBrowse: without typing anything, Browse pages through every
// listener and every song, opens a listener's history, and lists the
// experiments; an admin token starts one and stops it (issue 26 item 18).
func TestBrowse(t *testing.T) {
	f, base := newFakeAPI(t, 60)
	b := newBrowser(t)
	rows := `document.querySelectorAll('#browse-view tbody tr')`
	b.run("open Browse", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(".site-nav", chromedp.ByQuery), chromedp.Click(`.site-nav a[data-view=browse]`, chromedp.ByQuery))
	b.waitFor("the first page of listeners", rows+`.length === 25 && `+rows+`[0].dataset.user === 'user-00000'`)
	b.run("next page", chromedp.Click(`#browse-view button[data-page=next]`, chromedp.ByQuery))
	b.waitFor("the second page", rows+`[0]?.dataset.user === 'user-00025'`)
	b.run("next page", chromedp.Click(`#browse-view button[data-page=next]`, chromedp.ByQuery))
	b.waitFor("the third page", rows+`[0]?.dataset.user === 'user-00050'`)
	// 60 generated and 5 hostile listeners: the third page is the last.
	if n := b.num(rows + `.length`); n != 15 || !b.bool(`document.querySelector('#browse-view button[data-page=next]').disabled`) {
		t.Errorf("the last page has %d listeners and Next enabled=%v; want 15 and disabled", n, !b.bool(`document.querySelector('#browse-view button[data-page=next]').disabled`))
	}
	b.run("previous page", chromedp.Click(`#browse-view button[data-page=prev]`, chromedp.ByQuery))
	b.waitFor("the second page again", rows+`[0]?.dataset.user === 'user-00025'`)

	// A listener's history: user-00042 played song 7.
	b.run("open a history", chromedp.Navigate(base+"/#/browse/users/user-00042"))
	b.waitFor("the history", `document.querySelector('#browse-view table.browse-history tbody tr[data-kind=play]') !== null`)
	if got := b.str(`document.querySelector('#browse-view h3').textContent`); got != "History of Listener 42" {
		t.Errorf("history heading %q", got)
	}

	// Songs: alphabetical pages of the whole catalog.
	b.run("open the songs", chromedp.Click(`#browse-view .tabs a[href="#/browse/songs"]`, chromedp.ByQuery))
	b.waitFor("a page of songs", `document.querySelectorAll('#browse-view table.browse-songs tbody tr').length === 25`)
	first := b.str(`document.querySelector('#browse-view table.browse-songs tbody tr').dataset.songId`)
	b.run("next page of songs", chromedp.Click(`#browse-view button[data-page=next]`, chromedp.ByQuery))
	b.waitFor("the next page of songs", `document.querySelector('#browse-view table.browse-songs tbody tr')?.dataset.songId !== `+jsString(first))

	// Filtering by a tag asks GET /v1/songs?tag= from its first page, in
	// place: every row carries the tag, and its pages hold only such songs
	// (41 of the fake's 121 songs are rock: 25, then 16). "Served songs
	// only" then drops a hidden rock song.
	songRows := `document.querySelectorAll('#browse-view table.browse-songs tbody tr')`
	allTagged := `[...` + songRows + `].every((tr) => tr.children[2].textContent.split(', ').includes('rock'))`
	f.mu.Lock()
	hidden := f.meta(f.songs[2]) // song 3, rock
	hidden.Available = false
	f.catalog[3] = hidden
	f.mu.Unlock()
	b.eval(`window.__marker = 1`, nil)
	navs := b.navs.Load()
	b.typeInto("#browse-tag", "Rock")
	b.run("filter by a tag", chromedp.Click(`#browse-song-filters button[type=submit]`, chromedp.ByQuery))
	b.waitFor("the first page of rock songs", songRows+`.length === 25 && `+allTagged+` && document.querySelector('#browse-view .page-no').textContent === 'Page 1'`)
	if !b.bool(`document.querySelector('#browse-view tr[data-song-id="3"]') !== null`) {
		t.Error("the hidden rock song 3 is missing from the rock songs before \"Served songs only\"")
	}
	b.run("next page of rock songs", chromedp.Click(`#browse-view button[data-page=next]`, chromedp.ByQuery))
	b.waitFor("the last page of rock songs", songRows+`.length === 16 && `+allTagged)
	if got := b.str(`document.querySelector('#browse-tag').value`); got != "rock" {
		t.Errorf("the tag box holds %q after paging, want the applied filter rock", got)
	}
	b.run("served songs only", chromedp.Click(`#browse-served`, chromedp.ByQuery))
	b.waitFor("the served rock songs", songRows+`.length === 25 && `+allTagged+` && document.querySelector('#browse-view tr[data-song-id="3"]') === null`)
	b.run("next page of served rock songs", chromedp.Click(`#browse-view button[data-page=next]`, chromedp.ByQuery))
	b.waitFor("the last page of served rock songs", songRows+`.length === 15 && `+allTagged)
	b.assertNoNavigation(navs, "filtering the songs")
	b.clearInput("#browse-tag")
	b.run("drop the tag", chromedp.Click(`#browse-song-filters button[type=submit]`, chromedp.ByQuery))
	b.waitFor("every served song again", songRows+`.length === 25 && !(`+allTagged+`)`)

	// Experiments: read-only without an admin token.
	b.run("open the experiments", chromedp.Navigate(base+"/#/browse/experiments"))
	b.waitFor("the experiments", `(document.querySelector('#browse-view').textContent).includes('No experiment has run yet')`)
	if b.num(`document.querySelectorAll('#experiment-start').length`) != 0 {
		t.Error("the start form shows without an admin token")
	}
	b.run("sign in as an admin", chromedp.Evaluate(`sessionStorage.setItem('setlist.api-token', '`+fakeAdminToken+`')`, nil),
		chromedp.Navigate(base+"/?admin=1#/browse/experiments"))
	b.waitFor("the start form", `document.querySelector('#experiment-start') !== null`)
	b.typeInto("#exp-challenger", "5")
	b.run("start", chromedp.Click(`#experiment-start button[type=submit]`, chromedp.ByQuery))
	b.waitFor("the running experiment", `document.querySelector('#browse-view tr[data-status=running]') !== null && document.querySelector('#experiment-stop') !== null`)
	f.mu.Lock()
	started := len(f.exps) == 1 && f.exps[0]["challenger_version"] == int64(5)
	f.mu.Unlock()
	if !started {
		t.Errorf("the server holds experiments %v, want one of challenger 5", f.exps)
	}
	b.run("stop", chromedp.Click(`#experiment-stop`, chromedp.ByQuery))
	b.waitFor("the stopped experiment", `document.querySelector('#browse-view tr[data-status=stopped]') !== null && document.querySelector('#experiment-start') !== null`)
}

func (b *browser) bool(expr string) bool {
	b.t.Helper()
	var v bool
	b.eval(expr, &v)
	return v
}
